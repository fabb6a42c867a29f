// Each vehicle's plan for a day as a timeline (GET /fleet/plans): a lane from the shift's start to its
// end with every stop at its time, and the same stops as a list that screen readers and the keyboard read.

import { get } from "../api.js";
import * as i18n from "../i18n.js";
import { debounce, el, report, statusText } from "../ui.js";

let wired = false;

function at(stop) {
  return stop.served_at || stop.planned_at;
}

function stopText(stop) {
  const parts = [`${i18n.clock(at(stop))} ${i18n.t(`kind.${stop.kind}`)}`];
  if (stop.label) parts.push(stop.label);
  if (stop.window?.earliest) parts.push(`[${i18n.clock(stop.window.earliest)}–${i18n.clock(stop.window.latest)}]`);
  else if (stop.window?.latest) parts.push(`[≤ ${i18n.clock(stop.window.latest)}]`);
  if (stop.status) parts.push(statusText(stop.status));
  return parts.join(" · ");
}

function hours(start, end) {
  const ticks = [];
  const first = new Date(start);
  first.setMinutes(0, 0, 0);
  for (let t = first.getTime() + 3600000; t < end; t += 3600000) ticks.push(t);
  return ticks;
}

function lane(plan) {
  const start = Date.parse(plan.starts_at);
  const end = Date.parse(plan.ends_at);
  const span = Math.max(1, end - start);
  const where = (t) => `${Math.min(100, Math.max(0, ((t - start) / span) * 100)).toFixed(2)}%`;
  const box = el("div", { class: "lane", "aria-hidden": "true" });
  for (const tick of hours(start, end)) {
    const mark = el("span", { class: "tick", text: i18n.clock(new Date(tick).toISOString()) });
    mark.style.left = where(tick);
    box.append(mark);
  }
  const now = Date.now();
  if (now > start && now < end) {
    const line = el("span", { class: "now" });
    line.style.left = where(now);
    box.append(line);
  }
  for (const stop of plan.stops) {
    const t = Date.parse(at(stop));
    if (Number.isNaN(t)) continue;
    const dot = el("span", { class: `stop ${stop.kind} ${stop.status || ""} ${stop.served_at ? "done" : ""}`, title: stopText(stop) });
    dot.style.left = where(t);
    box.append(dot);
  }
  return box;
}

function shiftSection(plan) {
  const title = i18n.t("timeline.shift", {
    vehicle: plan.vehicle.name,
    start: i18n.clock(plan.starts_at),
    end: i18n.clock(plan.ends_at),
  });
  const driver = plan.driver ? i18n.t("timeline.driver", { name: plan.driver.name }) : i18n.t("timeline.no_driver");
  const stops = plan.stops.length
    ? el(
        "ol",
        { class: "plan-stops" },
        plan.stops.map((stop) =>
          el("li", { class: stop.served_at ? "done" : "", dataset: { bookingId: stop.booking_id || "", kind: stop.kind } }, stopText(stop)),
        ),
      )
    : el("p", { class: "muted", text: i18n.t("timeline.empty") });
  return el(
    "section",
    { class: "shift", dataset: { shiftId: plan.shift_id, vehicleId: plan.vehicle.id }, "aria-label": title },
    el("h2", { text: title }),
    el("p", { class: "muted", text: driver }),
    lane(plan),
    stops,
  );
}

async function load() {
  const date = document.getElementById("tf-date").value || i18n.localDate().date;
  const plans = await get("/fleet/plans", { date });
  const box = document.getElementById("timeline");
  box.replaceChildren(...(plans.length ? plans.map(shiftSection) : [el("p", { text: i18n.t("timeline.none") })]));
}

export async function show() {
  const input = document.getElementById("tf-date");
  if (!wired) {
    wired = true;
    input.value = i18n.localDate().date;
    document.getElementById("timeline-form").addEventListener("submit", (event) => {
      event.preventDefault();
      load().catch(report);
    });
  }
  await load();
}

const reloadSoon = debounce(() => load().catch(report), 500);

export function live(message, visible) {
  if (visible && ["plan", "booking", "resync"].includes(message.type)) reloadSoon();
}
