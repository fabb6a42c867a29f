// The console's words in German and English, and the times and numbers of the chosen language.
// Elements name their text by key: data-i18n (text), data-i18n-label (aria-label),
// data-i18n-placeholder (placeholder); apply() writes them all.

const WORDS = {
  de: {
    "skip": "Zum Inhalt springen",
    "brand": "Leitstelle",
    "nav": "Bereiche",
    "nav.map": "Karte",
    "nav.bookings": "Buchungen",
    "nav.journeys": "Reiseketten",
    "nav.phone": "Telefonbuchung",
    "nav.timeline": "Fahrpläne",
    "nav.alerts": "Meldungen",
    "textsize": "Textgröße",
    "textsize.smaller": "Text kleiner",
    "textsize.larger": "Text größer",
    "language.other": "English",
    "signout": "Abmelden",
    "signin.title": "Anmelden",
    "signin.login": "Benutzername",
    "signin.password": "Passwort",
    "signin.submit": "Anmelden",
    "signin.needed": "Bitte Benutzername und Passwort eingeben.",
    "signin.wrong": "Benutzername oder Passwort falsch.",
    "signin.throttled": "Zu viele Versuche. Bitte in {s} Sekunden erneut versuchen.",
    "signin.role": "Dieses Konto ist kein Leitstellenkonto (Rolle {role}).",
    "signin.ended": "Die Sitzung ist abgelaufen. Bitte erneut anmelden.",
    "live.on": "Live",
    "live.off": "Keine Live-Verbindung – verbinde neu …",
    "map.title": "Fahrzeuge live",
    "map.region": "Karte des Bediengebiets",
    "map.fleet": "Flotte",
    "map.area": "Bediengebiet",
    "map.streets": "Straßen",
    "map.stops": "Haltestellen",
    "map.vehicles": "Fahrzeuge",
    "map.no_vehicles": "Kein Fahrzeug angelegt.",
    "map.off_shift": "außer Dienst",
    "map.no_position": "keine Position",
    "map.age": "vor {age}",
    "map.seats": "{used} von {seats} Plätzen",
    "map.wheelchairs": "{used} von {places} Rollstuhlplätzen",
    "col.vehicle": "Fahrzeug",
    "col.occupancy": "Besetzung",
    "col.next": "Nächste Halte",
    "col.delay": "Verspätung",
    "col.position": "Position",
    "col.pickup": "Abholung",
    "col.status": "Status",
    "col.rider": "Fahrgast",
    "col.passengers": "Personen",
    "col.connection": "Anschluss",
    "col.created": "Gebucht",
    "col.actions": "Aktionen",
    "col.departure": "Abfahrt",
    "col.arrival": "Ankunft",
    "col.legs": "Abschnitte",
    "col.events": "Ereignisse",
    "delay.on_time": "pünktlich",
    "delay.late": "+{min} min",
    "delay.early": "−{min} min",
    "delay.plan": "nach Plan",
    "bookings.title": "Buchungen",
    "bookings.count": "{total} Buchungen, {first}–{last} angezeigt",
    "bookings.none": "Keine Buchung gefunden.",
    "journeys.title": "Reiseketten",
    "journeys.count": "{total} Reiseketten",
    "journeys.none": "Keine Reisekette gefunden.",
    "filter.q": "Suche (Name, Telefon, Nummer)",
    "filter.status": "Status",
    "filter.vehicle": "Fahrzeug",
    "filter.connection": "Anschluss",
    "filter.from": "Abholung ab",
    "filter.to": "Abholung bis",
    "filter.all": "alle",
    "filter.apply": "Suchen",
    "status.confirmed": "bestätigt",
    "status.picked_up": "an Bord",
    "status.completed": "angekommen",
    "status.cancelled": "storniert",
    "status.no_show": "nicht erschienen",
    "jstatus.confirmed": "gebucht",
    "jstatus.at_risk": "gefährdet",
    "jstatus.cancelled": "storniert",
    "jstatus.completed": "abgeschlossen",
    "connection.any": "mit Anschluss",
    "connection.first_mile": "zum Zug",
    "connection.last_mile": "vom Zug",
    "connection.direct": "direkt",
    "connection.none": "ohne Anschluss",
    "connection.meets": "{kind} {trip} in {stop} um {at}",
    "sort.ascending": "aufsteigend sortiert",
    "sort.descending": "absteigend sortiert",
    "pager": "Seiten",
    "pager.prev": "Zurück",
    "pager.next": "Weiter",
    "pager.page": "Seite {page} von {pages}",
    "action.cancel": "Stornieren",
    "action.reassign": "Umdisponieren",
    "action.show": "Zeigen",
    "action.acknowledge": "Übernehmen",
    "action.resolve": "Erledigt",
    "action.booking": "Buchung öffnen",
    "phone.title": "Telefonbuchung",
    "phone.caller": "Anrufer",
    "phone.name": "Name",
    "phone.number": "Telefonnummer",
    "phone.origin": "Von",
    "phone.destination": "Nach",
    "phone.search": "Ort, Haltestelle oder Straße",
    "phone.find": "Finden",
    "phone.no_places": "Nichts gefunden für „{q}“.",
    "phone.chosen": "Gewählt: {label}",
    "phone.choose": "Bitte einen Ort für „{what}“ wählen.",
    "phone.when": "Wann",
    "phone.after": "Abfahrt ab",
    "phone.by": "Ankunft bis",
    "phone.time": "Zeit",
    "phone.passengers": "Fahrgäste",
    "phone.seated": "Sitzplätze",
    "phone.wheelchairs": "Rollstühle",
    "phone.quote": "Angebote suchen",
    "phone.offers": "Angebote",
    "phone.no_offer": "Kein Angebot zur gewünschten Zeit. Mögliche andere Zeiten:",
    "phone.nothing": "Keine Fahrt möglich: {reason}",
    "phone.offer": "Abholung {from}–{to}, Ankunft spätestens {latest}",
    "phone.estimate": "voraussichtlich ab {pickup}, an {dropoff}",
    "phone.train": "Anschluss: {train}",
    "phone.book": "Dieses Angebot buchen",
    "phone.booked": "Gebucht für {name}: Abholung {from}–{to}. Buchungsnummer {id}.",
    "phone.needed": "Bitte Name, Telefonnummer und Zeit angeben.",
    "phone.kind.stop": "Haltestelle",
    "phone.kind.street": "Straße",
    "phone.kind.locality": "Ort",
    "phone.kind.bike_station": "Radstation",
    "timeline.title": "Fahrpläne des Tages",
    "timeline.date": "Tag",
    "timeline.show": "Anzeigen",
    "timeline.none": "An diesem Tag ist kein Fahrzeug im Dienst.",
    "timeline.shift": "{vehicle}, Dienst {start}–{end}",
    "timeline.driver": "Fahrer: {name}",
    "timeline.no_driver": "kein Fahrer angemeldet",
    "timeline.empty": "Keine Halte geplant.",
    "mode.walk": "zu Fuß",
    "mode.on_demand": "Rufbus",
    "mode.transit": "Bus/Bahn",
    "mode.bike_share": "Leihrad",
    "kind.pickup": "Abholung",
    "kind.dropoff": "Ausstieg",
    "kind.break": "Pause",
    "kind.depot": "Depot",
    "alerts.title": "Meldungen",
    "alerts.state": "Anzeigen",
    "alerts.open": "offen",
    "alerts.acknowledged": "in Bearbeitung",
    "alerts.resolved": "erledigt",
    "alerts.none": "Keine Meldungen.",
    "alerts.raised": "gemeldet {at}",
    "alerts.acked": "übernommen von {who} um {at}",
    "alerts.resolved_at": "erledigt {at}",
    "alerts.kind.connection_at_risk": "Anschluss gefährdet",
    "alerts.kind.connection_missed": "Anschluss verpasst",
    "alerts.kind.train_cancelled": "Zug fällt aus",
    "alerts.kind.delay": "Fahrzeug verspätet",
    "alerts.kind.no_show": "Fahrgast nicht erschienen",
    "alerts.new": "Neue Meldung: {kind} – {detail}",
    "cancel.title": "Buchung stornieren",
    "cancel.reason": "Grund",
    "cancel.confirm": "Stornieren",
    "cancel.what": "Fahrt von {who}, Abholung {from}",
    "cancel.done": "Buchung storniert.",
    "reassign.title": "Anderem Fahrzeug zuweisen",
    "reassign.vehicle": "Fahrzeug",
    "reassign.confirm": "Zuweisen",
    "reassign.done": "Buchung {vehicle} zugewiesen.",
    "dialog.close": "Schließen",
    "reason.needed": "Bitte einen Grund angeben.",
    "caller": "Anrufer {name}",
    "rider": "App",
    "error.network": "Der Server ist nicht erreichbar.",
  },
  en: {
    "skip": "Skip to content",
    "brand": "Dispatch",
    "nav": "Sections",
    "nav.map": "Map",
    "nav.bookings": "Bookings",
    "nav.journeys": "Journeys",
    "nav.phone": "Phone booking",
    "nav.timeline": "Plans",
    "nav.alerts": "Alerts",
    "textsize": "Text size",
    "textsize.smaller": "Smaller text",
    "textsize.larger": "Larger text",
    "language.other": "Deutsch",
    "signout": "Sign out",
    "signin.title": "Sign in",
    "signin.login": "Login",
    "signin.password": "Password",
    "signin.submit": "Sign in",
    "signin.needed": "Please enter your login and password.",
    "signin.wrong": "Wrong login or password.",
    "signin.throttled": "Too many attempts. Please try again in {s} seconds.",
    "signin.role": "This account is not a dispatch account (role {role}).",
    "signin.ended": "Your session has ended. Please sign in again.",
    "live.on": "Live",
    "live.off": "No live connection – reconnecting …",
    "map.title": "Vehicles live",
    "map.region": "Map of the service area",
    "map.fleet": "Fleet",
    "map.area": "Service area",
    "map.streets": "Streets",
    "map.stops": "Stops",
    "map.vehicles": "Vehicles",
    "map.no_vehicles": "No vehicle yet.",
    "map.off_shift": "off shift",
    "map.no_position": "no position",
    "map.age": "{age} ago",
    "map.seats": "{used} of {seats} seats",
    "map.wheelchairs": "{used} of {places} wheelchair places",
    "col.vehicle": "Vehicle",
    "col.occupancy": "Occupancy",
    "col.next": "Next stops",
    "col.delay": "Delay",
    "col.position": "Position",
    "col.pickup": "Pickup",
    "col.status": "Status",
    "col.rider": "Rider",
    "col.passengers": "People",
    "col.connection": "Connection",
    "col.created": "Booked",
    "col.actions": "Actions",
    "col.departure": "Departure",
    "col.arrival": "Arrival",
    "col.legs": "Legs",
    "col.events": "Events",
    "delay.on_time": "on time",
    "delay.late": "+{min} min",
    "delay.early": "−{min} min",
    "delay.plan": "as planned",
    "bookings.title": "Bookings",
    "bookings.count": "{total} bookings, showing {first}–{last}",
    "bookings.none": "No booking found.",
    "journeys.title": "Journeys",
    "journeys.count": "{total} journeys",
    "journeys.none": "No journey found.",
    "filter.q": "Search (name, phone, number)",
    "filter.status": "Status",
    "filter.vehicle": "Vehicle",
    "filter.connection": "Connection",
    "filter.from": "Pickup from",
    "filter.to": "Pickup until",
    "filter.all": "all",
    "filter.apply": "Search",
    "status.confirmed": "confirmed",
    "status.picked_up": "on board",
    "status.completed": "arrived",
    "status.cancelled": "cancelled",
    "status.no_show": "no-show",
    "jstatus.confirmed": "booked",
    "jstatus.at_risk": "at risk",
    "jstatus.cancelled": "cancelled",
    "jstatus.completed": "completed",
    "connection.any": "with a connection",
    "connection.first_mile": "to the train",
    "connection.last_mile": "from the train",
    "connection.direct": "direct",
    "connection.none": "no connection",
    "connection.meets": "{kind} {trip} at {stop}, {at}",
    "sort.ascending": "sorted ascending",
    "sort.descending": "sorted descending",
    "pager": "Pages",
    "pager.prev": "Previous",
    "pager.next": "Next",
    "pager.page": "Page {page} of {pages}",
    "action.cancel": "Cancel",
    "action.reassign": "Reassign",
    "action.show": "Show",
    "action.acknowledge": "Acknowledge",
    "action.resolve": "Resolve",
    "action.booking": "Open booking",
    "phone.title": "Phone booking",
    "phone.caller": "Caller",
    "phone.name": "Name",
    "phone.number": "Phone number",
    "phone.origin": "From",
    "phone.destination": "To",
    "phone.search": "Place, stop or street",
    "phone.find": "Find",
    "phone.no_places": "Nothing found for “{q}”.",
    "phone.chosen": "Chosen: {label}",
    "phone.choose": "Please choose a place for “{what}”.",
    "phone.when": "When",
    "phone.after": "Leave after",
    "phone.by": "Arrive by",
    "phone.time": "Time",
    "phone.passengers": "Passengers",
    "phone.seated": "Seats",
    "phone.wheelchairs": "Wheelchairs",
    "phone.quote": "Find offers",
    "phone.offers": "Offers",
    "phone.no_offer": "No offer at the time asked. Other possible times:",
    "phone.nothing": "No ride possible: {reason}",
    "phone.offer": "Pickup {from}–{to}, arrival by {latest}",
    "phone.estimate": "expected pickup {pickup}, arrival {dropoff}",
    "phone.train": "Connection: {train}",
    "phone.book": "Book this offer",
    "phone.booked": "Booked for {name}: pickup {from}–{to}. Booking number {id}.",
    "phone.needed": "Please give the name, phone number and time.",
    "phone.kind.stop": "stop",
    "phone.kind.street": "street",
    "phone.kind.locality": "place",
    "phone.kind.bike_station": "bike station",
    "timeline.title": "Today's vehicle plans",
    "timeline.date": "Day",
    "timeline.show": "Show",
    "timeline.none": "No vehicle is on shift that day.",
    "timeline.shift": "{vehicle}, shift {start}–{end}",
    "timeline.driver": "Driver: {name}",
    "timeline.no_driver": "no driver signed in",
    "timeline.empty": "No stops planned.",
    "mode.walk": "walk",
    "mode.on_demand": "Rufbus",
    "mode.transit": "bus/train",
    "mode.bike_share": "shared bike",
    "kind.pickup": "Pickup",
    "kind.dropoff": "Drop-off",
    "kind.break": "Break",
    "kind.depot": "Depot",
    "alerts.title": "Alerts",
    "alerts.state": "Show",
    "alerts.open": "open",
    "alerts.acknowledged": "being handled",
    "alerts.resolved": "resolved",
    "alerts.none": "No alerts.",
    "alerts.raised": "raised {at}",
    "alerts.acked": "acknowledged by {who} at {at}",
    "alerts.resolved_at": "resolved {at}",
    "alerts.kind.connection_at_risk": "Connection at risk",
    "alerts.kind.connection_missed": "Connection missed",
    "alerts.kind.train_cancelled": "Train cancelled",
    "alerts.kind.delay": "Vehicle delayed",
    "alerts.kind.no_show": "Rider did not show",
    "alerts.new": "New alert: {kind} – {detail}",
    "cancel.title": "Cancel booking",
    "cancel.reason": "Reason",
    "cancel.confirm": "Cancel booking",
    "cancel.what": "Ride of {who}, pickup {from}",
    "cancel.done": "Booking cancelled.",
    "reassign.title": "Reassign to another vehicle",
    "reassign.vehicle": "Vehicle",
    "reassign.confirm": "Reassign",
    "reassign.done": "Booking reassigned to {vehicle}.",
    "dialog.close": "Close",
    "reason.needed": "Please give a reason.",
    "caller": "caller {name}",
    "rider": "app",
    "error.network": "The server cannot be reached.",
  },
};

