// The console's shell: signing in and out, the sections (#/map, #/bookings, …), language, text size,
// the live feed and the alert badge. Each section is a module with show() and, if it listens, live().

import { ApiError, call, get, session } from "./api.js";
import * as i18n from "./i18n.js";
import * as live from "./live.js";
import { report, setBusy } from "./ui.js";
import * as alerts from "./views/alerts.js";
import * as bookings from "./views/bookings.js";
import * as journeys from "./views/journeys.js";
import * as map from "./views/map.js";
import * as phone from "./views/phone.js";
import * as timeline from "./views/timeline.js";

const VIEWS = { map, bookings, journeys, phone, timeline, alerts };
const STAFF = ["operator", "admin"];
const SIZE_KEY = "maas.console.text-size";
const SIZES = [100, 112.5, 125, 150, 175, 200];

let signedIn = false;
let shown = null;

function textSize(step) {
  const now = Number(localStorage.getItem(SIZE_KEY) || 100);
  const index = Math.max(0, Math.min(SIZES.length - 1, SIZES.indexOf(now) + step));
  const size = SIZES[index] ?? 100;
  localStorage.setItem(SIZE_KEY, String(size));
  document.documentElement.style.fontSize = `${size}%`;
  document.getElementById("text-smaller").disabled = index === 0;
  document.getElementById("text-larger").disabled = index === SIZES.length - 1;
  document.dispatchEvent(new CustomEvent("textsize"));
}

function languageButton() {
  const button = document.getElementById("language");
  const other = i18n.current() === "de" ? "en" : "de";
  button.lang = other;
  button.textContent = i18n.t("language.other");
}

function route() {
  const name = (location.hash.replace(/^#\/?/, "").split("?")[0] || "map").split("/")[0];
  return name in VIEWS ? name : "map";
}

async function show(name, focus = true) {
  for (const section of document.querySelectorAll("main > .view")) section.hidden = true;
  if (!signedIn) {
    document.getElementById("view-signin").hidden = false;
    document.getElementById("signin-login").focus();
    return;
  }
  shown = name;
  const section = document.getElementById(`view-${name}`);
  section.hidden = false;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${i18n.t(`nav.${name}`)} – maas ${i18n.t("brand")}`;
  if (focus) section.querySelector("h1").focus({ preventScroll: false });
  try {
    await VIEWS[name].show();
  } catch (error) {
    report(error);
  }
}

async function start() {
  signedIn = true;
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = false;
  document.getElementById("live-status").hidden = false;
  try {
    const service = await get("/service");
    document.getElementById("service-name").textContent = service.name;
    i18n.setTimeZone(service.timezone);
  } catch (error) {
    report(error);
  }
  live.start();
  alerts.count().catch(report);
  await show(route());
}

function stop(message) {
  signedIn = false;
  live.stop();
  session.clear();
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("live-status").hidden = true;
  document.getElementById("signin-error").textContent = message || "";
  show(route());
}

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  const login = form.login.value.trim();
  const password = form.password.value;
  const error = document.getElementById("signin-error");
  if (!login || !password) {
    error.textContent = i18n.t("signin.needed");
    return;
  }
  error.textContent = "";
  setBusy(form, true);
  try {
    const { data } = await call("/sessions", { method: "POST", body: { login, password }, anonymous: true });
    if (!STAFF.includes(data.session.role)) {
      session.set(data.token);
      await call("/sessions/current", { method: "DELETE" }).catch(() => {});
      session.clear();
      error.textContent = i18n.t("signin.role", { role: data.session.role });
      return;
    }
    session.set(data.token);
    form.password.value = "";
    await start();
  } catch (failure) {
    if (failure instanceof ApiError && failure.status === 401) error.textContent = i18n.t("signin.wrong");
    else if (failure instanceof ApiError && failure.status === 429)
      error.textContent = i18n.t("signin.throttled", { s: failure.retryAfter ?? 60 });
    else error.textContent = failure instanceof ApiError ? failure.message : i18n.t("error.network");
  } finally {
    setBusy(form, false);
  }
}

async function signOut() {
  try {
    await call("/sessions/current", { method: "DELETE" });
  } catch {
    // the session may have ended already: signing out locally is what matters
  }
  stop("");
}

function liveStatus(on) {
  const badge = document.getElementById("live-status");
  badge.textContent = i18n.t(on ? "live.on" : "live.off");
  badge.classList.toggle("off", !on);
  badge.dataset.state = on ? "on" : "off";
}

function wire() {
  i18n.apply();
  languageButton();
  textSize(0);
  document.getElementById("signin-form").addEventListener("submit", signIn);
  document.getElementById("sign-out").addEventListener("click", signOut);
  document.getElementById("text-smaller").addEventListener("click", () => textSize(-1));
  document.getElementById("text-larger").addEventListener("click", () => textSize(1));
  document.getElementById("language").addEventListener("click", () => {
    i18n.toggle();
    languageButton();
  });
  document.addEventListener("languagechange", () => {
    if (signedIn && shown) {
      document.title = `${i18n.t(`nav.${shown}`)} – maas ${i18n.t("brand")}`;
      VIEWS[shown].show().catch(report);
    }
    liveStatus(document.getElementById("live-status").dataset.state === "on");
  });
  document.addEventListener("signedout", () => {
    if (signedIn) stop(i18n.t("signin.ended"));
  });
  window.addEventListener("hashchange", () => show(route()));
  live.onStatus(liveStatus);
  live.onMessage((message) => {
    for (const view of Object.values(VIEWS)) {
      if (view.live) view.live(message, view === VIEWS[shown]);
    }
  });
  for (const dialog of document.querySelectorAll("dialog")) {
    for (const close of dialog.querySelectorAll("button.close")) close.addEventListener("click", () => dialog.close());
  }
  if (session.token) {
    // a reload in the same tab: the token may still be good
    get("/sessions")
      .then((sessions) => {
        const mine = sessions.find((s) => s.current);
        if (mine && STAFF.includes(mine.role)) return start();
        session.clear();
        return show(route());
      })
      .catch(() => {
        session.clear();
        show(route());
      });
  } else {
    show(route());
  }
}

wire();
