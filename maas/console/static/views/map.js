// The map: the service area, the network's own streets and stops (no tile server), and every vehicle
// moving live, with a table of the fleet beside it (occupancy, next stops, delay) that the keyboard reaches.

import * as L from "../vendor/leaflet/leaflet-src.esm.js";
import { get } from "../api.js";
import * as i18n from "../i18n.js";
import { debounce, el, report } from "../ui.js";

let map = null;
let layers = null;
const markers = new Map(); // vehicle id -> marker
let fleet = []; // GET /fleet/live
let onBoard = new Map(); // vehicle id -> {seated, wheelchairs}
let upcoming = new Map(); // vehicle id -> next stops of its plan today
let loaded = false;

const STREETS = {
  major: { color: "#7d746b", weight: 3 },
  main: { color: "#968d84", weight: 2 },
  minor: { color: "#bdb6ae", weight: 1.1 },
};

function streetStyle(feature) {
  return { ...(STREETS[feature.properties?.class] || STREETS.minor), opacity: 0.95, interactive: false };
}

async function build() {
  map = L.map("map", { preferCanvas: true, zoomSnap: 0.5, keyboard: true });
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution("© OpenStreetMap contributors (ODbL) · GTFS © its publishers");
  const canvas = L.canvas({ padding: 0.3 });
  layers = {
    area: L.geoJSON(null, { style: { color: "#1d5fa8", weight: 2, fillOpacity: 0.04, interactive: false } }),
    streets: L.geoJSON(null, { style: streetStyle, renderer: canvas }),
    stops: L.geoJSON(null, {
      renderer: canvas,
      pointToLayer: (feature, at) =>
        L.circleMarker(at, { radius: 4, color: "#0b6e4f", weight: 1.5, fillColor: "#ffffff", fillOpacity: 1 }).bindTooltip(
          feature.properties?.name || "",
        ),
    }),
    vehicles: L.layerGroup(),
  };
  for (const layer of Object.values(layers)) layer.addTo(map);
  const [service, streets, stops] = await Promise.all([get("/service"), get("/map/streets"), get("/map/stops")]);
  layers.area.addData(service.area);
  layers.streets.addData(streets);
  layers.stops.addData(stops);
  const bounds = layers.area.getBounds();
  map.fitBounds(bounds.isValid() ? bounds : layers.streets.getBounds(), { padding: [12, 12] });
  loaded = true;
}

function delayOf(vehicle) {
  const next = vehicle.next_stop;
  if (!next || !next.eta || !next.planned_at || vehicle.eta_source !== "gps") return null;
  return Math.round((Date.parse(next.eta) - Date.parse(next.planned_at)) / 1000);
}

function delayText(seconds) {
  if (seconds === null) return i18n.t("delay.plan");
  const minutes = Math.round(seconds / 60);
  if (minutes === 0) return i18n.t("delay.on_time");
  return minutes > 0 ? i18n.t("delay.late", { min: minutes }) : i18n.t("delay.early", { min: -minutes });
}

function occupancy(vehicle) {
  const used = onBoard.get(vehicle.vehicle.id) || { seated: 0, wheelchairs: 0 };
  const parts = [i18n.t("map.seats", { used: used.seated, seats: vehicle.vehicle.seats })];
  if (vehicle.vehicle.wheelchair_places > 0)
    parts.push(i18n.t("map.wheelchairs", { used: used.wheelchairs, places: vehicle.vehicle.wheelchair_places }));
  return parts.join(", ");
}

function positionText(vehicle) {
  if (!vehicle.position) return i18n.t("map.no_position");
  const age = (Date.now() - Date.parse(vehicle.position.at)) / 1000;
  return i18n.t("map.age", { age: i18n.duration(age) });
}

function markerIcon(vehicle) {
  const late = delayOf(vehicle);
  const state = !vehicle.shift ? "off" : late !== null && late >= 300 ? "late" : "on";
  return L.divIcon({
    className: `vehicle-marker ${state}`,
    html: "",
    iconSize: [18, 18],
  });
}

