"""Property: random sequences of order commands and faults never leave the adapter's view
of orders, position and balance different from the simulator's after a resync, and no fill
is lost (the position the adapter's fills imply equals the exchange's)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from at_core.exchange.adapter import BybitAdapter
from at_core.exchange.testing import SimProcess

MARKET = ("--seed", "3", "--from", "2024-01-01T00:00", "--to", "2024-01-01T06:00")
FAULTS = [
    {"kind": "duplicate_private", "n": 3},
    {"kind": "reorder_private", "n": 2},
    {"kind": "ws_abort", "scope": "private"},
    {"kind": "lose_response", "n": 1, "path": "order/create"},
    {"kind": "delay_ack", "n": 1, "ms": 100, "path": "order/create"},
    {"kind": "ret_code", "code": 10016, "n": 1, "path": "order/create"},
]
step = st.one_of(
    st.tuples(st.just("market"), st.sampled_from(["Buy", "Sell"]), st.integers(1, 6)),
    st.tuples(st.just("limit"), st.sampled_from(["Buy", "Sell"]), st.integers(1, 3)),
    st.tuples(st.just("cancel"), st.just(""), st.integers(0, 5)),
    st.tuples(st.just("advance"), st.just(""), st.integers(100, 20_000)),
    st.tuples(st.just("fault"), st.just(""), st.integers(0, len(FAULTS) - 1)),
)


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[SimProcess, BybitAdapter]]:
    with SimProcess(
        *MARKET, "--paused", "--balance", "100000", "--order-rate-limit", "1000"
    ) as sim:
        sim.advance(int(sim.info["first_ms"]) + 60_000)
        ad = BybitAdapter(
            sim.rest,
            sim.ws_base,
            sim.api_key,
            sim.api_secret,
            backoff_start_s=0.1,
            resolve_wait_s=0.05,
        )
        ad.start()
        assert ad.wait_ready(30), "streams not up"
        yield sim, ad
        ad.stop()


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(step, min_size=3, max_size=10))
def test_view_matches_the_exchange_after_resync(
    env: tuple[SimProcess, BybitAdapter], steps: list[tuple[str, str, int]]
) -> None:
    sim, ad = env
    for kind, side, n in steps:
        if kind == "market":
            ad.place_order(side, n / 1000)
        elif kind == "limit":
            book = sim.state()
            px = float(book["bid"]) - 50 * n if side == "Buy" else float(book["ask"]) + 50 * n
            ad.place_order(side, n / 1000, "Limit", px)
        elif kind == "cancel":
            live = ad.view.open_orders()
            if live:
                ad.cancel_order(order_id=live[n % len(live)]["orderId"])
        elif kind == "advance":
            sim.advance(sim.state()["market_ms"] + n)
        else:
            sim.fault(**FAULTS[n])
        ad.drain()
    sim.advance(sim.state()["market_ms"] + 1_000)  # every accepted order has met a quote
    time.sleep(0.3)
    assert ad.wait_ready(30), "a dropped socket did not come back"
    ad.drain(timeout=0.2)
    ad.resync()
    ad.drain()
    truth = sim.state()
    view_open = {o["orderId"]: o["orderStatus"] for o in ad.view.open_orders()}
    sim_open = {o["orderId"]: o["orderStatus"] for o in truth["open_orders"]}
    assert view_open == sim_open
    pos = truth["position"]
    size = Decimal(pos["size"]) * (-1 if pos["side"] == "Sell" else 1)
    assert ad.view.position_size() == size
    assert ad.view.ledger_size == size, "a fill was lost or counted twice"
    assert ad.view.balance() == Decimal(truth["wallet"]["totalWalletBalance"])
    execs = [e for e in ad.view.executions.values() if e["execType"] == "Trade"]
    assert (
        len({e["execId"] for e in execs})
        == len(execs)
        == truth["executions"]
        - sum(1 for e in ad.view.executions.values() if e["execType"] == "Funding")
    )
