"""``auction-trader generate``: the seeded synthetic market into the tick lake."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from at_core.config import db_dir_from_args
from at_core.errors import InputError
from at_core.ingest.synthetic import (
    DEFAULT_SEED,
    DEFAULT_START,
    MAX_ACTIVITY,
    MAX_DAYS,
    generate_market,
)


def _date(s: str) -> dt.date:
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {s!r}") from None


def run(args: argparse.Namespace) -> int:
    if args.days < 1 or args.days > MAX_DAYS:
        raise InputError(f"--days must be in 1..{MAX_DAYS}, got {args.days}")
    summary = generate_market(
        db_dir_from_args(args),
        args.days,
        args.seed,
        args.start,
        force=args.force,
        activity=args.activity,
        accept_prob=args.accept_prob,
    )
    if args.json:
        json.dump(summary, sys.stdout)
        sys.stdout.write("\n")
        return 0
    _print_summary(summary)
    return 0


def _print_summary(s: dict[str, Any]) -> None:
    print(
        f"generated {s['days']} day(s) {s['start']} .. {s['end']} (exclusive) as {s['source_id']}"
    )
    busier = f" (activity {s['activity']:g})" if s["activity"] != 1.0 else ""
    print(f"  trades {s['trades']:,}  quotes {s['quotes']:,}{busier}  in {s['seconds']:.1f} s")
    if s["price_min"] is not None:
        print(f"  price range {s['price_min']:.1f} .. {s['price_max']:.1f}")
    for r in s["per_day"]:
        if r["open"] is None:
            continue
        print(
            f"  {r['date']}  O {r['open']:.1f}  H {r['high']:.1f}  L {r['low']:.1f}  C {r['close']:.1f}"
            f"  trades {r['trades']:,}  quotes {r['quotes']:,}"
        )
    if s["removed_parts"]:
        sources = sorted({p["source_id"] for p in s["removed_parts"]})
        print(
            f"  --force removed {len(s['removed_parts'])} part(s) of {', '.join(sources)} on the generated days"
        )


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "generate",
        parents=[common],
        help="write the seeded synthetic BTCUSDT market (trades + L1 quotes) into the lake",
        description=(
            "Deterministic synthetic BTCUSDT perpetual market: the same --seed and --start give "
            "the same bytes. Bursty trades with the exchange aggressor side, L1 quotes (the "
            "quote a trade causes carries the trade's millisecond), prices on the 0.10 grid, "
            "and an Auction-Market-Theory price path (balance, accepted and failed breakouts). "
            "Written day by day into <db-dir>/lake; re-running replaces, never duplicates."
        ),
    )
    p.add_argument("--days", type=int, default=1, help="number of UTC days (default 1)")
    p.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"generator seed (default {DEFAULT_SEED})"
    )
    p.add_argument(
        "--start",
        type=_date,
        default=None,
        help=f"first UTC day YYYY-MM-DD (default {DEFAULT_START.isoformat()}, so output is reproducible)",
    )
    p.add_argument(
        "--activity",
        type=float,
        default=1.0,
        metavar="K",
        help=(
            "scale the order flow and quote rate: ~K times the trades and quotes of the "
            "calibrated market (default 1: ~6.5 M events/day), same microstructure per event; "
            f"in (0, {MAX_ACTIVITY:g}], e.g. 3.5 for a volatile week of ~150 M trades and quotes. "
            "A market of another activity is another source (id suffix -aK)"
        ),
    )
    p.add_argument(
        "--accept-prob",
        type=float,
        default=None,
        metavar="P",
        help=(
            "share of breakouts the market accepts (default: the calibrated 0.55); a high "
            "value plants a continuation edge, e.g. to check that a sweep's statistics find "
            "an edge that is there. Another source (id suffix -pP)"
        ),
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="remove other sources' data on the generated days instead of refusing",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)
