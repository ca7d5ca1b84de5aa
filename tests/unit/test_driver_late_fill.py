"""An entry the kernel cancelled that the exchange filled anyway (the cancel raced the
fill, or the graph was down when it filled), through the Python driver the live graph
uses: the fill opens the position its order would have opened and the trade closes
normally; the trade table's columns are the list Rust declares."""

from __future__ import annotations

import at_core._core as _core
from at_core.backtest.stream import StreamingDriver
from at_core.config import load_settings
from tests.unit.test_driver_cash_sync import HOUR, TRADY
from tests.unit.test_driver_permission import _cut, _day
from tests.unit.test_driver_snapshot import DAY0, M


def test_a_cancelled_entry_filled_by_the_exchange_opens_and_closes_its_trade() -> None:
    t, q = _day()
    d = StreamingDriver(load_settings(overrides=TRADY), fills="exchange")
    step = 5 * M
    at = DAY0
    entry = None
    while entry is None:
        got = d.push(_cut(t, at, at + step), _cut(q, at, at + step))
        at += step
        entry = next((o for o in got["orders"] if o.get("entry")), None)
        assert at < DAY0 + 24 * HOUR, "the generated day must enter for this test to mean anything"
    decided = int(entry["ts_min"])
    d.set_permission("blocked")
    got = d.push(_cut(t, at, at + step), _cut(q, at, at + step))
    at += step
    assert any(o.get("cancel_entry") for o in got["orders"]), got["orders"]
    assert d.state()["position"] is None
    # the exchange had filled it: booked against the cancelled order, by its decision minute
    e = entry["entry"]
    price = float(e["limit_price"] or e["stop"])
    assert d.entry_fill(at - step + 1_000, price, float(e["qty"]), 0.5, True, order_ts_min=decided)
    pos = d.state()["position"]
    assert pos is not None and pos["stop"] == e["stop"]
    assert d.halted is None
    # the stop fills on the exchange: a whole trade
    assert d.exit_fill("stop", at, float(e["stop"]), float(e["qty"]), 0.5)
    trades = d.trades_since(0)
    assert sorted(trades) == sorted(_core.backtest_trade_columns())
    assert len(trades["entry_price"]) == 1 and trades["entry_price"][0] == price
