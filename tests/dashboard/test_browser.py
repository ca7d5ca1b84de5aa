"""The dashboard in a real browser: Debian's Chromium (headless) driven by Playwright for
Python, against `auction-trader dashboard` serving the shared generated data folder on
loopback. Each view renders with real data; the VA view toggles; the footprint shows the
volumes of a chosen minute as the raw ticks have them; the sweep table sorts and filters.
Screenshots land in test-artifacts/dashboard/ (looked at, not just asserted)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from at_core.dashboard.testing import chromium_missing, launch_chromium, serve
from at_core.storage.query import open_query_connection

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts" / "dashboard"
MIN = 60_000


@pytest.fixture(scope="module")
def server(dashboard_db: dict[str, Any]) -> Iterator[str]:
    why = chromium_missing()
    if why:
        pytest.skip(why)
    with serve(dashboard_db["db"]) as url:
        yield url


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)  # shared with tests/live: never emptied here
    with sync_playwright() as p:
        browser = launch_chromium(p)
        pg = browser.new_page(viewport={"width": 1500, "height": 900})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.errors = errors  # type: ignore[attr-defined]
        yield pg
        browser.close()


def _shot(pg: Any, name: str) -> None:
    pg.screenshot(path=str(SHOTS / f"{name}.png"))


def _no_errors(pg: Any) -> None:
    assert not pg.errors, pg.errors
    box = pg.locator("#error")
    assert box.is_hidden(), box.inner_text()


def test_trading_view_renders_and_the_va_view_toggles(page: Any, server: str) -> None:
    page.goto(server + "/#trading")
    page.wait_for_function("window.__at && window.__at.ready.trading === true", timeout=30_000)
    _no_errors(page)
    # candles and levels on a canvas, and the chips filled from the last minute
    assert page.locator("#chart canvas").count() >= 4
    assert "UTC" in page.get_by_test_id("chip-minute").inner_text()
    assert page.get_by_test_id("chip-ambiguous").inner_text().startswith("ambiguous")
    _shot(page, "trading-levels")

    page.get_by_test_id("va-histogram").click()
    box = page.locator("#chart").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.3)
    page.wait_for_function("window.__at.profile !== undefined", timeout=15_000)
    prof = page.evaluate("window.__at.profile")
    hovered = page.evaluate("window.__at.views.trading.hoverTs")
    assert prof["ts_min"] == hovered
    assert prof["price"] and prof["poc"] is not None
    assert page.evaluate("window.__at.views.trading.poc.options().visible") is False
    _shot(page, "trading-histogram")
    page.get_by_test_id("va-levels").click()
    assert page.evaluate("window.__at.views.trading.poc.options().visible") is True
    _no_errors(page)


def test_footprint_shows_the_ticks_of_a_chosen_minute(
    page: Any, server: str, dashboard_db: dict[str, Any]
) -> None:
    tick = dashboard_db["settings"].tick_size
    first = page.evaluate("window.__at.meta.extent.last_ts_min") - 1439 * MIN
    minute = first + 600 * MIN
    page.evaluate(f"window.__at.views.trading.showRange({minute - 20 * MIN}, {minute + 20 * MIN})")
    page.get_by_test_id("bin-ticks").select_option("25")
    page.get_by_test_id("footprint").click()
    page.wait_for_function(
        "window.__at.footprint && window.__at.footprint.bin_ticks === 25", timeout=15_000
    )
    page.evaluate(f"window.__at.views.trading.select({minute})")
    cells = page.get_by_test_id("footprint-cells").locator("tr[data-price]")
    shown = {}
    for i in range(cells.count()):
        row = cells.nth(i)
        price = round(float(row.get_attribute("data-price")), 6)
        bid, ask = (float(td.replace(",", "")) for td in row.locator("td").all_inner_texts()[1:3])
        shown[price] = (bid, ask)
    t = (
        open_query_connection(dashboard_db["db"])
        .execute(
            "SELECT price, size, coalesce(inferred_side, exchange_side, 0) AS side FROM raw_trades "
            "WHERE ts_ms >= ? AND ts_ms < ?",
            [minute, minute + MIN],
        )
        .fetchnumpy()
    )
    k = np.floor(np.round(t["price"] / tick) / 25).astype(np.int64)
    want: dict[float, list[float]] = {}
    for kk, s, side in zip(k, t["size"], t["side"], strict=True):
        cell = want.setdefault(round(int(kk) * 25 * tick, 6), [0.0, 0.0])
        if side < 0:
            cell[0] += float(s)
        elif side > 0:
            cell[1] += float(s)
    assert shown.keys() == want.keys()
    for p, (b, a) in want.items():
        assert shown[p] == pytest.approx((b, a), abs=0.0011)  # shown with 3 decimals
    _shot(page, "trading-footprint")
    page.get_by_test_id("footprint").click()
    _no_errors(page)


def test_backtests_view_and_a_trade_linked_to_the_chart(
    page: Any, server: str, dashboard_db: dict[str, Any]
) -> None:
    page.goto(server + "/#backtests")
    page.wait_for_function("window.__at.ready.backtests === true", timeout=30_000)
    _no_errors(page)
    metrics = page.get_by_test_id("backtest-metrics").inner_text()
    assert "net_pnl" in metrics and "max_drawdown_pct" in metrics
    rows = page.get_by_test_id("backtest-trades").locator("tr.click")
    assert rows.count() > 0
    assert page.get_by_test_id("backtest-equity").locator("canvas").count() > 0
    _shot(page, "backtests")
    import json

    bt = json.loads(
        urllib.request.urlopen(f"{server}/api/backtests/{dashboard_db['backtest']}").read()
    )
    want = bt["trades"][0]["fill_ts_ms"] // MIN * MIN
    rows.nth(0).click()
    page.wait_for_function(
        f"window.__at.views.trading && window.__at.views.trading.selected === {want}",
        timeout=30_000,
    )
    assert page.evaluate("window.__at.views.trading.btSel.value") == dashboard_db["backtest"]
    assert page.evaluate("location.hash") == "#trading"
    # the trade's stop is drawn from its entry minute to its exit minute
    t0 = bt["trades"][0]
    segs = page.evaluate("window.__at.tradeLevels")
    stop = [s for s in segs if s["kind"] == "stop" and s["from"] == want // 1000]
    assert stop and stop[0]["price"] == t0["stop_initial"]
    assert stop[0]["to"] == t0["exit_ts_ms"] // MIN * MIN // 1000
    _shot(page, "trading-trade")
    _no_errors(page)


def test_sweep_table_sorts_filters_and_shows_statistics(
    page: Any, server: str, dashboard_db: dict[str, Any]
) -> None:
    page.goto(server + "/#sweeps")
    page.wait_for_function("window.__at.ready.sweeps === true", timeout=60_000)
    page.wait_for_function("window.__at.validation !== undefined", timeout=60_000)
    _no_errors(page)
    table = page.get_by_test_id("sweep-table")
    assert table.locator("tr[data-id]").count() == 12
    sorted_by = (
        "window.__at.sweepPage.sort === 'metric.n_trades' && window.__at.sweepPage.order === '{}'"
    )
    page.locator('th[data-col="metric.n_trades"]').click()
    page.wait_for_function(sorted_by.format("desc"))
    col = page.evaluate("window.__at.sweepPage.rows.map(r => r['metric.n_trades'])")
    assert col == sorted(col, reverse=True) and len(col) == 12
    # what the trader sees: the column's cells, in the table's order
    idx = page.evaluate(
        "[...document.querySelectorAll('[data-testid=sweep-table] th')]"
        ".findIndex(th => th.dataset.col === 'metric.n_trades')"
    )
    cells = page.locator(f"[data-testid=sweep-table] tr[data-id] td:nth-child({idx + 1})")
    assert [float(x) for x in cells.all_inner_texts()] == col
    page.locator('th[data-col="metric.n_trades"]').click()
    page.wait_for_function(sorted_by.format("asc"))
    col = page.evaluate("window.__at.sweepPage.rows.map(r => r['metric.n_trades'])")
    assert col == sorted(col)
    page.get_by_test_id("sweep-filter").fill("param.accept_outside_k=2")
    page.get_by_test_id("sweep-filter").press("Enter")
    page.wait_for_function("window.__at.sweepPage.total === 4")
    assert page.get_by_test_id("sweep-count").inner_text().startswith("4 rows")
    assert page.locator("[data-stat='PBO'], [data-stat='winner DSR']").count() >= 1
    assert page.locator(".plots img").count() >= 1
    table.locator("tr[data-id]").first.click()
    page.wait_for_function("window.__at.equity !== undefined")
    assert page.get_by_test_id("sweep-equity").locator("canvas").count() > 0
    page.get_by_test_id("sens-k2").select_option("max_hold_minutes")
    page.wait_for_function("document.querySelector('[data-testid=sens-matrix]') !== null")
    _shot(page, "sweeps")
    _no_errors(page)


def test_first_chart_with_seven_days_of_minutes(page: Any, server: str) -> None:
    """Navigation to the first drawn chart with the widest span (5 stored days here: the
    7-day figure is `make bench`'s)."""
    page.goto(server + "/#trading")
    page.wait_for_function("window.__at.ready.trading === true", timeout=30_000)
    last_day = page.evaluate(
        "[...document.querySelectorAll('[data-testid=day] option')].pop().value"
    )
    page.get_by_test_id("day").select_option(last_day)
    page.get_by_test_id("span").select_option("7")
    page.wait_for_function("window.__at.views.trading.data.ts.length === 5 * 1440", timeout=30_000)
    _no_errors(page)
    _shot(page, "trading-7d")


def test_a_late_answer_for_an_earlier_choice_does_not_replace_the_chart(
    page: Any, server: str
) -> None:
    """The user picks a day, then at once a wider span: the first (1-day) answer arriving
    after the second must not replace the 7-day chart (before: it did when the answers
    crossed, and the chart showed one day under a "7 days" selector)."""
    page.goto(server + "/#trading")
    page.wait_for_function("window.__at.ready.trading === true", timeout=30_000)
    # the page is shared by this module's tests: start from a 1-day span
    page.get_by_test_id("span").select_option("1")
    page.wait_for_function("window.__at.views.trading.data.ts.length === 1440", timeout=30_000)
    held: list[Any] = []

    def hold_one_day(route: Any) -> None:
        q = route.request.url.split("?", 1)[-1]
        params = dict(kv.split("=", 1) for kv in q.split("&") if "=" in kv)
        span = int(params.get("end", 0)) - int(params.get("start", 0))
        if span == 86_400_000 and not held:
            held.append(route)  # answered later, after the 7-day one
        else:
            route.continue_()

    page.route("**/api/minutes?*", hold_one_day)
    days = page.evaluate(
        "[...document.querySelectorAll('[data-testid=day] option')].map(o => o.value)"
    )
    page.get_by_test_id("day").select_option(days[-2])
    for _ in range(100):  # the route handler runs while playwright waits
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the 1-day request was not seen"
    page.get_by_test_id("span").select_option("7")
    page.wait_for_function("window.__at.views.trading.data.ts.length > 1440", timeout=30_000)
    n = page.evaluate("window.__at.views.trading.data.ts.length")
    held[0].continue_()
    page.wait_for_timeout(1500)
    assert page.evaluate("window.__at.views.trading.data.ts.length") == n
    assert page.evaluate("window.__at.views.trading.candles.data().length") == n
    _no_errors(page)
