"""Fixtures of the live-graph tests: a generated lake to replay and warm up from, and
helpers to drive the real command line (``auction-trader live ...``) and the simulator's
control endpoint. Everything runs on this machine: a local Ray with token auth, the
loopback simulator, loopback webhooks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from at_core.ingest.synthetic import generate_market
from at_core.live import cluster
from at_core.live.soak import cli, sim_control, status, wait_drained

__all__ = ["cli", "sim_control", "status", "wait", "wait_drained"]

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


def wait(pred: Callable[[], Any], timeout: float, what: str, every: float = 1.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        last = pred()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def graph_dir(tmp_path: Path) -> Iterator[Path]:
    db = tmp_path / "live"
    yield db
    # whatever happened, leave no cluster or simulator behind
    if cluster.read_info(db) is not None:
        cli("live", "stop", "--db-dir", str(db), check=False, timeout=120)
    cluster.kill_all(db)
