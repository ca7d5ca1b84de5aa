"""``auction-trader features``: compute ``bars_1m`` and ``features_1m`` from the tick lake."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from at_core.config import db_dir_from_args, settings_from_args
from at_core.errors import InputError

if TYPE_CHECKING:
    from at_core.config import Settings
    from at_core.features.pipeline import FeaturesReport


def parse_time(value: str, *, end: bool, flag: str) -> int:
    """Epoch ms, an ISO date (start of day for --from, last ms of the day for --to) or an
    ISO date-time (UTC unless it carries an offset)."""
    v = value.strip()
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
            d = dt.date.fromisoformat(v)
            start = dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
            ms = int(start.timestamp() * 1000)
            return ms + 86_400_000 - 1 if end else ms
        t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{flag}: `{value}` is neither epoch ms nor an ISO date/time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


def print_report(report: FeaturesReport) -> None:
    """Human summary: minutes, the last value area, ambiguous fraction, side agreement."""
    va = report.last_value_area or {}
    amb = report.ambiguous
    agree = report.side_agreement
    print(
        f"features: {report.minutes:,} minutes written ({report.first_minute} .. {report.last_minute}), "
        f"{report.valid_va_minutes:,} with a tradeable value area (after the "
        f"{max(report.config.get('warmup_minutes', 0), report.config.get('rolling_window_minutes', 0))}"
        f"-minute warm-up of each segment, and >= {report.config.get('min_va_bins')} bins)"
    )
    if report.gaps:
        print(
            f"  {report.gaps} data gap(s): {len(report.segments)} segments, no minute invented "
            "between them; each warms up on its own (max_gap_minutes)"
        )
        for s in report.segments:
            print(
                f"    {s['first']} .. {s['last']}: {s['minutes']:,} minutes, "
                f"{s['valid_va_minutes']:,} with a valid value area"
            )
    if va:
        print(
            f"  last value area {va['minute']}: POC {va['poc']} VAL {va['val']} VAH {va['vah']} "
            f"(bin {va['bin_width']}, coverage {va['va_coverage']:.3f}, {va['va_bin_count']} bins, "
            f"valid {va['va_valid']})"
        )
    if amb.get("minutes"):
        print(
            f"  ambiguous trade fraction per minute: mean {amb['mean']:.3f} p50 {amb['p50']:.3f} "
            f"p95 {amb['p95']:.3f} max {amb['max']:.3f} ({amb['share_above_max']:.1%} of minutes above the "
            f"high-ambiguity threshold)"
        )
    if agree.get("quote_rule_compared"):
        print(
            f"  inferred vs exchange side: quote rule agrees on {agree['quote_rule_rate']:.4%} of "
            f"{agree['quote_rule_compared']:,} trades; with the tick rule {agree['final_rate']:.4%} of "
            f"{agree['final_compared']:,}"
        )
    else:
        print("  inferred vs exchange side: no trade carries an exchange side")


def demo_step(db_dir: Path, settings: Settings) -> FeaturesReport:
    """The features step of ``auction-trader demo``."""
    from at_core.features.pipeline import run_features

    report = run_features(db_dir, settings)
    print_report(report)
    return report


def run(args: argparse.Namespace) -> int:
    from at_core.features.pipeline import run_features

    settings = settings_from_args(args)
    frm = parse_time(args.from_, end=False, flag="--from") if args.from_ else None
    to = parse_time(args.to, end=True, flag="--to") if args.to else None
    report = run_features(db_dir_from_args(args), settings, frm, to)
    payload: dict[str, Any] = report.to_json()
    if args.summary_json:
        print(json.dumps(payload, indent=2))
    else:
        print_report(report)
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "features",
        parents=[common],
        help="compute bars_1m and features_1m from the tick lake",
        description="Run the Rust feature engine over the tick lake (from its first day, state carried "
        "across days) and replace the rows of bars_1m / features_1m / features_1m_ext in the range "
        "atomically; stage-1 minute summaries are stored under <db-dir>/stage1/.",
    )
    p.add_argument(
        "--from",
        dest="from_",
        metavar="T",
        help="first minute to write (epoch ms or ISO date/time, UTC)",
    )
    p.add_argument(
        "--to", metavar="T", help="last minute to write, inclusive (a date means its whole day)"
    )
    p.add_argument(
        "--summary-json", action="store_true", help="print a JSON summary instead of text"
    )
    p.set_defaults(func=run)