function placeMarker(vehicle) {
  const id = vehicle.vehicle.id;
  let marker = markers.get(id);
  if (!vehicle.position) {
    if (marker) {
      marker.remove();
      markers.delete(id);
    }
    return;
  }
  const at = [vehicle.position.lat, vehicle.position.lon];
  if (!marker) {
    marker = L.marker(at, { icon: markerIcon(vehicle), keyboard: false, title: vehicle.vehicle.name });
    marker.bindTooltip(vehicle.vehicle.name, { permanent: true, direction: "right", offset: [10, 0], className: "vehicle-label" });
    marker.addTo(layers.vehicles);
    markers.set(id, marker);
  } else {
    marker.setLatLng(at);
    marker.setIcon(markerIcon(vehicle));
  }
  const node = marker.getElement();
  if (node) Object.assign(node.dataset, { vehicleId: id, lat: String(at[0]), lon: String(at[1]) });
}

function nextStops(vehicle) {
  const stops = upcoming.get(vehicle.vehicle.id) || [];
  if (!stops.length) return vehicle.shift ? "–" : i18n.t("map.off_shift");
  return el(
    "ol",
    { class: "next-stops" },
    stops.slice(0, 3).map((s) => el("li", {}, `${i18n.clock(s.planned_at)} ${i18n.t(`kind.${s.kind}`)}${s.label ? ` · ${s.label}` : ""}`)),
  );
}

function renderTable() {
  const body = document.querySelector("#fleet-table tbody");
  body.replaceChildren();
  if (!fleet.length) {
    body.append(el("tr", {}, el("td", { colspan: 5, text: i18n.t("map.no_vehicles") })));
    return;
  }
  for (const vehicle of fleet) {
    const focus = el("button", { type: "button", class: "link", text: vehicle.vehicle.name });
    focus.addEventListener("click", () => {
      if (vehicle.position) map.setView([vehicle.position.lat, vehicle.position.lon], Math.max(map.getZoom(), 15));
      document.getElementById("map").focus();
    });
    const late = delayOf(vehicle);
    body.append(
      el(
        "tr",
        { dataset: { vehicleId: vehicle.vehicle.id } },
        el("th", { scope: "row" }, focus),
        el("td", { class: "occupancy" }, occupancy(vehicle)),
        el("td", {}, nextStops(vehicle)),
        el("td", { class: late !== null && late >= 300 ? "late" : "" }, delayText(late)),
        el(
          "td",
          { class: "position", dataset: vehicle.position ? { lat: vehicle.position.lat, lon: vehicle.position.lon } : {} },
          positionText(vehicle),
        ),
      ),
    );
  }
}

async function refresh() {
  const day = i18n.localDate().date;
  const [vehicles, aboard, plans] = await Promise.all([
    get("/fleet/live"),
    get("/bookings", { status: "picked_up", limit: 500 }),
    get("/fleet/plans", { date: day }),
  ]);
  fleet = vehicles;
  onBoard = new Map();
  for (const b of aboard) {
    if (!b.vehicle_id) continue;
    const used = onBoard.get(b.vehicle_id) || { seated: 0, wheelchairs: 0 };
    used.seated += b.passengers.seated;
    used.wheelchairs += b.passengers.wheelchairs;
    onBoard.set(b.vehicle_id, used);
  }
  upcoming = new Map();
  for (const plan of plans) {
    if (Date.parse(plan.ends_at) < Date.now()) continue;
    const open = plan.stops.filter((s) => !s.served_at && s.booking_id);
    const list = upcoming.get(plan.vehicle.id) || [];
    upcoming.set(plan.vehicle.id, list.concat(open));
  }
  for (const vehicle of fleet) placeMarker(vehicle);
  renderTable();
}

const refreshSoon = debounce(() => refresh().catch(report), 400);

export async function show() {
  if (!map) await build();
  else map.invalidateSize();
  await refresh();
}

export function live(message) {
  if (!loaded) return;
  if (message.type === "positions") {
    const vehicle = fleet.find((v) => v.vehicle.id === message.vehicle_id);
    if (!vehicle) return refreshSoon();
    vehicle.position = message.position;
    placeMarker(vehicle);
    const cell = document.querySelector(`#fleet-table tr[data-vehicle-id="${vehicle.vehicle.id}"] td.position`);
    if (cell) {
      cell.textContent = positionText(vehicle);
      Object.assign(cell.dataset, { lat: String(message.position.lat), lon: String(message.position.lon) });
    }
  } else if (message.type === "snapshot") {
    fleet = message.vehicles;
    for (const vehicle of fleet) placeMarker(vehicle);
    renderTable();
  } else if (["booking", "plan", "delay", "on_time", "journey", "resync"].includes(message.type)) {
    refreshSoon();
  }
}

