// Fetch helpers: every failure is shown with the server's message, never swallowed; and
// the one chart theme every view draws with.
import { createChart } from "./vendor/lightweight-charts.mjs";

/** A chart in the dashboard's dark theme; `layout`, `timeScale` and other options given
 * are merged over the theme's (one place for the colours, not one copy per view). */
export function themedChart(box, { layout = {}, timeScale = {}, ...rest } = {}) {
  return createChart(box, {
    autoSize: true,
    layout: { background: { color: "#0f1218" }, textColor: "#d6dae2", ...layout },
    grid: { vertLines: { color: "#1b2029" }, horzLines: { color: "#1b2029" } },
    timeScale: { timeVisible: true, minBarSpacing: 0.02, ...timeScale },
    ...rest,
  });
}

const errorBox = () => document.getElementById("error");

export function showError(msg) {
  const box = errorBox();
  box.textContent = msg;
  box.hidden = false;
}

export function clearError() {
  errorBox().hidden = true;
}

export async function getJSON(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.append(k, v);
  }
  const url = q.toString() ? `${path}?${q}` : path;
  const r = await fetch(url);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail ?? body);
    const err = new Error(`${r.status} ${url}: ${detail}`);
    err.status = r.status;
    throw err;
  }
  return body;
}

export const fmt = (x, d = 2) =>
  x === null || x === undefined || Number.isNaN(x) ? "—"
    : Number(x).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });

export const iso = (ms) => (ms === null || ms === undefined ? "—"
  : new Date(ms).toISOString().replace("T", " ").slice(0, 16));

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// A POST with a JSON body (operator controls); the token travels in the header only.
export async function postJSON(path, body, token) {
  const r = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body || {}),
  });
  const out = await r.json().catch(() => ({}));
  if (!r.ok) {
    const err = new Error(`${r.status}: ${typeof out.detail === "string" ? out.detail : JSON.stringify(out)}`);
    err.status = r.status;
    throw err;
  }
  return out;
}
