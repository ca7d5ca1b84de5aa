"""Simulated exchange benchmarks (issue 11).

1. Public messages per second delivered to one unmodified pybit subscriber
   (``publicTrade`` + ``orderbook.1``, the collector's topics), the simulator replaying the
   generator's market as fast as possible, in its own process. Target >= 20,000 messages/s,
   and over 10x the busiest second of real BTCUSDT trades + L1 quotes in ``../shared/data``
   (measured here: the ratio is against 10x that peak).
2. Order round trip through pybit on loopback: market order create -> REST ack -> WS
   execution, ``--arrival immediate`` (the order meets the book it was sent into, so the
   figure is the system's own latency, not the wait for the next replayed quote). p50/p99;
   target p99 <= 5 ms on a quiet machine. Baseline: the bare REST round trip of
   ``/v5/market/time`` in the same run.
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from at_core.exchange.client import http_session
from at_core.exchange.testing import SimProcess

DATA = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance_usdm_btcusdt" / "csv"
)
MARKET = ("--seed", "7", "--from", "2024-01-01T00:00", "--to", "2024-01-01T12:00")


def peak_second() -> tuple[int, str]:
    """The busiest wall second (trades + L1 quotes) in the real captures."""
    best, where = 0, "no data (../shared/data absent)"
    for trades in sorted(DATA.glob("*_trades.csv")):
        quotes = trades.with_name(trades.name.replace("_trades", "_bookticker"))
        t = np.loadtxt(trades, delimiter=",", skiprows=1, usecols=1, dtype=np.int64)
        q = np.loadtxt(quotes, delimiter=",", skiprows=1, usecols=1, dtype=np.int64)
        secs, counts = np.unique(np.concatenate([t, q]) // 1000, return_counts=True)
        i = int(np.argmax(counts))
        if counts[i] > best:
            best, where = int(counts[i]), f"{trades.name.split('_')[2]} second {secs[i]}"
    return best, where


def throughput(seconds: float = 10.0) -> tuple[float, int]:
    with SimProcess(*MARKET, "--paused") as sim:
        n = [0]

        def count(_m: dict[str, Any]) -> None:
            n[0] += 1

        ws = sim.public_ws(count)
        ws.trade_stream("BTCUSDT", lambda m: None)
        ws.orderbook_stream(1, "BTCUSDT", lambda m: None)
        time.sleep(0.5)
        sim.resume(speed=0)
        time.sleep(1.0)  # warm
        c0, t0 = n[0], time.perf_counter()
        time.sleep(seconds)
        c1, t1 = n[0], time.perf_counter()
        ws.exit()
        return (c1 - c0) / (t1 - t0), c1


def round_trip(orders: int = 400) -> tuple[list[float], list[float], list[float]]:
    with SimProcess(
        *MARKET,
        "--paused",
        "--arrival",
        "immediate",
        "--balance",
        "1000000",
        "--order-rate-limit",
        "100000",
    ) as sim:
        sim.advance(int(sim.info["first_ms"]) + 60_000)
        http = http_session(sim.rest, sim.api_key, sim.api_secret)
        seen: dict[str, float] = {}
        cond = threading.Condition()

        def on_msg(m: dict[str, Any]) -> None:
            if m.get("topic") == "execution":
                with cond:
                    for e in m["data"]:
                        seen.setdefault(e["orderLinkId"], time.perf_counter())
                    cond.notify_all()

        ws = sim.private_ws(on_msg)
        ws.execution_stream(lambda m: None)
        time.sleep(0.5)
        base = []
        for _ in range(orders):
            t0 = time.perf_counter()
            http.get_server_time()
            base.append(time.perf_counter() - t0)
        acks, fills = [], []
        for i in range(orders):
            link = f"rt-{i}"
            t0 = time.perf_counter()
            http.place_order(
                category="linear",
                symbol="BTCUSDT",
                side="Buy" if i % 2 == 0 else "Sell",
                orderType="Market",
                qty="0.001",
                orderLinkId=link,
            )
            acks.append(time.perf_counter() - t0)
            with cond:
                cond.wait_for(lambda link=link: link in seen, timeout=5)
            fills.append(seen[link] - t0)
        ws.exit()
        return base, acks, fills


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs) * 1000, q))


def run() -> list[dict[str, Any]]:
    peak, where = peak_second()
    rate, total = throughput()
    base, acks, fills = round_trip()
    target = max(20_000, 10 * peak)
    return [
        {
            "name": "exchange.public_msgs_per_s",
            "value": rate,
            "unit": "messages/s",
            "baseline": 10 * peak,
            "ratio": rate / (10 * peak) if peak else None,
            "note": f"one pybit subscriber (publicTrade + orderbook.1), generator market as fast as possible, "
            f"{total:,} messages; baseline = 10x the busiest real second ({peak:,} trades + quotes, {where}); "
            f"target >= {target:,} messages/s",
        },
        {
            "name": "exchange.order_round_trip_p99_ms",
            "value": _pct(fills, 99),
            "unit": "ms",
            "baseline": _pct(base, 99),
            "ratio": _pct(fills, 99) / _pct(base, 99),
            "note": f"{len(fills)} market orders through pybit: create -> REST ack -> WS execution; "
            f"p50 {_pct(fills, 50):.2f} ms, p99 {_pct(fills, 99):.2f} ms; REST ack p50 {_pct(acks, 50):.2f} ms "
            f"p99 {_pct(acks, 99):.2f} ms; baseline = GET /v5/market/time p99 ({_pct(base, 50):.2f} ms p50); "
            f"mean fill {statistics.mean(fills) * 1000:.2f} ms; target p99 <= 5 ms",
        },
    ]


if __name__ == "__main__":
    for r in run():
        print(r)
