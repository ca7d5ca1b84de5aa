"""The dashboard on 7 generated days of minutes, served by `auction-trader dashboard` on
loopback and drawn by Debian's headless Chromium (Playwright):

* navigation -> first drawn chart with 7 days of minutes (target <= 1 s); baseline, same
  run: navigation to a page with no chart (the API's JSON schema page);
* the footprint of a 4-hour window served (target <= 100 ms); baseline, same run: the
  plain DuckDB scan of the same 4 hours of ticks the footprint aggregates;
* the 7 days of minutes served as JSON; baseline: the bare DuckDB select of those rows.

Live minute-close -> chart update is measured with the live WebSocket (next landing).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

MIN = 60_000


def run() -> list[dict[str, Any]]:
    from at_core.config import load_settings
    from at_core.dashboard.testing import launch_chromium, median_ms, serve
    from at_core.features.pipeline import run_features
    from at_core.ingest.synthetic import generate_market
    from at_core.storage.query import open_query_connection

    root = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    db = root / "db"
    try:
        generate_market(db, days=7, seed=21, progress=False)
        run_features(db, load_settings(), progress=False)
        with serve(db) as url:
            meta = urllib.request.urlopen(url + "/api/meta", timeout=5).read()
            import json

            ext = json.loads(meta)["extent"]
            first, last = ext["first_ts_min"], ext["last_ts_min"]
            w0 = first + 3 * 1440 * MIN
            fp_url = f"{url}/api/footprint?start={w0}&end={w0 + 240 * MIN}&bin_ticks=50"
            fp_ms = median_ms(lambda: urllib.request.urlopen(fp_url).read(), 10)

            def scan() -> None:
                con = open_query_connection(db)
                con.execute(
                    "SELECT ts_ms, price, size, inferred_side FROM raw_trades "
                    "WHERE ts_ms >= ? AND ts_ms < ?",
                    [w0, w0 + 240 * MIN],
                ).fetchnumpy()
                con.close()

            scan_ms = median_ms(scan, 10)
            mins_url = f"{url}/api/minutes?start={first}&end={last + MIN}"
            mins_ms = median_ms(lambda: urllib.request.urlopen(mins_url).read(), 5)

            def select() -> None:
                con = open_query_connection(db)
                con.execute(
                    "SELECT * FROM features_1m f JOIN bars_1m b USING (ts_min)"
                ).fetchnumpy()
                con.close()

            sel_ms = median_ms(select, 5)

            from playwright.sync_api import sync_playwright

            draws, blanks = [], []
            with sync_playwright() as p:
                browser = launch_chromium(p)
                for i in range(6):
                    page = browser.new_page(viewport={"width": 1500, "height": 900})
                    page.goto(f"{url}/?span=7#trading")
                    page.wait_for_function("window.__at && window.__at.ready.trading === true",
                                           timeout=60_000)  # fmt: skip
                    n = page.evaluate("window.__at.views.trading.data.ts.length")
                    assert n == 7 * 1440, n
                    if i:
                        draws.append(page.evaluate("window.__at.timings.tradingDrawnMs"))
                    page.close()
                    page = browser.new_page()
                    t0 = time.perf_counter()
                    page.goto(f"{url}/openapi.json")
                    page.wait_for_load_state("load")
                    if i:
                        blanks.append((time.perf_counter() - t0) * 1000)
                    page.close()
                browser.close()
        first_draw = statistics.median(draws)
        blank = statistics.median(blanks)
        return [
            {"name": "dashboard_first_chart_7d", "value": round(first_draw, 1), "unit": "ms",
             "baseline": round(blank, 1), "ratio": round(first_draw / blank, 2),
             "note": "navigation -> 7 days of minutes drawn (median of 5); baseline: "
                     "navigation to the JSON schema page; target <= 1000 ms"},
            {"name": "dashboard_footprint_4h", "value": round(fp_ms, 1), "unit": "ms",
             "baseline": round(scan_ms, 1), "ratio": round(fp_ms / scan_ms, 2),
             "note": "GET /api/footprint 240 minutes, 50-tick bins (median of 10); baseline: "
                     "the DuckDB scan of the same ticks; target <= 100 ms"},
            {"name": "dashboard_minutes_7d", "value": round(mins_ms, 1), "unit": "ms",
             "baseline": round(sel_ms, 1), "ratio": round(mins_ms / sel_ms, 2),
             "note": "GET /api/minutes, 10,080 rows as JSON; baseline: the bare DuckDB select"},
        ]  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    for r in run():
        print(r)
