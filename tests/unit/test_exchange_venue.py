"""The simulated venue's matching rules (at_core.exchange.venue), event by event."""

from __future__ import annotations

import pytest

from at_core.exchange.instrument import Instrument
from at_core.exchange.venue import Venue, VenueError

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC, a funding instant
P = 420_000  # 42,000.0 in ticks


def venue(balance: float = 1e6, leverage: int = 10) -> Venue:
    v = Venue(maker_fee=0.0002, taker_fee=0.00055, balance=balance, leverage=leverage)
    v.start(T0 + 1)
    v.on_quote(T0 + 10, P, 2000, P + 1, 3000)  # 2.000 bid, 3.000 ask
    v.drain()
    return v


def fills(v: Venue) -> list[tuple[str, str, bool]]:
    return [
        (e["execPrice"], e["execQty"], e["isMaker"])
        for e in v.executions
        if e["execType"] == "Trade"
    ]


def test_market_order_meets_the_next_quote_not_the_known_one() -> None:
    v = venue()
    o = v.create(1, "Market", 10, 0, "IOC", False, "m1")
    assert o.status == "New" and not fills(v)  # accepted, not filled on the quote it saw
    v.on_trade(T0 + 20, P + 5, 1)  # trades before the next quote do not fill it
    assert not fills(v)
    v.on_quote(T0 + 30, P + 2, 2000, P + 3, 3000)
    assert fills(v) == [("42000.30", "0.010", False)]
    assert o.status == "Filled" and v.pos.size == 10


def test_market_order_larger_than_the_touch_fills_in_parts() -> None:
    v = venue()
    o = v.create(1, "Market", 5000, 0, "IOC", False, "big")  # 5 BTC vs 3 at the ask
    v.on_quote(T0 + 30, P, 2000, P + 1, 3000)
    assert o.status == "PartiallyFilled" and o.cum_qty == 3000
    v.on_quote(T0 + 40, P + 1, 2000, P + 2, 1000)
    assert o.status == "PartiallyFilled" and o.cum_qty == 4000
    v.on_quote(T0 + 50, P + 2, 2000, P + 3, 9000)
    assert o.status == "Filled"
    assert fills(v) == [
        ("42000.10", "3.000", False),
        ("42000.20", "1.000", False),
        ("42000.30", "1.000", False),
    ]
    assert v.pos.size == 5000
    assert v.pos.avg == pytest.approx((42000.1 * 3 + 42000.2 + 42000.3) / 5)


def test_resting_limit_fills_on_a_trade_through_not_a_touch() -> None:
    v = venue()
    o = v.create(1, "Limit", 100, P - 10, "GTC", False, "l1")
    v.on_quote(T0 + 30, P, 2000, P + 1, 3000)  # arrival: not marketable, rests
    v.on_trade(T0 + 40, P - 10, 500)  # at the limit: a touch, queue unknown
    v.on_quote(T0 + 41, P - 11, 100, P - 10, 100)  # a crossing quote is not a fill either
    assert o.status == "New"
    v.on_trade(T0 + 50, P - 11, 1)  # through it
    assert fills(v) == [("41999.00", "0.100", True)]
    assert float(v.executions[-1]["execFee"]) == pytest.approx(41999.0 * 0.1 * 0.0002)


def test_marketable_limit_takes_the_touch_never_beyond_its_price() -> None:
    v = venue()
    o = v.create(1, "Limit", 10, P + 5, "GTC", False, "l2")
    v.on_quote(T0 + 30, P + 2, 2000, P + 3, 3000)
    assert fills(v) == [("42000.30", "0.010", False)] and o.status == "Filled"
    v2 = venue()
    o2 = v2.create(1, "Limit", 5000, P + 3, "GTC", False, "l3")
    v2.on_quote(T0 + 30, P + 2, 2000, P + 3, 1000)  # 1 BTC at the touch, then rests
    v2.on_quote(T0 + 40, P + 3, 2000, P + 4, 9000)  # the ask moved above the limit
    assert o2.cum_qty == 1000 and o2.status == "PartiallyFilled"
    v2.on_trade(T0 + 50, P + 2, 1)  # the rest fills by a trade through, as a maker
    assert o2.status == "Filled" and fills(v2)[-1] == ("42000.30", "4.000", True)


