"""``auction-trader grid``: run, list, show and export sweeps (SPEC §13.3 CLI export)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from at_core.config import db_dir_from_args
from at_core.grid.results import ResultStore, inert_keys


def _ts(ms: int | None) -> str:
    return (
        "-"
        if ms is None
        else dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")
    )


def cmd_list(args: argparse.Namespace) -> int:
    from at_core.storage.stores import StorePaths

    db = db_dir_from_args(args)
    # reading: a store without execution.db has no sweeps (and a read-only folder must
    # not be written to find that out)
    runs = ResultStore(db).list_runs() if StorePaths(db).execution.exists() else []
    if args.json:
        print(json.dumps(runs))
        return 0
    if not runs:
        print("no grid runs")
        return 0
    print(f"{'run_id':<40} {'status':<9} {'results':>9} {'of':>9}  created")
    for r in runs:
        print(
            f"{r['run_id']:<40} {r['status']:<9} {r['n_results']:>9,} {r['n_combinations']:>9,}  {_ts(r['created_at'])}"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = ResultStore(db_dir_from_args(args))
    info = store.run_info(args.run_id)
    if info is None:
        from at_core.errors import StorageError

        raise StorageError(f"no grid run {args.run_id!r}")
    grid = json.loads(info["grid_json"])
    sort = args.sort or grid.get("metric", "net_pnl")
    mode = args.mode or grid.get("mode", "max")
    rows = store.top(args.run_id, args.top, sort, mode)
    swept = list(grid.get("params", {}))
    if args.json:
        print(json.dumps([{"params": {k: p.get(k) for k in swept}, "metrics": m} for p, m in rows]))
        return 0
    print(
        f"run {args.run_id} ({info['status']}), top {len(rows)} by {sort} ({mode}; "
        f"{ResultStore.TIE_BREAK})"
    )
    inert = inert_keys(store.results(args.run_id), swept)
    if inert:
        print(f"  swept keys that changed no result: {', '.join(inert)}")
    from at_core.grid.validation_report import summary_line

    line = summary_line(store.validation(args.run_id))
    print(
        f"  {line}"
        if line
        else f"  validation: not computed (`auction-trader grid validate {args.run_id}`)"
    )
    for i, (p, m) in enumerate(rows, 1):
        ps = ", ".join(f"{k}={p.get(k)}" for k in swept)
        ms = ", ".join(f"{k}={_fmt(m.get(k))}" for k in _headline(m, sort))
        print(f"{i:>3}. {ps}\n     {ms}")
    return 0


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _headline(m: dict[str, Any], sort: str) -> list[str]:
    keys = [sort] + [
        k
        for k in ("net_pnl", "gross_pnl", "n_trades", "win_rate", "max_drawdown", "sharpe")
        if k != sort
    ]
    return [k for k in keys if k in m]


def cmd_validate(args: argparse.Namespace) -> int:
    from at_core.config import load_settings
    from at_core.grid.tracking import default_tracking_uri
    from at_core.grid.validation import validate
    from at_core.grid.validation_report import plots, record, render

    db = db_dir_from_args(args)
    settings = load_settings(getattr(args, "config", None), getattr(args, "set", []) or [])
    spec = _validation_overrides(store_spec(db, args.run_id), args)
    v = validate(
        db,
        args.run_id,
        spec=spec,
        blocks=args.blocks,
        embargo_min=args.embargo_minutes,
        confidence=args.confidence,
        dsr_min=args.dsr_min,
        settings=settings,
    )
    if args.heat_map:
        keys = [k.strip() for k in args.heat_map.split(",")]
        if len(keys) != 2 or v.grid is None:
            from at_core.errors import ConfigError

            raise ConfigError(
                f"--heat-map: expected two swept keys KEY1,KEY2, got {args.heat_map!r}"
            )
        from at_core.grid.stability import slice_table

        slice_table(v.grid, v.winner_row, keys[0], keys[1])  # names a key that is not swept
        v.heat_keys = (keys[0], keys[1])
    store = ResultStore(db)
    info = store.run_info(args.run_id) or {}
    uri = None if args.no_mlflow else (args.mlflow_uri or default_tracking_uri(db))
    record(v, store, uri, info.get("mlflow_run_id"))
    if args.json:
        print(json.dumps(v.summary()))
        return 0
    print(render(v))
    out = db.resolve() / "reports" / f"validation-{args.run_id}"
    for p in plots(v, out):
        print(f"plot: {p}")
    return 0


def store_spec(db: Any, run_id: str) -> Any:
    """The ``validation`` section stored with a run (None: no run; validate says so)."""
    from at_core.grid.validation_spec import from_dict

    info = ResultStore(db).run_info(run_id)
    return None if info is None else from_dict(json.loads(info["grid_json"]).get("validation"))


def _validation_overrides(spec: Any, args: argparse.Namespace) -> Any:
    """``--walk-forward TRAIN:TEST[:STEP]``, ``--anchored``, ``--holdout-split DAY``,
    ``--select-by`` over the run's stored section."""
    import dataclasses

    from at_core.errors import ConfigError
    from at_core.grid.validation_spec import ValidationSpec, WalkForward, parse_validation

    spec = spec or ValidationSpec()
    raw: dict[str, Any] = {}
    if args.walk_forward:
        parts = args.walk_forward.split(":")
        try:
            nums = [int(x) for x in parts]
        except ValueError:
            nums = []
        if len(nums) not in (2, 3):
            raise ConfigError(
                f"--walk-forward: expected TRAIN:TEST[:STEP] in days, got {args.walk_forward!r}"
            )
        raw["walk_forward"] = {"train_days": nums[0], "test_days": nums[1],
                               "step_days": nums[-1] if len(nums) == 3 else nums[1],
                               "anchored": bool(args.anchored)}  # fmt: skip
    if args.holdout_split:
        raw["holdout"] = {"split": args.holdout_split}
    if args.select_by:
        raw["select_by"] = args.select_by
    if not raw:
        return spec
    over = parse_validation(raw, "command line", "net_pnl")
    wf: WalkForward | None = over.walk_forward or spec.walk_forward
    return dataclasses.replace(
        spec,
        walk_forward=wf,
        holdout=over.holdout or spec.holdout,
        select_by=over.select_by or spec.select_by,
    )


