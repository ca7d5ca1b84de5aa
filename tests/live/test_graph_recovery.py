"""Crash recovery of the live graph: ``kill -9`` of every process of its Ray cluster at a
random moment while it trades, then the same ``live start`` again.

After each crash the graph restores from its snapshots, reads back the ticks it stored
after them, records the outage as a gap and goes on. The evidence: at the end, the
decisions and the trades in the stores equal a replay of the stored ticks through the
same driver (no lost or duplicated trade, no lost fill), the outage is in ``feed_gaps``
and its minutes are flagged, and the trade log has no duplicate.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

import duckdb
import pytest

from at_core.config import load_settings
from at_core.live import cluster
from at_core.live.execution_actor import TRADE_COLUMNS
from at_core.live.reference import replay_live
from tests.live.conftest import T0, TRADY, M, cli, drained, sim_control, status, wait

pytestmark = pytest.mark.timeout(900)


def _iso(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _start(db: Path, lake: Path, feed_from: int, feed_to: int) -> None:
    sets = [a for kv in TRADY for a in ("--set", kv)]
    cli(
        "live", "start", "--mode", "paper", "--db-dir", str(db), *sets,
        "--simulator", "--simulator-args",
        f"--db-dir {lake} --from {_iso(feed_from)} --to {_iso(feed_to - 1)} --paused --speed 0",
        "--warm-from-lake", str(lake), "--warm-until", str(feed_from),
    )  # fmt: skip


def test_kill_9_of_the_whole_graph_loses_nothing(lake: Path, graph_dir: Path) -> None:
    rng = random.Random(20261204)
    feed_from, feed_to = T0 + 240 * M, T0 + 300 * M
    _start(graph_dir, lake, feed_from, feed_to)
    cli("live", "activate", "--db-dir", str(graph_dir))
    kills = 0
    for _ in range(5):
        # 2 market minutes per second: the market goes on while the graph is down (a
        # real outage), and most of the hour is left for after the last restart
        sim_control(graph_dir, "clock", action="resume", speed=120)
        time.sleep(rng.uniform(1.0, 3.0))
        before = status(graph_dir)["workers"]["collector"]["rows"]
        time.sleep(rng.uniform(0.0, 0.5))  # kill while ticks flow
        n = cluster.kill_all(graph_dir)
        assert n >= 5, f"only {n} processes of the cluster found"
        kills += 1
        sim_control(graph_dir, "clock", action="pause")
        _start(graph_dir, lake, feed_from, feed_to)  # the same command, as an operator would
        st = status(graph_dir)
        assert st["activated"] and st["permission"] == "allowed", "activation survives a crash"
        assert st["workers"]["collector"]["stored"]["raw_trades"] > 0 and before > 0
    sim_control(graph_dir, "clock", action="resume", speed=0)
    st = wait(drained(graph_dir, feed_to), 300, "the feed to be replayed and taken")
    sig = st["workers"]["signals"]
    cursor, closed = sig["cursor"], sig["closed_through"]
    con = sqlite3.connect(graph_dir / "execution.db")
    live_trades = con.execute(
        f"SELECT {', '.join(TRADE_COLUMNS)} FROM live_trades ORDER BY trade_no"
    ).fetchall()
    positions = con.execute("SELECT count(*) FROM positions").fetchone()
    orders = con.execute(
        "SELECT count(*), count(DISTINCT ts_min || kind) FROM live_orders"
    ).fetchone()
    con.close()
    cli("live", "stop", "--db-dir", str(graph_dir))

    settings = load_settings(overrides=dict(kv.split("=") for kv in TRADY))
    ref, _ = replay_live(graph_dir, settings, cursor, closed)
    ref_trades = ref.trades_since(0)
    n = len(ref_trades["entry_price"])
    assert n >= 1
    assert len(live_trades) == n and positions == (n,)
    assert orders is not None and orders[0] == orders[1], "an order logged twice"
    for i, row in enumerate(live_trades):
        for c, v in zip(TRADE_COLUMNS, row, strict=True):
            want = ref_trades[c][i]
            want = want.item() if hasattr(want, "item") else want
            assert (v is None) if isinstance(want, float) and want != want else v == want, (i, c)
    raw = duckdb.connect(str(graph_dir / "raw.duckdb"), read_only=True)
    gaps = raw.execute(
        "SELECT start_ms, end_ms, reason FROM feed_gaps ORDER BY start_ms"
    ).fetchall()
    raw.close()
    assert len(gaps) >= kills, gaps
    assert all(g[2] == "collector restart" for g in gaps)
    feats = duckdb.connect(str(graph_dir / "features.duckdb"), read_only=True)
    flagged = feats.execute("SELECT count(*) FROM minute_flags").fetchone()
    feats.close()
    assert flagged is not None and flagged[0] >= kills
