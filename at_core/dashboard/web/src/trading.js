// Trading view for stored days: candles with the rolling POC / VAH / VAL (stepped lines,
// dimmed where the value area is invalid), the profile histogram of the minute under the
// cursor (switchable with the levels), the footprint, a backtest's trades, and the OF_1m,
// qimb and ambiguous-share panes below.
import {
  CandlestickSeries, HistogramSeries, LineSeries, LineType, createSeriesMarkers,
} from "./vendor/lightweight-charts.mjs";
import { el, fmt, getJSON, iso, showError, themedChart } from "./api.js";
import { ProfilePrimitive } from "./profile.js";
import { FootprintSeries, footprintRows } from "./footprint.js";
import { TradeLevels } from "./levels.js";
import { LivePanel } from "./live_panel.js";

const DAY = 86_400_000;
const MIN = 60_000;
const FOOTPRINT_MAX_MINUTES = 360;
const sec = (ms) => ms / 1000;
const CANDLE_COLOURS = { upColor: "#26a69a", downColor: "#ef5350", wickUpColor: "#26a69a", wickDownColor: "#ef5350" };

export class TradingView {
  constructor(root, meta) {
    this.root = root;
    this.meta = meta;
    this.vaMode = "levels";
    this.footprintOn = false;
    this.data = null;
    this.profiles = new Map();
    this.selected = null;
  }

  async init() {
    const ext = this.meta.extent;
    this.root.append(this._toolbar(ext), this._chips(), el("div", { class: "layout" },
      el("div", { id: "chart", "data-testid": "chart" }), this._side()));
    this._chart();
    if (ext.first_ts_min === null) {
      this.root.querySelector("#chart").append(el("p", { class: "note" },
        "no stored minutes in this data folder: run `auction-trader generate` and `features`"));
      window.__at.ready.trading = true;
      return;
    }
    await this.load();
  }

  _toolbar(ext) {
    const days = [];
    if (ext.first_ts_min !== null) {
      for (let d = Math.floor(ext.first_ts_min / DAY) * DAY; d <= ext.last_ts_min; d += DAY) days.push(d);
    }
    this.daySel = el("select", { "data-testid": "day", onchange: () => this.load() },
      days.map((d) => el("option", { value: d }, new Date(d).toISOString().slice(0, 10))));
    if (days.length) this.daySel.value = String(days[days.length - 1]);
    this.spanSel = el("select", { "data-testid": "span", onchange: () => this.load() },
      [1, 2, 3, 7].map((n) => el("option", { value: n }, `${n} day${n > 1 ? "s" : ""}`)));
    const span = new URLSearchParams(location.search).get("span"); // e.g. /?span=7#trading
    if (["1", "2", "3", "7"].includes(span)) this.spanSel.value = span;
    this.levelsBtn = el("button", { class: "on", "data-testid": "va-levels", onclick: () => this.setVaMode("levels") }, "VA levels");
    this.histBtn = el("button", { "data-testid": "va-histogram", onclick: () => this.setVaMode("histogram") }, "VA histogram");
    this.fpBtn = el("button", { "data-testid": "footprint", onclick: () => this.toggleFootprint() }, "Footprint");
    this.binSel = el("select", { "data-testid": "bin-ticks", onchange: () => this.refreshFootprint() },
      [5, 10, 25, 50, 100].map((n) => el("option", { value: n }, `${n} ticks`)));
    this.binSel.value = "50";
    this.btSel = el("select", { "data-testid": "overlay", onchange: () => this.loadOverlay() },
      el("option", { value: "" }, "no backtest overlay"), el("option", { value: "__live__" }, "live trades"));
    if (this.meta.live) this.btSel.value = "__live__";
    getJSON("/api/backtests").then((runs) => runs.forEach((r) =>
      this.btSel.append(el("option", { value: r.run_id }, `${r.run_id} (${r.n_trades} trades)`)))).catch(() => {});
    return el("div", { class: "toolbar" }, el("label", {}, "day"), this.daySel, this.spanSel,
      this.levelsBtn, this.histBtn, this.fpBtn, this.binSel, this.btSel);
  }

  _chips() {
    this.chip = {};
    const mk = (k, label) => (this.chip[k] = el("span", { class: "chip", "data-testid": `chip-${k}`, hidden: k === "fp" }, `${label} —`));
    return el("div", { class: "chips" }, mk("minute", "minute"), mk("ambiguous", "ambiguous"),
      mk("va", "VA"), mk("of", "OF_1m"), mk("qimb", "qimb"), mk("heat", "heat"),
      mk("mode", "mode"), mk("fp", "footprint"));
  }

