"""``auction-trader demo``: the main job end to end on generated data (no servers, no internet).

Steps, each reusing the capability's own entry point: create the stores, generate a
deterministic synthetic market, report what is stored, compute the features, backtest
them with the defaults (metrics and the report folder). Later capabilities append their
step here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from typing import Any

from at_core.config import db_dir_from_args, settings_from_args
from at_core.storage.query import run_query
from at_core.storage.stores import init_stores


def _banner(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _px(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f}"


def _fmt_ms(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    db_dir = db_dir_from_args(args)
    t0 = time.perf_counter()
    _banner(f"stores in {db_dir}")
    init_stores(db_dir)

    from at_core.ingest.synthetic import generate_market

    _banner(f"generate {args.days} day(s) of synthetic {settings.instrument} (seed {args.seed})")
    start = dt.date.fromisoformat(args.start) if args.start else None
    summary = generate_market(db_dir, days=args.days, seed=args.seed, start=start, force=True)
    print(
        f"  {summary['days']} day(s) {summary['start']} .. {summary['end']} (end exclusive): "
        f"{summary['trades']:,} trades, {summary['quotes']:,} quotes, price "
        f"{_px(summary['price_min'])} .. {_px(summary['price_max'])}; source {summary['source_id']}"
    )

    _banner("what is stored")
    for table in ("raw_trades", "raw_quotes"):
        _, rows = run_query(db_dir, f"SELECT count(*), min(ts_ms), max(ts_ms) FROM {table}")
        n, lo, hi = rows[0]
        print(f"  {table:<11} {n:>12,} rows  {_fmt_ms(lo)} -> {_fmt_ms(hi)} UTC")  # type: ignore[arg-type]
    _, rows = run_query(
        db_dir,
        "SELECT count(*) AS minutes, round(avg(px_range), 2), round(avg(n), 1) FROM ("
        " SELECT ts_ms // 60000 AS m, max(price) - min(price) AS px_range, count(*) AS n"
        " FROM raw_trades GROUP BY 1)",
    )
    minutes, rng, per_min = rows[0]
    print(
        f"  minutes with trades: {minutes:,}; mean 1-minute range {rng} USD; mean trades/minute {per_min}"
    )
    _, rows = run_query(
        db_dir,
        "SELECT round(avg(CASE WHEN round((ask_px - bid_px) / 0.1) = 1 THEN 1.0 ELSE 0.0 END) * 100, 2) FROM raw_quotes",
    )
    print(f"  quotes with a one-tick spread: {rows[0][0]} %")
    from at_core.features.cli import demo_step as features_step

    _banner("features (stage 1 + stage 2, Rust engine) -> bars_1m, features_1m")
    features_step(db_dir, settings)
    from at_core.backtest.cli import demo_step as backtest_step

    _banner("backtest (Rust kernel + bid/ask fill model) over the generated days, default settings")
    backtest_step(db_dir, settings)
    from at_core.grid.main import demo_step as grid_step

    _banner("grid search (configs/grid/demo.yaml) on a local Ray -> execution.db + MLflow")
    grid_step(db_dir, getattr(args, "config", None), list(getattr(args, "set", []) or []))
    extra: dict[str, Any] = {}
    print(f"\ndemo finished in {time.perf_counter() - t0:.1f} s {extra or ''}".rstrip())
    print(f"dashboard: `make dashboard DB_DIR={db_dir}` -> http://127.0.0.1:8050/")
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "demo",
        parents=[common],
        help="the main job end to end on generated data",
        description="Generate a deterministic synthetic market into DATABASE_DIR and run the pipeline on it.",
    )
    p.add_argument("--days", type=int, default=3, help="days to generate (default 3)")
    p.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    p.add_argument(
        "--start", default=None, help="first day, YYYY-MM-DD (default: the generator's fixed start)"
    )
    p.set_defaults(func=run)
