"""Live mode's order manager against the loopback simulator (real adapter, unmodified
pybit): every order once per decision, across restarts, and a stop the market is already
through. The evidence is the simulator's own list of orders and its position."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from at_core.exchange.adapter import BybitAdapter
from at_core.exchange.testing import SimProcess
from at_core.live.orders import LiveOrders, OrderState
from tests.exchange.test_adapter import flat, settle

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def ad(sim: SimProcess) -> Iterator[BybitAdapter]:
    a = BybitAdapter(sim.rest, sim.ws_base, sim.api_key, sim.api_secret, resolve_wait_s=0.05)
    a.start()
    assert a.wait_ready(30), "streams not up"
    yield a
    a.stop()
    flat(sim, a)


class Calls:
    def __init__(self) -> None:
        self.reports: list[tuple[str, dict[str, Any]]] = []
        self.halts: list[str] = []
        self.alerts: list[str] = []

    def manager(self, ad: BybitAdapter, db: Path, state: OrderState | None = None) -> LiveOrders:
        con = sqlite3.connect(str(db), check_same_thread=False)
        return LiveOrders(
            ad, con, {"limit_order_timeout_minutes": 1},
            lambda k, a: self.reports.append((k, a)) is None,
            self.halts.append, state, alert=self.alerts.append,
        )  # fmt: skip


def _entry(sim: SimProcess, side: str = "LONG", away: float = 0.2) -> dict[str, Any]:
    """A limit entry resting ``away`` (fraction) from the market, so it stays open."""
    bid = float(sim.state()["bid"])
    price = round(bid * (1 - away if side == "LONG" else 1 + away), 1)
    return {"side": side, "qty": 0.01, "limit_price": price, "stop": price * 0.99, "tp1_qty": 0.0}


def _links(sim: SimProcess) -> list[str]:
    return [o["orderLinkId"] for o in sim.state()["order_list"] if o["orderLinkId"]]


def test_a_decision_repeated_after_a_restart_is_sent_once(
    sim: SimProcess, ad: BybitAdapter, tmp_path: Path
) -> None:
    calls = Calls()
    db = tmp_path / "execution.db"
    before = set(_links(sim))
    decision = [{"ts_min": 1_704_067_500_000, "entry": _entry(sim)}]
    first = calls.manager(ad, db)
    first.on_decided(decision, {"position": None}, None)
    sent = set(_links(sim)) - before
    assert len(sent) == 1
    # the same process again (a restarted signals actor re-sends the minute)
    first.on_decided(decision, {"position": None}, None)
    # a restarted execution actor whose snapshot predates the send: adopts, sends nothing
    second = calls.manager(ad, db, OrderState())
    adopted = second.adopt_intents()
    assert len(adopted) == 1 and adopted[0].startswith(next(iter(sent)))
    assert second.open_links() == sent
    second.on_decided(decision, {"position": None}, None)
    assert set(_links(sim)) - before == sent, "an order was sent twice"
    assert not calls.halts and not [r for r in calls.reports if r[0] == "entry_end"]


def test_an_intent_that_never_reached_the_exchange_halts(
    sim: SimProcess, ad: BybitAdapter, tmp_path: Path
) -> None:
    calls = Calls()
    db = tmp_path / "execution.db"
    calls.manager(ad, db)  # creates the tables
    con = sqlite3.connect(str(db))
    with con:
        con.execute(
            "INSERT INTO live_intents VALUES ('1:entry', 'never-sent-1', 'entry', 'Buy', 0.01, "
            "40000, 1, NULL, 0, NULL)"
        )
    con.close()
    m = calls.manager(ad, db, OrderState())
    m.adopt_intents()
    assert calls.halts and "never-sent-1" in calls.halts[0]
    assert "never-sent-1" not in m.open_links()


def test_a_stop_the_market_is_through_closes_at_market(
    sim: SimProcess, ad: BybitAdapter, tmp_path: Path
) -> None:
    calls = Calls()
    m = calls.manager(ad, tmp_path / "execution.db")
    e = {**_entry(sim), "limit_price": None}  # a market entry: the position opens at once
    m.on_decided([{"ts_min": 1_704_067_560_000, "entry": e}], {"position": None}, None)
    sim.advance(sim.state()["market_ms"] + 1_000)
    for ev in settle(ad, 1.5):
        if ev.kind == "fill":
            m.on_execution(ev.data["execution"], False)
    assert float(ad.view.position_size()) == pytest.approx(0.01)
    last = float(sim.state()["last"])
    # a long's stop above the last price: the exchange refuses it as already triggered
    m._protect(last + 50.0, None)
    sim.advance(sim.state()["market_ms"] + 1_000)
    for ev in settle(ad, 1.5):
        if ev.kind == "fill":
            m.on_execution(ev.data["execution"], False)
    assert sim.state()["position"]["size"] in ("0", "0.000"), sim.state()["position"]
    assert [k for k, a in calls.reports if k == "exit_fill" and a["kind"] == "stop"]
    assert any("already through" in a for a in calls.alerts), calls.alerts
    assert not calls.halts, calls.halts


def test_protecting_a_position_the_exchange_already_closed_does_not_halt(
    sim: SimProcess, ad: BybitAdapter, tmp_path: Path
) -> None:
    """A stop or target fired on the exchange while a decision carrying the open position
    was on its way: the exchange refuses a stop for a zero position. That is not an
    unexplained state (the execution follows), so no halt; the position check would halt
    on a real difference."""
    calls = Calls()
    m = calls.manager(ad, tmp_path / "execution.db")
    assert float(ad.view.position_size()) == 0.0
    m._protect(40_000.0, None)
    assert not calls.halts, calls.halts
    assert m.st.stop_set is None


def _fills(ad: BybitAdapter, m: LiveOrders) -> None:
    """Report this manager's executions (the shared simulator has other tests' too)."""
    for ev in settle(ad, 1.5):
        if ev.kind == "fill" and ev.data["execution"].get("orderLinkId") in m.st.orders:
            m.on_execution(ev.data["execution"], False)


def test_an_entry_filled_before_the_kernels_cancel_arrived_is_booked_not_halted(
    sim: SimProcess, ad: BybitAdapter, tmp_path: Path
) -> None:
    """The kernel cancels its working entry (permission withdrawn, kill switch) while the
    exchange fills it, or the graph was down when it filled. The fill is reported against
    the cancelled order (by its decision minute), no end is reported for a full fill, and
    nothing halts; an entry the cancel caught unfilled is reported ended. Before: the
    driver refused the fill and trading halted (a CI run of the live soak)."""
    calls = Calls()
    m = calls.manager(ad, tmp_path / "execution.db")
    decided = 1_704_067_620_000
    e = _entry(sim, away=-0.01)  # a buy limit above the market: it fills
    m.on_decided([{"ts_min": decided, "entry": e}], {"position": None}, None)
    sim.advance(sim.state()["market_ms"] + 1_000)
    m.on_decided([{"ts_min": decided + 60_000, "cancel_entry": True}], {"position": None}, None)
    _fills(ad, m)
    fills = [a for k, a in calls.reports if k == "entry_fill"]
    assert fills and all(a["order_ts_min"] == decided for a in fills), calls.reports
    assert sum(a["qty"] for a in fills) == pytest.approx(0.01)
    assert not [r for r in calls.reports if r[0] == "entry_end"], calls.reports
    assert not calls.halts, calls.halts
    assert m.st.cancelled == []
    flat(sim, ad)

    # resting when the cancel comes: ended, nothing filled
    calls.reports.clear()
    later = decided + 600_000
    m.on_decided([{"ts_min": later, "entry": _entry(sim)}], {"position": None}, None)
    m.on_decided([{"ts_min": later + 60_000, "cancel_entry": True}], {"position": None}, None)
    _fills(ad, m)
    assert [(k, a["order_ts_min"]) for k, a in calls.reports] == [("entry_end", later)]
    assert not calls.halts, calls.halts


def test_a_limit_filled_just_before_its_timeout_is_not_bought_again_at_market(
    sim: SimProcess, ad: BybitAdapter, tmp_path: Path
) -> None:
    """At the limit's timeout the rest goes at market. What filled is asked of the exchange,
    not read from the WebSocket's view, which may not have the fill yet: otherwise the
    whole quantity would be bought twice."""
    calls = Calls()
    m = calls.manager(ad, tmp_path / "execution.db")
    decided = 1_704_068_820_000
    before = set(_links(sim))
    m.on_decided([{"ts_min": decided, "entry": _entry(sim, away=-0.01)}], {"position": None}, None)
    sim.advance(sim.state()["market_ms"] + 1_000)
    m.on_decided([], {"position": None}, decided + 60_000)  # the timeout, events not read yet
    _fills(ad, m)
    assert len(set(_links(sim)) - before) == 1, "a market order followed a filled limit"
    assert float(ad.view.position_size()) == pytest.approx(0.01)
    assert not calls.halts, calls.halts
