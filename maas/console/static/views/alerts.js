// Alerts as they happen (a late train breaking a connection, a delayed vehicle, a no-show): listed from
// GET /alerts, pushed over /ws/fleet, announced to screen readers, and acted on from here.

import { get, post } from "../api.js";
import * as i18n from "../i18n.js";
import { debounce, el, report, toast } from "../ui.js";
import { byId, cancel, reassign } from "./bookings.js";

let wired = false;
const announced = new Set();

function kindText(kind) {
  const key = `alerts.kind.${kind}`;
  return i18n.has(key) ? i18n.t(key) : kind;
}

function stateOf(alert) {
  if (alert.resolved_at) return "resolved";
  if (alert.acknowledged_at) return "acknowledged";
  return "open";
}

function item(alert) {
  const state = stateOf(alert);
  const buttons = el("p", { class: "actions" });
  if (state === "open") {
    buttons.append(
      el("button", {
        type: "button",
        class: "primary",
        text: i18n.t("action.acknowledge"),
        onclick: () => acknowledge(alert).catch(report),
      }),
    );
  }
  if (state !== "resolved") {
    buttons.append(
      el("button", { type: "button", class: "resolve", text: i18n.t("action.resolve"), onclick: () => resolve(alert).catch(report) }),
    );
  }
  if (alert.booking_id) {
    buttons.append(el("a", { href: `#/bookings?q=${alert.booking_id}`, class: "button", text: i18n.t("action.booking") }));
    const actions = alert.actions || [];
    if (state !== "resolved" && actions.includes("reassign"))
      buttons.append(el("button", { type: "button", text: i18n.t("action.reassign"), onclick: () => act(alert, reassign) }));
    if (state !== "resolved" && actions.includes("cancel"))
      buttons.append(el("button", { type: "button", class: "danger", text: i18n.t("action.cancel"), onclick: () => act(alert, cancel) }));
  }
  const facts = [i18n.t("alerts.raised", { at: i18n.time(alert.raised_at) })];
  if (alert.acknowledged_at)
    facts.push(i18n.t("alerts.acked", { who: alert.acknowledged_by || "?", at: i18n.clock(alert.acknowledged_at) }));
  if (alert.resolved_at) facts.push(i18n.t("alerts.resolved_at", { at: i18n.clock(alert.resolved_at) }));
  if (alert.resolution) facts.push(alert.resolution);
  return el(
    "li",
    { class: `alert ${alert.severity || "warning"} ${state}`, dataset: { alertId: alert.id, kind: alert.kind, state } },
    el("h2", { text: kindText(alert.kind) }),
    el("p", { text: alert.detail }),
    el("p", { class: "muted", text: facts.join(" · ") }),
    buttons,
  );
}

async function act(alert, action) {
  try {
    action(await byId(alert.booking_id));
  } catch (error) {
    report(error);
  }
}

async function acknowledge(alert) {
  await post(`/alerts/${alert.id}/acknowledge`, {});
  await load();
  await count();
}

async function resolve(alert) {
  await post(`/alerts/${alert.id}/resolve`, {});
  await load();
  await count();
}

async function load() {
  const state = document.getElementById("af-state").value;
  const alerts = await get("/alerts", { state, limit: 200 });
  const list = document.getElementById("alerts-list");
  list.replaceChildren(...(alerts.length ? alerts.map(item) : [el("li", { class: "muted", text: i18n.t("alerts.none") })]));
}

export async function count() {
  // Open and not yet taken by anyone: what still waits for a dispatcher.
  const data = await get("/alerts", { state: "open", limit: 500 });
  const open = data.filter((alert) => !alert.acknowledged_at).length;
  const badge = document.getElementById("alert-count");
  badge.hidden = open === 0;
  badge.textContent = String(open);
  badge.setAttribute("aria-label", `${open} ${i18n.t("alerts.open")}`);
}

export async function show() {
  if (!wired) {
    wired = true;
    document.getElementById("alerts-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      load().catch(report);
    });
  }
  await load();
}

const refresh = debounce((visible) => {
  count().catch(report);
  if (visible) load().catch(report);
}, 300);

export function live(message, visible) {
  if (message.type !== "alert") return;
  const alert = message.alert;
  if (alert && !alert.acknowledged_at && !alert.resolved_at && !announced.has(alert.id)) {
    announced.add(alert.id); // a delay growing updates its alert: told once
    toast(i18n.t("alerts.new", { kind: kindText(alert.kind), detail: alert.detail }), "alert");
  }
  refresh(visible);
}
