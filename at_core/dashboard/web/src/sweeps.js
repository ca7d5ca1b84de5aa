// Sweeps: grid runs; a sortable, filterable table of combinations (sorted and filtered by
// the server); the validation statistics and plots; sensitivity for one or two keys; the
// equity of a chosen combination; MLflow link and CSV download.
import { LineSeries } from "./vendor/lightweight-charts.mjs";
import { el, fmt, getJSON, iso, showError, themedChart } from "./api.js";

const PAGE = 50;
const short = (c) => c.replace(/^(param|metric|stat)\./, "");

export class SweepsView {
  constructor(root, meta) {
    this.root = root;
    this.meta = meta;
    this.sort = null;
    this.order = "desc";
    this.offset = 0;
  }

  async init() {
    const runs = await getJSON("/api/sweeps");
    this.runs = el("table", { "data-testid": "sweep-runs" },
      el("tr", {}, ["run", "name", "status", "rows", "created", "PBO", "DSR winner"].map((h) => el("th", {}, h))),
      runs.map((r) => el("tr", { class: "click", "data-run": r.run_id, onclick: () => this.open(r.run_id) },
        el("td", {}, r.run_id), el("td", {}, r.name), el("td", {}, r.status), el("td", {}, r.n_results),
        el("td", {}, iso(r.created_at)), el("td", {}, fmt(r.pbo, 2)),
        el("td", { class: r.winner_flagged ? "flag" : "" }, fmt(r.winner_dsr, 3)))));
    this.body = el("div", { "data-testid": "sweep-detail" });
    this.root.append(el("h3", {}, "Grid sweeps"),
      runs.length ? this.runs : el("p", { class: "note" }, "no sweeps: run `auction-trader grid run`"), this.body);
    if (runs.length) await this.open(runs[runs.length - 1].run_id);
    window.__at.ready.sweeps = true;
  }

  async open(runId) {
    this.runId = runId;
    this.sort = null;
    this.offset = 0;
    for (const tr of this.runs.querySelectorAll("tr[data-run]")) tr.classList.toggle("sel", tr.dataset.run === runId);
    const info = await getJSON(`/api/sweeps/${encodeURIComponent(runId)}`);
    this.info = info;
    this.filter = el("input", { size: 48, "data-testid": "sweep-filter", placeholder: "e.g. metric.n_trades>=5; param.alpha_bin=0.25",
      onchange: () => { this.offset = 0; this.loadRows(); } });
    this.count = el("span", { class: "note", "data-testid": "sweep-count" });
    this.table = el("div", { class: "scroll" });
    this.pager = el("span", {},
      el("button", { onclick: () => { this.offset = Math.max(0, this.offset - PAGE); this.loadRows(); } }, "‹ prev"),
      el("button", { onclick: () => { this.offset += PAGE; this.loadRows(); } }, "next ›"));
    this.validation = el("div", { "data-testid": "sweep-validation" }, el("p", { class: "note" }, "computing statistics…"));
    this.equityBox = el("div", { class: "small-chart", "data-testid": "sweep-equity" });
    this.equityTitle = el("h3", {}, "Equity of a combination (click a row)");
    this.sens = el("div", { "data-testid": "sweep-sensitivity" });
    const links = el("p", {},
      el("a", { href: `/api/sweeps/${encodeURIComponent(runId)}/export.csv`, "data-testid": "csv", download: true }, "CSV download"),
      info.mlflow_url ? [" · ", el("a", { href: info.mlflow_url, target: "_blank", "data-testid": "mlflow" }, "MLflow run")] : []);
    this.body.replaceChildren(el("h3", {}, `Sweep ${runId} — ${info.name} (${info.n_rows} combinations, metric ${info.metric} ${info.mode})`),
      links, this.validation,
      el("div", { class: "toolbar" }, el("label", {}, "filter"), this.filter, this.pager, this.count), this.table,
      el("div", { class: "grid2" }, el("div", {}, this.equityTitle, this.equityBox), el("div", {}, el("h3", {}, "Sensitivity"), this.sens)));
    this._sensControls();
    await this.loadRows();
    this.loadValidation();
  }

