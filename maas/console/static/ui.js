// Small helpers every section uses: building elements, busy forms, messages that screen readers hear.

import { ApiError } from "./api.js";
import * as i18n from "./i18n.js";

// el("p", {class: "x", text: "…"}, child, …): attributes, then children (strings or nodes).
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function setBusy(form, busy) {
  form.setAttribute("aria-busy", busy ? "true" : "false");
  for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = busy;
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const item = el("p", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  const close = el("button", { type: "button", class: "close", "aria-label": i18n.t("dialog.close"), text: "×" });
  close.addEventListener("click", () => item.remove());
  item.append(close);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 15000 : 8000);
}

export function report(error) {
  if (error instanceof ApiError) toast(error.message, "error");
  else if (error instanceof TypeError) toast(i18n.t("error.network"), "error");
  else {
    toast(String(error), "error");
    console.error(error);
  }
}

// Runs `work` at most once per `ms`, the last call winning.
export function debounce(work, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => work(...args), ms);
  };
}

export function statusText(status) {
  return i18n.t(`status.${status}`);
}

export function who(booking) {
  if (booking.caller) return i18n.t("caller", { name: booking.caller.name || "?" });
  return booking.rider_name || i18n.t("rider");
}
