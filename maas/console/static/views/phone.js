// Booking for a phone caller: find the places by name (GET /places), say who travels and when, see the
// offers — the Rufbus alone (POST /quotes) and the Rufbus that meets a train (GET /plan) — and book one
// (POST /operator/bookings or POST /operator/journeys) with the caller's name and number.

import { ApiError, call, get, idempotencyKey } from "../api.js";
import * as i18n from "../i18n.js";
import { el, setBusy, toast } from "../ui.js";

const chosen = { origin: null, destination: null };
let wired = false;
let request = null; // what the offers shown were asked for

function placeLabel(place) {
  return `${place.label} (${i18n.t(`phone.kind.${place.kind}`)})`;
}

function choose(which, place) {
  chosen[which] = place;
  const box = document.getElementById(`pf-${which}-chosen`);
  box.textContent = place ? i18n.t("phone.chosen", { label: placeLabel(place) }) : "";
}

async function search(fieldset) {
  const which = fieldset.dataset.place;
  const input = fieldset.querySelector("input[type=search]");
  const results = fieldset.querySelector(".results");
  const q = input.value.trim();
  results.replaceChildren();
  choose(which, null);
  if (q.length < 2) return;
  const near = which === "destination" && chosen.origin ? `${chosen.origin.lat},${chosen.origin.lon}` : undefined;
  const places = await get("/places", { q, limit: 8, near });
  if (!places.length) {
    results.append(el("p", { class: "muted", text: i18n.t("phone.no_places", { q }) }));
    return;
  }
  places.forEach((place, index) => {
    const id = `pf-${which}-r${index}`;
    const radio = el("input", { type: "radio", id, name: `pf-${which}-place`, value: String(index) });
    radio.addEventListener("change", () => choose(which, place));
    results.append(el("p", { class: "inline" }, radio, el("label", { for: id, text: placeLabel(place) })));
  });
  const first = results.querySelector("input");
  first.checked = true;
  choose(which, places[0]);
}

function readRequest(form) {
  const name = form.name.value.trim();
  const phone = form.phone.value.trim();
  const time = form.time.value;
  if (!name || !phone || !time) throw new Error(i18n.t("phone.needed"));
  for (const which of ["origin", "destination"]) {
    if (!chosen[which]) throw new Error(i18n.t("phone.choose", { what: i18n.t(`phone.${which}`) }));
  }
  const arriveBy = form.timing.value === "by";
  return {
    caller: { name, phone },
    origin: { lat: chosen.origin.lat, lon: chosen.origin.lon },
    destination: { lat: chosen.destination.lat, lon: chosen.destination.lon },
    seated: Number(form.seated.value),
    wheelchairs: Number(form.wheelchairs.value),
    arriveBy,
    chosen: { origin: chosen.origin, destination: chosen.destination },
    time: i18n.withOffset(time), // typed on the service's clock
  };
}

function offerText(offer) {
  return i18n.t("phone.offer", {
    from: i18n.time(offer.pickup_window.earliest),
    to: i18n.clock(offer.pickup_window.latest),
    latest: i18n.clock(offer.dropoff_latest),
  });
}

function estimateText(offer) {
  return i18n.t("phone.estimate", { pickup: i18n.clock(offer.pickup_estimate), dropoff: i18n.clock(offer.dropoff_estimate) });
}

// The train (or bus) the Rufbus meets: the first one after the ride, else the last one before it.
function trainOf(itinerary) {
  const legs = itinerary.legs;
  const ride = legs.findIndex((leg) => leg.mode === "on_demand");
  const after = legs.find((leg, i) => i > ride && leg.mode === "transit");
  const before = legs.filter((leg, i) => i < ride && leg.mode === "transit").pop();
  if (after) return `${after.route_name || after.route || ""} ${i18n.clock(after.departure)}, ${after.from.name}`.trim();
  if (before) return `${before.route_name || before.route || ""} ${i18n.clock(before.arrival)}, ${before.to.name}`.trim();
  return null;
}

function modeText(leg) {
  if (leg.mode === "transit") return leg.route_name || leg.route || i18n.t("mode.transit");
  return i18n.t(`mode.${leg.mode}`);
}

// A leg's end at the caller's own place is named by what the dispatcher chose, not by its coordinates.
function placeName(place) {
  if (!/^-?\d+(\.\d+)?,-?\d+(\.\d+)?$/.test(place.name)) return place.name;
  for (const which of ["origin", "destination"]) {
    const chosenPlace = request?.chosen?.[which];
    if (chosenPlace && Math.abs(chosenPlace.lat - place.lat) < 1e-4 && Math.abs(chosenPlace.lon - place.lon) < 1e-4)
      return chosenPlace.label;
  }
  return place.name;
}

function offerItem({ offer, itinerary }) {
  const train = itinerary ? trainOf(itinerary) : null;
  const book = el("button", { type: "button", class: "primary", text: i18n.t("phone.book") });
  book.addEventListener("click", () => confirm(book, { offer, itinerary }));
  return el(
    "li",
    { class: "offer", dataset: { offerId: offer.id } },
    el("p", { class: "strong", text: offerText(offer) }),
    el("p", { text: estimateText(offer) }),
    train ? el("p", { class: "train", text: i18n.t("phone.train", { train }) }) : null,
    itinerary
      ? el(
          "ol",
          { class: "legs" },
          itinerary.legs.map((leg) =>
            el("li", {}, `${i18n.clock(leg.departure)}–${i18n.clock(leg.arrival)} ${modeText(leg)}: ${placeName(leg.from)} → ${placeName(leg.to)}`),
          ),
        )
      : null,
    el("p", {}, book),
  );
}

