// Every booking, searched, sorted and paged by the API (GET /bookings with filters and X-Total-Count),
// and what a dispatcher does to one: cancel or reassign it, with a reason that goes into the audit log.

import { ApiError, call, get, post } from "../api.js";
import * as i18n from "../i18n.js";
import { debounce, el, report, setBusy, statusText, toast, who } from "../ui.js";

const PAGE = 50;
const state = { sort: "pickup", offset: 0, filters: {} };
let vehicles = [];
let wired = false;

function connectionText(booking) {
  const c = booking.connection;
  if (!c || c.kind === "direct") return "–";
  const kind = i18n.t(`connection.${c.kind}`);
  if (!c.trip && !c.stop) return kind;
  const trip = c.route_name || c.trip || "";
  return i18n.t("connection.meets", { kind, trip, stop: c.stop_name || c.stop || "", at: i18n.clock(c.at) });
}

function vehicleName(booking) {
  if (booking.vehicle_name) return booking.vehicle_name;
  return vehicles.find((v) => v.id === booking.vehicle_id)?.name || "–";
}

function readHash() {
  const [, search = ""] = location.hash.split("?");
  const params = new URLSearchParams(search);
  const form = document.getElementById("bookings-filter");
  if (params.has("q")) {
    form.q.value = params.get("q");
    state.offset = 0;
  }
}

function readForm() {
  const form = document.getElementById("bookings-filter");
  const filters = {};
  for (const name of ["q", "status", "vehicle_id", "connection"]) {
    const value = form[name].value.trim();
    if (value) filters[name] = value;
  }
  for (const name of ["from", "to"]) if (form[name].value) filters[name] = i18n.withOffset(form[name].value);
  state.filters = filters;
}

function sortHeaders() {
  for (const th of document.querySelectorAll("#bookings-table th[data-sort]")) {
    const key = th.dataset.sort;
    if (state.sort === key) th.setAttribute("aria-sort", "ascending");
    else if (state.sort === `-${key}`) th.setAttribute("aria-sort", "descending");
    else th.removeAttribute("aria-sort");
  }
}

function actions(booking) {
  const cell = el("td", { class: "actions" });
  if (booking.status === "confirmed") {
    cell.append(
      el("button", { type: "button", class: "danger", text: i18n.t("action.cancel"), onclick: () => cancel(booking) }),
      el("button", { type: "button", text: i18n.t("action.reassign"), onclick: () => reassign(booking) }),
    );
  }
  return cell;
}

function row(booking) {
  const window = `${i18n.time(booking.pickup_window.earliest)}–${i18n.clock(booking.pickup_window.latest)}`;
  const people = booking.passengers.seated + booking.passengers.wheelchairs;
  const wheel = booking.passengers.wheelchairs ? ` (♿ ${booking.passengers.wheelchairs})` : "";
  return el(
    "tr",
    { dataset: { bookingId: booking.id, status: booking.status } },
    el("td", {}, window),
    el("td", {}, el("span", { class: `status ${booking.status}`, text: statusText(booking.status) })),
    el("td", {}, who(booking), booking.caller?.phone ? el("br") : null, booking.caller?.phone || null),
    el("td", {}, vehicleName(booking)),
    el("td", {}, `${people}${wheel}`),
    el("td", {}, connectionText(booking)),
    el("td", {}, i18n.time(booking.created_at)),
    actions(booking),
  );
}

export async function load() {
  const params = { ...state.filters, sort: state.sort, limit: PAGE, offset: state.offset };
  const { data, headers } = await call("/bookings", { params });
  const total = Number(headers.get("X-Total-Count") ?? data.length);
  const body = document.querySelector("#bookings-table tbody");
  body.replaceChildren(...data.map(row));
  const count = document.getElementById("bookings-count");
  count.textContent = total
    ? i18n.t("bookings.count", { total, first: state.offset + 1, last: state.offset + data.length })
    : i18n.t("bookings.none");
  const pages = Math.max(1, Math.ceil(total / PAGE));
  document.getElementById("bookings-page").textContent = i18n.t("pager.page", {
    page: Math.floor(state.offset / PAGE) + 1,
    pages,
  });
  document.getElementById("bookings-prev").disabled = state.offset === 0;
  document.getElementById("bookings-next").disabled = state.offset + PAGE >= total;
  sortHeaders();
}

