"""Shared fixtures: temporary DATABASE_DIR, the real data folder (skipped when absent)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()


@pytest.fixture
def db_dir(tmp_path: Path) -> Path:
    d = tmp_path / "db"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real market data not present at {SHARED_DATA} (only in the project workplace)"
        )
    return SHARED_DATA


@pytest.fixture(scope="module", autouse=True)
def _no_ray_left_in_this_process() -> Iterator[None]:
    """A test that ran a sweep in-process (the notebook API) leaves a local Ray attached to
    pytest. A later `ray stop --force` (the cluster fixtures) kills that raylet, and Ray's
    core worker then ends the whole pytest process with exit code 1 and no summary (seen
    in CI). Each module therefore detaches from any Ray it started."""
    yield
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="session")
def dashboard_db(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A data folder as a trader has it after a few days of work: 5 generated days with
    features, one stored backtest, and a small validated sweep (real `grid run` on a local
    Ray, in its own process, with MLflow). Shared by the dashboard's API and browser tests."""
    from tests.dashboard_data import build

    return build(tmp_path_factory.mktemp("dashboard") / "db")
