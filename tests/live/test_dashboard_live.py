"""The dashboard on a running live graph: the paper graph on the loopback simulator
replaying a generated market, `auction-trader dashboard` on the graph's data folder, and
Debian's Chromium. The page reads through the actors (the graph holds the DuckDB files),
shows the graph's status, and draws each new minute as the WebSocket brings it; the
candles drawn are checked against the replayed market's own ticks."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from at_core.dashboard.controls import TOKEN_ENV
from at_core.dashboard.testing import chromium_missing, launch_chromium, serve
from at_core.live.soak import start_args
from at_core.storage.query import open_query_connection
from tests.live.conftest import T0, TRADY, M, cli, sim_control, status, wait_drained

pytestmark = pytest.mark.timeout(600)
TOKEN = "operator-token-for-the-live-test"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"


def _control(page: Any, action: str, expect: str) -> None:
    page.get_by_test_id(f"control-{action}").click()
    page.wait_for_function(
        f"(window.__at.lastControl || '').includes({json.dumps(expect)})", timeout=120_000
    )


def _get(url: str) -> Any:
    return json.loads(urllib.request.urlopen(url, timeout=60).read())


def _try_get(url: str) -> Any:
    try:
        return _get(url)
    except OSError:  # HTTPError and URLError: not there yet
        return None


def _live_footprint_and_profile(url: str, lake: Path, lo: int, hi: int) -> None:
    fp = _get(f"{url}/api/footprint?start={lo}&end={hi}&bin_ticks=10")
    con = open_query_connection(lake)
    want = dict(
        con.execute(
            "SELECT ts_ms // 60000 * 60000, sum(size) FROM raw_trades "
            "WHERE ts_ms >= ? AND ts_ms < ? GROUP BY 1",
            [lo, hi],
        ).fetchall()
    )
    got: dict[int, float] = {}
    for i, ts in enumerate(fp["ts"]):
        got[ts] = got.get(ts, 0.0) + fp["bid"][i] + fp["ask"][i] + fp["ambiguous"][i]
    assert set(got) == set(want)
    for ts, v in want.items():
        assert got[ts] == pytest.approx(v, rel=1e-9), ts
    # the sides are the engine's: most volume is classified (BTCUSDT quotes are dense)
    assert sum(fp["ambiguous"]) < 0.05 * sum(want.values())
    ts = hi - M
    minute = _get(f"{url}/api/minutes?start={ts}&end={ts + M}")
    prof = _get(f"{url}/api/profile?ts_min={ts}")
    assert (prof["poc"], prof["vah"], prof["val"]) == (
        minute["poc"][0], minute["vah"][0], minute["val"][0],
    )  # fmt: skip
    assert prof["va_bin_count"] == minute["va_bin_count"][0]


def test_live_minutes_arrive_in_the_browser(lake: Path, graph_dir: Path) -> None:
    why = chromium_missing()
    if why:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    feed_from, feed_to = T0 + 240 * M, T0 + 300 * M
    cli(*start_args(graph_dir, lake, feed_from, feed_to, TRADY))
    # operator controls on: the page sends the commands below
    with serve(graph_dir, env={TOKEN_ENV: TOKEN}) as url:
        meta = _get(url + "/api/meta")
        assert meta["live"] is True
        st = json.loads(urllib.request.urlopen(url + "/api/live/status", timeout=30).read())
        assert st["mode"] == "paper" and st["banner"]["permission"] == st["permission"]
        SHOTS.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = launch_chromium(p)
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
            # the operator activates from the page (token typed in, sent as a header)
            page.get_by_test_id("control-token").fill(TOKEN)
            _control(page, "activate", "activate: done")
            assert status(graph_dir)["activated"] is True  # the supervisor's own word
            # a refusal comes back with the graph's reason, and changes nothing
            page.get_by_test_id("control-mode-choice").select_option("live")
            _control(page, "mode", "needs a restart")
            assert status(graph_dir)["mode"] == "paper"
            # the market moves: 1 market minute per ~2 s of wall clock
            sim_control(graph_dir, "clock", action="resume", speed=30)
            page.wait_for_function("window.__at.live.updates.length >= 5", timeout=180_000)
            data = page.evaluate(
                "(() => { const d = window.__at.views.trading.data;"
                " return {ts: d.ts.slice(-5), open: d.open.slice(-5), high: d.high.slice(-5),"
                " low: d.low.slice(-5), close: d.close.slice(-5), gap: d.gap.slice(-5)}; })()"
            )
            updates = page.evaluate("window.__at.live.updates")
            # the rest of the hour flat out: the graph trades; the page shows its trades,
            # realised P&L and signals from the graph's own SQLite stores
            sim_control(graph_dir, "clock", action="resume", speed=0)
            wait_drained(graph_dir, feed_to, 300)
            con = sqlite3.connect(graph_dir / "execution.db")
            closed = con.execute(
                "SELECT fill_ts_ms, net_pnl FROM live_trades WHERE exit_ts_ms IS NOT NULL "
                "ORDER BY fill_ts_ms"
            ).fetchall()
            con.close()
            assert closed, "TRADY settings trade in this hour"
            page.wait_for_function(
                f"window.__at.livePnl && window.__at.livePnl.ts.length === {len(closed)}",
                timeout=60_000,
            )
            pnl = page.evaluate("window.__at.livePnl.realised")
            assert pnl[-1] == pytest.approx(sum(p for _, p in closed), abs=1e-6)
            assert page.evaluate("window.__at.views.trading.btSel.value") == "__live__"
            page.wait_for_timeout(6000)  # the signals list refreshes every 5 s
            sig = page.evaluate("window.__at.liveSignals")
            con = sqlite3.connect(graph_dir / "signals.db")
            entries = con.execute(
                "SELECT ts_min, reason_code FROM signals_1m WHERE chosen_action LIKE 'ENTER%' "
                "ORDER BY ts_min DESC"
            ).fetchall()
            con.close()
            shown = [
                (x["ts_min"], x["reason_code"])
                for x in sig
                if x["chosen_action"].startswith("ENTER")
            ]
            assert shown and shown == entries[: len(shown)]
            # footprint and profile while the graph holds the stores: read through its
            # actors, checked against the replayed ticks (the lake)
            _live_footprint_and_profile(url, lake, feed_to - 40 * M, feed_to - 2 * M)
            page.get_by_test_id("footprint").click()
            page.evaluate(f"window.__at.views.trading.showRange({feed_to - 40 * M}, {feed_to})")
            page.wait_for_function(
                "window.__at.footprint && window.__at.footprint.ts.length > 0", timeout=30_000
            )
            page.screenshot(path=str(SHOTS / "live-footprint.png"))
            page.get_by_test_id("footprint").click()
            # the alert log as the page lists it = the graph's alerts.jsonl, newest first
            page.wait_for_function("window.__at.liveAlerts !== undefined", timeout=30_000)
            shown_alerts = [a["id"] for a in page.evaluate("window.__at.liveAlerts.alerts")]
            logged = [
                json.loads(x)["id"]
                for x in (graph_dir / "live" / "alerts.jsonl").read_text().splitlines()
            ]
            newest_first = logged[::-1]  # alerts logged after the page's read come first
            assert shown_alerts, "the hour's trading raises alerts (stale feed at its end)"
            at = newest_first.index(shown_alerts[0])
            assert shown_alerts == newest_first[at : at + len(shown_alerts)]
            page.screenshot(path=str(SHOTS / "live.png"))
            # halt from the page: the graph blocks trading; resume lifts it
            _control(page, "halt", "halt: done")
            st = status(graph_dir)
            assert st["halted"] == "operator (dashboard)" and st["permission"] == "blocked"
            page.wait_for_function(
                "document.querySelector('[data-testid=banner]').innerText.includes('halted')",
                timeout=30_000,
            )
            page.screenshot(path=str(SHOTS / "live-halted.png"))
            _control(page, "resume", "resume: done")
            assert status(graph_dir)["halted"] is None
            ops = [
                json.loads(x)
                for x in (graph_dir / "live" / "operator.jsonl").read_text().splitlines()
            ]
            assert [(o["action"], o["outcome"]) for o in ops] == [
                ("activate", "done"), ("mode", "refused"), ("halt", "done"), ("resume", "done"),
            ]  # fmt: skip
            assert all(TOKEN not in json.dumps(o) for o in ops)
            # the refused mode switch is the one failed request the page made (409)
            assert [e for e in errors if "status of 409" in e] == [
                "console error: Failed to load resource: the server responded with a status "
                "of 409 (Conflict)"
            ]
            assert not [e for e in errors if "status of 409" not in e], errors
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
            if data["gap"][i] is None:
                assert got == (t[0], np.max(t), np.min(t), t[-1]), (ts, got)
            else:  # a recorded feed gap: the bar holds some of the minute's trades, or none
                assert got[0] is None or (np.min(t) <= got[2] <= got[1] <= np.max(t)), (ts, got)
        # the only gap: the start after the warm-up from the lake (nothing proves that no
        # trade printed between the last warm-up tick and the first streamed one)
        flagged = {ts: g for ts, g in zip(data["ts"], data["gap"], strict=True) if g is not None}
        assert all(g == "collector restart" and ts <= feed_from for ts, g in flagged.items()), (
            flagged
        )
        lat = [u["drawn_ms"] - u["stored_at_ms"] for u in updates if u["stored_at_ms"]]
        print(f"minute stored -> drawn: {sorted(lat)} ms")
        assert status(graph_dir)["mode"] == "paper"


def test_the_dashboard_outlives_a_stopped_graph_and_follows_its_restart(
    lake: Path, graph_dir: Path
) -> None:
    """The operator stops the graph from the command line while the dashboard is open: the
    dashboard must go on serving the stored data (not die with the cluster it had joined),
    and pick the graph up again when it is started anew on the folder."""
    from tests.live.conftest import wait

    feed_from, feed_to = T0 + 240 * M, T0 + 260 * M
    cli(*start_args(graph_dir, lake, feed_from, feed_to, TRADY))
    with serve(graph_dir) as url:
        assert _get(url + "/api/meta")["live"] is True
        first = _get(url + "/api/live/status")["started_ms"]
        cli("live", "stop", "--db-dir", str(graph_dir))

        def stored() -> Any:
            m = _get(url + "/api/meta")
            return m if m["live"] is False else None

        meta = wait(stored, 60, "the dashboard to notice the graph stopped")
        assert meta["extent"]["last_ts_min"] is not None  # the stored minutes, read directly
        mins = _get(f"{url}/api/minutes?days=1")
        assert len(mins["ts"]) > 0
        time.sleep(5)  # a Ray driver left on a dead cluster would end the process by now
        assert _get(url + "/api/meta")["live"] is False
        # started again: the dashboard joins the new cluster
        cli(*start_args(graph_dir, lake, feed_from, feed_to, TRADY))
        wait(lambda: _get(url + "/api/meta")["live"], 60, "the dashboard to see the new graph")
        st = wait(lambda: _try_get(url + "/api/live/status"), 60, "the new graph's status")
        assert st["started_ms"] > first
