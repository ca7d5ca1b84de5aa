"""Fixtures of the live-graph tests: a generated lake to replay and warm up from, and
helpers to drive the real command line (``auction-trader live ...``) and the simulator's
control endpoint. Everything runs on this machine: a local Ray with token auth, the
loopback simulator, loopback webhooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from at_core.ingest.synthetic import generate_market
from at_core.live import cluster

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
M = 60_000
SEED = 1
#: settings under which seed 1 trades several times in the hour after its warm-up
TRADY = [
    "accept_outside_k=2", "of_entry_min_norm=0.0", "qimb_entry_min=0.0",
    "cooldown_minutes=1", "max_hold_minutes=15",
]  # fmt: skip


@pytest.fixture(scope="session")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("live-lake")
    generate_market(d, days=1, seed=SEED, progress=False)
    return d


def cli(
    *args: str, timeout: float = 300, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAY_")}, **(env or {})}
    r = subprocess.run(
        [sys.executable, "-m", "at_core.cli", "--log-level", "WARNING", *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip
    if check and r.returncode != 0:
        raise AssertionError(
            f"auction-trader {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
        )
    return r


def status(db: Path) -> dict[str, Any]:
    return dict(json.loads(cli("live", "status", "--json", "--db-dir", str(db)).stdout))


def sim_control(db: Path, path: str, **body: Any) -> dict[str, Any]:
    info = cluster.read_info(db)
    assert info is not None and info.simulator is not None
    r = requests.post(
        f"{info.simulator['rest']}/_sim/{path}",
        json=body,
        headers={"X-Sim-Token": info.simulator["control_token"]},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait(pred: Callable[[], Any], timeout: float, what: str, every: float = 1.0) -> Any:
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = pred()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def drained(db: Path, end_ms: int) -> Callable[[], dict[str, Any] | None]:
    """The feed reached ``end_ms`` and every worker has taken every stored row."""
    prev: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        st = status(db)
        w = st["workers"]
        c = w["collector"]
        done = (
            c["last_ts"] >= end_ms - 2_000
            and c["pending"] == 0
            and w["features"]["cursor"] == c["cursor"]
            and w["signals"]["cursor"] == c["cursor"]
        )
        same = prev.get("cursor") == c["cursor"]
        prev["cursor"] = c["cursor"]
        return st if done and same else None

    return check


@pytest.fixture
def graph_dir(tmp_path: Path) -> Iterator[Path]:
    db = tmp_path / "live"
    yield db
    # whatever happened, leave no cluster or simulator behind
    if cluster.read_info(db) is not None:
        cli("live", "stop", "--db-dir", str(db), check=False, timeout=120)
    cluster.kill_all(db)
