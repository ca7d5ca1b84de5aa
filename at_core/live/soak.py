"""The crash soak: ``kill -9`` of every process of the live graph's Ray cluster at random
moments while it trades on the loopback simulator, each followed by the same ``live
start`` an operator would run, then a check against independent evidence.

After the last restart the market is replayed to its end and the graph's stores are
compared with a replay of the ticks it stored through the same driver (see
``at_core.live.reference``): the same trades (none lost, none twice), the same decisions,
every outage in ``feed_gaps`` and its minutes flagged, no order logged twice, and the
footprint cells of every covered minute equal to the batch engine's sides of the stored
ticks summed per minute and tick (no trade counted twice or lost across the restarts).
Used by the test suite (5 kills) and by ``auction-trader live soak`` (``make soak``: 50).
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


def sim_control(db: Path, endpoint: str, /, **body: Any) -> dict[str, Any]:
    info = cluster.read_info(db)
    if info is None or info.simulator is None:
        raise InputError(f"{db}: no simulator recorded")
    r = requests.post(
        f"{info.simulator['rest']}/_sim/{endpoint}",
        json=body,
        headers={"X-Sim-Token": info.simulator["control_token"]},
        timeout=30,
    )
    if r.status_code != 200:
        raise InputError(f"/_sim/{endpoint}: {r.status_code} {r.text}")
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


#: the simulated account of live-mode runs: a maker rebate, a taker fee, $30,000
SIM_ACCOUNT = "--maker-fee-bps -1 --taker-fee-bps 5 --balance 30000"


def start_args(
    db: Path, lake: Path, feed_from: int, feed_to: int, sets: list[str], mode: str = "paper"
) -> list[str]:
    sim = f"--db-dir {lake} --from {_iso(feed_from)} --to {_iso(feed_to - 1)} --paused --speed 0"
    return [
        "live", "start", "--mode", mode, "--db-dir", str(db),
        *[a for kv in sets for a in ("--set", kv)],
        "--simulator", "--simulator-args", sim + (" " + SIM_ACCOUNT if mode == "live" else ""),
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
    mode: str = "paper",
) -> SoakReport:
    """Start, activate, then ``kills`` times: trade a random 1–3 s at ``speed``, kill -9
    the whole cluster, start again. Then replay to the end and check (see module doc).

    ``mode="live"``: real orders to the simulator, whose market keeps moving (at 10x)
    while the graph is down, so exchange-held stops and targets fire unseen; checked
    against the simulator's own orders, executions and position (``check_live``)."""
    rng = random.Random(seed)
    rep = SoakReport()
    args = start_args(db, lake, feed_from, feed_to, sets, mode)
    cli(*args)
    cli("live", "activate", *(["--live"] if mode == "live" else []), "--db-dir", str(db))
    for i in range(kills):
        sim_control(db, "clock", action="resume", speed=speed)
        time.sleep(rng.uniform(1.0, 3.0))
        n = cluster.kill_all(db)
        if mode == "live":
            sim_control(db, "clock", action="resume", speed=10)
        else:
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
    sim_control(db, "clock", action="resume", speed=0 if mode != "live" else speed)
    st = wait_drained(db, feed_to, timeout=600)
    if mode == "live":
        time.sleep(MISMATCH_WAIT_S)  # the last executions' reports and position updates
        st = status(db)
        sim = sim_get(db, "state")
        cli("live", "stop", "--db-dir", str(db))
        check_live(db, rep, st, sim)
        return rep
    final = collect(db)
    cli("live", "stop", "--db-dir", str(db))
    check(db, rep, sets, **final)
    return rep


MISMATCH_WAIT_S = 4.0


def sim_get(db: Path, path: str) -> dict[str, Any]:
    info = cluster.read_info(db)
    if info is None or info.simulator is None:
        raise InputError(f"{db}: no simulator recorded")
    r = requests.get(
        f"{info.simulator['rest']}/_sim/{path}",
        headers={"X-Sim-Token": info.simulator["control_token"]},
        timeout=30,
    )
    if r.status_code != 200:
        raise InputError(f"/_sim/{path}: {r.status_code} {r.text}")
    return dict(r.json())


