"""``auction-trader sources list|remove``: what the lake holds, file by file, and undoing
an import (see ``at_core.storage.sources``)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import asdict
from typing import Any

from at_core.config import db_dir_from_args
from at_core.storage.lake import Lake
from at_core.storage.sources import STREAMS, Source, short_id


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


def _row(s: Source) -> list[str]:
    spans = []
    for k in STREAMS:
        r = s.ranges.get(k)
        if s.rows(k):
            spans.append(
                f"{k} {s.rows(k):,} ({_iso(r[0]) if r else '-'} .. {_iso(r[1]) if r else '-'})"
            )
    return [
        short_id(s.source_id),
        s.instrument(),
        s.format,
        "; ".join(spans) or "no rows",
        f"{s.rejected:,}",
        s.path,
    ]


def print_list(sources: list[Source]) -> None:
    if not sources:
        print("the lake holds no source (generate or import data first)")
        return
    head = ["id", "market", "format", "rows (first .. last, UTC)", "rejected", "path"]
    rows = [head, *(_row(s) for s in sources)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])


def run_list(args: argparse.Namespace) -> int:
    sources = Lake(db_dir_from_args(args)).sources.all()
    if args.json:
        print(json.dumps([asdict(s) for s in sources], indent=2))
    else:
        print_list(sources)
    return 0


def run_remove(args: argparse.Namespace) -> int:
    reg = Lake(db_dir_from_args(args)).sources
    targets = [reg.find(prefix) for prefix in args.ids]  # all resolved before anything goes
    for s in targets:
        removed = reg.remove(s.source_id)
        what = ", ".join(f"{n:,} {k}" for k, n in removed.items() if n) or "no rows"
        print(f"removed {s.describe()}: {what}")
    print("stored features no longer match the lake: `features` / `backtest` recompute them")
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "sources",
        help="list the lake's sources (imports, generator runs) or remove one",
        description=(
            "Every import (one file) and every generator run is a source of the lake, with its "
            "market (venue, symbol) and the time range of its trades and quotes. `remove` "
            "deletes a source's rows, to undo a wrong import."
        ),
    )
    ss = p.add_subparsers(dest="sources_cmd", required=True, metavar="{list,remove}")
    lp = ss.add_parser("list", parents=[common], help="one line per source")
    lp.add_argument("--json", action="store_true", help="print JSON instead of a table")
    lp.set_defaults(func=run_list)
    rp = ss.add_parser("remove", parents=[common], help="delete the rows of sources")
    rp.add_argument("ids", nargs="+", metavar="ID", help="source id or a unique prefix of it")
    rp.set_defaults(func=run_remove)
