"""The unmodified pybit client against the loopback exchange: every REST endpoint, both
WebSockets, and the authentication failures, over real sockets on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
import requests
import websocket
from pybit.exceptions import FailedRequestError, InvalidRequestError
from pybit.unified_trading import HTTP

from at_core.exchange.client import http_session
from at_core.exchange.testing import SimProcess

from .conftest import MARKET

LINEAR = {"category": "linear", "symbol": "BTCUSDT"}


def wait_for(pred: Any, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_public_rest(sim: SimProcess, http: HTTP) -> None:
    now = sim.state()["market_ms"]
    wall = int(http.get_server_time()["result"]["timeSecond"])
    assert abs(wall - time.time()) < 5  # the wall clock: pybit signs with it
    info = http.get_instruments_info(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert info["priceFilter"]["tickSize"] == "0.10"
    assert info["lotSizeFilter"]["qtyStep"] == "0.001"
    assert info["lotSizeFilter"]["minNotionalValue"] == "5"
    assert info["fundingInterval"] == 480
    book = http.get_orderbook(**LINEAR)["result"]
    assert float(book["b"][0][0]) < float(book["a"][0][0]) and book["ts"] <= now
    trades = http.get_public_trade_history(**LINEAR, limit=5)["result"]["list"]
    assert len(trades) == 5 and all(int(t["time"]) <= now for t in trades)
    assert [int(t["time"]) for t in trades] == sorted(
        (int(t["time"]) for t in trades), reverse=True
    )
    tick = http.get_tickers(**LINEAR)["result"]["list"][0]
    assert tick["bid1Price"] == book["b"][0][0] and tick["fundingRate"] == "0.0001"
    kl = http.get_kline(**LINEAR, interval="1", limit=3)["result"]["list"]
    assert len(kl) == 3 and int(kl[0][0]) <= now  # no minute from the future
    assert int(kl[0][0]) > int(kl[1][0])
    fh = http.get_funding_rate_history(**LINEAR)["result"]["list"]
    assert fh and all(int(r["fundingRateTimestamp"]) <= now for r in fh)
    with pytest.raises(InvalidRequestError) as e:
        http.get_kline(category="linear", symbol="ETHUSDT", interval="1")
    assert e.value.status_code == 10001 and "ETHUSDT" in e.value.message


def test_private_rest_order_life_cycle(sim: SimProcess, http: HTTP) -> None:
    bid = float(sim.state()["bid"])
    far = f"{bid - 500:.1f}"
    r = http.place_order(
        **LINEAR, side="Buy", orderType="Limit", qty="0.010", price=far, orderLinkId="life-1"
    )
    oid = r["result"]["orderId"]
    assert r["result"]["orderLinkId"] == "life-1"
    with pytest.raises(InvalidRequestError) as e:
        http.place_order(
            **LINEAR, side="Buy", orderType="Limit", qty="0.010", price=far, orderLinkId="life-1"
        )
    assert e.value.status_code == 110072
    with pytest.raises(InvalidRequestError) as e:
        http.place_order(**LINEAR, side="Buy", orderType="Limit", qty="0.0105", price=far)
    assert e.value.status_code == 10001 and "qty" in e.value.message
    sim.advance(sim.state()["market_ms"] + 2_000)
    open_ = http.get_open_orders(**LINEAR)["result"]["list"]
    assert [o["orderLinkId"] for o in open_] == ["life-1"] and open_[0]["orderStatus"] == "New"
    http.amend_order(**LINEAR, orderLinkId="life-1", price=f"{bid - 400:.1f}")
    got = http.get_open_orders(**LINEAR, orderId=oid)["result"]["list"][0]
    assert got["price"] == f"{bid - 400:.2f}"
    http.cancel_order(**LINEAR, orderId=oid)
    with pytest.raises(InvalidRequestError) as e:
        http.cancel_order(**LINEAR, orderId=oid)
    assert e.value.status_code == 110001
    hist = http.get_order_history(**LINEAR, orderLinkId="life-1")["result"]["list"]
    assert hist[0]["orderStatus"] == "Cancelled"
    for i in range(2):
        http.place_order(
            **LINEAR, side="Sell", orderType="Limit", qty="0.010", price=f"{bid + 900 + i:.1f}"
        )
    gone = http.cancel_all_orders(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert len(gone) == 2 and not http.get_open_orders(**LINEAR)["result"]["list"]


def test_private_rest_position_account(sim: SimProcess, http: HTTP) -> None:
    fee = http.get_fee_rates(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert (fee["takerFeeRate"], fee["makerFeeRate"]) == ("0.00055", "0.0002")
    with pytest.raises(InvalidRequestError) as e:
        http.set_leverage(**LINEAR, buyLeverage="10", sellLeverage="10")
    assert e.value.status_code == 110043  # not modified: harmless, still a retCode
    http.set_leverage(**LINEAR, buyLeverage="5", sellLeverage="5")
    with pytest.raises(InvalidRequestError):
        http.set_trading_stop(**LINEAR, stopLoss="1000.0", positionIdx=0)  # no position
    http.place_order(**LINEAR, side="Buy", orderType="Market", qty="0.100", orderLinkId="pos-open")
    sim.advance(sim.state()["market_ms"] + 1_000)
    pos = http.get_positions(**LINEAR)["result"]["list"][0]
    assert pos["side"] == "Buy" and pos["size"] == "0.100" and pos["leverage"] == "5"
    ex = http.get_executions(**LINEAR, orderLinkId="pos-open")["result"]["list"]
    assert (
        len(ex) == 1
        and ex[0]["execType"] == "Trade"
        and ex[0]["execPrice"]
        == pos["avgPrice"] + "0" * (len(ex[0]["execPrice"]) - len(pos["avgPrice"]))
    )
    stop = f"{float(pos['avgPrice']) - 2000:.1f}"
    http.set_trading_stop(**LINEAR, stopLoss=stop, positionIdx=0, tpslMode="Full")
    assert http.get_positions(**LINEAR)["result"]["list"][0]["stopLoss"] == f"{float(stop):.2f}"
    w = http.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    paid = float(ex[0]["execFee"])
    assert float(w["totalWalletBalance"]) == pytest.approx(100_000 - paid)
    http.place_order(
        **LINEAR,
        side="Sell",
        orderType="Market",
        qty="0.100",
        reduceOnly=True,
        orderLinkId="pos-close",
    )
    sim.advance(sim.state()["market_ms"] + 1_000)
    pos = http.get_positions(**LINEAR)["result"]["list"][0]
    assert pos["side"] == "" and pos["size"] == "0.000"
    with pytest.raises(InvalidRequestError) as e:
        http.place_order(**LINEAR, side="Sell", orderType="Market", qty="0.100", reduceOnly=True)
    assert e.value.status_code == 110017


def test_authentication_failures(sim: SimProcess) -> None:
    bad_secret = http_session(sim.rest, sim.api_key, "0" * 32)
    with pytest.raises(InvalidRequestError) as e:
        bad_secret.get_positions(**LINEAR)
    assert e.value.status_code == 10004
    bad_key = http_session(sim.rest, "nobody", sim.api_secret)
    with pytest.raises(InvalidRequestError) as e:
        bad_key.get_positions(**LINEAR)
    assert e.value.status_code == 10003
    # a signature over other bytes than those sent (re-serialised body) is refused
    ts = str(int(time.time() * 1000))
    body = json.dumps({"category": "linear", "symbol": "BTCUSDT", "side": "Buy"})
    signed = json.dumps(json.loads(body), separators=(",", ":"))
    sig = hmac.new(
        sim.api_secret.encode(), (ts + sim.api_key + "5000" + signed).encode(), hashlib.sha256
    ).hexdigest()
    headers = {
        "X-BAPI-API-KEY": sim.api_key,
        "X-BAPI-TIMESTAMP": ts,
        "X-BAPI-RECV-WINDOW": "5000",
        "X-BAPI-SIGN": sig,
    }
    r = requests.post(f"{sim.rest}/v5/order/create", data=body, headers=headers, timeout=5).json()
    assert r["retCode"] == 10004
    # an old timestamp, correctly signed
    old = str(int(time.time() * 1000) - 60_000)
    sig = hmac.new(
        sim.api_secret.encode(),
        (old + sim.api_key + "5000" + "accountType=UNIFIED").encode(),
        hashlib.sha256,
    ).hexdigest()
    headers.update({"X-BAPI-TIMESTAMP": old, "X-BAPI-SIGN": sig})
    r = requests.get(
        f"{sim.rest}/v5/account/wallet-balance?accountType=UNIFIED", headers=headers, timeout=5
    )
    assert r.json()["retCode"] == 10002
    assert {"X-Bapi-Limit", "X-Bapi-Limit-Status", "X-Bapi-Limit-Reset-Timestamp"} <= set(r.headers)


def test_expired_timestamp_through_pybit() -> None:
    """A server clock 2 minutes ahead: every signed request is outside the window (10002);
    pybit retries with a larger recv_window, then gives up with FailedRequestError."""
    with SimProcess(*MARKET, "--paused", "--skew-ms", "120000") as s:
        h = http_session(s.rest, s.api_key, s.api_secret, max_retries=2, retry_delay=0)
        with pytest.raises(FailedRequestError):
            h.get_positions(**LINEAR)
        assert h.get_server_time()["retCode"] == 0  # public calls carry no timestamp


def test_public_websocket_streams(sim: SimProcess) -> None:
    got: list[dict[str, Any]] = []
    ws = sim.public_ws(got.append)
    try:
        ws.trade_stream("BTCUSDT", lambda m: None)
        ws.orderbook_stream(1, "BTCUSDT", lambda m: None)
        ws.orderbook_stream(50, "BTCUSDT", lambda m: None)
        ws.ticker_stream("BTCUSDT", lambda m: None)
        wait_for(lambda: sum(m.get("op") == "subscribe" for m in got) == 4)
        acks = [m for m in got if m.get("op") == "subscribe"]
        assert all(m["success"] for m in acks)
        assert {m["req_id"] for m in acks} == set(ws.subscriptions)  # acks echo req_id
        start = sim.state()["market_ms"]
        sim.advance(start + 20_000)
        wait_for(lambda: any(m.get("topic") == "publicTrade.BTCUSDT" for m in got))
    finally:
        ws.exit()
    by = lambda t: [m for m in got if m.get("topic") == t]  # noqa: E731
    trades = by("publicTrade.BTCUSDT")
    rows = [r for m in trades for r in m["data"]]
    assert rows and all(
        start < r["T"] <= start + 20_000 and r["S"] in ("Buy", "Sell") for r in rows
    )
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    b1 = by("orderbook.1.BTCUSDT")
    assert b1 and all(m["type"] == "snapshot" and len(m["data"]["b"]) == 1 for m in b1)
    u = [m["data"]["u"] for m in b1]
    assert u == sorted(u)
    b50 = by("orderbook.50.BTCUSDT")
    assert b50[0]["type"] == "snapshot" and {m["type"] for m in b50[1:]} == {"delta"}
    assert any(lvl[1] == "0" for m in b50[1:] for lvl in m["data"]["b"] + m["data"]["a"])
    tk = by("tickers.BTCUSDT")
    assert tk[0]["type"] == "snapshot" and "fundingRate" in tk[0]["data"]
    assert all(m["type"] == "delta" for m in tk[1:])


def test_private_websocket_and_ping(sim: SimProcess, http: HTTP) -> None:
    got: list[dict[str, Any]] = []
    ws = sim.private_ws(got.append)
    try:
        for stream in (ws.order_stream, ws.execution_stream, ws.position_stream, ws.wallet_stream):
            stream(lambda m: None)
        wait_for(lambda: sum(m.get("op") == "subscribe" for m in got) == 4)
        assert next(m for m in got if m.get("op") == "auth")["success"] is True
        http.place_order(**LINEAR, side="Buy", orderType="Market", qty="0.010", orderLinkId="ws-1")
        sim.advance(sim.state()["market_ms"] + 1_000)
        wait_for(
            lambda: {"order", "execution", "position", "wallet"} <= {m.get("topic") for m in got}
        )
        orders = [d for m in got if m.get("topic") == "order" for d in m["data"]]
        assert [o["orderStatus"] for o in orders if o["orderLinkId"] == "ws-1"] == ["New", "Filled"]
        pos = [d for m in got if m.get("topic") == "position" for d in m["data"]][-1]
        assert "entryPrice" in pos and "avgPrice" not in pos  # Bybit's WS naming
        http.place_order(**LINEAR, side="Sell", orderType="Market", qty="0.010", reduceOnly=True)
        sim.advance(sim.state()["market_ms"] + 1_000)
    finally:
        ws.exit()
    # bad auth: an expired signature is answered success=false, not a dropped socket
    raw = websocket.create_connection(sim.ws_base + "/v5/private", timeout=5)
    try:
        exp = int(time.time() * 1000) - 1000
        sig = hmac.new(
            sim.api_secret.encode(), f"GET/realtime{exp}".encode(), hashlib.sha256
        ).hexdigest()
        raw.send(json.dumps({"op": "auth", "args": [sim.api_key, exp, sig]}))
        assert json.loads(raw.recv())["success"] is False
        raw.send(json.dumps({"op": "subscribe", "req_id": "r1", "args": ["order"]}))
        ack = json.loads(raw.recv())
        assert ack["success"] is False and ack["req_id"] == "r1"
        raw.send(json.dumps({"op": "ping", "req_id": "p1"}))
        assert json.loads(raw.recv())["op"] == "pong"
        raw.ping(b"x")  # a protocol-level ping is answered with a pong frame
        op, data = raw.recv_data(control_frame=True)
        assert op == websocket.ABNF.OPCODE_PONG and data == b"x"
    finally:
        raw.close()


def test_simulate_command_refuses_bad_arguments(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from at_core import cli

    assert cli.main(["simulate", "--db-dir", str(tmp_path), "--from", "2024-01-01"]) == 2
    assert "--from and --to are required" in capsys.readouterr().err
    rc = cli.main(
        ["simulate", "--db-dir", str(tmp_path), "--from", "2024-01-01", "--to", "2024-01-01"]
    )
    assert rc == 2 and "holds no trades and quotes" in capsys.readouterr().err
    assert cli.main(["simulate", "--seed", "7", "--speed", "-1"]) == 2
    assert "--speed -1" in capsys.readouterr().err
