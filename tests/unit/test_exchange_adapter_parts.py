"""Pure parts of the exchange adapter: how a failed send is classified, and the account
view's handling of duplicated, reordered and funding events."""

from __future__ import annotations

import http.client
from decimal import Decimal
from typing import Any

import pytest
import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from at_core.exchange.sends import AMBIGUOUS, NOT_SENT, classify
from at_core.exchange.streams import Stream
from at_core.exchange.view import AccountView


def invalid(code: int) -> InvalidRequestError:
    return InvalidRequestError(
        request="POST /v5/order/create", message="m", status_code=code, time="t", resp_headers={}
    )


def failed(code: int, msg: str) -> FailedRequestError:
    return FailedRequestError(
        request="POST /v5/order/create", message=msg, status_code=code, time="t", resp_headers=None
    )


def refused() -> requests.exceptions.ConnectionError:
    reason = NewConnectionError(
        None, "Failed to establish a new connection: [Errno 111] Connection refused"
    )  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/v5/order/create", reason))  # type: ignore[arg-type]


def reset_after_send() -> requests.exceptions.ConnectionError:
    inner = ProtocolError("Connection aborted.", http.client.RemoteDisconnected("closed"))
    return requests.exceptions.ConnectionError(inner)


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (invalid(110007), NOT_SENT),  # the exchange refused it
        (invalid(110072), NOT_SENT),  # a duplicate link id: refused
        (invalid(10016), AMBIGUOUS),  # internal error: may have been executed
        (failed(400, "Bad Request. Retries exceeded maximum."), NOT_SENT),  # refused every try
        (failed(502, "HTTP status code is not 200."), AMBIGUOUS),
        (refused(), NOT_SENT),  # never connected
        (requests.exceptions.ConnectTimeout("connect timeout"), NOT_SENT),
        (reset_after_send(), AMBIGUOUS),  # the request was written, the answer lost
        (requests.exceptions.ReadTimeout("read timeout"), AMBIGUOUS),
        (ValueError("Expecting value: line 1 column 1"), AMBIGUOUS),  # unreadable answer
    ],
)
def test_send_outcomes(exc: BaseException, outcome: str) -> None:
    assert classify(exc)[0] == outcome


def test_unknown_exceptions_are_not_swallowed() -> None:
    with pytest.raises(KeyError):
        classify(KeyError("a bug in the caller"))


def order(oid: str, status: str, updated: int, cum: str) -> dict[str, Any]:
    return {"orderId": oid, "orderStatus": status, "updatedTime": str(updated), "cumExecQty": cum}


def test_order_rows_never_go_back_in_time() -> None:
    v = AccountView()
    assert v.apply_order(order("a", "New", 10, "0"))
    assert v.apply_order(order("a", "Filled", 20, "0.010"))
    assert not v.apply_order(order("a", "New", 10, "0"))  # a late New
    assert not v.apply_order(order("a", "PartiallyFilled", 20, "0.005"))  # same time, less filled
    assert v.orders["a"]["orderStatus"] == "Filled" and not v.open_orders()


def execution(
    eid: str, side: str, qty: str, kind: str = "Trade", fee: str = "0.1"
) -> dict[str, Any]:
    return {
        "execId": eid,
        "side": side,
        "execQty": qty,
        "execType": kind,
        "execFee": fee,
        "execTime": "5",
    }


def test_executions_once_and_funding_is_not_a_fill() -> None:
    v = AccountView(ledger_size=Decimal(0))
    assert v.apply_execution(execution("e1", "Buy", "0.010"))
    assert not v.apply_execution(execution("e1", "Buy", "0.010"))  # duplicated
    assert v.apply_execution(execution("f1", "Buy", "0.010", "Funding", "0.02"))
    assert v.ledger_size == Decimal("0.010") and v.funding_paid == Decimal("0.02")
    v.apply_position({"side": "Buy", "size": "0.015", "seq": 3, "entryPrice": "42000"})
    assert v.position["avgPrice"] == "42000"  # the WS name stored as REST's
    assert v.mismatch() == {"exchange": "0.015", "fills_imply": "0.010", "difference": "0.005"}
    assert not v.apply_position({"side": "Buy", "size": "0.010", "seq": 2})  # older
    assert v.seen("m1") is False and v.seen("m1") is True


def test_a_callback_never_raises() -> None:
    got: list[tuple[str, dict[str, Any]]] = []
    s = Stream(
        "public",
        None,
        lambda ws: None,
        lambda k, d: got.append((k, d)),
        watched=("orderbook.1.BTCUSDT",),
    )
    s._on_message("not a dict")  # type: ignore[arg-type]
    s._on_message({"topic": "orderbook.1.BTCUSDT", "type": "snapshot", "data": {"u": 5}})
    s._on_message({"topic": "orderbook.1.BTCUSDT", "type": "snapshot", "data": {"u": 9}})
    assert s.callback_errors == 1
    assert [k for k, _ in got] == ["public", "book_gap", "public"]  # the gap, then the message
    s._on_message({"op": "auth", "success": False, "ret_msg": "Invalid sign"})
    assert s.failed.is_set() and "auth refused" in s.failure