def cmd_export(args: argparse.Namespace) -> int:
    from at_core.errors import ConfigError
    from at_core.grid.validation import row_statistics

    if not (args.csv or args.returns):
        raise ConfigError("grid export: give --csv FILE, --returns FILE or both")
    store = ResultStore(db_dir_from_args(args))
    if args.csv:
        n = store.export_csv(args.run_id, args.csv, extra=row_statistics(store, args.run_id))
        print(f"wrote {n} rows to {args.csv}")
    if args.returns:
        days, combos = store.export_returns(args.run_id, args.returns)
        print(
            f"wrote the daily returns of {combos} combinations over {days} days to {args.returns}"
        )
    return 0


def cmd_sensitivity(args: argparse.Namespace) -> int:
    from at_core.config import REPO_ROOT
    from at_core.grid.main import run as run_grid
    from at_core.grid.report import sensitivity_report

    if not args.grid:
        args.grid = str(REPO_ROOT / "configs" / "grid" / "sensitivity.yaml")
    rc = run_grid(args)
    if rc:
        return rc
    db_dir = db_dir_from_args(args).resolve()
    out_dir = db_dir / "reports" / f"sensitivity-{args.run_id}"
    tables = sensitivity_report(db_dir, args.run_id, out_dir)
    print("\nSPEC §21.3 sensitivity (median net_pnl per value over all other keys):")
    for key, tab in tables.items():
        print(f"  {key:<22} " + "  ".join(f"{r['value']}: {r['median']:.1f}" for r in tab))
    print(f"report: {out_dir / 'sensitivity.md'} and {out_dir / 'sensitivity.png'}")
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "grid",
        help="parameter sweeps: run, list, show, export, sensitivity",
        description=(
            "Run parameter sweeps (a local Ray or a cluster, tracked in SQLite and MLflow), "
            "and browse, export and plot their results stored in execution.db."
        ),
    )
    gsub = p.add_subparsers(dest="grid_command", metavar="GRID_COMMAND")
    gsub.required = True
    q = gsub.add_parser(
        "run",
        parents=[common],
        help="run (or resume) a sweep",
        description="Run a grid file on a local Ray (default) or a cluster (RAY_ADDRESS / --ray-address); "
        "--config names the base config, --grid the sweep.",
    )
    from at_core.grid.main import add_run_arguments
    from at_core.grid.main import run as run_grid

    add_run_arguments(q, config_alias=False)
    q.set_defaults(func=run_grid)
    q = gsub.add_parser(
        "sensitivity",
        parents=[common],
        help="SPEC §21.3 backtest validation sweep with a report (table + plot)",
        description="Run configs/grid/sensitivity.yaml (alpha_bin, accept_outside_k, risk_pct, 0 vs 1 tick "
        "slippage, taker vs maker entries) and write sensitivity.md and sensitivity.png.",
    )
    add_run_arguments(q, config_alias=False)
    for a in q._actions:
        if a.dest == "grid":
            a.required = False
            a.default = None
    q.set_defaults(func=cmd_sensitivity)
    q = gsub.add_parser(
        "list",
        parents=[common],
        help="list sweeps",
        description="List every sweep with its status and result count.",
    )
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_list)
    q = gsub.add_parser(
        "show",
        parents=[common],
        help="top N combinations of a sweep",
        description="Show the best combinations of a sweep, sorted by a metric.",
    )
    q.add_argument("run_id")
    q.add_argument("--top", type=int, default=10)
    q.add_argument("--sort", default=None, help="metric to sort by (default: the grid's metric)")
    q.add_argument("--mode", choices=["max", "min"], default=None)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_show)
    q = gsub.add_parser(
        "validate",
        parents=[common],
        help="how much of a sweep winner's edge is real: deflated Sharpe, PBO",
        description="Deflated and probabilistic Sharpe of every combination (with the effective "
        "number of independent trials), PBO by purged CSCV, minimum track record; from the "
        "combinations' stored daily returns. Prints a table, writes plots under "
        "DATABASE_DIR/reports, keeps the summary in execution.db and logs it to the sweep's "
        "MLflow run.",
    )
    q.add_argument("run_id")
    q.add_argument(
        "--blocks", type=int, default=None,
        help="CSCV blocks S (even; default validation_cscv_blocks, fewer if the history is short)",
    )  # fmt: skip
    q.add_argument(
        "--embargo-minutes", type=int, default=None,
        help="purge after each boundary (default and minimum: the longest feature window or "
        "time stop of any combination), rounded up to whole days",
    )  # fmt: skip
    q.add_argument(
        "--walk-forward", default=None, metavar="TRAIN:TEST[:STEP]",
        help="walk-forward windows in days (default: the grid file's validation section)",
    )  # fmt: skip
    q.add_argument("--anchored", action="store_true", help="walk-forward training from day 1")
    q.add_argument("--holdout-split", default=None, metavar="YYYY-MM-DD",
                   help="hold-out: in sample before this day, out of sample from it + embargo")  # fmt: skip
    q.add_argument("--select-by", choices=["return", "sharpe"], default=None,
                   help="what windows choose by (default: by the grid's metric)")  # fmt: skip
    q.add_argument("--heat-map", default=None, metavar="KEY1,KEY2",
                   help="parameter-stability heat map over these two swept keys (default: the "
                   "two the metric is most sensitive to around the winner)")  # fmt: skip
    q.add_argument("--confidence", type=float, default=0.95, help="for the minimum track record")
    q.add_argument("--dsr-min", type=float, default=None, help="flag a winner below this DSR")
    q.add_argument("--mlflow-uri", default=None)
    q.add_argument("--no-mlflow", action="store_true")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_validate)
    q = gsub.add_parser(
        "export",
        parents=[common],
        help="export a sweep to CSV",
        description="Write every row of a sweep to CSV (result_id, param.*, metric.* and stat.* "
        "columns) and / or every combination's daily returns (--returns).",
    )
    q.add_argument("run_id")
    q.add_argument("--csv", default=None, help="the combinations: params, metrics, PSR / DSR")
    q.add_argument(
        "--returns", default=None,
        help="the daily returns: a day column and one column per result_id (.parquet or CSV)",
    )  # fmt: skip
    q.set_defaults(func=cmd_export)
