// Tabs (by URL hash) and the shared state the browser tests read (window.__at).
import { clearError, getJSON, showError } from "./api.js";
import { TradingView } from "./trading.js";
import { BacktestsView } from "./backtests.js";
import { SweepsView } from "./sweeps.js";

window.__at = { ready: {}, timings: { navStart: performance.timeOrigin } };

const views = {};
let meta = null;

async function show(tab) {
  for (const s of document.querySelectorAll("section.view")) s.hidden = s.id !== tab;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.tab === tab);
  clearError();
  try {
    if (!views[tab]) {
      const root = document.getElementById(tab);
      views[tab] = tab === "trading" ? new TradingView(root, meta)
        : tab === "backtests" ? new BacktestsView(root, meta) : new SweepsView(root, meta);
      await views[tab].init();
    }
  } catch (e) {
    showError(String(e.message || e));
  }
}

export function openTab(tab, arg) {
  location.hash = tab;
  return show(tab).then(() => arg && views[tab].open && views[tab].open(arg));
}
window.__at.openTab = openTab;
window.__at.views = views;

// The live feed: new minutes and the status over one WebSocket. A dropped connection is
// retried with a growing delay (at most 30 times in a row); a server that says the graph
// stopped ("idle") is asked again every 5 s, so the page follows the graph's restart.
function connectLive(banner, attempt = 0) {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/live`);
  window.__at.live = window.__at.live || { updates: [], status: null, connected: false };
  let idle = false;
  ws.onopen = () => { window.__at.live.connected = true; };
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type !== "idle") attempt = 0;
    if (msg.type === "minutes" && views.trading) views.trading.applyLive(msg);
    else if (msg.type === "status") {
      window.__at.live.status = msg;
      const b = msg.banner || {};
      banner.className = `banner ${b.health || ""}`;
      banner.textContent = `live · ${msg.mode} · ${b.health} · ${b.permission}${msg.activated ? " · active" : " · observing"}`;
      if (views.trading) views.trading.applyStatus(msg);
    } else if (msg.type === "idle") {
      idle = true;
      banner.className = "banner degraded";
      banner.textContent = "live graph stopped · showing stored data";
      window.__at.live.idle = msg.detail;
    }
  };
  ws.onclose = () => {
    window.__at.live.connected = false;
    if (idle) setTimeout(() => connectLive(banner, 0), 5000);
    else if (attempt < 30) setTimeout(() => connectLive(banner, attempt + 1), Math.min(10_000, 500 * 2 ** attempt));
  };
}

async function start() {
  // index.html sent the first requests before the modules loaded
  const early = window.__atEarly || {};
  if (early.minutes) window.__at.prefetch = { span: early.span, minutes: early.minutes };
  try {
    meta = (early.meta && (await early.meta)) || (await getJSON("/api/meta"));
  } catch (e) {
    showError(String(e.message || e));
    return;
  }
  window.__at.meta = meta;
  const banner = document.getElementById("banner");
  banner.textContent = meta.live ? "live graph: connecting…" : `stored data · ${meta.instrument} · no live graph`;
  if (meta.live) connectLive(banner);
  const tab = () => (location.hash || "#trading").slice(1).split("/")[0];
  window.addEventListener("hashchange", () => show(tab()));
  await show(tab());
}

start();