  async loadRows() {
    const filters = this.filter.value.split(";").map((s) => s.trim()).filter(Boolean);
    let page;
    try {
      page = await getJSON(`/api/sweeps/${encodeURIComponent(this.runId)}/rows`, {
        sort: this.sort, order: this.order, filter: filters, limit: PAGE, offset: this.offset });
    } catch (e) {
      showError(String(e.message || e));
      return;
    }
    const cols = page.columns.filter((c) => c === "result_id" || c.startsWith("param.") ||
      ["metric.net_pnl", "metric.n_trades", "metric.sharpe", "metric.max_drawdown_pct", "metric.win_rate", "metric.profit_factor"].includes(c) || c.startsWith("stat."));
    const dsrMin = this.info.grid?.validation_dsr_min;
    const head = el("tr", {}, cols.map((c) => el("th", { "data-col": c, title: c, onclick: () => this.sortBy(c) },
      short(c) + (this.sort === c ? (this.order === "desc" ? " ▼" : " ▲") : ""))));
    const body = page.rows.map((r) => el("tr", { class: "click", "data-id": r.result_id, onclick: () => this.equity(r) },
      cols.map((c) => {
        const v = r[c];
        const cls = c === "stat.dsr" && v !== null && v < (dsrMin ?? 0.95) ? "flag" : "";
        return el("td", { class: cls }, typeof v === "number" && !Number.isInteger(v) ? fmt(v, 4) : v ?? "—");
      })));
    this.table.replaceChildren(el("table", { "data-testid": "sweep-table" }, head, body));
    this.count.textContent = `${page.total} rows · showing ${page.total ? page.offset + 1 : 0}–${page.offset + page.rows.length}`;
    window.__at.sweepPage = { ...page, sort: this.sort, order: this.order, filters };
  }

  sortBy(col) {
    if (this.sort === col) this.order = this.order === "desc" ? "asc" : "desc";
    else { this.sort = col; this.order = "desc"; }
    this.offset = 0;
    return this.loadRows();
  }

  async loadValidation() {
    let v;
    try {
      v = await getJSON(`/api/sweeps/${encodeURIComponent(this.runId)}/validation`);
    } catch (e) {
      this.validation.replaceChildren(el("p", { class: "note" }, String(e.message || e)));
      return;
    }
    if (!v.available) {
      this.validation.replaceChildren(el("p", { class: "note" }, `no statistics: ${v.reason}`));
      return;
    }
    const s = v.summary;
    const w = s.winner || {};
    const items = [
      ["winner DSR", fmt(w.dsr, 3), s.winner_flagged ? "flag" : ""],
      ["winner PSR", fmt(w.psr, 3), ""],
      ["PBO", s.pbo === null ? "—" : fmt(s.pbo, 3), s.pbo !== null && s.pbo > 0.5 ? "flag" : ""],
      ["N effective", fmt(s.n_eff, 1), ""],
      ["days", s.n_days, ""],
      ["P(OOS loss)", fmt(s.prob_oos_loss, 3), ""],
    ];
    if (s.walk_forward) items.push(["WF efficiency", fmt(s.walk_forward.efficiency, 2), ""]);
    this.validation.replaceChildren(
      el("div", { class: "chips" }, items.map(([k, val, cls]) => el("span", { class: `chip ${cls ? "alert" : ""}`, "data-stat": k }, `${k} `, el("b", { class: cls }, val)))),
      s.winner_flagged ? el("p", { class: "flag", "data-testid": "winner-flag" },
        `the winner's deflated Sharpe ${fmt(w.dsr, 3)} is below ${s.dsr_min}: its edge may be luck`) : "",
      el("div", { class: "plots grid2" }, v.plots.map((p) => el("img", { alt: p, title: p, src: `/api/sweeps/${encodeURIComponent(this.runId)}/plots/${p}`, onclick: (ev) => ev.target.classList.toggle("big") }))));
    window.__at.validation = v;
  }