async function findOffers(wish) {
  const ride = {
    origin: wish.origin,
    destination: wish.destination,
    seated: wish.seated,
    wheelchairs: wish.wheelchairs,
    [wish.arriveBy ? "latest_arrival" : "earliest_pickup"]: wish.time,
  };
  const plan = {
    from: `${wish.origin.lat},${wish.origin.lon}`,
    to: `${wish.destination.lat},${wish.destination.lon}`,
    [wish.arriveBy ? "arrive_by" : "depart"]: wish.time,
    seated: wish.seated,
    wheelchairs: wish.wheelchairs,
  };
  // A ride the Rufbus alone cannot take (a destination outside its area, say) may still be a journey by
  // Rufbus and train: either answer's refusal leaves the other's offers.
  const refused = (empty) => (error) => {
    if (error instanceof ApiError && error.status < 500) return { ...empty, reason: error.message };
    throw error;
  };
  const [quote, planned] = await Promise.all([
    call("/quotes", { method: "POST", body: ride })
      .then((r) => r.data)
      .catch(refused({ offers: [], alternatives: [] })),
    get("/plan", plan).catch(refused({ itineraries: [] })),
  ]);
  const journeys = planned.itineraries
    .filter((it) => it.id && it.legs.some((leg) => leg.mode === "on_demand" && leg.offer) && it.legs.some((leg) => leg.mode === "transit"))
    .map((it) => ({ offer: it.legs.find((leg) => leg.mode === "on_demand").offer, itinerary: it }));
  return { quote, journeys };
}

async function quote(event) {
  event.preventDefault();
  const form = event.target;
  const error = document.getElementById("phone-error");
  const section = document.getElementById("phone-offers");
  const list = section.querySelector("ol");
  error.textContent = "";
  document.getElementById("phone-note").textContent = "";
  document.getElementById("phone-done").textContent = "";
  try {
    request = readRequest(form);
  } catch (failure) {
    error.textContent = failure.message;
    return;
  }
  setBusy(form, true);
  try {
    const { quote: q, journeys } = await findOffers(request);
    // One offer per vehicle: the same times on two vehicles are one choice for the caller.
    const seen = new Set();
    const direct = q.offers.filter((offer) => {
      const key = `${offer.pickup_window.earliest}|${offer.pickup_window.latest}|${offer.dropoff_latest}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    const items = [...journeys, ...direct.map((offer) => ({ offer, itinerary: null }))];
    list.replaceChildren(...items.map(offerItem));
    if (!items.length) {
      if (q.alternatives.length) {
        document.getElementById("phone-note").textContent = i18n.t("phone.no_offer");
        list.replaceChildren(...q.alternatives.map((offer) => offerItem({ offer, itinerary: null })));
      } else {
        error.textContent = i18n.t("phone.nothing", { reason: q.reason || "–" });
      }
    }
    section.hidden = !list.children.length;
    if (!section.hidden) section.querySelector("h2").focus();
  } catch (failure) {
    error.textContent = failure instanceof ApiError ? failure.message : i18n.t("error.network");
  } finally {
    setBusy(form, false);
  }
}

async function confirm(button, { offer, itinerary }) {
  const error = document.getElementById("phone-error");
  button.disabled = true;
  try {
    const key = { "Idempotency-Key": idempotencyKey() };
    let booking;
    if (itinerary) {
      const { data } = await call("/operator/journeys", {
        method: "POST",
        body: { itinerary: itinerary.id, caller: request.caller },
        headers: key,
      });
      const ride = data.legs.find((leg) => leg.ride)?.ride;
      booking = { id: ride?.booking_id || data.id, pickup_window: ride?.pickup_window || offer.pickup_window };
    } else {
      const { data } = await call("/operator/bookings", {
        method: "POST",
        body: { caller: request.caller, offer: offer.id },
        headers: key,
      });
      booking = data;
    }
    const done = i18n.t("phone.booked", {
      name: request.caller.name,
      from: i18n.time(booking.pickup_window.earliest),
      to: i18n.clock(booking.pickup_window.latest),
      id: booking.id.slice(0, 8),
    });
    document.getElementById("phone-offers").hidden = true;
    const status = document.getElementById("phone-done");
    status.textContent = done;
    status.dataset.bookingId = booking.id;
    toast(done);
    document.getElementById("phone-form").reset();
    choose("origin", null);
    choose("destination", null);
    for (const results of document.querySelectorAll("#phone-form .results")) results.replaceChildren();
    defaultTime();
  } catch (failure) {
    error.textContent = failure instanceof ApiError ? failure.message : i18n.t("error.network");
    button.disabled = false;
  }
}

function defaultTime() {
  const input = document.getElementById("pf-time");
  if (!input.value) input.value = i18n.localDate(new Date(Date.now() + 30 * 60000)).minute;
}

export async function show() {
  if (!wired) {
    wired = true;
    const form = document.getElementById("phone-form");
    form.addEventListener("submit", quote);
    for (const fieldset of form.querySelectorAll("fieldset.place")) {
      const input = fieldset.querySelector("input[type=search]");
      fieldset.querySelector("button.find").addEventListener("click", () => search(fieldset).catch(showError));
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter") {
          event.preventDefault();
          search(fieldset).catch(showError);
        }
      });
    }
  }
  defaultTime();
}

function showError(failure) {
  document.getElementById("phone-error").textContent =
    failure instanceof ApiError ? failure.message : i18n.t("error.network");
}