def round_trips(fills: list[tuple[Any, ...]]) -> list[dict[str, float]]:
    """Trades rebuilt from the exchange's executions alone (role, side, price, qty, fee,
    ...): each run of the position from 0 back to 0."""
    out: list[dict[str, float]] = []
    pos, cur = 0.0, None
    for role, side, price, qty, fee, *_ in fills:
        if role == "funding":
            continue
        signed = qty if side == "Buy" else -qty
        if cur is None:
            cur = {"qty": 0.0, "notional": 0.0, "fees": 0.0, "side": 1.0 if signed > 0 else -1.0}
        if role in ("entry", "entry_mkt"):
            cur["qty"] += qty
            cur["notional"] += price * qty
        cur["fees"] += fee
        pos = round(pos + signed, 9)
        if pos == 0:
            out.append({**cur, "price": cur["notional"] / cur["qty"]})
            cur = None
    return out


def _sign(side: Any) -> float:
    """A trade's side as +1 / -1: stored as the kernel's number, or a LONG / SHORT name."""
    if isinstance(side, int | float):
        return 1.0 if side > 0 else -1.0
    return 1.0 if str(side).upper() == "LONG" else -1.0


def check_live(db: Path, rep: SoakReport, st: dict[str, Any], sim: dict[str, Any]) -> None:
    """Live mode against the exchange's own record: every execution journaled and reported
    once, each trade the sum of its executions, the position the exchange's, every order
    on the exchange one the system recorded before sending, at most one entry order per
    entry decision, and each outage a gap."""
    if st.get("halted"):
        rep.problems.append(f"halted: {st['halted']}")
    con = sqlite3.connect(db / "execution.db")
    fills = con.execute(
        "SELECT role, side, price, qty, fee, reported, link_id FROM live_fills "
        "ORDER BY ts_ms, rowid"
    ).fetchall()
    trades = con.execute(
        "SELECT side, entry_price, qty, fees FROM live_trades ORDER BY trade_no"
    ).fetchall()
    intents = {r[0]: r[1] for r in con.execute("SELECT link_id, outcome FROM live_intents")}
    con.close()
    con = sqlite3.connect(db / "signals.db")
    enter_minutes = con.execute(
        "SELECT count(*) FROM signals_1m WHERE chosen_action LIKE 'ENTER%'"
    ).fetchone()[0]
    con.close()
    if len(fills) != sim["executions"]:
        rep.problems.append(
            f"{len(fills)} executions journaled, the exchange has {sim['executions']}"
        )
    if any(f[5] != 1 for f in fills):
        rep.problems.append("an execution the driver did not take")
    trips = round_trips(fills)
    rep.trades = len(trips)
    if len(trades) != len(trips):
        rep.problems.append(f"{len(trades)} trades booked, the executions make {len(trips)}")
    for i, ((side, price, qty, fees), trip) in enumerate(zip(trades, trips, strict=False)):
        if _sign(side) != trip["side"]:
            rep.problems.append(f"trade {i}: side {side}, the executions say {trip['side']}")
        if abs(qty - trip["qty"]) > 1e-9 or abs(price - trip["price"]) > 1e-6:
            rep.problems.append(f"trade {i}: {qty} @ {price}, the executions say {trip}")
        if abs(fees - trip["fees"]) > 1e-6:
            rep.problems.append(f"trade {i}: fees {fees}, the executions say {trip['fees']}")
    pos = st.get("position")
    mine = 0.0 if not pos else (1 if pos["side"] == "LONG" else -1) * float(pos["qty"])
    sp = sim["position"]
    theirs = float(sp["size"]) * (-1 if sp["side"] == "Sell" else 1)
    if abs(mine - theirs) > 1e-9:
        rep.problems.append(f"position {mine:+g}, the exchange has {theirs:+g}")
    ours = [o for o in sim["order_list"] if o["orderLinkId"]]
    unknown = [o["orderLinkId"] for o in ours if o["orderLinkId"] not in intents]
    if unknown:
        rep.problems.append(f"orders on the exchange the system has no record of: {unknown}")
    limit_entries = [o for o in ours if not o["reduceOnly"] and o["orderType"] == "Limit"]
    if len(limit_entries) > enter_minutes:
        rep.problems.append(
            f"{len(limit_entries)} limit entries on the exchange for {enter_minutes} decisions"
        )
    _check_gaps(db, rep)