  async equity(row) {
    const e = await getJSON(`/api/sweeps/${encodeURIComponent(this.runId)}/equity/${row.result_id}`);
    this.equityTitle.textContent = `Equity of combination ${row.result_id} (day ends)`;
    if (this.eqChart) this.eqChart.remove();
    this.eqChart = themedChart(this.equityBox, { timeScale: { timeVisible: false } });
    const s = this.eqChart.addSeries(LineSeries, { color: "#4f8fe6", lineWidth: 2, title: `#${row.result_id}` });
    s.setData(e.day_ms.map((t, i) => ({ time: t / 1000, value: e.equity[i] })));
    this.eqChart.timeScale().fitContent();
    window.__at.equity = e;
  }

  _sensControls() {
    const swept = this.info.swept;
    const metrics = this.info.columns.filter((c) => c.startsWith("metric.")).map(short);
    this.k1 = el("select", { "data-testid": "sens-k1" }, swept.map((k) => el("option", { value: k }, k)));
    this.k2 = el("select", { "data-testid": "sens-k2" }, el("option", { value: "" }, "(one key)"), swept.map((k) => el("option", { value: k }, k)));
    this.sm = el("select", { "data-testid": "sens-metric" }, metrics.map((k) => el("option", { value: k }, k)));
    this.sm.value = this.info.metric;
    const go = () => this.sensitivity();
    for (const s of [this.k1, this.k2, this.sm]) s.addEventListener("change", go);
    this.sensOut = el("div", { class: "scroll" });
    this.sens.replaceChildren(el("div", { class: "toolbar" }, this.k1, this.k2, this.sm), this.sensOut);
    if (swept.length) go();
  }

  async sensitivity() {
    const keys = [this.k1.value, this.k2.value].filter(Boolean);
    if (keys.length === 2 && keys[0] === keys[1]) keys.pop();
    let r;
    try {
      r = await getJSON(`/api/sweeps/${encodeURIComponent(this.runId)}/sensitivity`, { keys: keys.join(","), metric: this.sm.value });
    } catch (e) {
      this.sensOut.replaceChildren(el("p", { class: "note" }, String(e.message || e)));
      return;
    }
    if (keys.length === 1) {
      this.sensOut.replaceChildren(el("table", { "data-testid": "sens-table" },
        el("tr", {}, [keys[0], "n", "mean", "median", "best", "worst"].map((h) => el("th", {}, h))),
        r.cells.map((c) => el("tr", {}, el("td", {}, c.values[0]), el("td", {}, c.n), el("td", {}, fmt(c.mean)),
          el("td", {}, fmt(c.median)), el("td", {}, fmt(c.best)), el("td", {}, fmt(c.worst))))));
    } else {
      const xs = [...new Set(r.cells.map((c) => JSON.stringify(c.values[0])))];
      const ys = [...new Set(r.cells.map((c) => JSON.stringify(c.values[1])))];
      const at = new Map(r.cells.map((c) => [JSON.stringify(c.values), c]));
      const means = r.cells.map((c) => c.mean);
      const lo = Math.min(...means), hi = Math.max(...means);
      const colour = (v) => {
        const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
        return `rgba(${Math.round(239 - 200 * t)},${Math.round(83 + 83 * t)},${Math.round(80 + 74 * t)},0.6)`;
      };
      this.sensOut.replaceChildren(el("table", { "data-testid": "sens-matrix" },
        el("tr", {}, el("th", {}, `${keys[0]} \\ ${keys[1]}`), ys.map((y) => el("th", {}, JSON.parse(y)))),
        xs.map((x) => el("tr", {}, el("td", {}, JSON.parse(x)), ys.map((y) => {
          const c = at.get(`[${x},${y}]`);
          return c ? el("td", { style: `background:${colour(c.mean)}`, title: `n=${c.n} best=${fmt(c.best)}` }, fmt(c.mean)) : el("td", {}, "—");
        })))));
    }
    window.__at.sensitivity = r;
  }
}