  _side() {
    this.detail = el("div", { "data-testid": "minute-detail" }, el("p", { class: "note" }, "click a minute"));
    this.tradeList = el("div", { "data-testid": "trades" });
    this.livePanel = this.meta.live ? new LivePanel(this) : null;
    const live = this.livePanel ? this.livePanel.elements() : [el("h3", {}, "Live"), el("p", { class: "note" }, "no live graph")];
    return el("div", { class: "side" }, ...live, el("h3", {}, "Minute"), this.detail,
      el("h3", {}, "Trades"), this.tradeList);
  }

  _chart() {
    const box = this.root.querySelector("#chart");
    const chart = themedChart(box, {
      layout: { panes: { separatorColor: "#2a303c" } },
      timeScale: { secondsVisible: false },
      crosshair: { mode: 0 },
    });
    this.chartApi = chart;
    this.candles = chart.addSeries(CandlestickSeries, { ...CANDLE_COLOURS, borderVisible: false });
    const lvl = (color, title) => chart.addSeries(LineSeries, {
      color, lineWidth: 1, lineType: LineType.WithSteps, title, priceLineVisible: false, lastValueVisible: true,
    });
    this.poc = lvl("#f0a020", "POC");
    this.vah = lvl("#4f8fe6", "VAH");
    this.val = lvl("#4f8fe6", "VAL");
    this.profile = new ProfilePrimitive();
    this.candles.attachPrimitive(this.profile);
    this.fp = chart.addCustomSeries(new FootprintSeries(), {});
    this.levels = new TradeLevels();
    this.candles.attachPrimitive(this.levels);
    this.markers = createSeriesMarkers(this.candles, []);
    this.of = chart.addSeries(HistogramSeries, { title: "OF_1m", priceLineVisible: false }, 1);
    this.qimb = chart.addSeries(LineSeries, { color: "#b388ff", lineWidth: 1, title: "qimb", priceLineVisible: false }, 2);
    this.amb = chart.addSeries(HistogramSeries, { title: "ambiguous", priceLineVisible: false }, 3);
    const panes = chart.panes();
    panes[0].setStretchFactor(5);
    for (const p of panes.slice(1)) p.setStretchFactor(1);
    chart.subscribeCrosshairMove((param) => this._hover(param));
    chart.subscribeClick((param) => param.time && this.select(param.time * 1000));
    chart.timeScale().subscribeVisibleTimeRangeChange(() => this._rangeChanged());
  }

  _ambClass(x) {
    const t = this.meta.thresholds;
    return x === null ? "" : x >= t.ambiguous_alert ? "alert" : x >= t.ambiguous_warn ? "warn" : "ok";
  }

  async load() {
    const t0 = performance.now();
    const span = Number(this.spanSel.value);
    const end = Number(this.daySel.value) + DAY;
    const start = end - span * DAY;
    const pre = window.__at.prefetch;
    window.__at.prefetch = null;
    let d = pre && pre.span === span ? await pre.minutes : null;
    const seq = (this._loadSeq = (this._loadSeq || 0) + 1);
    if (!d || d.start !== start || d.end !== end) d = await getJSON("/api/minutes", { start, end });
    if (seq !== this._loadSeq) return; // a later choice of day or span was made meanwhile
    this.data = d;
    this.index = new Map(d.ts.map((t, i) => [t, i]));
    const cols = { candles: [], poc: [], vah: [], val: [], of: [], qimb: [], amb: [] };
    this.gapMarkers = [];
    for (let i = 0; i < d.ts.length; i++) {
      const p = this._points((k) => d[k][i], d.ts[i]);
      for (const k of Object.keys(cols)) cols[k].push(p[k]);
      if (p.gap) this.gapMarkers.push(p.gap);
    }
    this.candles.setData(cols.candles);
    this.poc.setData(cols.poc); this.vah.setData(cols.vah); this.val.setData(cols.val);
    this.of.setData(cols.of); this.qimb.setData(cols.qimb); this.amb.setData(cols.amb);
    this.chartApi.timeScale().fitContent();
    this.profiles.clear();
    if (!this.meta.live) {
      this.chip.mode.textContent = "mode: stored data";
      this.chip.heat.textContent = "heat: — (no live graph)";
    }
    const last = d.ts.length ? d.ts[d.ts.length - 1] : null;
    if (last !== null) this._showMinute(last);
    await this.loadOverlay();
    requestAnimationFrame(() => {
      window.__at.timings.tradingDrawnMs = performance.now();
      window.__at.timings.tradingLoadMs = performance.now() - t0;
      window.__at.ready.trading = true;
    });
  }

