"""``auction-trader backtest``: the Rust backtester over stored features, with a report.

Flow: stage-1 minute summaries (``<db_dir>/stage1``, computed by the features pipeline
first when missing or older than the lake) → stage 2 for the current settings → the
minute table (:func:`at_core.backtest.table.minute_table`) → one backtest → metrics on
stdout (or one JSON object with ``--json``), a report folder and the run in
``execution.db`` (``backtest_runs`` / ``backtest_trades``, keyed by run id).

Domain pitfalls:

* ``--from/--to`` choose the minutes that are *traded*; features are always computed from
  the lake's first minute, so the warm-up, the rolling profile and the EMAs are those of a
  full run, and the fill reference of the last minute still points to the real next
  quote after the range (not NaN).
* A backtest never writes the spec's ``positions`` / ``signals_1m``: those mean live
  trading. Reports and rows are keyed by a fresh run id.
* The report folder is built under a temporary name and renamed into place, and the
  database rows are written in one transaction, so an interrupted run leaves neither a
  half-written report nor a run without its trades.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from at_core import logging as at_logging
from at_core.backtest import SHARPE_MIN_DAYS
from at_core.config import Settings, db_dir_from_args, settings_from_args
from at_core.errors import InputError, StorageError

if TYPE_CHECKING:
    from at_core.backtest import BacktestRun

log = at_logging.get(__name__)
MINUTE_MS = 60_000
#: Stage-1 columns the minute table needs that older feature engines did not store.
NEW_STAGE1_COLUMNS = ("low_ts", "high_ts")

#: Metrics printed in the text summary (name, label, format).
HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("n_trades", "trades", "{:.0f}"),
    ("win_rate", "win rate", "{:.1%}"),
    ("gross_pnl", "gross P&L (USDT)", "{:,.2f}"),
    ("fees", "fees (USDT)", "{:,.2f}"),
    ("funding", "funding (USDT)", "{:,.2f}"),
    ("net_pnl", "net P&L (USDT)", "{:,.2f}"),
    ("return_pct", "return", "{:.2%}"),
    ("pnl_per_trade", "net P&L per trade", "{:,.2f}"),
    ("avg_win", "average win", "{:,.2f}"),
    ("avg_loss", "average loss", "{:,.2f}"),
    ("profit_factor", "profit factor", "{:.2f}"),
    ("max_drawdown", "max drawdown (USDT)", "{:,.2f}"),
    ("max_drawdown_pct", "max drawdown", "{:.2%}"),
    ("sharpe", "Sharpe", "{:.2f}"),
    ("spread_paid_mean", "spread paid, mean (USD)", "{:.3f}"),
    ("ambiguous_frac_mean", "ambiguous trade fraction, mean", "{:.4f}"),
    ("exposure", "time in market", "{:.1%}"),
)


@dataclass
class BacktestOutcome:
    """One ``backtest`` run: ids, range, the backtester's result and where it was stored."""

    run_id: str
    from_ts_min: int
    to_ts_min: int
    n_minutes: int
    result: BacktestRun
    table: dict[str, NDArray[Any]]
    report_dir: Path | None

    def trades(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per trade (ISO times added, sentinel timestamps → None)."""
        out = []
        for rec in self.result.trade_records():
            if not rec.get("tp1_qty"):
                rec["tp1_ts_ms"] = None
            for k, v in rec.items():
                if isinstance(v, float):
                    rec[k] = round(v, 10)  # qty = steps * 0.001 etc.: drop binary noise
            for k in ("decision_ts_ms", "fill_ts_ms", "exit_ts_ms"):
                v = rec.get(k)
                rec[k.replace("_ts_ms", "_time")] = _iso(v) if v is not None else None
            out.append(rec)
        return out

    def metrics(self) -> dict[str, Any]:
        return {k: _clean(v) for k, v in self.result.metrics.items()}


def _clean(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds")


def _iso_min(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


# ---- inputs ---------------------------------------------------------------------------------
def _stage1_outdated(db_dir: Path) -> str | None:
    """Why the stored stage-1 summaries cannot be used as they are (None = usable)."""
    import pyarrow.parquet as pq

    from at_core.storage.lake import Lake, day_start_ms

    d = db_dir / "stage1"
    if not (d / "meta.json").exists() or not (d / "minutes.parquet").exists():
        return "no stored features"
    names = set(pq.read_schema(d / "minutes.parquet").names)
    if not set(NEW_STAGE1_COLUMNS) <= names:
        return "stored features come from an older engine (no low_ts / high_ts)"
    meta = json.loads((d / "meta.json").read_text())
    lake = Lake(db_dir)
    if meta.get("sources") != json.loads(json.dumps(lake.sources.fingerprint())):
        return "the lake's sources changed since the features were computed"
    days = sorted(set(lake.days("trades")) | set(lake.days("quotes")))
    last = meta.get("last_minute")
    if days and (last is None or last < day_start_ms(days[-1])):
        return "the lake holds ticks after the stored features"
    return None


def load_arrays(db_dir: Path, settings: Settings, progress: bool | None = None) -> dict[str, Any]:
    """Merged stage-1 + stage-2 arrays for ``settings``, computing features first if needed."""
    from at_core.features.engine import stage2
    from at_core.features.pipeline import run_features
    from at_core.grid.evaluate import stage1_for

    why = _stage1_outdated(db_dir)
    if why is not None:
        print(f"backtest: {why}; running the features pipeline first", file=sys.stderr)
        run_features(db_dir, settings, progress=progress)
    stage1 = stage1_for(db_dir, settings, progress=bool(progress))
    return {**stage1, **stage2(stage1, settings)}


def build_table(
    db_dir: Path,
    settings: Settings,
    from_ms: int | None,
    to_ms: int | None,
    progress: bool | None = None,
) -> dict[str, NDArray[Any]]:
    """The backtester's table for the minutes of ``[from_ms, to_ms]`` (+ tick path and
    funding history when the settings ask for them)."""
    from at_core.backtest.table import minute_table, slice_table, tick_path

    if from_ms is not None and to_ms is not None and from_ms > to_ms:
        raise InputError(f"--from ({_iso(from_ms)}) is after --to ({_iso(to_ms)})")
    table = minute_table(load_arrays(db_dir, settings, progress), use_bvc=settings.use_bvc_fallback)
    ts = table["ts_min"]
    if not len(ts):
        raise InputError(f"no feature minutes in {db_dir}: generate or import data first")
    lo = int(ts[0]) if from_ms is None else (from_ms // MINUTE_MS) * MINUTE_MS
    hi = int(ts[-1]) if to_ms is None else (to_ms // MINUTE_MS) * MINUTE_MS
    table = slice_table(table, lo, hi)
    if not len(table["ts_min"]):
        raise InputError(
            f"no feature minute in the requested range {_iso_min(lo)} .. {_iso_min(hi)} "
            f"(data covers {_iso_min(int(ts[0]))} .. {_iso_min(int(ts[-1]))})"
        )
    if settings.stop_fill_mode == "tick_path":
        table.update(tick_path(db_dir, table["ts_min"]))
    if settings.funding_source == "history":
        from at_core.ingest.download import funding_rates

        f_ts, f_rate = funding_rates(
            db_dir,
            int(table["ts_min"][0]),
            int(table["ts_min"][-1]) + MINUTE_MS,
            symbol=settings.instrument,
        )
        table["funding_ts"] = np.ascontiguousarray(f_ts, dtype=np.int64)
        table["funding_rate"] = np.ascontiguousarray(f_rate, dtype=np.float64)
    return table


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def backtest(
    db_dir: str | Path,
    settings: Settings,
    from_ms: int | None = None,
    to_ms: int | None = None,
    report_dir: str | Path | None = None,
    *,
    write_report: bool = True,
    store: bool = True,
    progress: bool | None = None,
) -> BacktestOutcome:
    """Run one backtest on stored features; write the report and the run's rows."""
    from at_core.backtest import run_backtest

    db = Path(db_dir)
    table = build_table(db, settings, from_ms, to_ms, progress)
    result = run_backtest(table, settings)
    ts = table["ts_min"]
    run_id = new_run_id()
    out = BacktestOutcome(
        run_id=run_id,
        from_ts_min=int(ts[0]),
        to_ts_min=int(ts[-1]),
        n_minutes=len(ts),
        result=result,
        table=table,
        report_dir=None,
    )
    if write_report:
        target = Path(report_dir) if report_dir else db / "reports" / f"backtest-{run_id}"
        out.report_dir = write_report_dir(out, settings, target)
    if store:
        store_run(db, out, settings)
    log.info(
        "backtest finished",
        run_id=run_id,
        trades=len(result.trades["side"]),
        net_pnl=round(float(result.metrics["net_pnl"]), 2),
        report=str(out.report_dir) if out.report_dir else None,
    )
    return out


