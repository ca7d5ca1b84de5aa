"""The live graph on loopback: the collector's sustained rate with the features and
signals actors keeping up, and minute close -> order request on the wire in live mode.

A generated market (seed 1) is replayed by the simulator from the end of a warm-up loaded
from the lake. Rate: flat out, in paper mode; baseline, measured in the same run: the same
feed pushed to one bare pybit subscriber that only counts messages (what the simulator can
deliver on this machine); the ratio is the graph's rate over it. Latency: live mode at 30x
(about 2,000 messages/s); for each order the graph sends, the wall time from the
collector's release of the rows that closed the decided minute to the request leaving the
adapter, and for every minute the same path to the execution actor, hop by hop.
Targets: >= 20,000 messages/s, p99 <= 10 ms.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from at_core.config import load_settings
from at_core.exchange.testing import SimProcess
from at_core.ingest.synthetic import generate_market
from at_core.live import deploy
from at_core.live.demo import DEMO_SETTINGS, T0
from at_core.live.soak import sim_control

M = 60_000
FEED = (T0 + 240 * M, T0 + 300 * M)
#: latency in live mode: 180 minutes replayed at 30x (~2,000 messages/s, a busy real market)
LATENCY_FEED, LATENCY_SPEED = (T0 + 240 * M, T0 + 420 * M), 30.0
#: the demo's permissive entries with short holds: many orders, for a p99 worth the name
LATENCY_SETTINGS = {**DEMO_SETTINGS, "max_hold_minutes": 2, "cooldown_minutes": 1}
SIM_FEES = ["--maker-fee-bps", "-1", "--taker-fee-bps", "5", "--balance", "30000"]
HOP_NOTE = (
    "collector_store = the rows written and synced to the journal before they are sent "
    "(store-then-send; the DuckDB commit follows the send); "
    "to_signals / signals_to_execution = Ray actor calls; signals = the work (the "
    "driver's features and the kernel)"
)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _sim_args(lake: Path, feed: tuple[int, int] = FEED) -> list[str]:
    return ["--db-dir", str(lake), "--from", _iso(feed[0]), "--to", _iso(feed[1] - 1), "--paused"]


def bare_rate(lake: Path) -> tuple[float, int]:
    with SimProcess(*_sim_args(lake)) as sim:
        n = [0]
        last = [0.0]

        def count(_m: dict[str, Any]) -> None:
            n[0] += 1
            last[0] = time.perf_counter()

        ws = sim.public_ws(count)
        ws.trade_stream("BTCUSDT", lambda m: None)
        ws.orderbook_stream(1, "BTCUSDT", lambda m: None)
        time.sleep(1.0)
        n0 = n[0]
        t0 = time.perf_counter()
        sim.resume(speed=0)
        while time.perf_counter() - max(last[0], t0) < 2.0:
            time.sleep(0.2)
        ws.exit()
        return (n[0] - n0) / (last[0] - t0), n[0] - n0


def _run_graph(
    lake: Path,
    db: Path,
    mode: str,
    feed: tuple[int, int],
    speed: float,
    sim_extra: list[str],
    poll_s: float = 0.5,
    settings: dict[str, Any] = DEMO_SETTINGS,
) -> tuple[float, int, dict[str, Any]]:
    """Start the graph on the simulator, replay ``feed`` at ``speed`` (0 = flat out) until
    every actor has caught up; the collector's message rate and the execution's status.
    ``poll_s``: how often the status is asked (each ask queues a call at every actor)."""
    deploy.start(
        mode,
        db,
        load_settings(overrides=settings),
        simulator=[*_sim_args(lake, feed), *sim_extra],
        warm_from=lake,
        warm_until=feed[0],
    )
    try:
        deploy.call(db, "activate", confirm_live=mode == "live")
        m0 = deploy.call(db, "status")["workers"]["collector"]["messages"]
        t0 = time.perf_counter()
        sim_control(db, "clock", action="resume", speed=speed)
        prev, t_last, m_last = -1, t0, m0
        while True:
            st = deploy.call(db, "status")
            w = st["workers"]
            c = w["collector"]
            if c["rows"] != prev:  # a book re-sent unchanged is a message, not a row
                prev, t_last, m_last = c["rows"], time.perf_counter(), c["messages"]
            caught_up = w["signals"]["cursor"] == c["cursor"] == w["features"]["cursor"]
            if time.perf_counter() - t_last > max(2.0, 2 * poll_s) and caught_up:
                break
            time.sleep(poll_s)
        msgs = m_last - m0
        return msgs / (t_last - t0), msgs, w["execution"]
    finally:
        deploy.stop(db)


def _hops(ex: dict[str, Any]) -> str:
    return ", ".join(f"{h} {v['p50']}/{v['p99']}" for h, v in ex["hops_ms"].items())


def run() -> list[dict[str, Any]]:
    root = Path(tempfile.mkdtemp(prefix="bench-live-"))
    try:
        lake = root / "lake"
        generate_market(lake, days=1, seed=1, progress=False)
        base, n_base = bare_rate(lake)
        rate, n, _ = _run_graph(lake, root / "rate", "paper", FEED, 0, [])
        _, n_lat, ex = _run_graph(
            lake, root / "latency", "live", LATENCY_FEED, LATENCY_SPEED, SIM_FEES, poll_s=5.0,
            settings=LATENCY_SETTINGS,
        )  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    close, wire = ex["close_to_execution_ms"], ex["exchange"]["release_to_send_ms"]
    return [
        {
            "name": "live.collector_msgs_per_s",
            "value": rate,
            "unit": "messages/s",
            "baseline": base,
            "ratio": rate / base,
            "note": f"{n:,} public messages (publicTrade + orderbook.1) flat out through collector "
            f"-> raw.duckdb -> signals and features, all caught up (paper); baseline = the same "
            f"feed to one bare pybit subscriber ({n_base:,} messages, {base:,.0f}/s); "
            "target >= 20,000 messages/s",
        },
        {
            "name": "live.minute_close_to_order_on_wire_p99_ms",
            "value": wire["p99"],
            "unit": "ms",
            "baseline": close["p50"],
            "ratio": None if not wire["p99"] else wire["p99"] / max(close["p50"], 1e-9),
            "note": f"live mode on the simulator, {n_lat:,} messages at {LATENCY_SPEED:g}x: "
            f"{wire['n']} orders, release of the rows closing the minute -> the order request "
            f"leaving the adapter p50 {wire['p50']} / p99 {wire['p99']} ms; every minute "
            f"({close['n']}) release -> decision at the execution actor p50 {close['p50']} / "
            f"p99 {close['p99']} ms (baseline column = that p50); per hop p50/p99: {_hops(ex)} "
            f"({HOP_NOTE}); target p99 <= 10 ms",
        },
    ]


if __name__ == "__main__":
    for r in run():
        print(r)
