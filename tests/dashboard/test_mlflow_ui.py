"""The MLflow UI opens on the sweeps, as a new user meets it: MLflow 3 lands an experiment
on its GenAI traces overview ("Traces 0") unless told otherwise. The links the project
prints (the sweep's parent run, the dashboard's MLflow link) are opened in Debian's
Chromium against `mlflow ui` over the sweep's own tracking store, with a fresh browser
profile (no remembered choice)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from at_core.dashboard.testing import chromium_missing, free_port, launch_chromium
from at_core.grid.results import ResultStore
from at_core.grid.tracking import default_tracking_uri, experiment_url, parent_run_url

pytestmark = pytest.mark.slow
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "mlflow"


@pytest.fixture(scope="module")
def mlflow_ui(dashboard_db: dict[str, Any]) -> Iterator[str]:
    why = chromium_missing()
    if why:
        pytest.skip(why)
    port = free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    proc = subprocess.Popen(
        [str(mlflow), "ui", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", default_tracking_uri(dashboard_db["db"])],  # type: ignore[arg-type]
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/health", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("mlflow ui exited") from None
                time.sleep(0.1)
        else:
            raise RuntimeError("mlflow ui did not answer within 60 s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_printed_links_open_on_the_runs(mlflow_ui: str, dashboard_db: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    db = dashboard_db["db"]
    info = ResultStore(db).run_info(dashboard_db["sweep"])  # type: ignore[arg-type]
    assert info is not None and info["mlflow_run_id"]
    run_url = parent_run_url(default_tracking_uri(db), info["mlflow_run_id"], base=mlflow_ui)  # type: ignore[arg-type]
    exp_id = run_url.split("#/experiments/")[1].split("/")[0]
    exp_url = experiment_url(exp_id, base=mlflow_ui)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        page.goto(exp_url)
        page.get_by_text(dashboard_db["sweep"]).first.wait_for(timeout=60_000)  # type: ignore[arg-type]
        page.screenshot(path=str(SHOTS / "experiment.png"))
        assert "/runs" in page.url and "overview" not in page.url, page.url
        assert page.get_by_role("heading", name="Runs").count() >= 1
        page.goto(run_url)
        page.get_by_text("sweep_run_id").first.wait_for(timeout=60_000)
        page.screenshot(path=str(SHOTS / "parent-run.png"))
        assert page.get_by_text(dashboard_db["sweep"]).count() >= 1  # type: ignore[arg-type]
        browser.close()