  // The chart points of one minute (``v(column)`` reads its value): whitespace where a
  // value is missing, levels dimmed where the value area is invalid, and a marker where a
  // recorded live feed gap touched the minute (its bar may miss trades the venue printed).
  _points(v, ts) {
    const time = sec(ts);
    const valid = v("va_bin_count") !== null && v("va_bin_count") >= this.meta.min_va_bins;
    const dim = (c) => (valid ? c : "rgba(138,147,165,0.35)");
    const line = (k, c) => (v(k) === null ? { time } : { time, value: v(k), color: dim(c) });
    const of = v("of_1m");
    const a = v("ambiguous_trade_frac_1m");
    const cls = this._ambClass(a);
    const gap = v("gap") ?? null;
    return {
      candles: v("open") === null ? { time } : { time, open: v("open"), high: v("high"), low: v("low"), close: v("close") },
      poc: line("poc", "#f0a020"), vah: line("vah", "#4f8fe6"), val: line("val", "#4f8fe6"),
      of: of === null ? { time } : { time, value: of, color: of >= 0 ? "#26a69a" : "#ef5350" },
      qimb: v("qimb_close") === null ? { time } : { time, value: v("qimb_close") },
      amb: a === null ? { time } : { time, value: a, color: cls === "alert" ? "#ef5350" : cls === "warn" ? "#f0a020" : "#5b6b85" },
      gap: gap === null ? null : { time, position: "aboveBar", color: "#8a93a5", shape: "square", text: "gap" },
    };
  }

  _setMarkers() {
    const m = [...(this.tradeMarkers || []), ...(this.gapMarkers || [])];
    m.sort((x, y) => x.time - y.time);
    this.markers.setMarkers(m);
  }

  // One or more new minutes from the live feed: appended to the data and the series.
  applyLive(msg) {
    if (!this.data) return;
    const d = this.data;
    const last = d.ts.length ? d.ts[d.ts.length - 1] : -Infinity;
    const end = Number(this.daySel.value) + DAY;
    let added = 0;
    let gaps = false;
    for (let i = 0; i < msg.ts.length; i++) {
      const ts = msg.ts[i];
      if (ts <= last || ts >= end + DAY) continue;
      for (const k of Object.keys(d)) if (Array.isArray(d[k]) && k in msg) d[k].push(msg[k][i]);
      this.index.set(ts, d.ts.length - 1);
      const p = this._points((k) => (k in msg ? msg[k][i] : null), ts);
      // update() with whitespace would blank the minute's previous value: skip missing ones
      for (const [k, series] of [["candles", this.candles], ["poc", this.poc], ["vah", this.vah], ["val", this.val],
        ["of", this.of], ["qimb", this.qimb], ["amb", this.amb]]) {
        if (Object.keys(p[k]).length > 1) series.update(p[k]);
      }
      if (p.gap) {
        this.gapMarkers = [...(this.gapMarkers || []), p.gap];
        gaps = true;
      }
      added += 1;
    }
    if (gaps) this._setMarkers();
    if (!added) return;
    const lastTs = d.ts[d.ts.length - 1];
    if (!this.selected) this._showMinute(lastTs);
    requestAnimationFrame(() => {
      window.__at.live.updates.push({ ts: lastTs, stored_at_ms: msg.stored_at_ms, sent_ms: msg.sent_ms, drawn_ms: Date.now() });
    });
  }

  applyStatus(st) {
    const t = this.meta.thresholds;
    const infinite = (st.nonfinite || []).includes("heat");
    const heat = infinite ? Infinity : st.heat;
    const hc = heat === null || heat === undefined ? "" : heat >= t.heat_alert ? "alert" : heat >= t.heat_warn ? "warn" : "ok";
    this.chip.heat.className = `chip ${hc}`;
    const shown = infinite ? "∞ (no margin left)" : heat === null || heat === undefined ? "—" : (100 * heat).toFixed(2) + "%";
    this.chip.heat.innerHTML = `heat <b>${shown}</b>`;
    const w = st.warmup || {};
    const kill = st.kill ? " · KILL SWITCH" : "";
    this.chip.mode.className = `chip ${st.kill || st.halted ? "alert" : st.activated ? "ok" : "warn"}`;
    this.chip.mode.textContent = `${st.mode} · ${st.activated ? "active" : "observing"} · ${st.permission} · warm-up ${w.minutes}/${w.needed}${kill}`;
    if (this.livePanel) this.livePanel.applyStatus(st);
  }

  _hover(param) {
    if (!this.data || !param.time) return;
    this._showMinute(param.time * 1000);
  }

