"""The exchange adapter against the loopback exchange: start-up facts, sends classified and
resolved (never sent twice), every fault of the simulator recovered or reported."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from at_core.exchange.adapter import BybitAdapter, Event
from at_core.exchange.sends import NOT_SENT, SENT
from at_core.exchange.testing import SimProcess

from .conftest import MARKET


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with SimProcess(*MARKET, "--paused", "--balance", "100000") as s:
        s.advance(int(s.info["first_ms"]) + 5 * 60_000)
        yield s


@pytest.fixture
def ad(sim: SimProcess) -> Iterator[BybitAdapter]:
    a = BybitAdapter(
        sim.rest,
        sim.ws_base,
        sim.api_key,
        sim.api_secret,
        stall_after_s=4.0,
        backoff_start_s=0.2,
        resolve_wait_s=0.05,
    )
    a.start()
    assert a.wait_ready(30), "streams not up"
    wait_events(a, lambda evs: any(e.kind == "public" for e in evs))
    yield a
    a.stop()
    flat(sim, a)


def flat(sim: SimProcess, a: BybitAdapter) -> None:
    """Leave the shared account flat with nothing open for the next test."""
    a.cancel_all()
    pos = a.http.get_positions(category="linear", symbol="BTCUSDT")[0]["result"]["list"][0]
    if pos["side"]:
        back = "Sell" if pos["side"] == "Buy" else "Buy"
        a.place_order(back, pos["size"], reduce_only=True)
        sim.advance(sim.state()["market_ms"] + 1_000)


def wait_events(a: BybitAdapter, pred: Any, timeout: float = 15.0) -> list[Event]:
    """Drain events until ``pred(all events so far)`` holds."""
    got: list[Event] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got += a.drain(timeout=0.1)
        if pred(got):
            return got
    info = [(e.kind, e.data) for e in got if e.kind not in ("public", "private")]
    raise AssertionError(f"not seen in {timeout} s; events: {info}")


def settle(a: BybitAdapter, seconds: float = 1.0) -> list[Event]:
    """Every event for ``seconds`` (messages of one batch may still be on their way)."""
    got: list[Event] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got += a.drain(timeout=0.05)
    return got


def exchange_orders(sim: SimProcess, a: BybitAdapter, link: str) -> list[dict[str, Any]]:
    return list(
        a.http.get_order_history(category="linear", symbol="BTCUSDT", orderLinkId=link)[0][
            "result"
        ]["list"]
    )


def kinds(evs: list[Event], kind: str) -> list[Event]:
    return [e for e in evs if e.kind == kind]


def test_start_up_loads_facts_and_state(ad: BybitAdapter) -> None:
    assert ad.inst.tick_size == Decimal("0.10") and ad.inst.qty_step == Decimal("0.001")
    assert ad.inst.min_notional == Decimal("5")
    assert (ad.taker_fee, ad.maker_fee) == (Decimal("0.00055"), Decimal("0.0002"))
    assert abs(ad.clock_offset_ms) < 500
    assert ad.view.ledger_size == ad.view.position_size()
    assert ad.view.balance() > 0
    a, b = ad.new_link_id(), ad.new_link_id()
    assert a != b and len(a) <= 36


def test_market_order_fill_reaches_the_view(sim: SimProcess, ad: BybitAdapter) -> None:
    res = ad.place_order("Buy", 0.0123456)  # quantised down to the step
    assert res.outcome == SENT and res.order_id
    assert exchange_orders(sim, ad, res.link_id)[0]["qty"] == "0.012"
    sim.advance(sim.state()["market_ms"] + 1_000)
    evs = wait_events(ad, lambda e: any(x.kind == "fill" for x in e))
    fill = kinds(evs, "fill")[0].data["execution"]
    assert fill["orderLinkId"] == res.link_id and fill["execQty"] == "0.012"
    settle(ad)
    assert ad.view.position_size() == Decimal("0.012") and ad.view.mismatch() is None


def test_lost_response_is_resolved_by_link_id_and_never_resent(
    sim: SimProcess, ad: BybitAdapter
) -> None:
    sim.fault("lose_response", n=1, path="order/create")
    bid = float(sim.state()["bid"])
    res = ad.place_order("Buy", 0.001, "Limit", bid - 700)
    assert res.outcome == SENT and res.resolved_by_query
    assert len(exchange_orders(sim, ad, res.link_id)) == 1  # exactly one order at the exchange
    assert len([s for s in ad.sends if s.link_id == res.link_id]) == 1  # sent once
    # an internal error (10016) where the exchange did NOT create it: resolved as not sent
    sim.fault("ret_code", code=10016, n=1, path="order/create")
    res = ad.place_order("Buy", 0.001, "Limit", bid - 700)
    assert res.outcome == NOT_SENT and res.resolved_by_query
    assert exchange_orders(sim, ad, res.link_id) == []


def test_refusals_and_pybit_retries(sim: SimProcess, ad: BybitAdapter) -> None:
    sim.fault("ret_code", code=110007, n=1, path="order/create")
    res = ad.place_order("Buy", 0.001)
    assert res.outcome == NOT_SENT and res.ret_code == 110007 and not res.resolved_by_query
    sim.fault("ret_code", code=10006, n=1, path="order/create", reset_ms=200)
    assert ad.place_order("Sell", 0.001, "Limit", float(sim.state()["ask"]) + 900).outcome == SENT
    sim.fault("ret_code", code=10002, n=1, path="order/create")
    assert ad.place_order("Sell", 0.001, "Limit", float(sim.state()["ask"]) + 901).outcome == SENT
    assert ad.cancel_all().outcome == SENT
    lev = ad.set_leverage(10)  # unchanged: 110043 is harmless
    assert lev.outcome == SENT and lev.ret_code == 110043


def test_rate_limit_headers_are_respected(sim: SimProcess, ad: BybitAdapter) -> None:
    ask = float(sim.state()["ask"])
    t = time.monotonic()
    for i in range(14):  # 10 per second at the exchange: the adapter waits, pybit never sees 10006
        assert ad.place_order("Sell", 0.001, "Limit", ask + 1000 + i).outcome == SENT
    assert time.monotonic() - t > 0.3
    assert all(s.ret_code != 10006 for s in ad.sends)
    ad.cancel_all()


def test_events_before_the_ack_duplicates_and_reordering(sim: SimProcess, ad: BybitAdapter) -> None:
    sim.fault("delay_ack", n=1, ms=300, path="order/create")
    sim.fault("duplicate_private", n=3)
    sim.fault("reorder_private", n=3)
    res = ad.place_order("Buy", 0.005)
    assert res.outcome == SENT
    sim.advance(sim.state()["market_ms"] + 1_000)
    evs = wait_events(
        ad, lambda e: any(x.kind == "fill" for x in e) and any(x.kind == "duplicate" for x in e)
    )
    assert len(kinds(evs, "fill")) == 1  # a duplicated execution is one fill
    settle(ad)
    order = next(o for o in ad.view.orders.values() if o["orderLinkId"] == res.link_id)
    assert order["orderStatus"] == "Filled"  # a reordered New never overwrites Filled
    assert ad.view.position_size() == Decimal(sim.state()["position"]["size"])


def test_fill_during_an_abort_is_recovered_by_the_resync(sim: SimProcess, ad: BybitAdapter) -> None:
    sim.fault("ws_abort", scope="private")
    res = ad.place_order("Buy", 0.002)  # filled while the private socket is down
    sim.advance(sim.state()["market_ms"] + 1_000)
    evs = wait_events(
        ad, lambda e: any(x.kind == "reconnected" for x in e) and any(x.kind == "resync" for x in e)
    )
    evs += settle(ad)
    fills = [e for e in kinds(evs, "fill") if e.data["execution"]["orderLinkId"] == res.link_id]
    assert len(fills) == 1
    assert ad.view.position_size() == Decimal(sim.state()["position"]["size"])


def test_close_frame_reconnects(sim: SimProcess, ad: BybitAdapter) -> None:
    sim.fault("ws_close", scope="all")
    evs = wait_events(ad, lambda e: len(kinds(e, "reconnected")) >= 2)
    assert {e.data["stream"] for e in kinds(evs, "reconnected")} == {"public", "private"}
    assert kinds(evs, "disconnected")
    wait_events(ad, lambda e: any(x.kind == "public" for x in e))


def test_stall_is_detected_within_10_s(sim: SimProcess, ad: BybitAdapter) -> None:
    t = time.monotonic()
    sim.fault("ws_stall", scope="public", seconds=60, pings=True)
    evs = wait_events(ad, lambda e: any(x.kind == "stall" for x in e), timeout=12)
    assert time.monotonic() - t <= 10.0
    assert kinds(evs, "stall")[0].data["topic"] == "orderbook.1.BTCUSDT"
    wait_events(
        ad, lambda e: any(x.kind == "reconnected" for x in e) and any(x.kind == "public" for x in e)
    )


def test_deaf_private_socket_is_replaced(sim: SimProcess, ad: BybitAdapter) -> None:
    sim.fault("ws_stall", scope="private", seconds=60, pings=False)
    evs = wait_events(
        ad,
        lambda e: any(x.kind == "reconnected" and x.data["stream"] == "private" for x in e),
        timeout=20,
    )
    assert any(e.kind == "disconnected" and e.data["stream"] == "private" for e in evs)


def test_refused_connections_back_off_then_recover(sim: SimProcess, ad: BybitAdapter) -> None:
    sim.fault("refuse", seconds=2.5)
    evs = wait_events(
        ad, lambda e: len({x.data["stream"] for x in kinds(e, "reconnected")}) == 2, timeout=30
    )
    waits = [
        e.data["retry_in_s"] for e in kinds(evs, "disconnected") if e.data["stream"] == "public"
    ]
    assert waits == sorted(waits) and max(waits) <= 60  # exponential, capped
    assert any("connect failed" in e.data["why"] for e in kinds(evs, "disconnected"))


def test_book_gap_triggers_a_resync(sim: SimProcess, ad: BybitAdapter) -> None:
    settle(ad, 0.3)
    sim.fault("book_gap", jump=250)
    sim.advance(sim.state()["market_ms"] + 2_000)
    evs = wait_events(
        ad, lambda e: any(x.kind == "book_gap" for x in e) and any(x.kind == "resync" for x in e)
    )
    gap = kinds(evs, "book_gap")[0].data
    assert gap["to_u"] - gap["from_u"] > 250
    assert int(ad.book["u"]) >= gap["to_u"]


def test_position_changed_behind_our_back_is_reported_not_fixed(
    sim: SimProcess, ad: BybitAdapter
) -> None:
    before = ad.view.position_size()
    sim.fault("position_drift", qty="0.004", notify=False)
    summary = ad.resync()
    assert summary["mismatch"]["difference"] == "0.004"
    evs = wait_events(ad, lambda e: any(x.kind == "alert" for x in e))
    assert kinds(evs, "alert")[0].data["what"] == "position mismatch"
    assert ad.view.position_size() == before + Decimal("0.004")  # the exchange's truth shown
    assert Decimal(sim.state()["position"]["size"]) == abs(before + Decimal("0.004"))  # untouched
    sim.fault("position_drift", qty="-0.004", notify=False)


def test_funding_is_not_a_fill(sim: SimProcess, ad: BybitAdapter) -> None:
    ad.place_order("Buy", 0.010)
    sim.advance(sim.state()["market_ms"] + 1_000)
    wait_events(ad, lambda e: any(x.kind == "fill" for x in e))
    ledger = ad.view.ledger_size
    sim.fault("funding", rate=0.0005)
    evs = wait_events(ad, lambda e: any(x.kind == "funding" for x in e))
    assert not kinds(evs, "fill")
    assert ad.view.ledger_size == ledger and ad.view.funding_paid > 0