def _check_gaps(db: Path, rep: SoakReport) -> None:
    """Every outage (a kill, a dropped or stalled feed) must be a recorded gap."""
    raw = duckdb.connect(str(db / "raw.duckdb"), read_only=True)
    gaps = raw.execute("SELECT count(*) FROM feed_gaps").fetchone()
    raw.close()
    rep.gaps = int(gaps[0]) if gaps else 0
    if rep.gaps < rep.kills:
        rep.problems.append(f"{rep.kills} outages, {rep.gaps} gaps recorded")


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
    _check_gaps(db, rep)
    feats = duckdb.connect(str(db / "features.duckdb"), read_only=True)
    flagged = feats.execute("SELECT count(*) FROM minute_flags").fetchone()
    feats.close()
    rep.flagged_minutes = int(flagged[0]) if flagged else 0
    if rep.flagged_minutes < rep.kills:
        rep.problems.append(f"{rep.kills} outages, {rep.flagged_minutes} minutes flagged")
    _check_footprint(db, rep, settings)


def _check_footprint(db: Path, rep: SoakReport, settings: Any) -> None:
    """The footprint cells the features actor kept through the crashes against the stored
    ticks classified in one batch pass of the engine (from the first covered minute, where
    the actor's engine started)."""
    import numpy as np

    from at_core import _core
    from at_core.features.engine import engine_config
    from at_core.live.reference import read_raw
    from at_core.storage.footprint import to_ticks, trade_cells

    feats = duckdb.connect(str(db / "features.duckdb"), read_only=True)
    cover = [
        r[0] for r in feats.execute("SELECT ts_min FROM footprint_cover ORDER BY 1").fetchall()
    ]
    stored = feats.execute("SELECT ts_min, tick, bid, ask, amb FROM footprint_1m").fetchall()
    feats.close()
    if not cover:
        rep.problems.append("no footprint minute covered")
        return
    t, q = read_raw(db / "raw.duckdb", -1, 2**62, -1, 2**62)
    if t is None or q is None:
        rep.problems.append("no stored ticks to check the footprint against")
        return
    first = cover[0]
    holes = sorted(set(range(first, cover[-1] + M, M)) - set(cover))
    if holes:
        rep.problems.append(f"{len(holes)} minutes without footprint cells, first {holes[0]}")
    t = {k: v[t["ts_ms"] >= first] for k, v in t.items()}
    q = {k: v[q["ts_ms"] >= first] for k, v in q.items()}
    sign = _core.features_stage1(t, q, engine_config(settings), record_trades=True)["trade_sign"]
    want = trade_cells(t["ts_ms"], to_ticks(t["price"], settings.tick_size), t["size"], sign)
    covered = set(cover)
    want_cells = {
        (int(m), int(k)): (b, a, n)
        for m, k, b, a, n in zip(
            *(want[c] for c in ("ts_min", "tick", "bid", "ask", "amb")), strict=True
        )
        if int(m) in covered
    }
    got = {(m, k): (b, a, n) for m, k, b, a, n in stored if m in covered}
    if len(got) != sum(1 for m, *_ in stored if m in covered):
        rep.problems.append("a footprint cell written twice")
    bad = sorted({k[0] for k in set(got) ^ set(want_cells)} | {
        k[0] for k in got.keys() & want_cells.keys()
        if not np.allclose(got[k], want_cells[k], rtol=0, atol=1e-9)
    })  # fmt: skip
    if bad:
        rep.problems.append(f"footprint cells differ from the ticks in {len(bad)} minutes, "
                            f"first {bad[0]}")  # fmt: skip
