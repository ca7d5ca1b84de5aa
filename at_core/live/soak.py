"""The crash soak: ``kill -9`` of every process of the live graph's Ray cluster at random
moments while it trades on the loopback simulator, each followed by the same ``live
start`` an operator would run, then a check against independent evidence.

After the last restart the market is replayed to its end and the graph's stores are
compared with a replay of the ticks it stored through the same driver (see
``at_core.live.reference``): the same trades (none lost, none twice), the same decisions,
every outage in ``feed_gaps`` and its minutes flagged, no order logged twice. Used by the
test suite (5 kills) and by ``auction-trader live soak`` (``make soak``: 50).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import requests

from at_core.config import load_settings
from at_core.errors import InputError
from at_core.live import cluster
from at_core.live.execution_actor import TRADE_COLUMNS
from at_core.live.reference import replay_live

M = 60_000


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def cli(
    *args: str, timeout: float = 300, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command line in a fresh process (Ray reads its auth settings at import)."""
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("RAY_")}, **(env or {})}
    r = subprocess.run(
        [sys.executable, "-m", "at_core.cli", "--log-level", "WARNING", *args],
        capture_output=True, text=True, timeout=timeout, env=full,
    )  # fmt: skip
    if check and r.returncode != 0:
        raise InputError(
            f"auction-trader {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
        )
    return r


def status(db: Path) -> dict[str, Any]:
    return dict(json.loads(cli("live", "status", "--json", "--db-dir", str(db)).stdout))


def sim_control(db: Path, path: str, **body: Any) -> dict[str, Any]:
    info = cluster.read_info(db)
    if info is None or info.simulator is None:
        raise InputError(f"{db}: no simulator recorded")
    r = requests.post(
        f"{info.simulator['rest']}/_sim/{path}",
        json=body,
        headers={"X-Sim-Token": info.simulator["control_token"]},
        timeout=30,
    )
    if r.status_code != 200:
        raise InputError(f"/_sim/{path}: {r.status_code} {r.text}")
    return dict(r.json())


def wait_drained(db: Path, end_ms: int, timeout: float) -> dict[str, Any]:
    """Until the feed reached ``end_ms`` and every worker took every stored row (twice
    the same cursor, a second apart)."""
    deadline = time.monotonic() + timeout
    prev = None
    while time.monotonic() < deadline:
        st = status(db)
        w = st["workers"]
        c = w["collector"]
        done = (
            c["last_ts"] >= end_ms - 2_000
            and c["pending"] == 0
            and w["features"].get("cursor") == c["cursor"]
            and w["signals"].get("cursor") == c["cursor"]
        )
        if done and prev == c["cursor"]:
            return st
        prev = c["cursor"]
        time.sleep(1)
    raise InputError(f"the feed was not taken within {timeout} s")


@dataclass
class SoakReport:
    kills: int = 0
    processes_killed: list[int] = field(default_factory=list)
    restart_s: list[float] = field(default_factory=list)
    trades: int = 0
    decided_minutes: int = 0
    gaps: int = 0
    flagged_minutes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def start_args(db: Path, lake: Path, feed_from: int, feed_to: int, sets: list[str]) -> list[str]:
    return [
        "live", "start", "--mode", "paper", "--db-dir", str(db),
        *[a for kv in sets for a in ("--set", kv)],
        "--simulator", "--simulator-args",
        f"--db-dir {lake} --from {_iso(feed_from)} --to {_iso(feed_to - 1)} --paused --speed 0",
        "--warm-from-lake", str(lake), "--warm-until", str(feed_from),
    ]  # fmt: skip


def run_soak(
    db: Path,
    lake: Path,
    kills: int,
    feed_from: int,
    feed_to: int,
    sets: list[str],
    seed: int = 20261204,
    speed: float = 120.0,
    log: Any = None,
) -> SoakReport:
    """Start, activate, then ``kills`` times: trade a random 1–3 s at ``speed``, kill -9
    the whole cluster, start again. Then replay to the end and check (see module doc)."""
    rng = random.Random(seed)
    rep = SoakReport()
    args = start_args(db, lake, feed_from, feed_to, sets)
    cli(*args)
    cli("live", "activate", "--db-dir", str(db))
    for i in range(kills):
        sim_control(db, "clock", action="resume", speed=speed)
        time.sleep(rng.uniform(1.0, 3.0))
        n = cluster.kill_all(db)
        sim_control(db, "clock", action="pause")
        rep.kills += 1
        rep.processes_killed.append(n)
        t = time.monotonic()
        cli(*args)
        rep.restart_s.append(round(time.monotonic() - t, 2))
        st = status(db)
        if not (st["activated"] and st["permission"] == "allowed"):
            rep.problems.append(f"kill {i + 1}: activation lost ({st['permission']})")
        if log:
            log(f"kill {i + 1}/{kills}: {n} processes, back in {rep.restart_s[-1]} s")
    sim_control(db, "clock", action="resume", speed=0)
    wait_drained(db, feed_to, timeout=600)
    final = collect(db)
    cli("live", "stop", "--db-dir", str(db))
    check(db, rep, sets, **final)
    return rep


