"""``auction-trader simulate``: the loopback Bybit v5 exchange for demos, manual work and
tests. It prints the URLs and a key pair; point pybit (or ``at_core.exchange.adapter``) at
them. Stop it with Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
from pathlib import Path
from typing import Any

from at_core.config import db_dir_from_args
from at_core.errors import InputError
from at_core.exchange import market
from at_core.exchange.app import serve, urls
from at_core.exchange.instrument import Instrument
from at_core.exchange.server import Settings, Simulator
from at_core.exchange.venue import Venue
from at_core.features.cli import parse_time

DAY_MS = 86_400_000


def build(args: argparse.Namespace) -> Simulator:
    inst = Instrument()
    if args.speed < 0:
        raise InputError(f"--speed {args.speed}: must be >= 0 (0 = as fast as possible)")
    for flag, value in (("--balance", args.balance), ("--leverage", args.leverage)):
        if value <= 0:
            raise InputError(f"{flag} {value}: must be positive")
    if args.seed is not None:
        start = parse_time(args.from_, end=False, flag="--from") if args.from_ else _default_start()
        end = parse_time(args.to, end=True, flag="--to") + 1 if args.to else start + DAY_MS
        events = market.from_generator(args.seed, start, end, inst)
    else:
        if not args.from_ or not args.to:
            raise InputError(
                "simulate: --from and --to are required to replay the lake (or give --seed)"
            )
        start = parse_time(args.from_, end=False, flag="--from")
        end = parse_time(args.to, end=True, flag="--to") + 1
        events = market.from_lake(db_dir_from_args(args), start, end, inst)
    venue = Venue(
        inst=inst,
        balance=args.balance,
        maker_fee=args.maker_fee_bps / 1e4,
        taker_fee=args.taker_fee_bps / 1e4,
        funding_rate=args.funding_rate,
        leverage=args.leverage,
        arrival=args.arrival,
    )
    settings = Settings(speed=args.speed, paused=args.paused, port=args.port)
    settings.api_key = args.api_key or os.environ.get("AT_SIM_API_KEY") or settings.api_key
    settings.api_secret = (
        args.api_secret or os.environ.get("AT_SIM_API_SECRET") or settings.api_secret
    )
    settings.log_file = Path(args.log_file) if args.log_file else None
    settings.skew_ms = args.skew_ms
    if args.order_rate_limit < 1:
        raise InputError(f"--order-rate-limit {args.order_rate_limit}: must be >= 1")
    settings.order_rate_limit = args.order_rate_limit
    return Simulator(events, venue, settings)


def _default_start() -> int:
    return int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)


def run(args: argparse.Namespace) -> int:
    sim = build(args)

    def ready(s: Simulator) -> None:
        info = urls(s)
        if args.ready_file:
            tmp = Path(args.ready_file + ".tmp")
            tmp.write_text(json.dumps(info))
            tmp.replace(args.ready_file)
        _print_ready(info, len(s.m), s.m.n_trades(), args.speed)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = loop.create_task(serve(sim, ready))
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    return 0


def _print_ready(info: dict[str, Any], events: int, trades: int, speed: float) -> None:
    span = f"{_iso(info['first_ms'])} .. {_iso(info['last_ms'])}"
    pace = "as fast as possible" if speed == 0 else f"{speed:g}x"
    print(f"simulated Bybit v5 exchange (BTCUSDT linear) on 127.0.0.1:{info['port']}")
    print(f"  market    {info['market']}: {events:,} events ({trades:,} trades), {span}, at {pace}")
    print(f"  REST      {info['rest']}")
    print(f"  public    {info['ws_public']}")
    print(f"  private   {info['ws_private']}")
    print(f"  api key   {info['api_key']}")
    print(f"  secret    {info['api_secret']}")
    print(f"  control   {info['rest']}/_sim/state  (header X-Sim-Token: {info['control_token']})")
    print("Ctrl-C stops it.", flush=True)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "simulate",
        parents=[common],
        help="run the loopback Bybit v5 exchange (REST + WebSockets) on a replayed market",
        description=(
            "A Bybit v5 exchange on 127.0.0.1 for the unmodified pybit client: public and "
            "private REST (signed), public and private WebSockets, order matching on a "
            "replayed market (the lake's trades and quotes between --from and --to, or the "
            "generator with --seed), fees, funding, and faults on command (POST /_sim/fault)."
        ),
    )
    p.add_argument(
        "--from", dest="from_", metavar="T", help="first instant to replay (epoch ms or ISO, UTC)"
    )
    p.add_argument("--to", metavar="T", help="last instant to replay (a date means its end)")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="replay the synthetic generator of this seed instead of the lake",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="market seconds per wall second (default 1; 0 = as fast as possible)",
    )
    p.add_argument(
        "--paused", action="store_true", help="start paused (advance with POST /_sim/clock)"
    )
    p.add_argument(
        "--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: a free one)"
    )
    p.add_argument(
        "--api-key",
        default=None,
        help="API key to accept (default: env AT_SIM_API_KEY or a random one)",
    )
    p.add_argument(
        "--api-secret", default=None, help="API secret (default: env AT_SIM_API_SECRET or random)"
    )
    p.add_argument(
        "--balance",
        type=float,
        default=10_000.0,
        help="starting USDT wallet balance (default 10000)",
    )
    p.add_argument("--leverage", type=int, default=10, help="starting leverage (default 10)")
    p.add_argument(
        "--maker-fee-bps",
        type=float,
        default=2.0,
        help="maker fee in bps (default 2.0, Bybit non-VIP)",
    )
    p.add_argument(
        "--taker-fee-bps",
        type=float,
        default=5.5,
        help="taker fee in bps (default 5.5, Bybit non-VIP)",
    )
    p.add_argument(
        "--funding-rate", type=float, default=0.0001, help="funding rate per 8 h (default 0.0001)"
    )
    p.add_argument(
        "--arrival",
        choices=("next_quote", "immediate"),
        default="next_quote",
        help="an order meets the first quote after it was sent (default; the backtester's fill reference) or the book it was sent into",
    )
    p.add_argument(
        "--order-rate-limit",
        type=int,
        default=10,
        help="order requests per second before 10006 (default 10, Bybit's)",
    )
    p.add_argument(
        "--skew-ms", type=int, default=0, help="shift the server's wall clock (tests of 10002)"
    )
    p.add_argument("--log-file", default=None, help="append the fault log here (JSON lines)")
    p.add_argument(
        "--ready-file", default=None, help="write the URLs and keys here as JSON once listening"
    )
    p.set_defaults(func=run)
