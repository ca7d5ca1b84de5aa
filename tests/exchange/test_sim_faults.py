"""Every fault of the control endpoint, observed from the client side (pybit and raw
sockets) and in the simulator's fault log."""

from __future__ import annotations

import itertools
import json
import socket
import time
from typing import Any

import pytest
import requests
import websocket
from pybit.exceptions import InvalidRequestError
from pybit.unified_trading import HTTP

from at_core.exchange.client import http_session
from at_core.exchange.testing import SimProcess

from .test_sim_pybit import LINEAR, wait_for


def fired(sim: SimProcess, kind: str) -> list[dict[str, Any]]:
    return [e for e in sim.fault_log() if e["fault"] == kind and e["event"] == "fired"]


def public_socket(sim: SimProcess) -> websocket.WebSocket:
    ws = websocket.create_connection(sim.ws_base + "/v5/public/linear", timeout=5)
    ws.send(json.dumps({"op": "subscribe", "req_id": "s", "args": ["orderbook.1.BTCUSDT"]}))
    assert json.loads(ws.recv())["success"]
    return ws


def test_ret_codes_on_the_next_requests(sim: SimProcess, http: HTTP) -> None:
    for code in (10016, 110007, 110017):
        sim.fault("ret_code", code=code, n=1, path="order/create")
        with pytest.raises(InvalidRequestError) as e:
            http.place_order(
                **LINEAR, side="Buy", orderType="Market", qty="0.001", orderLinkId=f"rc-{code}"
            )
        assert e.value.status_code == code
        # refused: nothing was placed under that id
        assert not http.get_open_orders(**LINEAR, orderLinkId=f"rc-{code}")["result"]["list"]
    # 10006 with the reset header: pybit sleeps until the reset and tries again
    sim.fault("ret_code", code=10006, n=1, path="position/list", reset_ms=300)
    t = time.monotonic()
    assert http.get_positions(**LINEAR)["retCode"] == 0
    assert time.monotonic() - t >= 0.2
    assert len(fired(sim, "ret_code")) == 4


def test_lost_response_after_the_order_was_accepted(sim: SimProcess, http: HTTP) -> None:
    sim.fault("lose_response", n=1, path="order/create")
    bid = float(sim.state()["bid"])
    with pytest.raises(requests.exceptions.ConnectionError):
        http.place_order(
            **LINEAR,
            side="Buy",
            orderType="Limit",
            qty="0.001",
            price=f"{bid - 800:.1f}",
            orderLinkId="lost-1",
        )
    # the ambiguous send: the order exists, found by its orderLinkId
    found = http.get_open_orders(**LINEAR, orderLinkId="lost-1")["result"]["list"]
    assert len(found) == 1 and found[0]["orderStatus"] == "New"
    http.cancel_order(**LINEAR, orderLinkId="lost-1")
    assert fired(sim, "lose_response")


def test_delayed_ack_sends_private_events_first(sim: SimProcess, http: HTTP) -> None:
    got: list[tuple[float, dict[str, Any]]] = []
    ws = sim.private_ws(
        lambda m: got.append((time.monotonic(), m)),
    )
    try:
        ws.order_stream(lambda m: None)
        wait_for(lambda: any(m.get("op") == "subscribe" for _, m in got))
        sim.fault("delay_ack", n=1, ms=300, path="order/create")
        bid = float(sim.state()["bid"])
        http.place_order(
            **LINEAR,
            side="Buy",
            orderType="Limit",
            qty="0.001",
            price=f"{bid - 800:.1f}",
            orderLinkId="late-1",
        )
        acked = time.monotonic()
        ev = [
            t
            for t, m in got
            if m.get("topic") == "order" and m["data"][0]["orderLinkId"] == "late-1"
        ]
        assert ev and ev[0] < acked - 0.2  # the WS event came well before the REST ack
    finally:
        ws.exit()
        http.cancel_all_orders(category="linear", symbol="BTCUSDT")


def test_duplicate_and_reordered_private_events(sim: SimProcess, http: HTTP) -> None:
    got: list[dict[str, Any]] = []
    ws = sim.private_ws(got.append)
    try:
        ws.order_stream(lambda m: None)
        ws.execution_stream(lambda m: None)
        wait_for(lambda: sum(m.get("op") == "subscribe" for m in got) == 2)
        sim.fault("duplicate_private", n=1)
        sim.fault("reorder_private", n=5)
        http.place_order(**LINEAR, side="Buy", orderType="Market", qty="0.001", orderLinkId="dup-1")
        sim.advance(sim.state()["market_ms"] + 1_000)
        wait_for(lambda: any(m.get("topic") == "execution" for m in got))
        time.sleep(0.2)
        ids = [m["id"] for m in got if "id" in m]
        assert len(ids) > len(set(ids))  # one message delivered twice
        # unfaulted, a fill's batch is execution, order, position, wallet; reversed, the
        # Filled order event arrives before its execution
        seq = [
            (m["topic"], m["data"][0].get("orderStatus"))
            for m in got
            if m.get("topic") in ("order", "execution") and m["data"][0]["orderLinkId"] == "dup-1"
        ]
        assert seq.index(("order", "Filled")) < seq.index(("execution", None))
    finally:
        ws.exit()
        http.place_order(**LINEAR, side="Sell", orderType="Market", qty="0.001", reduceOnly=True)
        sim.advance(sim.state()["market_ms"] + 1_000)
    assert fired(sim, "duplicate_private") and fired(sim, "reorder_private")