# ---- outputs --------------------------------------------------------------------------------
TRADE_CSV_COLUMNS = (
    "trade_no", "side", "setup", "entry_reason", "decision_ts_ms", "decision_time", "fill_ts_ms",
    "fill_time", "entry_price", "entry_maker", "qty", "stop_initial", "tp1", "tp2", "tp1_ts_ms",
    "tp1_price", "tp1_qty", "exit_decision_ts_ms", "exit_ts_ms", "exit_time", "exit_price",
    "exit_reason", "gross_pnl", "fees", "funding", "slippage_cost", "net_pnl", "entry_spread",
    "ambiguous_frac_at_entry", "leverage_cap_hit",
)  # fmt: skip


def write_report_dir(out: BacktestOutcome, settings: Settings, target: Path) -> Path:
    """``trades.csv``, ``metrics.json`` and ``equity.png`` into ``target`` (built under a
    temporary name, then renamed; an existing non-empty folder is refused)."""
    if target.exists() and any(target.iterdir()):
        raise StorageError(f"report folder {target} exists and is not empty; choose another")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        trades = out.trades()
        with open(tmp / "trades.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(TRADE_CSV_COLUMNS)
            for i, rec in enumerate(trades, 1):
                rec = {**rec, "trade_no": i}
                w.writerow(["" if rec.get(c) is None else rec.get(c) for c in TRADE_CSV_COLUMNS])
        meta = {
            "run_id": out.run_id,
            "from": _iso_min(out.from_ts_min),
            "to": _iso_min(out.to_ts_min),
            "from_ts_min": out.from_ts_min,
            "to_ts_min": out.to_ts_min,
            "n_minutes": out.n_minutes,
            "metrics": out.metrics(),
            "settings": settings.model_dump(mode="json"),
        }
        (tmp / "metrics.json").write_text(json.dumps(meta, indent=2))
        plot_report(out, tmp / "equity.png")
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def plot_report(out: BacktestOutcome, path: Path) -> None:
    """Price (mid at close) with the VA bands and POC, entries / exits marked, over the
    equity curve. VA bands are drawn only where the VA is tradeable (valid and warm).

    With data gaps the x axis counts minutes of data, not wall time (two windows 15 months
    apart would otherwise be two slivers at the edges of an empty chart): each gap is a
    dashed line labelled with its length, and tick labels show the UTC time of the minute.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    t = out.table
    ts_min = np.asarray(t["ts_min"], dtype=np.int64)
    gap_rows = np.flatnonzero(np.diff(ts_min) > 60_000) + 1
    by_index = len(gap_rows) > 0
    if by_index:
        x: Any = np.arange(len(ts_min), dtype=np.float64) + 1.0

        def to_x(ms: np.ndarray) -> Any:
            ms = np.asarray(ms, dtype=np.int64)
            i = np.clip(np.searchsorted(ts_min, ms, side="right") - 1, 0, len(ts_min) - 1)
            return i + np.clip((ms - ts_min[i]) / 60_000, 0.0, 1.0)
    else:
        x = (ts_min + 59_999).astype("datetime64[ms]")

        def to_x(ms: np.ndarray) -> Any:
            return np.asarray(ms).astype("datetime64[ms]")

    price = np.where(np.isfinite(t["mid_close"]), t["mid_close"], t["close"])
    valid = t["va_valid"]
    vah = np.where(valid, t["vah"], np.nan)
    val = np.where(valid, t["val"], np.nan)
    poc = np.where(valid, t["poc"], np.nan)
    tr = out.result.trades
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(14, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
    )
    ax.fill_between(x, val, vah, color="tab:blue", alpha=0.15, step="post", label="value area")
    ax.plot(x, vah, color="tab:blue", lw=0.6, alpha=0.7, drawstyle="steps-post")
    ax.plot(x, val, color="tab:blue", lw=0.6, alpha=0.7, drawstyle="steps-post")
    ax.plot(x, poc, color="tab:purple", lw=0.7, ls="--", alpha=0.8, label="POC")
    # one line per segment: a line drawn across a data gap would invent prices in it
    for k, seg in enumerate(np.split(np.arange(len(price)), gap_rows)):
        ax.plot(x[seg], price[seg], color="black", lw=0.8, label="mid at close" if k == 0 else None)
    if len(x) and not valid.all():
        # minutes without a tradeable VA (warm-up, too few bins): no signal possible there
        edges = np.flatnonzero(np.diff(np.r_[0, (~valid).astype(np.int8), 0]))
        for k, (a, b) in enumerate(zip(edges[::2], edges[1::2], strict=True)):
            ax.axvspan(x[a], x[b - 1], color="gray", alpha=0.12, lw=0,
                       label="no valid VA (warm-up)" if k == 0 else None)  # fmt: skip
    n = len(tr["side"])
    if n:
        side = np.asarray(tr["side"])
        fill = to_x(np.asarray(tr["fill_ts_ms"]))
        exit_ts = to_x(np.asarray(tr["exit_ts_ms"]))
        entry_px = np.asarray(tr["entry_price"])
        exit_px = np.asarray(tr["exit_price"])
        net = np.asarray(tr["net_pnl"])
        for s, mk, col, lab in (
            (1, "^", "tab:green", "long entry"),
            (-1, "v", "tab:red", "short entry"),
        ):
            sel = side == s
            if sel.any():
                ax.scatter(fill[sel], entry_px[sel], marker=mk, s=70, color=col, zorder=5,
                           edgecolors="black", linewidths=0.5, label=lab)  # fmt: skip
        for ok, col, lab in (
            (net > 0, "tab:green", "exit (win)"),
            (net <= 0, "tab:red", "exit (loss)"),
        ):
            if ok.any():
                ax.scatter(exit_ts[ok], exit_px[ok], marker="X", s=55, color=col, zorder=5,
                           edgecolors="black", linewidths=0.5, label=lab)  # fmt: skip
        for i in range(n):
            ax.plot([fill[i], exit_ts[i]], [entry_px[i], exit_px[i]], color="gray", lw=0.7, ls=":")
    m = out.result.metrics
    ax.set_title(
        f"backtest {out.run_id}   {_iso_min(out.from_ts_min)} .. {_iso_min(out.to_ts_min)}   "
        f"{int(m['n_trades'])} trades, net P&L {m['net_pnl']:,.2f} USDT "
        f"(fees {m['fees']:,.2f}), max DD {m['max_drawdown_pct']:.1%}",
        fontsize=10,
    )
    ax.set_ylabel("price (USDT)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, ncol=4)
    eq = np.asarray(out.result.equity)
    ex = x[: len(eq)]
    for seg in np.split(np.arange(len(eq)), gap_rows[gap_rows < len(eq)]):
        ax2.plot(ex[seg], eq[seg], color="tab:blue", lw=1.0)
    init = float(eq[0]) if len(eq) else 0.0
    ax2.axhline(init, color="gray", lw=0.6, ls="--")
    ax2.fill_between(ex, init, eq, where=eq >= init, color="tab:green", alpha=0.2, interpolate=True)
    ax2.fill_between(ex, init, eq, where=eq < init, color="tab:red", alpha=0.2, interpolate=True)
    ax2.set_ylabel("equity (USDT)")
    ax2.grid(alpha=0.3)
    if by_index:
        for k, r in enumerate(gap_rows):
            days = (ts_min[r] - ts_min[r - 1]) / 86_400_000
            for a in (ax, ax2):
                a.axvline(r + 0.5, color="black", lw=0.8, ls="--",
                          label="data gap" if (k == 0 and a is ax) else None)  # fmt: skip
            ax.annotate(f"gap {days:,.1f} d" if days >= 1 else f"gap {days * 1440:,.0f} min",
                        (r + 0.5, 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                        ha="center", va="bottom")  # fmt: skip
        ax.legend(loc="upper left", fontsize=8, ncol=4)

        def fmt(v: float, _pos: int) -> str:
            i = int(min(max(round(v) - 1, 0), len(ts_min) - 1))
            return _iso_min(int(ts_min[i])).replace("T", "\n")

        ax2.xaxis.set_major_locator(MaxNLocator(8, integer=True))
        ax2.xaxis.set_major_formatter(FuncFormatter(fmt))
        ax2.set_xlabel("minutes of data (UTC time of the minute; data gaps as dashed lines)")
    else:
        loc = mdates.AutoDateLocator()
        ax2.xaxis.set_major_locator(loc)
        ax2.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
        ax2.set_xlabel("time (UTC)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def store_run(db_dir: Path, out: BacktestOutcome, settings: Settings) -> None:
    """The run and its trades into ``execution.db`` in one transaction."""
    from at_core.storage.stores import connect_sqlite, init_stores

    paths = init_stores(db_dir)
    trades = out.trades()
    rows = [
        (
            out.run_id, i, r["side"], r.get("setup"), r.get("entry_reason"), r["decision_ts_ms"],
            r["fill_ts_ms"], r["entry_price"], int(bool(r.get("entry_maker"))), r["qty"],
            r.get("stop_initial"), r.get("tp1"), r.get("tp2"), r.get("tp1_ts_ms"),
            r.get("tp1_price"), r.get("tp1_qty"), r.get("exit_decision_ts_ms"), r.get("exit_ts_ms"),
            r.get("exit_price"), r.get("exit_reason"), r.get("gross_pnl"), r.get("fees"),
            r.get("funding"), r.get("slippage_cost"), r.get("net_pnl"),
        )
        for i, r in enumerate(trades, 1)
    ]  # fmt: skip
    eq = np.asarray(out.result.equity, dtype=np.float64)
    eq_ts = np.asarray(out.table["ts_min"], dtype=np.int64)[: len(eq)]
    con = connect_sqlite(paths.execution)
    try:
        with con:
            con.execute(
                "INSERT INTO backtest_runs (run_id, created_at, from_ts_min, to_ts_min, n_minutes, "
                "settings_json, metrics_json, report_dir, equity_ts, equity) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    out.run_id,
                    int(time.time() * 1000),
                    out.from_ts_min,
                    out.to_ts_min,
                    out.n_minutes,
                    json.dumps(settings.model_dump(mode="json"), sort_keys=True),
                    json.dumps(out.metrics(), sort_keys=True),
                    str(out.report_dir) if out.report_dir else None,
                    eq_ts.astype("<i8").tobytes(),
                    eq.astype("<f8").tobytes(),
                ),
            )
            con.executemany(
                "INSERT INTO backtest_trades (run_id, trade_no, side, setup, entry_reason, "
                "decision_ts_ms, fill_ts_ms, entry_price, entry_maker, qty, stop_initial, "
                "tp1_price_target, tp2_price_target, tp1_ts_ms, tp1_price, tp1_qty, "
                "exit_decision_ts_ms, exit_ts_ms, exit_price, exit_reason, gross_pnl, fees, "
                "funding, slippage_cost, net_pnl) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
    except Exception as exc:
        raise StorageError(
            f"storing backtest {out.run_id} in {paths.execution} failed: {exc}"
        ) from exc
    finally:
        con.close()


def print_summary(out: BacktestOutcome) -> None:
    m = out.result.metrics
    n_days = int(m.get("n_days") or 0)
    print(
        f"backtest {out.run_id}: {out.n_minutes:,} minutes of data on {n_days:,} UTC day(s) "
        f"({_iso_min(out.from_ts_min)} .. {_iso_min(out.to_ts_min)})"
    )
    n_gaps = int(m.get("n_gaps") or 0)
    if n_gaps:
        missing = int(m.get("gap_minutes") or 0)
        print(
            f"  {n_gaps:,} data gap(s), {missing:,} minutes ({missing / 1440:,.1f} days) without "
            "data: nothing held or priced across them (DATA_GAP exits at the last mark)"
        )
    for key, label, fmt in HEADLINE:
        if key not in m:
            continue
        v = m.get(key)
        finite = v is not None and math.isfinite(float(v))
        if key == "sharpe":
            # mean / stdev of daily returns x sqrt(365): noise with a handful of days
            label = f"Sharpe (daily x sqrt 365, {n_days} d)"
            txt = (
                fmt.format(float(v))  # type: ignore[arg-type]
                if finite
                else f"n/a (needs >= {SHARPE_MIN_DAYS} daily returns)"
            )
        elif key == "profit_factor" and v is not None and float(v) == math.inf:
            txt = "inf (no losing trade)"
        elif not finite:
            txt = "n/a (no trade)" if not m.get("n_trades") else "n/a"
        else:
            txt = fmt.format(float(v))  # type: ignore[arg-type]
        print(f"  {label:<32} {txt}")
    entries, capped = m.get("n_entries") or 0, m.get("n_leverage_cap_hits") or 0
    if entries and capped >= 0.5 * entries:
        print(
            f"  note: the leverage cap bound {capped:.0f} of {entries:.0f} entries: their size is "
            "max_leverage x equity, not the risk_pct budget (risk_pct changes nothing for them)"
        )
    if out.report_dir:
        print(f"  report: {out.report_dir}")


def demo_step(db_dir: Path, settings: Settings) -> BacktestOutcome:
    """The backtest step of ``auction-trader demo``: default settings over every stored day."""
    out = backtest(db_dir, settings)
    print_summary(out)
    return out


def run(args: argparse.Namespace) -> int:
    from at_core.features.cli import parse_time

    settings = settings_from_args(args)
    frm = parse_time(args.from_, end=False, flag="--from") if args.from_ else None
    to = parse_time(args.to, end=True, flag="--to") if args.to else None
    out = backtest(db_dir_from_args(args), settings, frm, to, args.report_dir)
    if args.json:
        payload = {
            "run_id": out.run_id,
            "from_ts_min": out.from_ts_min,
            "to_ts_min": out.to_ts_min,
            "n_minutes": out.n_minutes,
            "report_dir": str(out.report_dir) if out.report_dir else None,
            "metrics": out.metrics(),
            "trades": out.trades(),
        }
        print(json.dumps(payload, allow_nan=False))
    else:
        print_summary(out)
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "backtest",
        parents=[common],
        help="backtest the strategy on stored features and write a report",
        description="Run the Rust backtester (bid/ask fill model, fees, funding; SPEC §12) with the "
        "current settings (--config/--set) over the stored features (computed first when missing "
        "or older than the lake). Prints the metrics; writes trades.csv, metrics.json and equity.png "
        "to a report folder and the run to execution.db (backtest_runs, backtest_trades).",
    )
    p.add_argument(
        "--from", dest="from_", metavar="T", help="first minute to trade (epoch ms or ISO, UTC)"
    )
    p.add_argument(
        "--to", metavar="T", help="last minute to trade, inclusive (a date means its whole day)"
    )
    p.add_argument(
        "--json", action="store_true", help="print one JSON object with metrics and trades"
    )
    p.add_argument(
        "--report-dir",
        metavar="DIR",
        default=None,
        help="report folder (default <db-dir>/reports/backtest-<run id>)",
    )
    p.set_defaults(func=run)
