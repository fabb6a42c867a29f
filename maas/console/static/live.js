// The operator's live feed: /ws/fleet, opened with a one-time ticket (never the bearer token in the
// URL), reconnected with a growing pause when it drops. Every message goes to the listeners.

import { ApiError, post, session } from "./api.js";

const listeners = new Set();
let socket = null;
let stopped = true;
let pause = 1000;
let timer = null;
let status = () => {};

export function onMessage(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function onStatus(callback) {
  status = callback;
}

async function open() {
  if (stopped || !session.token) return;
  let ticket;
  try {
    ticket = (await post("/sessions/socket-ticket")).ticket;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    return retry();
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/fleet?ticket=${encodeURIComponent(ticket)}`);
  socket = ws;
  ws.addEventListener("open", () => {
    pause = 1000;
    status(true);
  });
  ws.addEventListener("message", (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    for (const listener of listeners) listener(message);
  });
  ws.addEventListener("close", (event) => {
    if (socket !== ws) return;
    socket = null;
    status(false);
    if (event.code === 4401 || event.code === 4403) {
      document.dispatchEvent(new CustomEvent("signedout"));
      return;
    }
    retry();
  });
}

function retry() {
  if (stopped) return;
  status(false);
  clearTimeout(timer);
  timer = setTimeout(open, pause);
  pause = Math.min(pause * 2, 30000);
}

export function start() {
  if (!stopped) return;
  stopped = false;
  open();
}

export function stop() {
  stopped = true;
  clearTimeout(timer);
  if (socket) {
    const ws = socket;
    socket = null;
    ws.close(1000);
  }
  status(false);
}