def test_book_gap_jumps_the_update_id(sim: SimProcess) -> None:
    ws = public_socket(sim)
    try:
        us: list[int] = []
        sim.fault("book_gap", jump=500)
        sim.advance(sim.state()["market_ms"] + 2_000)
        ws.settimeout(2)
        try:
            while True:
                m = json.loads(ws.recv())
                if m.get("topic") == "orderbook.1.BTCUSDT":
                    us.append(m["data"]["u"])
        except websocket.WebSocketTimeoutException:
            pass
        jumps = [b - a for a, b in itertools.pairwise(us)]
        assert max(jumps) >= 500 and min(jumps) >= 1
    finally:
        ws.close()


def test_close_abort_and_stall(sim: SimProcess) -> None:
    ws = public_socket(sim)
    sim.fault("ws_close", scope="public", code=1001)
    for _ in range(100):  # the close frame arrives (with its code) before the socket ends
        op, data = ws.recv_data(control_frame=True)
        if op == websocket.ABNF.OPCODE_CLOSE:
            break
    assert op == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 1001
    ws.close()
    ws = public_socket(sim)
    sim.fault("ws_abort", scope="public")
    with pytest.raises((ConnectionError, websocket.WebSocketConnectionClosedException)):
        for _ in range(100):
            ws.recv()
    # a stall: open socket, no data, pings unanswered, then data again
    ws = public_socket(sim)
    try:
        ws.recv()  # the subscription's first snapshot
        sim.fault("ws_stall", scope="public", seconds=1.5, pings=False)
        ws.send(json.dumps({"op": "ping", "req_id": "p"}))
        sim.advance(sim.state()["market_ms"] + 2_000)
        ws.settimeout(1.0)
        with pytest.raises(websocket.WebSocketTimeoutException):
            ws.recv()
        assert ws.connected
        time.sleep(0.6)
        sim.advance(sim.state()["market_ms"] + 2_000)
        ws.settimeout(3.0)
        assert json.loads(ws.recv()).get("topic") == "orderbook.1.BTCUSDT"
    finally:
        ws.close()
    assert fired(sim, "ws_close") and fired(sim, "ws_abort") and fired(sim, "ws_stall")


def test_refused_connections_then_back(sim: SimProcess, http: HTTP) -> None:
    sim_port = int(sim.info["port"])
    ws = public_socket(sim)
    sim.fault("refuse", seconds=1.5)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", sim_port), timeout=1).close()
    with pytest.raises((ConnectionError, websocket.WebSocketConnectionClosedException)):
        for _ in range(100):
            ws.recv()
    time.sleep(2.0)
    assert http.get_server_time()["retCode"] == 0
    assert fired(sim, "refuse") and fired(sim, "refuse_end")


def test_position_changed_behind_the_clients_back(sim: SimProcess, http: HTTP) -> None:
    before = http.get_positions(**LINEAR)["result"]["list"][0]
    n_exec = len(http.get_executions(**LINEAR, limit=100)["result"]["list"])
    sim.fault("position_drift", qty="0.005", notify=False)
    after = http.get_positions(**LINEAR)["result"]["list"][0]
    assert float(after["size"]) == pytest.approx(float(before["size"]) + 0.005)
    assert len(http.get_executions(**LINEAR, limit=100)["result"]["list"]) == n_exec  # no trace
    sim.fault("position_drift", qty="-0.005", notify=False)
    assert http.get_positions(**LINEAR)["result"]["list"][0]["size"] == before["size"]


def test_funding_execution_on_command(sim: SimProcess, http: HTTP) -> None:
    http.place_order(**LINEAR, side="Buy", orderType="Market", qty="0.010", orderLinkId="fund-open")
    sim.advance(sim.state()["market_ms"] + 1_000)
    sim.fault("funding", rate=0.001)
    f = http.get_executions(**LINEAR, execType="Funding")["result"]["list"]
    assert f and f[0]["execType"] == "Funding" and f[0]["orderId"] == ""
    assert float(f[0]["execFee"]) == pytest.approx(float(f[0]["execValue"]) * 0.001)
    http.place_order(**LINEAR, side="Sell", orderType="Market", qty="0.010", reduceOnly=True)
    sim.advance(sim.state()["market_ms"] + 1_000)


def test_control_endpoint_refuses_bad_requests(sim: SimProcess) -> None:
    r = requests.post(f"{sim.rest}/_sim/fault", json={"kind": "ws_close"}, timeout=5)
    assert r.status_code == 403
    with pytest.raises(RuntimeError, match="unknown"):
        sim.fault("meteor")
    with pytest.raises(RuntimeError, match="code"):
        sim.fault("ret_code", code=12345)
    with pytest.raises(RuntimeError, match="before the market clock"):
        sim.advance(0)


def test_http_session_without_faults_still_works(sim: SimProcess) -> None:
    h = http_session(sim.rest, sim.api_key, sim.api_secret)
    assert h.get_wallet_balance(accountType="UNIFIED")["retCode"] == 0
