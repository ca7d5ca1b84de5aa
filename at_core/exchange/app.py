"""Assembling and running the simulated exchange: routes, the control endpoint, the
listening socket (which the ``refuse`` fault closes and reopens on the same port), and the
background tasks (the replay, the depth-1 heartbeat)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from at_core.errors import InputError
from at_core.exchange import rest
from at_core.exchange.faults import Armed, check_fault
from at_core.exchange.server import Simulator
from at_core.exchange.views import order_view, position_view, wallet_view


def build_app(sim: Simulator) -> web.Application:
    app = web.Application(client_max_size=1 << 20)
    for path, fn in rest.PUBLIC.items():
        app.router.add_get(path, rest._public_route(sim, fn))
    for path, (method, group, pfn) in rest.PRIVATE.items():
        app.router.add_route(method, path, rest._private_route(sim, method, group, pfn))
    app.router.add_get("/v5/public/linear", sim.ws_public)
    app.router.add_get("/v5/private", sim.ws_private)
    guard = _control_guard(sim)
    app.router.add_get("/_sim/state", guard(state))
    app.router.add_get("/_sim/log", guard(fault_log))
    app.router.add_post("/_sim/clock", guard(clock))
    app.router.add_post("/_sim/fault", guard(fault))
    return app


Route = Callable[[Simulator, web.Request], Awaitable[Any]]


def _control_guard(
    sim: Simulator,
) -> Callable[[Route], Callable[[web.Request], Awaitable[web.Response]]]:
    def wrap(fn: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def route(request: web.Request) -> web.Response:
            if request.headers.get("X-Sim-Token") != sim.s.control_token:
                return web.json_response(
                    {"error": "control token missing or wrong (X-Sim-Token)"}, status=403
                )
            try:
                return web.json_response(await fn(sim, request))
            except (InputError, ValueError, KeyError, TypeError) as exc:
                return web.json_response({"error": f"{request.path}: {exc}"}, status=400)

        return route

    return wrap


def snapshot(sim: Simulator) -> dict[str, Any]:
    v = sim.v
    return {
        "market_ms": v.now,
        "first_ms": sim.m.first_ms,
        "last_ms": sim.m.last_ms,
        "events_done": sim.idx,
        "events_total": sim.n,
        "finished": sim.idx >= sim.n,
        "paused": sim.paused,
        "speed": sim.speed,
        "bid": v.inst.price_str(v.bid),
        "ask": v.inst.price_str(v.ask),
        "last": v.inst.price_str(v.last),
        "book_u": v.book_u,
        "position": position_view(v),
        "wallet": wallet_view(v),
        "open_orders": [order_view(v, o) for o in v.orders.values() if o.is_open],
        "orders": len(v.orders),
        # every order ever placed, for tests that check what the client sent (each once)
        "order_list": [
            {
                "orderLinkId": o.link_id,
                "side": "Buy" if o.side > 0 else "Sell",
                "orderType": o.order_type,
                "reduceOnly": o.reduce_only,
                "status": o.status,
                "stopOrderType": o.stop_order_type,
            }
            for o in v.orders.values()
        ],
        "executions": len(v.executions),
        "connections": {
            "public": sum(c.kind == "public" for c in sim.conns),
            "private": sum(c.kind == "private" for c in sim.conns),
        },
        "public_messages_sent": sim.msgs_sent,
        "leverage": v.leverage,
    }


async def state(sim: Simulator, request: web.Request) -> Any:
    return snapshot(sim)


async def fault_log(sim: Simulator, request: web.Request) -> Any:
    return {"entries": sim.log.entries}


async def clock(sim: Simulator, request: web.Request) -> Any:
    body = await request.json()
    action = body.get("action")
    if action == "advance":
        to = int(body["to"])
        if to < sim.v.now:
            raise ValueError(f"advance: to {to} is before the market clock {sim.v.now}")
        await sim.advance(to)
    elif action == "pause":
        sim.pause()
    elif action == "resume":
        speed = body.get("speed")
        if speed is not None and float(speed) < 0:
            raise ValueError(f"resume: speed {speed} must be >= 0 (0 = as fast as possible)")
        sim.resume(None if speed is None else float(speed))
    else:
        raise ValueError(f"clock: action {action!r} (advance, pause or resume)")
    return snapshot(sim)


async def fault(sim: Simulator, request: web.Request) -> Any:
    body = await request.json()
    kind = str(body.pop("kind", ""))
    check_fault(kind, body)
    sim.log.add("armed", kind, sim.v.now, **body)
    scope = body.get("scope", "all")
    conns = [c for c in sim.conns if scope == "all" or c.kind == scope]
    if kind == "ws_close":
        for c in conns:
            await c.ws.close(code=int(body.get("code", 1001)), message=b"simulator fault")
        sim.log.add("fired", kind, sim.v.now, connections=len(conns))
    elif kind == "ws_abort":
        for c in conns:
            if c.transport is not None:
                c.transport.abort()
        sim.log.add("fired", kind, sim.v.now, connections=len(conns))
    elif kind == "ws_stall":
        until = time.monotonic() + float(body.get("seconds", 30))
        for c in conns:
            c.stalled_until = until
            c.deaf = not bool(body.get("pings", True))
        sim.log.add("fired", kind, sim.v.now, connections=len(conns))
    elif kind == "refuse":
        await refuse(sim, float(body.get("seconds", 5)))
    elif kind in ("lose_response", "delay_ack", "ret_code"):
        params = {k: x for k, x in body.items() if k not in ("n", "path")}
        sim.armed.append(Armed(kind, int(body.get("n", 1)), str(body.get("path", "")), params))
    elif kind == "duplicate_private":
        sim.dup_private += int(body.get("n", 1))
    elif kind == "reorder_private":
        sim.reorder_private += int(body.get("n", 1))
    elif kind == "book_gap":
        sim.book_jump = int(body.get("jump", 100))
    elif kind == "position_drift":
        steps = sim.v.inst.qty_steps(str(body["qty"]))
        if steps == 0:
            raise ValueError("position_drift: qty must not be 0")
        sim.v.drift_position(
            steps, sim.v.inst.ticks_of(sim.v.mark), bool(body.get("notify", False))
        )
        sim.log.add("fired", kind, sim.v.now, qty=str(body["qty"]))
        await sim.flush_private()
    elif kind == "funding":
        sim.v.settle_funding(float(body.get("rate", sim.v.funding_rate)))
        sim.log.add("fired", kind, sim.v.now)
        await sim.flush_private()
    return {"armed": kind, "log_entries": len(sim.log.entries)}


async def refuse(sim: Simulator, seconds: float) -> None:
    """An outage: every socket dropped, the port closed for ``seconds``, then reopened."""
    n = len(sim.conns)
    for c in list(sim.conns):
        if c.transport is not None:
            c.transport.abort()
    if sim.site is not None:
        await sim.site.stop()
        sim.site = None
    sim.log.add("fired", "refuse", sim.v.now, seconds=seconds, connections=n)

    async def reopen() -> None:
        await asyncio.sleep(seconds)
        await _listen(sim)
        sim.log.add("fired", "refuse_end", sim.v.now)

    asyncio.get_running_loop().create_task(reopen())


async def _listen(sim: Simulator) -> None:
    assert sim.runner is not None
    site = web.TCPSite(sim.runner, sim.s.host, sim.port, reuse_address=True)
    await site.start()
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        sim.port = server.sockets[0].getsockname()[1]
    sim.site = site


async def serve(sim: Simulator, on_ready: Callable[[Simulator], None] | None = None) -> None:
    """Run until cancelled: listen, replay, heartbeat."""
    app = build_app(sim)
    sim.runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await sim.runner.setup()
    await _listen(sim)
    tasks = [
        asyncio.get_running_loop().create_task(sim.replay()),
        asyncio.get_running_loop().create_task(sim.book_heartbeat()),
    ]
    if on_ready is not None:
        on_ready(sim)
    try:
        await asyncio.Event().wait()
    finally:
        for t in tasks:
            t.cancel()
        await sim.runner.cleanup()


def urls(sim: Simulator) -> dict[str, Any]:
    base = f"{sim.s.host}:{sim.port}"
    return {
        "rest": f"http://{base}",
        "ws_public": f"ws://{base}/v5/public/linear",
        "ws_private": f"ws://{base}/v5/private",
        "api_key": sim.s.api_key,
        "api_secret": sim.s.api_secret,
        "control_token": sim.s.control_token,
        "port": sim.port,
        "market": sim.m.source,
        "first_ms": sim.m.first_ms,
        "last_ms": sim.m.last_ms,
    }


def ready_json(sim: Simulator) -> str:
    return json.dumps(urls(sim))
