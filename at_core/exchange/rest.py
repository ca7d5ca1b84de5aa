"""REST side of the simulated exchange: Bybit v5's public market endpoints, the signed
private endpoints, and the control endpoint (``/_sim/*``) for tests and the operator.

Every answer is Bybit's envelope ``{"retCode", "retMsg", "result", "retExtInfo", "time"}``
with HTTP 200, as Bybit does for a refused request (pybit raises ``InvalidRequestError``
with the retCode). Private answers carry the rate-limit headers ``X-Bapi-Limit``,
``X-Bapi-Limit-Status`` and ``X-Bapi-Limit-Reset-Timestamp``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from at_core.errors import InputError
from at_core.exchange import signing
from at_core.exchange.faults import RET_CODES, Armed
from at_core.exchange.instrument import fmt_amount
from at_core.exchange.server import SYMBOL, Simulator
from at_core.exchange.venue import OPEN_STATUSES, Order, VenueError
from at_core.exchange.views import instrument_view, order_view, position_view, wallet_view

Handler = Callable[[Simulator, dict[str, Any]], Any]
LINK_ID = re.compile(r"^[A-Za-z0-9_\-]{1,36}$")
# requests per second per endpoint group (Bybit's default per-UID limits, roughly)
RATE_LIMITS = {"order": 10, "position": 10, "query": 50, "account": 50}


def envelope(result: Any = None, code: int = 0, msg: str = "OK", now: int = 0) -> dict[str, Any]:
    return {
        "retCode": code,
        "retMsg": msg if code else "OK",
        "result": result if result is not None else {},
        "retExtInfo": {},
        "time": now,
    }


def _json(body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        body, headers=headers, dumps=lambda o: json.dumps(o, separators=(",", ":"))
    )


def _param(p: dict[str, Any], key: str, required: bool = True) -> str:
    v = p.get(key)
    if v is None or v == "":
        if required:
            raise VenueError(10001, f"params error: {key} is required")
        return ""
    return str(v)


def _check_category(p: dict[str, Any], symbol_required: bool = True) -> None:
    if _param(p, "category") != "linear":
        raise VenueError(10001, f"params error: category {p.get('category')!r} (only linear)")
    sym = _param(p, "symbol", symbol_required)
    if sym and sym != SYMBOL:
        raise VenueError(10001, f"params error: symbol {sym!r} invalid (only {SYMBOL})")


def _units(p: dict[str, Any], key: str, parse: Callable[[str, str], int]) -> int:
    """A positive price or quantity on its grid (``Instrument.price_ticks``/``qty_steps``)."""
    try:
        n = parse(_param(p, key), key)
    except InputError as exc:
        raise VenueError(10001, f"params error: {exc}") from None
    if n <= 0:
        raise VenueError(10001, f"params error: {key} must be positive")
    return n


def _ticks(sim: Simulator, p: dict[str, Any], key: str) -> int:
    return _units(p, key, sim.v.inst.price_ticks)


def _steps(sim: Simulator, p: dict[str, Any], key: str) -> int:
    return _units(p, key, sim.v.inst.qty_steps)


def _page(rows: list[dict[str, Any]], p: dict[str, Any], default: int, most: int) -> dict[str, Any]:
    try:
        limit = int(p.get("limit") or default)
        start = int(p.get("cursor") or 0)
    except ValueError:
        raise VenueError(10001, "params error: limit and cursor must be integers") from None
    if not 1 <= limit <= most:
        raise VenueError(10001, f"params error: limit must be in [1, {most}]")
    page = rows[start : start + limit]
    more = start + limit < len(rows)
    return {
        "category": "linear",
        "list": page,
        "nextPageCursor": str(start + limit) if more else "",
    }


# ---- public market -------------------------------------------------------------------------
def market_time(sim: Simulator, p: dict[str, Any]) -> Any:
    ms = sim.wall_ms()
    return {"timeSecond": str(ms // 1000), "timeNano": str(ms * 1_000_000)}


def instruments(sim: Simulator, p: dict[str, Any]) -> Any:
    _check_category(p, symbol_required=False)
    return {"category": "linear", "list": [instrument_view(sim.v)], "nextPageCursor": ""}


def orderbook(sim: Simulator, p: dict[str, Any]) -> Any:
    _check_category(p)
    v = sim.v
    inst = v.inst
    return {
        "s": SYMBOL,
        "b": [[inst.price_str(v.bid), inst.qty_str(v.bid_sz)]] if v.bid else [],
        "a": [[inst.price_str(v.ask), inst.qty_str(v.ask_sz)]] if v.ask else [],
        "ts": v.now,
        "u": v.book_u,
        "seq": v.book_u,
        "cts": v.now,
    }


def recent_trade(sim: Simulator, p: dict[str, Any]) -> Any:
    _check_category(p, symbol_required=False)
    limit = int(p.get("limit") or 500)
    if not 1 <= limit <= 1000:
        raise VenueError(10001, "params error: limit must be in [1, 1000]")
    rows = []
    for r in list(sim.recent)[-limit:][::-1]:
        rows.append(
            {
                "execId": r["i"],
                "symbol": SYMBOL,
                "price": r["p"],
                "size": r["v"],
                "side": r["S"],
                "time": str(r["T"]),
                "isBlockTrade": False,
                "isRPITrade": False,
            }
        )
    return {"category": "linear", "list": rows}


def tickers(sim: Simulator, p: dict[str, Any]) -> Any:
    _check_category(p, symbol_required=False)
    return {"category": "linear", "list": [sim.ticker_fields()]}


def funding_history(sim: Simulator, p: dict[str, Any]) -> Any:
    _check_category(p)
    v = sim.v
    period = 8 * 3_600_000
    # settled instants, and before the replay the fixed rate the venue charges
    rows = {ts: rate for ts, rate in v.funding_history}
    first = sim.m.first_ms - sim.m.first_ms % period
    for k in range(1, 22):
        rows.setdefault(first - (k - 1) * period, v.funding_rate)
    end = int(p.get("endTime") or v.now)
    start = int(p.get("startTime") or 0)
    limit = int(p.get("limit") or 200)
    out = [
        {"symbol": SYMBOL, "fundingRate": fmt_amount(rate), "fundingRateTimestamp": str(ts)}
        for ts, rate in sorted(rows.items(), reverse=True)
        if start <= ts <= end and ts <= v.now
    ][:limit]
    return {"category": "linear", "list": out}


def kline(sim: Simulator, p: dict[str, Any]) -> Any:
    _check_category(p)
    if str(p.get("interval")) != "1":
        raise VenueError(10001, f"params error: interval {p.get('interval')!r} (only 1)")
    inst = sim.v.inst
    limit = int(p.get("limit") or 200)
    if not 1 <= limit <= 1000:
        raise VenueError(10001, "params error: limit must be in [1, 1000]")
    start = int(p.get("start") or 0)
    end = int(p.get("end") or sim.v.now)
    rows = []
    for minute in sorted(sim.klines, reverse=True):
        if not start <= minute <= end:
            continue
        o, h, lo, c, vol, turn = sim.klines[minute]
        rows.append(
            [
                str(minute),
                inst.price_str(int(o)),
                inst.price_str(int(h)),
                inst.price_str(int(lo)),
                inst.price_str(int(c)),
                fmt_amount(vol, 3),
                fmt_amount(turn, 4),
            ]
        )
        if len(rows) >= limit:
            break
    return {"category": "linear", "symbol": SYMBOL, "list": rows}


# ---- private: orders ------------------------------------------------------------------------
def _order_of(sim: Simulator, p: dict[str, Any]) -> Order:
    oid, link = _param(p, "orderId", False), _param(p, "orderLinkId", False)
    if not oid and not link:
        raise VenueError(10001, "params error: orderId or orderLinkId is required")
    return sim.v.find(oid, link)


def order_create(sim: Simulator, p: dict[str, Any]) -> Any:
    _check_category(p)
    side = {"Buy": 1, "Sell": -1}.get(_param(p, "side"))
    if side is None:
        raise VenueError(10001, f"params error: side {p.get('side')!r} (Buy or Sell)")
    otype = _param(p, "orderType")
    if otype not in ("Market", "Limit"):
        raise VenueError(10001, f"params error: orderType {otype!r} (Market or Limit)")
    qty = _steps(sim, p, "qty")
    price = _ticks(sim, p, "price") if otype == "Limit" else 0
    tif = _param(p, "timeInForce", False) or ("GTC" if otype == "Limit" else "IOC")
    if tif not in ("GTC", "IOC", "FOK", "PostOnly"):
        raise VenueError(10001, f"params error: timeInForce {tif!r}")
    link = _param(p, "orderLinkId", False)
    if link and not LINK_ID.match(link):
        raise VenueError(10001, "params error: orderLinkId: at most 36 of [A-Za-z0-9_-]")
    if int(p.get("positionIdx") or 0) != 0:
        raise VenueError(10001, "params error: positionIdx must be 0 (one-way mode)")
    reduce_only = p.get("reduceOnly") in (True, "true", "True", 1)
    trigger = _ticks(sim, p, "triggerPrice") if p.get("triggerPrice") else 0
    direction = int(p.get("triggerDirection") or 0)
    if trigger and direction not in (1, 2):
        raise VenueError(10001, "params error: triggerDirection must be 1 (rise) or 2 (fall)")
    o = sim.v.create(side, otype, qty, price, tif, reduce_only, link, trigger, direction)
    return {"orderId": o.order_id, "orderLinkId": o.link_id}


def order_amend(sim: Simulator, p: dict[str, Any]) -> Any:
    _check_category(p)
    o = _order_of(sim, p)
    qty = _steps(sim, p, "qty") if p.get("qty") else None
    price = _ticks(sim, p, "price") if p.get("price") else None
    trig = _ticks(sim, p, "triggerPrice") if p.get("triggerPrice") else None
    sim.v.amend(o, qty, price, trig)
    return {"orderId": o.order_id, "orderLinkId": o.link_id}


def order_cancel(sim: Simulator, p: dict[str, Any]) -> Any:
    _check_category(p)
    o = sim.v.cancel(_order_of(sim, p))
    return {"orderId": o.order_id, "orderLinkId": o.link_id}


def order_cancel_all(sim: Simulator, p: dict[str, Any]) -> Any:
    _check_category(p, symbol_required=False)
    out = sim.v.cancel_all()
    return {
        "list": [{"orderId": o.order_id, "orderLinkId": o.link_id} for o in out],
        "success": "1",
    }


def _orders(sim: Simulator, p: dict[str, Any], open_only: bool) -> list[dict[str, Any]]:
    oid, link = _param(p, "orderId", False), _param(p, "orderLinkId", False)
    status = _param(p, "orderStatus", False)
    rows = []
    for o in sorted(sim.v.orders.values(), key=lambda o: o.created, reverse=True):
        if (oid and o.order_id != oid) or (link and o.link_id != link):
            continue
        if open_only and not (oid or link) and o.status not in OPEN_STATUSES:
            continue
        if status and o.status != status:
            continue
        rows.append(order_view(sim.v, o))
    return rows


def order_realtime(sim: Simulator, p: dict[str, Any]) -> Any:
    _check_category(p, symbol_required=False)
    return _page(_orders(sim, p, open_only=True), p, 20, 50)


def order_history(sim: Simulator, p: dict[str, Any]) -> Any:
    _check_category(p, symbol_required=False)
    return _page(_orders(sim, p, open_only=False), p, 20, 50)


def execution_list(sim: Simulator, p: dict[str, Any]) -> Any:
    _check_category(p, symbol_required=False)
    oid, link = _param(p, "orderId", False), _param(p, "orderLinkId", False)
    etype = _param(p, "execType", False)
    start = int(p.get("startTime") or 0)
    end = int(p.get("endTime") or 1 << 62)
    rows = [
        e
        for e in reversed(sim.v.executions)
        if (not oid or e["orderId"] == oid)
        and (not link or e["orderLinkId"] == link)
        and (not etype or e["execType"] == etype)
        and start <= int(e["execTime"]) <= end
    ]
    return _page(rows, p, 50, 100)


# ---- private: position and account --------------------------------------------------------------
def position_list(sim: Simulator, p: dict[str, Any]) -> Any:
    _check_category(p, symbol_required=False)
    return {"category": "linear", "list": [position_view(sim.v)], "nextPageCursor": ""}


def set_leverage(sim: Simulator, p: dict[str, Any]) -> Any:
    _check_category(p)
    buy, sell = _param(p, "buyLeverage"), _param(p, "sellLeverage")
    if buy != sell:
        raise VenueError(10001, "params error: buyLeverage must equal sellLeverage in one-way mode")
    try:
        lev = float(buy)
    except ValueError:
        raise VenueError(10001, f"params error: buyLeverage {buy!r}") from None
    if lev != int(lev):
        raise VenueError(10001, "params error: whole leverage only in this simulator")
    sim.v.set_leverage(int(lev))
    return {}


def trading_stop(sim: Simulator, p: dict[str, Any]) -> Any:
    _check_category(p)
    if p.get("takeProfit") not in (None, "", "0") or p.get("trailingStop") not in (None, "", "0"):
        raise VenueError(
            10001, "params error: only stopLoss is simulated (takeProfit, trailingStop)"
        )
    sl = _param(p, "stopLoss")
    ticks = 0 if sl == "0" else _ticks(sim, p, "stopLoss")
    sim.v.set_stop_loss(ticks)
    return {}


def wallet_balance(sim: Simulator, p: dict[str, Any]) -> Any:
    if _param(p, "accountType") != "UNIFIED":
        raise VenueError(10001, f"params error: accountType {p.get('accountType')!r} (UNIFIED)")
    return {"list": [wallet_view(sim.v)]}


def fee_rate(sim: Simulator, p: dict[str, Any]) -> Any:
    row = {
        "symbol": SYMBOL,
        "takerFeeRate": fmt_amount(sim.v.taker_fee),
        "makerFeeRate": fmt_amount(sim.v.maker_fee),
    }
    return {"list": [row]}


PUBLIC: dict[str, Handler] = {
    "/v5/market/time": market_time,
    "/v5/market/instruments-info": instruments,
    "/v5/market/orderbook": orderbook,
    "/v5/market/recent-trade": recent_trade,
    "/v5/market/tickers": tickers,
    "/v5/market/funding/history": funding_history,
    "/v5/market/kline": kline,
}
PRIVATE: dict[str, tuple[str, str, Handler]] = {
    "/v5/order/create": ("POST", "order", order_create),
    "/v5/order/amend": ("POST", "order", order_amend),
    "/v5/order/cancel": ("POST", "order", order_cancel),
    "/v5/order/cancel-all": ("POST", "order", order_cancel_all),
    "/v5/order/realtime": ("GET", "query", order_realtime),
    "/v5/order/history": ("GET", "query", order_history),
    "/v5/execution/list": ("GET", "query", execution_list),
    "/v5/position/list": ("GET", "query", position_list),
    "/v5/position/set-leverage": ("POST", "position", set_leverage),
    "/v5/position/trading-stop": ("POST", "position", trading_stop),
    "/v5/account/wallet-balance": ("GET", "account", wallet_balance),
    "/v5/account/fee-rate": ("GET", "account", fee_rate),
}


def _public_route(sim: Simulator, fn: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def route(request: web.Request) -> web.Response:
        try:
            result = fn(sim, dict(request.query))
        except VenueError as exc:
            return _json(envelope(None, exc.code, exc.msg, sim.wall_ms()))
        except ValueError as exc:
            return _json(envelope(None, 10001, f"params error: {exc}", sim.wall_ms()))
        return _json(envelope(result, now=sim.wall_ms()))

    return route


def _rate_headers(sim: Simulator, group: str) -> tuple[dict[str, str], bool]:
    limit = sim.s.order_rate_limit if group == "order" else RATE_LIMITS[group]
    now = sim.wall_ms()
    window = now // 1000
    start, used = sim.rate_windows.get(group, (window, 0))
    if start != window:
        start, used = window, 0
    used += 1
    sim.rate_windows[group] = (start, used)
    headers = {
        "X-Bapi-Limit": str(limit),
        "X-Bapi-Limit-Status": str(max(0, limit - used)),
        "X-Bapi-Limit-Reset-Timestamp": str((window + 1) * 1000),
    }
    return headers, used > limit


def _authenticate(sim: Simulator, request: web.Request, payload: bytes) -> VenueError | None:
    h = request.headers
    key = h.get("X-BAPI-API-KEY", "")
    if not key or key != sim.s.api_key:
        return VenueError(10003, "API key is invalid.")
    try:
        ts = int(h.get("X-BAPI-TIMESTAMP", ""))
        recv = int(h.get("X-BAPI-RECV-WINDOW", "5000"))
    except ValueError:
        return VenueError(10002, "invalid request: X-BAPI-TIMESTAMP / X-BAPI-RECV-WINDOW")
    server = sim.wall_ms()
    if not signing.timestamp_ok(ts, server, recv):
        return VenueError(
            10002,
            "invalid request, please check your server timestamp or recv_window param. "
            f"req_timestamp[{ts}],server_timestamp[{server}],recv_window[{recv}]",
        )
    message = signing.rest_message(
        h.get("X-BAPI-TIMESTAMP", ""), key, h.get("X-BAPI-RECV-WINDOW", "5000"), payload
    )
    if not signing.matches(signing.sign(sim.s.api_secret, message), h.get("X-BAPI-SIGN", "")):
        return VenueError(
            10004, "error sign! origin_string[" + message.decode(errors="replace") + "]"
        )
    return None


def _take_fault(sim: Simulator, kind: str, path: str) -> Armed | None:
    for a in sim.armed:
        if a.kind == kind and a.matches(path):
            a.remaining -= 1
            if a.remaining <= 0:
                sim.armed.remove(a)
            sim.log.add("fired", kind, sim.v.now, path=path, **a.params)
            return a
    return None


def _private_route(
    sim: Simulator, method: str, group: str, fn: Handler
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def route(request: web.Request) -> web.Response:
        path = request.path
        body = await request.read()
        payload = request.rel_url.raw_query_string.encode() if method == "GET" else body
        headers, over = _rate_headers(sim, group)
        err = _authenticate(sim, request, payload)
        if err is None and over:
            err = VenueError(10006, "Too many visits. Exceeded the API Rate Limit.")
        forced = _take_fault(sim, "ret_code", path)
        if err is None and forced is not None:
            code = int(forced.params["code"])
            err = VenueError(code, RET_CODES[code])
            if code == 10006:
                headers["X-Bapi-Limit-Status"] = "0"
                headers["X-Bapi-Limit-Reset-Timestamp"] = str(
                    sim.wall_ms() + int(forced.params.get("reset_ms", 1000))
                )
        if err is not None:
            return _json(envelope(None, err.code, err.msg, sim.wall_ms()), headers)
        try:
            params = (
                dict(parse_qsl(payload.decode())) if method == "GET" else json.loads(body or b"{}")
            )
            if not isinstance(params, dict):
                raise ValueError("the body is not a JSON object")
            result = fn(sim, params)
            answer = envelope(result, now=sim.wall_ms())
        except VenueError as exc:
            answer = envelope(None, exc.code, exc.msg, sim.wall_ms())
        except (ValueError, TypeError) as exc:
            answer = envelope(None, 10001, f"params error: {exc}", sim.wall_ms())
        delay = _take_fault(sim, "delay_ack", path)
        if delay is not None:
            await sim.flush_private()  # the events of this request reach the client first
            await asyncio.sleep(float(delay.params.get("ms", 200)) / 1000)
        else:
            asyncio.get_running_loop().create_task(sim.flush_private())
        if _take_fault(sim, "lose_response", path) is not None:
            await sim.flush_private()
            if request.transport is not None:
                request.transport.abort()  # executed, but the answer never arrives
        return _json(answer, headers)

    return route