  _showMinute(ts) {
    const i = this.index.get(ts);
    if (i === undefined) return;
    const d = this.data;
    const a = d.ambiguous_trade_frac_1m[i];
    this.chip.minute.textContent = `${iso(ts)} UTC`;
    this.chip.ambiguous.className = `chip ${this._ambClass(a)}`;
    this.chip.ambiguous.innerHTML = `ambiguous <b>${a === null ? "—" : (100 * a).toFixed(1) + "%"}</b>`;
    const valid = d.va_bin_count[i] !== null && d.va_bin_count[i] >= this.meta.min_va_bins;
    this.chip.va.className = `chip ${valid ? "ok" : "warn"}`;
    this.chip.va.textContent = `VA ${valid ? "valid" : "invalid"} · POC ${fmt(d.poc[i], 1)} · VAH ${fmt(d.vah[i], 1)} · VAL ${fmt(d.val[i], 1)}`;
    this.chip.of.textContent = `OF_1m ${fmt(d.of_1m[i], 3)}`;
    this.chip.qimb.textContent = `qimb ${fmt(d.qimb_close[i], 3)}`;
    this.hoverTs = ts;
    if (this.vaMode === "histogram") this._loadProfile(ts);
  }

  async _loadProfile(ts) {
    this._profileWant = ts;
    let p = this.profiles.get(ts);
    if (!p) {
      await new Promise((r) => setTimeout(r, 60)); // debounce cursor sweeps
      if (this._profileWant !== ts) return;
      try {
        p = await getJSON("/api/profile", { ts_min: ts });
      } catch (e) {
        showError(String(e.message || e));
        return;
      }
      this.profiles.set(ts, p);
    }
    if (this._profileWant === ts) {
      this.profile.set(p);
      window.__at.profile = p;
    }
  }

  setVaMode(mode) {
    this.vaMode = mode;
    this.levelsBtn.classList.toggle("on", mode === "levels");
    this.histBtn.classList.toggle("on", mode === "histogram");
    for (const s of [this.poc, this.vah, this.val]) s.applyOptions({ visible: mode === "levels" });
    this.profile.setVisible(mode === "histogram");
    if (mode === "histogram" && this.hoverTs) return this._loadProfile(this.hoverTs);
    return null;
  }

  toggleFootprint() {
    this.footprintOn = !this.footprintOn;
    this.fpBtn.classList.toggle("on", this.footprintOn);
    // the candles stay (transparent) under the footprint: the trade markers live on them
    const on = this.footprintOn, clear = "rgba(0,0,0,0)";
    this.candles.applyOptions(on
      ? { upColor: clear, downColor: clear, wickUpColor: clear, wickDownColor: clear, lastValueVisible: false, priceLineVisible: false }
      : { ...CANDLE_COLOURS, lastValueVisible: true, priceLineVisible: true });
    return this.refreshFootprint();
  }

  _rangeChanged() {
    if (!this.footprintOn) return;
    clearTimeout(this._fpTimer);
    this._fpTimer = setTimeout(() => this.refreshFootprint(), 150);
  }

  async refreshFootprint() {
    this.chip.fp.hidden = !this.footprintOn;
    if (!this.footprintOn || !this.data) {
      this.fp.setData([]);
      return;
    }
    const r = this.chartApi.timeScale().getVisibleRange();
    if (!r) return;
    const start = Math.floor((r.from * 1000) / MIN) * MIN;
    const end = Math.floor((r.to * 1000) / MIN) * MIN + MIN;
    if ((end - start) / MIN > FOOTPRINT_MAX_MINUTES) {
      this.fp.setData([]);
      this.chip.fp.textContent = `footprint: zoom in to ${FOOTPRINT_MAX_MINUTES / 60} h or less`;
      return;
    }
    const fp = await getJSON("/api/footprint", { start, end, bin_ticks: this.binSel.value });
    this.fpRows = footprintRows(fp);
    this.fp.setData(this.fpRows);
    this.chip.fp.textContent = `footprint ${fp.bin_width} per bin`;
    window.__at.footprint = fp;
    if (this.selected) this._detail(this.selected);
  }

  showRange(startMs, endMs) {
    this.chartApi.timeScale().setVisibleRange({ from: sec(startMs), to: sec(endMs) });
    return this.refreshFootprint();
  }

  select(ts) {
    this.selected = ts;
    this._showMinute(ts);
    this._detail(ts);
  }

