// Every journey (walk, Rufbus, train …) with its legs, the state of each ride and the journey's events.

import { call } from "../api.js";
import * as i18n from "../i18n.js";
import { debounce, el, report, statusText } from "../ui.js";

let wired = false;
const filters = {};

function legText(leg) {
  const mode = leg.mode === "transit" ? leg.route_name || i18n.t("mode.transit") : i18n.t(`mode.${leg.mode}`);
  const ride = leg.ride ? ` · ${statusText(leg.ride.status)}` : "";
  return `${i18n.clock(leg.departure)}–${i18n.clock(leg.arrival)} ${mode}${ride}`;
}

function row(journey) {
  const events = journey.events.slice(-3);
  return el(
    "tr",
    { dataset: { journeyId: journey.id, status: journey.status } },
    el("td", {}, i18n.time(journey.departure)),
    el("td", {}, i18n.time(journey.arrival)),
    el("td", {}, el("span", { class: `status ${journey.status}`, text: i18n.t(`jstatus.${journey.status}`) })),
    el("td", {}, el("ol", { class: "legs" }, journey.legs.map((leg) => el("li", {}, legText(leg))))),
    el(
      "td",
      {},
      events.length ? el("ul", { class: "events" }, events.map((e) => el("li", {}, `${i18n.clock(e.at)} ${e.detail || e.kind}`))) : "–",
    ),
  );
}

async function load() {
  const { data, headers } = await call("/journeys", { params: { ...filters, limit: 100 } });
  const total = Number(headers.get("X-Total-Count") ?? data.length);
  document.querySelector("#journeys-table tbody").replaceChildren(...data.map(row));
  document.getElementById("journeys-count").textContent = total
    ? i18n.t("journeys.count", { total })
    : i18n.t("journeys.none");
}

export async function show() {
  if (!wired) {
    wired = true;
    document.getElementById("journeys-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      const form = event.target;
      for (const name of ["q", "status"]) {
        const value = form[name].value.trim();
        if (value) filters[name] = value;
        else delete filters[name];
      }
      load().catch(report);
    });
  }
  await load();
}

const reloadSoon = debounce(() => load().catch(report), 500);

export function live(message, visible) {
  if (visible && ["journey", "booking", "resync"].includes(message.type)) reloadSoon();
}
