// Backtests: stored runs, one run's metrics, equity and drawdown, and its trades, each
// linked to the trading view at the trade's minute.
import { AreaSeries, LineSeries } from "./vendor/lightweight-charts.mjs";
import { el, fmt, getJSON, iso, themedChart } from "./api.js";

const METRICS = ["net_pnl", "n_trades", "win_rate", "profit_factor", "sharpe", "sortino",
  "max_drawdown", "max_drawdown_pct", "fees", "funding", "exposure_pct"];

export class BacktestsView {
  constructor(root, meta) {
    this.root = root;
    this.meta = meta;
  }

  async init() {
    const runs = await getJSON("/api/backtests");
    this.list = el("table", { "data-testid": "backtest-runs" },
      el("tr", {}, ["run", "range", "trades", "net P&L", "Sharpe", "max DD"].map((h) => el("th", {}, h))),
      runs.map((r) => el("tr", { class: "click", "data-run": r.run_id, onclick: () => this.open(r.run_id) },
        el("td", {}, r.run_id), el("td", {}, `${iso(r.from_ts_min)} .. ${iso(r.to_ts_min)}`),
        el("td", {}, r.n_trades), el("td", { class: r.net_pnl >= 0 ? "pos" : "neg" }, fmt(r.net_pnl)),
        el("td", {}, fmt(r.sharpe)), el("td", {}, r.max_drawdown_pct === null ? "—" : `${(100 * r.max_drawdown_pct).toFixed(1)}%`))));
    this.body = el("div", { "data-testid": "backtest-detail" });
    this.root.append(el("h3", {}, "Backtest runs"),
      runs.length ? this.list : el("p", { class: "note" }, "no stored backtests: run `auction-trader backtest`"),
      this.body);
    if (runs.length) await this.open(runs[0].run_id);
    window.__at.ready.backtests = true;
  }

  async open(runId) {
    for (const tr of this.list.querySelectorAll("tr[data-run]")) tr.classList.toggle("sel", tr.dataset.run === runId);
    const bt = await getJSON(`/api/backtests/${encodeURIComponent(runId)}`);
    const metrics = el("table", { "data-testid": "backtest-metrics" },
      METRICS.filter((k) => k in bt.metrics).map((k) => el("tr", {}, el("td", {}, k), el("td", {}, fmt(bt.metrics[k], Number.isInteger(bt.metrics[k]) ? 0 : 4)))));
    const eqBox = el("div", { class: "small-chart", "data-testid": "backtest-equity" });
    const trades = el("div", { class: "scroll" }, el("table", { "data-testid": "backtest-trades" },
      el("tr", {}, ["#", "entry", "side", "setup", "entry px", "exit", "exit px", "reason", "net"].map((h) => el("th", {}, h))),
      bt.trades.map((t) => el("tr", { class: "click", onclick: () => window.__at.openTab("trading", { backtest: runId, ts: t.fill_ts_ms }) },
        el("td", {}, t.trade_no), el("td", {}, iso(t.fill_ts_ms)), el("td", {}, t.side), el("td", {}, t.setup || ""),
        el("td", {}, fmt(t.entry_price, 1)), el("td", {}, iso(t.exit_ts_ms)), el("td", {}, fmt(t.exit_price, 1)),
        el("td", {}, t.exit_reason || "open"), el("td", { class: t.net_pnl >= 0 ? "pos" : "neg" }, fmt(t.net_pnl))))));
    this.body.replaceChildren(el("h3", {}, `Backtest ${runId}`),
      el("div", { class: "grid2" }, metrics, eqBox), el("h3", {}, "Trades (click: show on the chart)"), trades);
    if (bt.equity.ts.length) {
      const chart = themedChart(eqBox);
      const eq = chart.addSeries(LineSeries, { color: "#4f8fe6", lineWidth: 1, title: "equity" });
      eq.setData(bt.equity.ts.map((t, i) => ({ time: t / 1000, value: bt.equity.equity[i] })));
      const dd = chart.addSeries(AreaSeries, { lineColor: "#ef5350", topColor: "rgba(239,83,80,0.1)", bottomColor: "rgba(239,83,80,0.4)", lineWidth: 1, title: "drawdown" }, 1);
      dd.setData(bt.equity.ts.map((t, i) => ({ time: t / 1000, value: 100 * bt.equity.drawdown[i] })));
      chart.timeScale().fitContent();
    } else {
      eqBox.append(el("p", { class: "note" }, bt.equity.note));
    }
  }
}