  _detail(ts) {
    const i = this.index.get(ts);
    const d = this.data;
    const rows = [["time", `${iso(ts)} UTC`]];
    if (i !== undefined) {
      for (const k of ["open", "high", "low", "close", "volume", "poc", "vah", "val", "va_bin_count", "of_1m", "qimb_close", "ambiguous_trade_frac_1m"]) {
        rows.push([k, fmt(d[k][i], k === "va_bin_count" ? 0 : 3)]);
      }
      if (d.gap && d.gap[i]) rows.push(["feed gap", d.gap[i]]);
    }
    const parts = [el("table", {}, rows.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, v))))];
    const fpRow = (this.fpRows || []).find((r) => r.ts === ts);
    if (this.footprintOn && fpRow) {
      parts.push(el("table", { "data-testid": "footprint-cells" },
        el("tr", {}, el("th", {}, "price"), el("th", {}, "bid"), el("th", {}, "ask"), el("th", {}, "delta")),
        [...fpRow.cells].reverse().map((c) => el("tr", { "data-price": c.p },
          el("td", {}, fmt(c.p, 1)), el("td", {}, fmt(c.b, 3)), el("td", {}, fmt(c.a, 3)),
          el("td", { class: c.d >= 0 ? "pos" : "neg" }, fmt(c.d, 3))))));
    }
    this.detail.replaceChildren(...parts);
  }

  async loadOverlay() {
    const id = this.btSel.value;
    if (!id) {
      this.tradeMarkers = [];
      this._setMarkers();
      this.levels.set([]);
      this.tradeList.replaceChildren(el("p", { class: "note" }, "choose a backtest to overlay its trades"));
      return;
    }
    if (id === "__live__") {
      const live = await getJSON("/api/live/trades");
      this.showTrades(live.trades);
      if (this.livePanel) this.livePanel.pnl(live.pnl);
      return;
    }
    const bt = await getJSON(`/api/backtests/${encodeURIComponent(id)}`);
    this.showTrades(bt.trades);
  }

  showTrades(trades) {
    const lo = this.data.ts[0], hi = this.data.ts[this.data.ts.length - 1];
    const inView = trades.filter((t) => t.fill_ts_ms <= hi + MIN && (t.exit_ts_ms ?? hi) >= lo);
    const m = [];
    const segs = [];
    const label = inView.length <= 20; // labels only when they can be read
    for (const t of inView) {
      const long = String(t.side).toLowerCase() === "long";
      const entry = Math.floor(t.fill_ts_ms / MIN) * MIN;
      m.push({ time: sec(entry), position: long ? "belowBar" : "aboveBar", color: long ? "#26a69a" : "#ef5350",
        shape: long ? "arrowUp" : "arrowDown", text: label ? `${t.setup || ""} ${t.side}` : "" });
      const ex = t.exit_ts_ms ? Math.floor(t.exit_ts_ms / MIN) * MIN : hi;
      if (t.exit_ts_ms) {
        m.push({ time: sec(ex), position: long ? "aboveBar" : "belowBar", color: "#d6dae2", shape: "circle",
          text: label ? `${t.exit_reason} ${fmt(t.net_pnl, 2)}` : "" });
      }
      for (const [kind, price] of [["stop", t.stop_initial], ["tp1", t.tp1_price_target], ["tp2", t.tp2_price_target]]) {
        if (price) segs.push({ from: sec(entry), to: sec(ex), price, kind });
      }
    }
    this.tradeMarkers = m;
    this._setMarkers();
    this.levels.set(segs);
    window.__at.tradeLevels = segs;
    this.tradeList.replaceChildren(el("table", {},
      el("tr", {}, el("th", {}, "entry"), el("th", {}, "side"), el("th", {}, "exit"), el("th", {}, "net")),
      trades.map((t) => el("tr", { class: "click", onclick: () => this.goto(t.fill_ts_ms) },
        el("td", {}, iso(t.fill_ts_ms)), el("td", {}, t.side), el("td", {}, t.exit_reason || "open"),
        el("td", { class: t.net_pnl >= 0 ? "pos" : "neg" }, fmt(t.net_pnl))))));
  }

  // Centre the chart on a trade's minute (loading its day when it is not shown).
  async goto(ts) {
    const m = Math.floor(ts / MIN) * MIN;
    if (!this.index.has(m)) {
      this.daySel.value = String(Math.floor(m / DAY) * DAY);
      await this.load();
    }
    await this.showRange(m - 90 * MIN, m + 90 * MIN);
    this.select(m);
  }

  async open(arg) {
    // "#trading" opened from elsewhere with {backtest, ts}
    if (arg.backtest) {
      if (![...this.btSel.options].some((o) => o.value === arg.backtest)) {
        this.btSel.append(el("option", { value: arg.backtest }, arg.backtest));
      }
      this.btSel.value = arg.backtest;
      await this.loadOverlay();
    }
    if (arg.ts) await this.goto(arg.ts);
  }
}
