"""The dashboard on a running live graph: the paper graph on the loopback simulator
replaying a generated market, `auction-trader dashboard` on the graph's data folder, and
Debian's Chromium. The page reads through the actors (the graph holds the DuckDB files),
shows the graph's status, and draws each new minute as the WebSocket brings it; the
candles drawn are checked against the replayed market's own ticks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from at_core.storage.query import open_query_connection
from tests.live.conftest import T0, TRADY, M, cli, sim_control, status

pytestmark = pytest.mark.timeout(600)
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"


def _iso(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def test_live_minutes_arrive_in_the_browser(lake: Path, graph_dir: Path) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed (`make browser`)")
    from playwright.sync_api import sync_playwright

    feed_from, feed_to = T0 + 240 * M, T0 + 300 * M
    sets = [a for kv in TRADY for a in ("--set", kv)]
    cli(
        "live", "start", "--mode", "paper", "--db-dir", str(graph_dir), *sets,
        "--simulator", "--simulator-args",
        f"--db-dir {lake} --from {_iso(feed_from)} --to {_iso(feed_to - 1)} --paused --speed 0",
        "--warm-from-lake", str(lake), "--warm-until", str(feed_from),
    )  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    dash = subprocess.Popen(
        [sys.executable, "-m", "at_core.cli", "dashboard", "--db-dir", str(graph_dir),
         "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                meta = json.loads(urllib.request.urlopen(url + "/api/meta", timeout=5).read())
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("the dashboard did not answer")
        assert meta["live"] is True
        st = json.loads(urllib.request.urlopen(url + "/api/live/status", timeout=30).read())
        assert st["mode"] == "paper" and st["banner"]["permission"] == st["permission"]
        SHOTS.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1500, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "console",
                lambda m: (
                    errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None
                ),
            )
            page.goto(url + "/#trading")
            try:
                page.wait_for_function(
                    "window.__at && window.__at.ready.trading === true", timeout=60_000
                )
                page.wait_for_function(
                    "window.__at.live && window.__at.live.status !== null", timeout=60_000
                )
            except Exception:
                page.screenshot(path=str(SHOTS / "live-failed.png"))
                raise AssertionError(f"{errors} {page.locator('#error').inner_text()}") from None
            assert "live · paper" in page.get_by_test_id("banner").inner_text()
            assert "warm-up" in page.get_by_test_id("chip-mode").inner_text()
            shown_before = page.evaluate("window.__at.views.trading.data.ts.slice(-1)[0]")
            # the market moves: 1 market minute per ~2 s of wall clock
            sim_control(graph_dir, "clock", action="resume", speed=30)
            page.wait_for_function("window.__at.live.updates.length >= 5", timeout=180_000)
            data = page.evaluate(
                "(() => { const d = window.__at.views.trading.data;"
                " return {ts: d.ts.slice(-5), open: d.open.slice(-5), high: d.high.slice(-5),"
                " low: d.low.slice(-5), close: d.close.slice(-5)}; })()"
            )
            updates = page.evaluate("window.__at.live.updates")
            page.screenshot(path=str(SHOTS / "live.png"))
            assert not errors, errors
            browser.close()
        assert data["ts"][-1] > shown_before
        assert all(b - a == M for a, b in zip(data["ts"], data["ts"][1:], strict=False))
        # independent evidence: the replayed market's ticks of those minutes (the lake)
        con = open_query_connection(lake)
        for i, ts in enumerate(data["ts"]):
            t = con.execute(
                "SELECT price FROM raw_trades WHERE ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms, seq",
                [ts, ts + M],
            ).fetchnumpy()["price"]
            assert len(t) > 0
            got = (data["open"][i], data["high"][i], data["low"][i], data["close"][i])
            assert got == (t[0], np.max(t), np.min(t), t[-1]), (ts, got)
        lat = [u["drawn_ms"] - u["stored_at_ms"] for u in updates if u["stored_at_ms"]]
        print(f"minute stored -> drawn: {sorted(lat)} ms")
        assert status(graph_dir)["mode"] == "paper"
    finally:
        dash.terminate()
        dash.wait(timeout=30)