async function fillVehicles() {
  vehicles = await get("/vehicles");
  for (const select of [document.getElementById("bf-vehicle"), document.getElementById("reassign-vehicle")]) {
    const keep = select.value;
    const first = select.id === "bf-vehicle" ? [el("option", { value: "", text: i18n.t("filter.all") })] : [];
    select.replaceChildren(...first, ...vehicles.map((v) => el("option", { value: v.id, text: v.name })));
    select.value = keep;
  }
}

function wire() {
  wired = true;
  const form = document.getElementById("bookings-filter");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    readForm();
    state.offset = 0;
    load().catch(report);
  });
  for (const th of document.querySelectorAll("#bookings-table th[data-sort] button")) {
    th.addEventListener("click", () => {
      const key = th.parentElement.dataset.sort;
      state.sort = state.sort === key ? `-${key}` : key;
      state.offset = 0;
      load().catch(report);
    });
  }
  document.getElementById("bookings-prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE);
    load().catch(report);
  });
  document.getElementById("bookings-next").addEventListener("click", () => {
    state.offset += PAGE;
    load().catch(report);
  });
}

export async function show() {
  if (!wired) wire();
  readHash();
  readForm();
  await fillVehicles();
  await load();
}

const reloadSoon = debounce(() => load().catch(report), 500);

export function live(message, visible) {
  if (visible && ["booking", "resync"].includes(message.type)) reloadSoon();
}

// A dialog asking for a reason, then `act(reason)`; the dialog stays open with the API's message on failure.
function ask(dialog, what, act) {
  const form = dialog.querySelector("form");
  const error = dialog.querySelector(".error");
  const reason = form.querySelector("textarea");
  error.textContent = "";
  reason.value = "";
  dialog.querySelector("p[id$=-what]").textContent = what;
  const opener = document.activeElement;
  const submit = async (event) => {
    event.preventDefault();
    if (!reason.value.trim()) {
      error.textContent = i18n.t("reason.needed");
      reason.focus();
      return;
    }
    setBusy(form, true);
    try {
      await act(reason.value.trim());
      dialog.close();
    } catch (failure) {
      error.textContent = failure instanceof ApiError ? failure.message : i18n.t("error.network");
    } finally {
      setBusy(form, false);
    }
  };
  form.addEventListener("submit", submit);
  dialog.addEventListener(
    "close",
    () => {
      form.removeEventListener("submit", submit);
      if (opener && document.contains(opener)) opener.focus();
    },
    { once: true },
  );
  dialog.showModal();
  reason.focus();
}

export function cancel(booking) {
  const what = i18n.t("cancel.what", { who: who(booking), from: i18n.time(booking.pickup_window.earliest) });
  ask(document.getElementById("cancel-dialog"), what, async (reason) => {
    await post(`/bookings/${booking.id}/cancel`, { reason });
    toast(i18n.t("cancel.done"));
    await load().catch(report);
  });
}

export async function reassign(booking) {
  if (!vehicles.length) await fillVehicles();
  const select = document.getElementById("reassign-vehicle");
  const others = vehicles.filter((v) => v.id !== booking.vehicle_id && v.active);
  select.replaceChildren(...others.map((v) => el("option", { value: v.id, text: v.name })));
  const what = i18n.t("cancel.what", { who: who(booking), from: i18n.time(booking.pickup_window.earliest) });
  ask(document.getElementById("reassign-dialog"), what, async (reason) => {
    const vehicle = others.find((v) => v.id === select.value);
    await post(`/operator/bookings/${booking.id}/reassign`, { vehicle_id: select.value, reason });
    toast(i18n.t("reassign.done", { vehicle: vehicle?.name || "" }));
    await load().catch(report);
  });
}

export async function byId(id) {
  return get(`/bookings/${id}`);
}