def collect(db: Path) -> dict[str, Any]:
    """What the running graph has stored (read through SQLite; DuckDB files stay with
    their owners): its cursor and last close, trades, positions, orders, decisions."""
    st = status(db)
    sig = st["workers"]["signals"]
    con = sqlite3.connect(db / "execution.db")
    live_trades = con.execute(
        f"SELECT {', '.join(TRADE_COLUMNS)} FROM live_trades ORDER BY trade_no"
    ).fetchall()
    positions = con.execute("SELECT count(*) FROM positions").fetchone()
    orders = con.execute(
        "SELECT count(*), count(DISTINCT ts_min || kind) FROM live_orders"
    ).fetchone()
    con.close()
    con = sqlite3.connect(db / "signals.db")
    live_min = con.execute("SELECT ts_min, chosen_action, reason_code FROM signals_1m").fetchall()
    con.close()
    return {
        "cursor": sig["cursor"],
        "closed": sig["closed_through"],
        "live_trades": live_trades,
        "live_min": live_min,
        "positions": positions,
        "orders": orders,
    }


def check(
    db: Path,
    rep: SoakReport,
    sets: list[str],
    cursor: dict[str, int],
    closed: int | None,
    live_trades: list[tuple[Any, ...]],
    live_min: list[tuple[Any, ...]],
    positions: Any,
    orders: Any,
) -> None:
    from at_core import _core

    settings = load_settings(overrides=dict(kv.split("=", 1) for kv in sets))
    ref, decided = replay_live(db, settings, cursor, closed)
    ref_trades = ref.trades_since(0)
    n = len(ref_trades["entry_price"])
    rep.trades = n
    if len(live_trades) != n:
        rep.problems.append(f"{len(live_trades)} trades recorded, the replay has {n}")
    if positions is None or positions[0] != len(live_trades):
        rep.problems.append(f"positions rows {positions} != trades {len(live_trades)}")
    if orders is None or orders[0] != orders[1]:
        rep.problems.append(f"an order logged twice: {orders}")
    for i, row in enumerate(live_trades[:n]):
        for c, v in zip(TRADE_COLUMNS, row, strict=True):
            want = ref_trades[c][i]
            want = want.item() if hasattr(want, "item") else want
            same = (v is None) if isinstance(want, float) and want != want else v == want
            if not same:
                rep.problems.append(f"trade {i} {c}: stored {v}, replay {want}")
    actions = list(_core.strategy_action_names())
    reasons = list(_core.strategy_reason_codes())
    ref_min = {
        int(d["ts_min"][k]): (actions[d["action"][k]], reasons[d["reason"][k]])
        for d in decided
        for k in range(len(d["ts_min"]))
    }
    rep.decided_minutes = len(live_min)
    for ts, a, r in live_min:
        if ts in ref_min and ref_min[ts] != (a, r):
            rep.problems.append(f"minute {ts}: live {a}/{r}, replay {ref_min[ts]}")
    raw = duckdb.connect(str(db / "raw.duckdb"), read_only=True)
    gaps = raw.execute("SELECT count(*) FROM feed_gaps").fetchone()
    raw.close()
    rep.gaps = int(gaps[0]) if gaps else 0
    if rep.gaps < rep.kills:
        rep.problems.append(f"{rep.kills} outages, {rep.gaps} gaps recorded")
    feats = duckdb.connect(str(db / "features.duckdb"), read_only=True)
    flagged = feats.execute("SELECT count(*) FROM minute_flags").fetchone()
    feats.close()
    rep.flagged_minutes = int(flagged[0]) if flagged else 0
    if rep.flagged_minutes < rep.kills:
        rep.problems.append(f"{rep.kills} outages, {rep.flagged_minutes} minutes flagged")
