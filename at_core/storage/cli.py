"""Store commands: ``init``, ``status``, ``sql`` (read-only ad-hoc DuckDB) and ``purge``."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from typing import Any

from at_core.config import db_dir_from_args
from at_core.storage.lake import KINDS, Lake
from at_core.storage.query import run_query
from at_core.storage.retention import purge_raw
from at_core.storage.stores import init_stores


def _jsonable(v: Any) -> Any:
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    return v


def cmd_sql(args: argparse.Namespace) -> int:
    cols, rows = run_query(db_dir_from_args(args), args.query)
    if args.json:
        json.dump(
            [{c: _jsonable(v) for c, v in zip(cols, r, strict=True)} for r in rows], sys.stdout
        )
        sys.stdout.write("\n")
    else:
        w = csv.writer(sys.stdout, lineterminator="\n")
        if cols:
            w.writerow(cols)
        w.writerows(rows)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    paths = init_stores(db_dir_from_args(args))
    print(f"stores ready in {paths.root}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    db_dir = db_dir_from_args(args)
    lake = Lake(db_dir)
    out: dict[str, Any] = {"db_dir": str(db_dir), "lake": {}, "tables": {}}
    for kind in KINDS:
        days = lake.days(kind)
        out["lake"][kind] = {
            "days": len(days),
            "first": str(days[0]) if days else None,
            "last": str(days[-1]) if days else None,
        }
    for table in ("raw_trades", "raw_quotes", "bars_1m", "features_1m"):
        ts = "ts_min" if table in ("bars_1m", "features_1m") else "ts_ms"
        _, rows = run_query(db_dir, f"SELECT count(*), min({ts}), max({ts}) FROM {table}")
        n, lo, hi = rows[0]
        out["tables"][table] = {"rows": n, "from_ms": lo, "to_ms": hi}
    out["imports"] = lake.imports()
    if args.json:
        print(json.dumps(out, default=str))
        return 0
    print(f"DATABASE_DIR {db_dir}")
    for kind, info in out["lake"].items():
        span = f" ({info['first']} .. {info['last']})" if info["days"] else ""
        print(f"  lake {kind:<7} {info['days']:>12,} days{span}")
    for table, info in out["tables"].items():
        rng = ""
        if info["from_ms"] is not None:
            lo = dt.datetime.fromtimestamp(info["from_ms"] / 1000, tz=dt.UTC).strftime(
                "%Y-%m-%d %H:%M"
            )
            hi = dt.datetime.fromtimestamp(info["to_ms"] / 1000, tz=dt.UTC).strftime(
                "%Y-%m-%d %H:%M"
            )
            rng = f"  {lo} -> {hi} UTC"
        print(f"  {table:<12} {info['rows']:>12,} rows{rng}")
    print(f"  sources: {len(out['imports'])} (what --json lists; `sources list` as a table)")
    from at_core.ingest.cli_sources import print_list

    print_list(lake.sources.all())
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    rep = purge_raw(
        db_dir_from_args(args),
        keep_hours=args.keep_hours,
        now_ms=args.now_ms,
        archive=not args.no_archive,
    )
    print(
        json.dumps(
            {
                "cutoff_ms": rep.cutoff_ms,
                "archived": rep.archived,
                "deleted": rep.deleted,
                "kept": rep.kept,
            }
        )
    )
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "init",
        parents=[common],
        help="create the four stores (idempotent)",
        description="Create raw.duckdb, features.duckdb, signals.db and execution.db in DATABASE_DIR (safe to repeat).",
    )
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "status",
        parents=[common],
        help="what is stored",
        description="Row counts and time ranges of every table, lake days and recorded imports.",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "sql",
        parents=[common],
        help="read-only ad-hoc DuckDB query over the stores",
        description="Run a read-only DuckDB query in which raw_trades, raw_quotes (lake + live buffer), "
        "bars_1m and features_1m are visible; prints CSV (or JSON with --json).",
    )
    p.add_argument("query", help='SQL, e.g. "SELECT count(*) FROM raw_trades"')
    p.add_argument(
        "--json", action="store_true", help="print a JSON array of objects instead of CSV"
    )
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser(
        "purge",
        parents=[common],
        help="48 h retention of raw.duckdb (archives to the lake first)",
        description="Move raw.duckdb rows older than --keep-hours into the Parquet lake, then delete them from raw.duckdb.",
    )
    p.add_argument("--keep-hours", type=float, default=48.0, help="retention horizon (default 48)")
    p.add_argument(
        "--now-ms", type=int, default=None, help="reference time in epoch ms (default: now)"
    )
    p.add_argument(
        "--no-archive", action="store_true", help="delete without archiving (history is lost)"
    )
    p.set_defaults(func=cmd_purge)
