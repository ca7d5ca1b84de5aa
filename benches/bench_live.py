"""The live graph on loopback: the collector's sustained rate with the features and
signals actors keeping up, and minute close -> decision at the execution actor.

A generated market (seed 1) is replayed by the simulator as fast as it can from the end of
a warm-up loaded from the lake. Baseline, measured in the same run: the same feed pushed to
one bare pybit subscriber that only counts messages (what the simulator can deliver on this
machine); the ratio is the graph's rate over it. Latency: for every decided minute, the wall
time from the collector's release of the rows that closed it to the execution actor's
receipt of the decision (p50 / p99); targets: >= 20,000 messages/s, p99 <= 10 ms.
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

M = 60_000
FEED = (T0 + 240 * M, T0 + 300 * M)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _sim_args(lake: Path) -> list[str]:
    return ["--db-dir", str(lake), "--from", _iso(FEED[0]), "--to", _iso(FEED[1] - 1), "--paused"]


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


def graph_rate(lake: Path, db: Path) -> tuple[float, int, dict[str, Any]]:
    deploy.start(
        "paper",
        db,
        load_settings(overrides=DEMO_SETTINGS),
        simulator=_sim_args(lake),
        warm_from=lake,
        warm_until=FEED[0],
    )
    try:
        deploy.call(db, "activate")
        from at_core.live.soak import sim_control

        m0 = deploy.call(db, "status")["workers"]["collector"]["messages"]
        t0 = time.perf_counter()
        sim_control(db, "clock", action="resume", speed=0)
        prev, t_last = -1, t0
        while True:
            st = deploy.call(db, "status")
            w = st["workers"]
            c = w["collector"]
            if c["messages"] != prev:
                prev, t_last = c["messages"], time.perf_counter()
            caught_up = w["signals"]["cursor"] == c["cursor"] == w["features"]["cursor"]
            if time.perf_counter() - t_last > 2.0 and caught_up:
                break
            time.sleep(0.5)
        msgs = prev - m0
        return msgs / (t_last - t0), msgs, w["execution"]["close_to_execution_ms"]
    finally:
        deploy.stop(db)


def run() -> list[dict[str, Any]]:
    root = Path(tempfile.mkdtemp(prefix="bench-live-"))
    try:
        lake = root / "lake"
        generate_market(lake, days=1, seed=1, progress=False)
        base, n_base = bare_rate(lake)
        rate, n, lat = graph_rate(lake, root / "live")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return [
        {
            "name": "live.collector_msgs_per_s",
            "value": rate,
            "unit": "messages/s",
            "baseline": base,
            "ratio": rate / base,
            "note": f"{n:,} public messages (publicTrade + orderbook.1) through collector -> raw.duckdb "
            f"-> features -> signals, all caught up; baseline = the same feed to one bare pybit "
            f"subscriber ({n_base:,} messages, {base:,.0f}/s); target >= 20,000 messages/s",
        },
        {
            "name": "live.minute_close_to_execution_p99_ms",
            "value": lat["p99"],
            "unit": "ms",
            "baseline": None,
            "ratio": None,
            "note": f"{lat['n']} minutes: release of the closing rows -> features -> signals (decide) -> "
            f"execution; p50 {lat['p50']} ms, p99 {lat['p99']} ms, during the full-speed replay; target p99 <= 10 ms",
        },
    ]


if __name__ == "__main__":
    for r in run():
        print(r)
