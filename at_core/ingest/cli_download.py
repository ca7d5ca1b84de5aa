"""``auction-trader download``: fetch Bybit's public history (trade + ob500 archives, funding)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from at_core.config import db_dir_from_args, settings_from_args
from at_core.errors import InputError
from at_core.ingest.download import (
    DayReport,
    Fetcher,
    download_bybit,
    download_funding,
    funding_path,
    side_agreement,
)
from at_core.storage.lake import day_start_ms


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from exc


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "download",
        help="download Bybit history (trade + order-book archives, funding rates)",
        description="Download public Bybit history into the lake. Base URLs come from the config "
        "(bybit_archive_base_url, bybit_orderbook_base_url, bybit_rest_base_url).",
    )
    src = p.add_subparsers(dest="source", metavar="SOURCE")
    src.required = True

    dates = argparse.ArgumentParser(add_help=False)
    dates.add_argument("--symbol", help="instrument (default: config 'instrument', BTCUSDT)")
    dates.add_argument(
        "--from", dest="first", type=_date, required=True, metavar="DATE", help="first UTC day"
    )
    dates.add_argument(
        "--to",
        dest="last",
        type=_date,
        required=True,
        metavar="DATE",
        help="last UTC day (inclusive)",
    )
    net = argparse.ArgumentParser(add_help=False)
    net.add_argument(
        "--retries",
        type=int,
        default=4,
        help="retries per file after a failed transfer (default 4)",
    )
    net.add_argument(
        "--timeout", type=float, default=60.0, help="network timeout in seconds (default 60)"
    )

    b = src.add_parser(
        "bybit",
        parents=[common, dates, net],
        help="daily trade archives + ob500 order-book archives, imported day by day",
        description="For each UTC day: download <SYM><date>.csv.gz (trades, taker side) and "
        "<date>_<SYM>_ob500.data.zip (order book), resuming partial downloads and retrying with "
        "backoff; check gzip/zip integrity; then import both (the order book becomes L1 quotes, "
        "streamed in bounded memory). Days already imported are skipped unless --force. "
        "Downloaded files go to <db-dir>/downloads/bybit and are deleted after a successful "
        "import unless --keep-files.",
    )
    b.add_argument("--force", action="store_true", help="download and import days already imported")
    b.add_argument(
        "--keep-files", action="store_true", help="keep the archives after importing them"
    )
    b.add_argument(
        "--no-orderbook", action="store_true", help="trades only (no quotes: no side inference)"
    )
    b.add_argument(
        "--download-dir",
        metavar="DIR",
        help="where archives are stored (default <db-dir>/downloads/bybit)",
    )
    b.add_argument(
        "--on-error",
        choices=["stop", "skip"],
        default="stop",
        help="a file with bad rows or book anomalies: stop = import nothing of it (default); "
        "skip = import the rest and write the rejects to <db-dir>/rejects/",
    )
    b.set_defaults(func=run_bybit)

    f = src.add_parser(
        "bybit-funding",
        parents=[common, dates, net],
        help="funding-rate history (GET /v5/market/funding/history)",
        description="Store the real funding rates of the days into <db-dir>/lake/funding/<SYM>.parquet "
        "(merged with what is there). Backtests use them with --set funding_source=history.",
    )
    f.set_defaults(func=run_funding)


def _fetcher(args: argparse.Namespace) -> Fetcher:
    if args.retries < 0:
        raise InputError("--retries must be >= 0")
    return Fetcher(retries=args.retries, timeout_s=args.timeout)


def run_bybit(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    db_dir = db_dir_from_args(args)
    symbol = args.symbol or settings.instrument
    fetcher = _fetcher(args)
    try:
        reports: list[DayReport] = download_bybit(
            db_dir,
            symbol,
            args.first,
            args.last,
            archive_url=settings.bybit_archive_base_url,
            orderbook_url=settings.bybit_orderbook_base_url,
            orderbook=not args.no_orderbook,
            force=args.force,
            keep_files=args.keep_files,
            on_error=args.on_error,
            download_dir=args.download_dir,
            fetcher=fetcher,
            echo=print,
        )
    finally:
        fetcher.close()
    counts: dict[str, int] = {}
    for r in reports:
        counts[r.status] = counts.get(r.status, 0) + 1
    trades = sum(r.trades for r in reports)
    quotes = sum(r.quotes for r in reports)
    print(
        f"total: {len(reports)} day(s) "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + f"; trades {trades:,}, quotes {quotes:,}"
    )
    done = [r for r in reports if r.status == "imported"]
    if done and not args.no_orderbook:
        lo = day_start_ms(done[0].day)
        hi = day_start_ms(done[-1].day) + 86_400_000
        print(side_agreement(db_dir, lo, hi).summary())
    bad = [r for r in reports if r.status in ("missing", "failed")]
    if bad:
        print(
            f"{len(bad)} day(s) not imported: {', '.join(str(r.day) for r in bad)}", file=sys.stderr
        )
        return 1
    return 0


def run_funding(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    db_dir = db_dir_from_args(args)
    symbol = args.symbol or settings.instrument
    fetcher = _fetcher(args)
    try:
        got, total = download_funding(
            db_dir,
            symbol,
            args.first,
            args.last,
            rest_url=settings.bybit_rest_base_url,
            fetcher=fetcher,
        )
    finally:
        fetcher.close()
    print(
        f"funding {symbol} {args.first}..{args.last}: {got} rate(s) fetched; "
        f"{total} stored in {funding_path(db_dir, symbol)}"
    )
    return 0
