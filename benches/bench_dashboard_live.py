"""Live minute -> the browser's chart updated: the paper live graph on the loopback
simulator replaying a generated day (1 market minute per second of wall clock), the
dashboard on its data folder, Debian's headless Chromium on the trading view. For each
minute: from the features actor's commit of the closed minute (its wall clock) to the
browser's next animation frame after the series were updated (the same machine's clock).
Target p99 <= 200 ms. Baseline, same run: commit -> the WebSocket message leaving the
server (the feed's polling share of the latency).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

T0 = 1_704_067_200_000
M = 60_000
MINUTES = 120


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def run() -> list[dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    from at_core.ingest.synthetic import generate_market
    from at_core.live import cluster
    from at_core.live.soak import cli, sim_control

    root = Path(tempfile.mkdtemp(prefix="bench-dash-live-"))
    lake, db = root / "lake", root / "live"
    generate_market(lake, days=1, seed=1, progress=False)
    feed_from, feed_to = T0 + 240 * M, T0 + (240 + MINUTES + 5) * M
    dash = None
    try:
        cli(
            "live", "start", "--mode", "paper", "--db-dir", str(db), "--simulator",
            "--simulator-args",
            f"--db-dir {lake} --from {_iso(feed_from)} --to {_iso(feed_to - 1)} --paused --speed 0",
            "--warm-from-lake", str(lake), "--warm-until", str(feed_from),
        )  # fmt: skip
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        dash = subprocess.Popen(
            [sys.executable, "-m", "at_core.cli", "dashboard", "--db-dir", str(db), "--port",
             str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/api/meta", timeout=5).read()
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1500, "height": 900})
            page.goto(url + "/#trading")
            page.wait_for_function("window.__at.live && window.__at.live.status !== null",
                                   timeout=120_000)  # fmt: skip
            sim_control(db, "clock", action="resume", speed=60)
            page.wait_for_function(f"window.__at.live.updates.length >= {MINUTES}",
                                   timeout=MINUTES * 10_000, polling=1000)  # fmt: skip
            ups = page.evaluate("window.__at.live.updates")
            browser.close()
    finally:
        if dash is not None:
            dash.terminate()
            dash.wait(timeout=30)
        cli("live", "stop", "--db-dir", str(db), check=False, timeout=120)
        cluster.kill_all(db)
        shutil.rmtree(root, ignore_errors=True)
    drawn = np.array([u["drawn_ms"] - u["stored_at_ms"] for u in ups if u["stored_at_ms"]])
    sent = np.array([u["sent_ms"] - u["stored_at_ms"] for u in ups if u["stored_at_ms"]])
    p50, p99 = (float(np.percentile(drawn, q)) for q in (50, 99))
    s50, s99 = (float(np.percentile(sent, q)) for q in (50, 99))
    return [
        {"name": "dashboard_live_minute_to_chart_p50", "value": round(p50, 1), "unit": "ms",
         "baseline": round(s50, 1), "ratio": round(p50 / max(s50, 0.1), 2),
         "note": f"{len(drawn)} minutes; baseline: commit -> WebSocket message sent"},
        {"name": "dashboard_live_minute_to_chart_p99", "value": round(p99, 1), "unit": "ms",
         "baseline": round(s99, 1), "ratio": round(p99 / max(s99, 0.1), 2),
         "note": "target <= 200 ms"},
    ]  # fmt: skip


if __name__ == "__main__":
    for r in run():
        print(r)
