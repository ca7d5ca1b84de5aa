// The live side panel: status (position, P&L today, equity, feed per topic), the realised
// P&L chart, the active signals with their reason codes, the alert log, and the operator
// controls when the dashboard was started with a control token (the token is typed here,
// kept in this tab's sessionStorage only, and sent as a header, never in a URL).
import { LineSeries, LineType } from "./vendor/lightweight-charts.mjs";
import { el, fmt, getJSON, iso, postJSON, showError, themedChart } from "./api.js";

const REFRESH_MS = 5000;
const TOKEN_KEY = "at.controlToken";

export class LivePanel {
  constructor(view) {
    this.view = view; // the trading view: goto(ts), the live trades overlay
    this.statusBox = el("div", { "data-testid": "live" }, el("p", { class: "note" }, "connecting…"));
    this.pnlBox = el("div", { class: "pnl-chart", "data-testid": "live-pnl" });
    this.signalsBox = el("div", {});
    this.alertsBox = el("div", { class: "scroll short" });
    this.controlsBox = el("div", { "data-testid": "controls" });
    this._refreshedAt = 0;
    getJSON("/api/live/controls").then((c) => this._controls(c)).catch((e) => showError(String(e.message || e)));
  }

  elements() {
    return [el("h3", {}, "Live"), this.statusBox, this.controlsBox, el("h3", {}, "P&L (realised)"), this.pnlBox,
      el("h3", {}, "Signals"), this.signalsBox, el("h3", {}, "Alerts"), this.alertsBox];
  }

  applyStatus(st) {
    this.status = st;
    this.refresh().catch((e) => showError(String(e.message || e)));
    const pos = st.position;
    const feed = Object.entries(st.feed || {}).map(([k, v]) => `${k} ${v.stale ? "STALE" : "ok"} (${v.last_msg_s_ago ?? "—"} s)`).join(" · ");
    this.statusBox.replaceChildren(el("table", { "data-testid": "live-status" },
      [["position", pos ? `${pos.side} ${pos.qty} @ ${fmt(pos.entry_price, 1)}` : "flat"],
        ["P&L today", fmt(st.day_pnl)], ["equity", fmt(st.equity)], ["trades", st.trades ?? "—"],
        ["halted", st.halted || "no"], ["feed", feed || "—"]].map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, v)))));
    if (this.modeSel && document.activeElement !== this.modeSel) this.modeSel.value = st.mode;
  }

  // Trades (the chart overlay), P&L, signals and alerts: at most every REFRESH_MS.
  async refresh(force = false) {
    const now = Date.now();
    if (!force && now - this._refreshedAt < REFRESH_MS) return;
    this._refreshedAt = now;
    if (this.view.btSel.value === "__live__") await this.view.loadOverlay();
    const [sig, al] = await Promise.all([getJSON("/api/live/signals", { limit: 12 }), getJSON("/api/live/alerts", { limit: 30 })]);
    this.signalsBox.replaceChildren(sig.length ? el("table", { "data-testid": "live-signals" },
      el("tr", {}, el("th", {}, "minute"), el("th", {}, "action"), el("th", {}, "reason")),
      sig.map((x) => el("tr", { class: "click", onclick: () => this.view.goto(x.ts_min) },
        el("td", {}, iso(x.ts_min).slice(11)), el("td", {}, x.chosen_action), el("td", {}, x.reason_code))))
      : el("p", { class: "note" }, "no signal yet"));
    const bad = al.unreadable.length ? [el("p", { class: "note alert" }, `${al.unreadable.length} unreadable line(s) in the alert log, first at line ${al.unreadable[0].line}`)] : [];
    this.alertsBox.replaceChildren(...bad, al.alerts.length ? el("table", { "data-testid": "live-alerts" },
      al.alerts.map((a) => el("tr", { class: ["kill_switch", "position_mismatch", "halted"].includes(a.type) ? "alert-row" : "" },
        el("td", {}, iso(a.ts_ms).slice(11)), el("td", {}, a.type), el("td", {}, a.message))))
      : el("p", { class: "note" }, "no alert"));
    window.__at.liveSignals = sig;
    window.__at.liveAlerts = al;
  }

  pnl(p) {
    if (!this.pnlChart) {
      this.pnlChart = themedChart(this.pnlBox);
      this.pnlSeries = this.pnlChart.addSeries(LineSeries, { color: "#4f8fe6", lineWidth: 2, lineType: LineType.WithSteps, title: "realised P&L" });
    }
    const pts = [];
    p.ts.forEach((t, i) => { // one point per second: the last trade closed in it wins
      const time = Math.floor(t / 1000);
      if (pts.length && pts[pts.length - 1].time >= time) pts[pts.length - 1].value = p.realised[i];
      else pts.push({ time, value: p.realised[i] });
    });
    this.pnlSeries.setData(pts);
    this.pnlChart.timeScale().fitContent();
    window.__at.livePnl = p;
  }

  _controls(c) {
    if (!c.enabled) {
      this.controlsBox.replaceChildren(el("p", { class: "note" }, `read-only (controls need ${c.token_env} when the dashboard starts)`));
      return;
    }
    this.token = el("input", { type: "password", placeholder: "control token", "data-testid": "control-token",
      value: sessionStorage.getItem(TOKEN_KEY) || "", oninput: () => sessionStorage.setItem(TOKEN_KEY, this.token.value) });
    this.confirmLive = el("input", { type: "checkbox", "data-testid": "confirm-live" });
    this.modeSel = el("select", { "data-testid": "control-mode-choice" }, ["dry_run", "paper", "shadow", "live"].map((m) => el("option", { value: m }, m)));
    this.result = el("p", { class: "note", "data-testid": "control-result" }, "");
    const btn = (action, label, body) => el("button", { "data-testid": `control-${action}`, onclick: () => this.send(action, body()) }, label);
    this.controlsBox.replaceChildren(el("div", { class: "controls" }, this.token,
      btn("activate", "Activate", () => ({ confirm_live: this.confirmLive.checked })),
      el("label", {}, this.confirmLive, " confirm live"),
      btn("deactivate", "Deactivate", () => ({})),
      btn("halt", "Halt trading", () => ({ reason: "operator (dashboard)" })),
      btn("resume", "Resume", () => ({})),
      this.modeSel, btn("mode", "Set mode", () => ({ mode: this.modeSel.value }))), this.result);
  }

  async send(action, body) {
    this.result.className = "note";
    this.result.textContent = `${action}…`;
    try {
      const st = await postJSON(`/api/live/control/${action}`, body, this.token.value);
      this.result.textContent = `${action}: done (${st.mode} · ${st.activated ? "active" : "observing"} · ${st.permission})`;
      this.view.applyStatus(st);
    } catch (e) {
      this.result.className = "note alert";
      this.result.textContent = `${action} refused: ${e.message}`;
    }
    window.__at.lastControl = this.result.textContent;
  }
}