const LANGUAGE_KEY = "maas.console.language";
let language = localStorage.getItem(LANGUAGE_KEY) || (navigator.language.startsWith("de") ? "de" : "en");
let timeZone;

export function current() {
  return language;
}

export function setTimeZone(zone) {
  timeZone = zone || undefined;
}

export function t(key, params = {}) {
  const text = WORDS[language][key] ?? WORDS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

export function has(key) {
  return key in WORDS[language];
}

export function apply(root = document) {
  document.documentElement.lang = language;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
}

export function toggle() {
  language = language === "de" ? "en" : "de";
  localStorage.setItem(LANGUAGE_KEY, language);
  apply();
  document.dispatchEvent(new CustomEvent("languagechange"));
}

function format(options) {
  return new Intl.DateTimeFormat(language === "de" ? "de-DE" : "en-GB", { timeZone, ...options });
}

// 09:05 (today) or "Mon 7 Dec, 09:05" (another day), in the service's time zone.
export function time(iso) {
  if (!iso) return "–";
  const at = new Date(iso);
  const day = format({ year: "numeric", month: "2-digit", day: "2-digit" });
  const clock = format({ hour: "2-digit", minute: "2-digit" }).format(at);
  if (day.format(at) === day.format(new Date())) return clock;
  return `${format({ weekday: "short", day: "numeric", month: "short" }).format(at)}, ${clock}`;
}

export function clock(iso) {
  return iso ? format({ hour: "2-digit", minute: "2-digit" }).format(new Date(iso)) : "–";
}

// The date (YYYY-MM-DD) and wall-clock time (YYYY-MM-DDTHH:MM) of an instant in the service's time zone.
export function localDate(at = new Date()) {
  const parts = Object.fromEntries(
    format({ year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
      .formatToParts(at)
      .map((p) => [p.type, p.value]),
  );
  return { date: `${parts.year}-${parts.month}-${parts.day}`, minute: `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}` };
}

function offsetAt(instant) {
  // The zone's offset from UTC at an instant, in minutes: its wall clock read as UTC, minus the instant.
  const parts = Object.fromEntries(
    format({ year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" })
      .formatToParts(new Date(instant))
      .map((p) => [p.type, Number(p.value)]),
  );
  const wall = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
  return Math.round((wall - Math.floor(instant / 1000) * 1000) / 60000);
}

// "2026-12-04T07:30" on the service's clock -> "2026-12-04T07:30:00+01:00" (the API wants the offset).
export function withOffset(local) {
  const [date, clockText = "00:00"] = local.split("T");
  const [y, mo, d] = date.split("-").map(Number);
  const [h, mi, s = 0] = clockText.split(":").map(Number);
  const asUtc = Date.UTC(y, mo - 1, d, h, mi, s);
  let offset = offsetAt(asUtc);
  offset = offsetAt(asUtc - offset * 60000); // once more: the offset at the instant meant, across a DST change
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date}T${pad(h)}:${pad(mi)}:${pad(s)}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return language === "de" ? `${s} s` : `${s} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
