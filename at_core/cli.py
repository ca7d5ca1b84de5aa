"""The ``auction-trader`` command line.

Each capability registers its own sub-command from its own module (``register(sub,
common)``), so this file only wires them: global options, logging, and the mapping of
``AuctionTraderError`` onto a one-line message and exit status 2 (no traceback for errors a
user can fix; ``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
import sys
from collections.abc import Sequence

import duckdb

from at_core import __version__
from at_core import logging as at_logging
from at_core.errors import AuctionTraderError

# Modules that contribute sub-commands, in help order.
COMMAND_MODULES = [
    "at_core.storage.cli",
    "at_core.ingest.cli_generate",
    "at_core.ingest.cli_import",
    "at_core.ingest.cli_download",
    "at_core.ingest.cli_sources",
    "at_core.features.cli",
    "at_core.backtest.cli",
    "at_core.grid.cli",
    "at_core.exchange.cli_simulate",
    "at_core.live.cli",
    "at_core.dashboard.cli",
    "at_core.demo",
]


def common_parser() -> argparse.ArgumentParser:
    """Options every command accepts: where the stores are and which config to use."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("common options")
    g.add_argument("--db-dir", help="DATABASE_DIR (default: env DATABASE_DIR, .env, or data/)")
    g.add_argument("--config", help="config YAML (default: configs/default.yaml)")
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key (repeatable), e.g. --set alpha_bin=0.3",
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auction-trader",
        description="Auction Market Theory research and trading platform for the Bybit BTCUSDT perpetual.",
    )
    parser.add_argument("--version", action="version", version=f"auction-trader {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    common = common_parser()
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a capability not built yet
            if exc.name and name.startswith(exc.name):
                continue
            raise
        module.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    at_logging.configure(args.log_level)
    try:
        rc = args.func(args)
    except AuctionTraderError as exc:
        if args.debug:
            raise
        print(f"auction-trader {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # the machine said no (permissions, a file where a folder should be, disk full):
        # one line naming the path, not a traceback
        if args.debug:
            raise
        what = exc.strerror or str(exc)
        where = f": {exc.filename}" if exc.filename else ""
        print(f"auction-trader {args.command}: error: {what}{where}", file=sys.stderr)
        return 2
    except (sqlite3.Error, duckdb.Error) as exc:
        # a store the engine could not open or write (a read-only folder, a locked or
        # damaged file): one line naming the data folder, not a traceback
        if args.debug:
            raise
        where = getattr(args, "db_dir", None) or os.environ.get("DATABASE_DIR") or "data/"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"auction-trader {args.command}: error: store in {where}: {first}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"auction-trader {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