def test_post_only_ioc_and_fok() -> None:
    v = venue()
    po = v.create(1, "Limit", 10, P + 1, "PostOnly", False, "po")
    ioc = v.create(1, "Limit", 5000, P + 1, "IOC", False, "ioc")
    fok = v.create(-1, "Limit", 5000, P, "FOK", False, "fok")
    v.on_quote(T0 + 30, P, 2000, P + 1, 3000)
    assert po.status == "Cancelled" and po.reject_reason == "EC_PostOnlyWillTakeLiquidity"
    assert ioc.status == "Cancelled" and ioc.cum_qty == 3000
    assert fok.status == "Cancelled" and fok.cum_qty == 0


def test_reduce_only_refused_when_it_would_open_and_cut_to_the_position() -> None:
    v = venue()
    with pytest.raises(VenueError) as e:
        v.create(-1, "Market", 10, 0, "IOC", True, "r0")
    assert e.value.code == 110017
    v.create(1, "Market", 10, 0, "IOC", False, "open")
    v.on_quote(T0 + 30, P, 2000, P + 1, 3000)
    with pytest.raises(VenueError):
        v.create(1, "Market", 10, 0, "IOC", True, "r1")  # same side: would add
    r = v.create(-1, "Market", 50, 0, "IOC", True, "r2")
    assert r.qty == 10
    v.on_quote(T0 + 40, P, 2000, P + 1, 3000)
    assert v.pos.size == 0 and r.status == "Filled"


def test_link_id_unique_and_margin_checked() -> None:
    v = venue(balance=100.0, leverage=10)
    v.create(1, "Limit", 10, P - 100, "GTC", False, "dup")
    with pytest.raises(VenueError) as e:
        v.create(1, "Limit", 10, P - 100, "GTC", False, "dup")
    assert e.value.code == 110072
    with pytest.raises(VenueError) as e:
        v.create(1, "Market", 100, 0, "IOC", False, "toobig")  # 4,200 USDT at 10x > 100
    assert e.value.code == 110007


def test_exchange_held_stop_fills_at_the_triggering_trade() -> None:
    v = venue()
    v.create(1, "Market", 100, 0, "IOC", False, "e")
    v.on_quote(T0 + 30, P, 2000, P + 1, 3000)
    v.set_stop_loss(P - 50)
    v.on_trade(T0 + 40, P - 49, 1)
    assert v.pos.size == 100
    v.on_trade(T0 + 50, P - 53, 1)  # gapped through the level: the trade's price
    assert v.pos.size == 0 and fills(v)[-1] == ("41994.70", "0.100", False)
    stop = [o for o in v.orders.values() if o.stop_order_type == "StopLoss"]
    assert stop and stop[0].status == "Filled" and stop[0].reduce_only


def test_conditional_order_on_last_price() -> None:
    v = venue()
    o = v.create(-1, "Market", 10, 0, "IOC", False, "c", trigger_price=P - 20, trigger_direction=2)
    assert o.status == "Untriggered"
    v.on_quote(T0 + 30, P, 2000, P + 1, 3000)
    assert o.status == "Untriggered"
    v.on_trade(T0 + 40, P - 20, 1)
    assert o.status == "Filled" and fills(v) == [("41998.00", "0.010", False)]


def test_funding_at_the_instant_on_the_open_position_is_not_a_fill() -> None:
    v = venue()
    v.create(1, "Market", 1000, 0, "IOC", False, "f")
    v.on_quote(T0 + 30, P, 2000, P + 1, 3000)
    bal = v.balance
    v.on_quote(T0 + 8 * 3_600_000 + 5, P, 2000, P + 2, 3000)  # crosses 08:00
    fund = [e for e in v.executions if e["execType"] == "Funding"]
    assert len(fund) == 1 and fund[0]["execTime"] == str(T0 + 8 * 3_600_000)
    mark = (P + P + 1) / 2 * 0.1  # the mark before the 08:00 quote
    assert float(fund[0]["execFee"]) == pytest.approx(mark * 1.0 * 0.0001, rel=1e-9)
    assert v.balance == pytest.approx(bal - mark * 0.0001)
    assert v.pos.size == 1000


def test_decimal_strings_are_tick_exact() -> None:
    inst = Instrument()
    assert inst.price_ticks("42000.1") == 420001
    assert inst.price_str(420001) == "42000.10"
    assert inst.quantise_price(0.1 + 0.2 + 42000, side=1) == "42000.30"
    assert inst.quantise_qty(0.1 + 0.2) == "0.300"
    with pytest.raises(Exception, match=r"multiple of 0\.10"):
        inst.price_ticks("42000.05")
