"""Live minute -> the browser's chart updated: the paper live graph on the loopback
simulator replaying a generated day (1 market minute per second of wall clock), the
dashboard on its data folder, Debian's headless Chromium on the trading view. For each
minute: from the features actor's commit of the closed minute (its wall clock) to the
browser's next animation frame after the series were updated (the same machine's clock).
Target p99 <= 200 ms. Baseline, same run: commit -> the WebSocket message leaving the
server (the feed's polling share of the latency).
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

T0 = 1_704_067_200_000
M = 60_000
MINUTES = 120
#: the footprint window: the last 4 hours the graph saw (warm-up from the lake + live)
FP_TO = T0 + (240 + MINUTES) * M
FP_FROM = FP_TO - 240 * M


def run() -> list[dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    from at_core.dashboard.testing import launch_chromium, median_ms, serve
    from at_core.ingest.synthetic import generate_market
    from at_core.live import cluster
    from at_core.live.soak import cli, sim_control, start_args

    root = Path(tempfile.mkdtemp(prefix="bench-dash-live-"))
    lake, db = root / "lake", root / "live"
    generate_market(lake, days=1, seed=1, progress=False)
    feed_from, feed_to = T0 + 240 * M, T0 + (240 + MINUTES + 5) * M
    try:
        cli(*start_args(db, lake, feed_from, feed_to, []))
        with serve(db) as url, sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1500, "height": 900})
            page.goto(url + "/#trading")
            page.wait_for_function("window.__at.live && window.__at.live.status !== null",
                                   timeout=120_000)  # fmt: skip
            sim_control(db, "clock", action="resume", speed=60)
            page.wait_for_function(f"window.__at.live.updates.length >= {MINUTES}",
                                   timeout=MINUTES * 10_000, polling=1000)  # fmt: skip
            ups = page.evaluate("window.__at.live.updates")
            browser.close()
            fp_url = f"{url}/api/footprint?start={FP_FROM}&end={FP_TO}&bin_ticks=50"
            fp_live = median_ms(lambda: urllib.request.urlopen(fp_url, timeout=60).read())
        cli("live", "stop", "--db-dir", str(db), check=False, timeout=120)
        with serve(db) as url:  # the same window from the stores, no graph running
            fp_url = f"{url}/api/footprint?start={FP_FROM}&end={FP_TO}&bin_ticks=50"
            fp_stored = median_ms(lambda: urllib.request.urlopen(fp_url, timeout=60).read())
    finally:
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
        {"name": "dashboard_live_footprint_4h", "value": round(fp_live, 1), "unit": "ms",
         "baseline": round(fp_stored, 1), "ratio": round(fp_live / fp_stored, 2),
         "note": "GET /api/footprint 240 minutes while the graph runs (the features "
                 "actor's footprint cells binned by SQL); baseline: the same from the stores "
                 "after it stopped; target <= 100 ms"},
    ]  # fmt: skip


if __name__ == "__main__":
    for r in run():
        print(r)
