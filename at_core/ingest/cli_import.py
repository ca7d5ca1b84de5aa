"""``auction-trader import``: load tick files (Bybit, Binance, Tardis, generic CSV) into the lake."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from at_core.config import db_dir_from_args, settings_from_args
from at_core.ingest.formats import FORMAT_HELP, FORMATS
from at_core.ingest.importer import ImportStopped, import_files, parse_mapping


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    formats = "\n".join(f"  {k:<20} {v}" for k, v in FORMAT_HELP.items())
    p = sub.add_parser(
        "import",
        parents=[common],
        help="import trade/quote files into the tick lake",
        description=(
            "Import tick files into <db-dir>/lake. Each file is parsed and validated in full "
            "before anything is stored; a bad row is reported as file:line:field (prices are "
            "checked against the config's tick_size). Re-importing a file does not duplicate "
            "rows (the lake source id is a hash of its content). A store keeps one instrument "
            "(config `instrument`, one venue) and one source per stream and time: a file of "
            "another market, or overlapping another source's trades or quotes, is refused "
            "(--force replaces the other source's rows). See `auction-trader sources`.\n\n"
            f"formats:\n{formats}"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--format",
        "-f",
        required=True,
        choices=list(FORMATS),
        dest="fmt",
        help="input format (see above)",
    )
    p.add_argument(
        "--map",
        dest="mapping",
        metavar="FIELD=COL,...",
        help="csv only: column mapping, e.g. ts=time,price=px,size=qty,side=side "
        "(trades: ts,price,size,side,trade_id,seq; quotes: ts,bid_px,bid_sz,ask_px,ask_sz,seq)",
    )
    p.add_argument(
        "--kind", choices=["trades", "quotes"], help="csv only: what the rows are (default trades)"
    )
    p.add_argument(
        "--ts-unit",
        choices=["s", "ms", "us", "ns", "iso"],
        help="timestamp unit; default: the format's own, or auto-detected for csv",
    )
    p.add_argument(
        "--on-error",
        choices=["stop", "skip"],
        default="stop",
        help="stop: import nothing from a file with a bad row (default); "
        "skip: import the good rows, write the rejects to a file",
    )
    p.add_argument(
        "--rejects",
        metavar="FILE",
        help="where --on-error skip writes rejected rows (default <db-dir>/rejects/<name>.rejects.csv)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="re-import files already imported, and replace the rows of other sources that "
        "hold the same stream (trades / quotes) over the same time (see `sources list`)",
    )
    p.add_argument("--venue", help="csv only: the venue the file comes from (e.g. bybit)")
    p.add_argument(
        "--symbol", help="csv only: the symbol the file holds (checked against `instrument`)"
    )
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="input files (.gz and single-file .zip read transparently)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    db_dir = db_dir_from_args(args)
    try:
        reports = import_files(
            db_dir,
            args.fmt,
            args.files,
            mapping=parse_mapping(args.mapping),
            on_error=args.on_error,
            rejects_path=args.rejects,
            kind=args.kind,
            force=args.force,
            ts_unit=args.ts_unit,
            settings=settings_from_args(args),
            venue=args.venue,
            symbol=args.symbol,
        )
    except ImportStopped as exc:
        for rep in exc.done:
            print(rep.summary())
        print(exc.report.summary(), file=sys.stderr)
        not_tried = args.files[len(exc.done) + 1 :]
        if not_tried:
            print(f"not attempted after the failure: {', '.join(not_tried)}", file=sys.stderr)
        raise
    for rep in reports:
        print(rep.summary())
    total = {k: sum(r.imported.get(k, 0) for r in reports) for k in ("trades", "quotes")}
    rejected = sum(r.rejected_rows for r in reports)
    print(
        f"total: {len(reports)} file(s), trades {total['trades']:,}, quotes {total['quotes']:,}, rejected {rejected:,}"
    )
    return 0
