"""The loopback Bybit v5 exchange: one asyncio process serving REST and both WebSockets
on 127.0.0.1, replaying a market on a simulated clock and matching one account's orders
against it (``at_core.exchange.venue``).

Why aiohttp (not FastAPI/Starlette + uvicorn): a simulator of *failures* needs the layers a
web framework hides. aiohttp hands us the raw request bytes (signatures are checked on
them), the TCP transport (a reset without a close frame is ``transport.abort()``), the
listening socket (refusing connections for N seconds) and, with ``autoping=False``, the
protocol-level pings (a stalled socket that stops answering them; uvicorn answers pings
itself). It also serves HTTP and WebSockets from one loop with no extra dependency (Ray
already installs it).

Two clocks. The *wall* clock signs and checks requests (pybit stamps requests with the
machine's time), answers ``/v5/market/time`` and paces the replay. The *market* clock is
the replayed data's time: trade and quote times, order and execution times, funding
instants. At speed X the market clock runs X times the wall clock; speed 0 replays as fast
as the subscribers read. The control endpoint can pause it and advance it to an instant,
which is how tests place an order at an exact market time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from at_core.exchange.faults import Armed, FaultLog
from at_core.exchange.instrument import fmt_amount
from at_core.exchange.market import QUOTE, MarketEvents
from at_core.exchange.venue import Venue

SYMBOL = "BTCUSDT"
PUBLIC_TOPICS = {
    f"publicTrade.{SYMBOL}",
    f"orderbook.1.{SYMBOL}",
    f"orderbook.50.{SYMBOL}",
    f"tickers.{SYMBOL}",
}
PRIVATE_TOPICS = {"order", "execution", "position", "wallet"}
BOOK_RESEND_S = 3.0  # depth-1 snapshots are re-sent this often when unchanged
TICKER_EVERY_MS = 100
CHUNK = 512  # events replayed between yields to the loop


@dataclass(eq=False)
class Conn:
    """One WebSocket client."""

    ws: web.WebSocketResponse
    transport: Any
    kind: str  # public | private
    conn_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    topics: set[str] = field(default_factory=set)
    authed: bool = False
    stalled_until: float = 0.0
    deaf: bool = False  # during a stall: pings unanswered

    def stalled(self) -> bool:
        if self.stalled_until and time.monotonic() >= self.stalled_until:
            self.stalled_until = 0.0
            self.deaf = False
        return bool(self.stalled_until)


@dataclass
class Settings:
    api_key: str = field(default_factory=lambda: "sim" + secrets.token_hex(8))
    api_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    control_token: str = field(default_factory=lambda: secrets.token_hex(16))
    speed: float = 60.0  # 0 = as fast as possible
    paused: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    log_file: Path | None = None
    skew_ms: int = 0  # the server's wall clock minus the machine's (10002 tests)
    order_rate_limit: int = 10  # order create/amend/cancel per second (Bybit's default)


class Simulator:
    def __init__(self, market: MarketEvents, venue: Venue, settings: Settings) -> None:
        self.m = market
        self.v = venue
        self.s = settings
        self.conns: set[Conn] = set()
        self.log = FaultLog(settings.log_file)
        self.armed: list[Armed] = []
        self.dup_private = 0
        self.reorder_private = 0
        self.book_jump = 0
        # replay state
        self.idx = 0
        self.n = len(market)
        self.speed = settings.speed
        self.paused = settings.paused
        self.pause_at: int | None = None
        self.anchor_wall = time.monotonic()
        self.anchor_market = market.first_ms
        self.wake = asyncio.Event()
        self.reached = asyncio.Event()
        self.finished = asyncio.Event()
        # public market state
        self.trade_seq = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=1000)
        self.klines: dict[int, list[float]] = {}
        self.ticker: dict[str, Any] = {}
        self.ticker_sent: dict[str, Any] = {}
        self.next_ticker = 0
        self.last_book_push = 0.0
        self.book50: tuple[int, int, int, int] = (0, 0, 0, 0)
        self.volume = 0.0
        self.turnover = 0.0
        self.high = 0
        self.low = 0
        self.first_px = 0
        self.msgs_sent = 0
        self.rate_windows: dict[str, tuple[int, int]] = {}
        self.runner: web.AppRunner | None = None
        self.site: web.TCPSite | None = None
        self.port = settings.port
        venue.start(market.first_ms)

    # ---- clocks --------------------------------------------------------------------------
    def wall_ms(self) -> int:
        return int(time.time() * 1000) + self.s.skew_ms

    # ---- replay -----------------------------------------------------------------------------
    async def replay(self) -> None:
        """Feed market events to the venue and the subscribers on the market clock."""
        while True:
            if self.idx >= self.n:
                self.finished.set()
                self.reached.set()
                return
            if self.paused:
                self.wake.clear()
                await self.wake.wait()
                continue
            if self.pause_at is not None:
                limit = self.pause_at
            elif self.speed > 0:
                limit = self.anchor_market + int(
                    (time.monotonic() - self.anchor_wall) * 1000 * self.speed
                )
            else:
                limit = self.m.last_ms
            nxt = int(self.m.ts[self.idx])
            if nxt > limit:
                if self.pause_at is not None:
                    self._advance_clock(self.pause_at)
                    self.pause_at = None
                    self.paused = True
                    self.reached.set()
                    continue
                self._advance_clock(limit)
                wait = (nxt - limit) / 1000 / self.speed
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=min(wait, 0.05))
                continue
            await self._step(limit)

    def _advance_clock(self, ms: int) -> None:
        if ms > self.v.now:
            self.v._clock(ms)
            self._flush_private_soon()

    async def _step(self, limit: int) -> None:
        """Replay up to CHUNK events with time <= limit, then publish what they changed."""
        i0, end = self.idx, min(self.idx + CHUNK, self.n)
        m = self.m
        # one chunk as Python lists (a whole day as lists would cost gigabytes)
        ts, kind = m.ts[i0:end].tolist(), m.kind[i0:end].tolist()
        px, sz, side = m.px[i0:end].tolist(), m.sz[i0:end].tolist(), m.side[i0:end].tolist()
        apx, asz = m.ask_px[i0:end].tolist(), m.ask_sz[i0:end].tolist()
        i, end = 0, end - i0
        v = self.v
        want_trades = self._subscribed(f"publicTrade.{SYMBOL}")
        want_book1 = self._subscribed(f"orderbook.1.{SYMBOL}")
        want_book50 = self._subscribed(f"orderbook.50.{SYMBOL}")
        out: list[tuple[str, str]] = []
        batch: list[dict[str, Any]] = []
        while i < end and ts[i] <= limit:
            t = ts[i]
            if kind[i] == QUOTE:
                if batch:
                    out.append(self._trade_msg(batch))
                    batch = []
                v.on_quote(t, px[i], sz[i], apx[i], asz[i])
                if want_book1:
                    out.append(self._book1_msg(t))
                if want_book50:
                    out.append(self._book50_delta(t))
            else:
                p, q = px[i], sz[i]
                v.on_trade(t, p, q)
                row = self._record_trade(t, p, q, side[i])
                if want_trades:
                    if batch and batch[-1]["T"] != t:
                        out.append(self._trade_msg(batch))
                        batch = []
                    batch.append(row)
            i += 1
            if v.now >= self.next_ticker:
                self.next_ticker = v.now - v.now % TICKER_EVERY_MS + TICKER_EVERY_MS
                msg = self._ticker_delta()
                if msg:
                    out.append(msg)
        if batch:
            out.append(self._trade_msg(batch))
        self.idx = i0 + i
        if out:
            await self._publish(out)
        if v.outbox:
            await self.flush_private()
        await asyncio.sleep(0)

    def _subscribed(self, topic: str) -> bool:
        return any(topic in c.topics for c in self.conns)

    async def _publish(self, msgs: list[tuple[str, str]]) -> None:
        for c in list(self.conns):
            if c.kind != "public" or not c.topics or c.stalled():
                continue
            for topic, text in msgs:
                if topic in c.topics:
                    try:
                        await c.ws.send_str(text)
                        self.msgs_sent += 1
                    except (ConnectionError, RuntimeError):
                        self.conns.discard(c)
                        break

    # ---- public messages ------------------------------------------------------------------
    def _record_trade(self, t: int, p: int, q: int, side: int) -> dict[str, Any]:
        inst = self.v.inst
        self.trade_seq += 1
        price, size = inst.price_str(p), inst.qty_str(q)
        row = {
            "T": t,
            "s": SYMBOL,
            "S": "Buy" if side > 0 else "Sell",
            "v": size,
            "p": price,
            "L": "PlusTick" if p >= (self.recent[-1]["_px"] if self.recent else p) else "MinusTick",
            "i": f"{self.trade_seq:016x}-sim",
            "BT": False,
            "RPI": False,
            "seq": self.trade_seq,
        }
        self.recent.append({**row, "_px": p})
        minute = t - t % 60_000
        qf = q * float(inst.qty_step)
        pf = p * float(inst.tick_size)
        k = self.klines.get(minute)
        if k is None:
            self.klines[minute] = [p, p, p, p, qf, qf * pf]
        else:
            k[1] = max(k[1], p)
            k[2] = min(k[2], p)
            k[3] = p
            k[4] += qf
            k[5] += qf * pf
        self.volume += qf
        self.turnover += qf * pf
        self.first_px = self.first_px or p
        self.high = max(self.high, p)
        self.low = min(self.low, p) if self.low else p
        return row

    def _trade_msg(self, batch: list[dict[str, Any]]) -> tuple[str, str]:
        topic = f"publicTrade.{SYMBOL}"
        msg = {"topic": topic, "type": "snapshot", "ts": batch[-1]["T"], "data": batch}
        return topic, json.dumps(msg, separators=(",", ":"))

    def _book_u(self) -> int:
        if self.book_jump:
            self.v.book_u += self.book_jump
            self.log.add("fired", "book_gap", self.v.now, jump=self.book_jump)
            self.book_jump = 0
        return self.v.book_u

    def _book1_msg(self, t: int) -> tuple[str, str]:
        v = self.v
        inst = v.inst
        topic = f"orderbook.1.{SYMBOL}"
        msg = {
            "topic": topic,
            "type": "snapshot",
            "ts": t,
            "data": {
                "s": SYMBOL,
                "b": [[inst.price_str(v.bid), inst.qty_str(v.bid_sz)]],
                "a": [[inst.price_str(v.ask), inst.qty_str(v.ask_sz)]],
                "u": self._book_u(),
                "seq": v.book_u,
            },
            "cts": t,
        }
        self.last_book_push = time.monotonic()
        return topic, json.dumps(msg, separators=(",", ":"))

    def book50_snapshot(self) -> str:
        v = self.v
        inst = v.inst
        self.book50 = (v.bid, v.bid_sz, v.ask, v.ask_sz)
        msg = {
            "topic": f"orderbook.50.{SYMBOL}",
            "type": "snapshot",
            "ts": v.now,
            "data": {
                "s": SYMBOL,
                "b": [[inst.price_str(v.bid), inst.qty_str(v.bid_sz)]] if v.bid else [],
                "a": [[inst.price_str(v.ask), inst.qty_str(v.ask_sz)]] if v.ask else [],
                "u": v.book_u,
                "seq": v.book_u,
            },
            "cts": v.now,
        }
        return json.dumps(msg, separators=(",", ":"))

    def _book50_delta(self, t: int) -> tuple[str, str]:
        """Deltas of the 50-level book. The replayed data is L1, so the book holds one level
        a side; the delta mechanics are Bybit's: a level's new size, size "0" deletes."""
        v = self.v
        inst = v.inst
        ob, obs, oa, oas = self.book50
        bids: list[list[str]] = []
        asks: list[list[str]] = []
        if v.bid != ob:
            if ob:
                bids.append([inst.price_str(ob), "0"])
            bids.append([inst.price_str(v.bid), inst.qty_str(v.bid_sz)])
        elif v.bid_sz != obs:
            bids.append([inst.price_str(v.bid), inst.qty_str(v.bid_sz)])
        if v.ask != oa:
            if oa:
                asks.append([inst.price_str(oa), "0"])
            asks.append([inst.price_str(v.ask), inst.qty_str(v.ask_sz)])
        elif v.ask_sz != oas:
            asks.append([inst.price_str(v.ask), inst.qty_str(v.ask_sz)])
        self.book50 = (v.bid, v.bid_sz, v.ask, v.ask_sz)
        topic = f"orderbook.50.{SYMBOL}"
        msg = {
            "topic": topic,
            "type": "delta",
            "ts": t,
            "data": {"s": SYMBOL, "b": bids, "a": asks, "u": self._book_u(), "seq": v.book_u},
            "cts": t,
        }
        return topic, json.dumps(msg, separators=(",", ":"))

    def ticker_fields(self) -> dict[str, Any]:
        v = self.v
        inst = v.inst
        last = v.last or v.bid
        mark = fmt_amount(v.mark, 2)
        pct = (last - self.first_px) / self.first_px if self.first_px else 0.0
        return {
            "symbol": SYMBOL,
            "tickDirection": self.recent[-1]["L"] if self.recent else "ZeroPlusTick",
            "price24hPcnt": fmt_amount(pct, 6),
            "lastPrice": inst.price_str(last),
            "prevPrice24h": inst.price_str(self.first_px or last),
            "highPrice24h": inst.price_str(self.high or last),
            "lowPrice24h": inst.price_str(self.low or last),
            "prevPrice1h": inst.price_str(self.first_px or last),
            "markPrice": mark,
            "indexPrice": mark,
            "openInterest": "0",
            "openInterestValue": "0",
            "turnover24h": fmt_amount(self.turnover, 4),
            "volume24h": fmt_amount(self.volume, 3),
            "nextFundingTime": str(v.next_funding),
            "fundingRate": fmt_amount(v.funding_rate),
            "bid1Price": inst.price_str(v.bid),
            "bid1Size": inst.qty_str(v.bid_sz),
            "ask1Price": inst.price_str(v.ask),
            "ask1Size": inst.qty_str(v.ask_sz),
        }

    def _ticker_delta(self) -> tuple[str, str] | None:
        topic = f"tickers.{SYMBOL}"
        if not self._subscribed(topic):
            return None
        now = self.ticker_fields()
        changed = {k: x for k, x in now.items() if self.ticker_sent.get(k) != x}
        self.ticker_sent = now
        if not changed:
            return None
        changed["symbol"] = SYMBOL
        msg = {"topic": topic, "type": "delta", "data": changed, "cs": self.v.book_u}
        msg["ts"] = self.v.now
        return topic, json.dumps(msg, separators=(",", ":"))

    async def book_heartbeat(self) -> None:
        """Re-send the unchanged depth-1 book every 3 s (wall), as Bybit does."""
        while True:
            await asyncio.sleep(0.5)
            if time.monotonic() - self.last_book_push >= BOOK_RESEND_S and self.v.bid:
                topic = f"orderbook.1.{SYMBOL}"
                if self._subscribed(topic):
                    await self._publish([self._book1_msg(self.v.now)])
                self.last_book_push = time.monotonic()

    # ---- private messages ------------------------------------------------------------------
    def _flush_private_soon(self) -> None:
        if self.v.outbox:
            asyncio.get_running_loop().create_task(self.flush_private())

    async def flush_private(self) -> None:
        events = self.v.drain()
        if not events:
            return
        msgs: list[tuple[str, str]] = []
        for topic, row in events:
            msg = {
                "id": str(uuid.uuid4()),
                "topic": topic,
                "creationTime": self.v.now,
                "data": [row],
            }
            msgs.append((topic, json.dumps(msg, separators=(",", ":"))))
        if self.reorder_private > 0:
            self.reorder_private -= 1
            msgs.reverse()
            self.log.add("fired", "reorder_private", self.v.now, messages=len(msgs))
        out: list[tuple[str, str]] = []
        for m in msgs:
            out.append(m)
            if self.dup_private > 0:
                self.dup_private -= 1
                out.append(m)
                self.log.add("fired", "duplicate_private", self.v.now, topic=m[0])
        for c in list(self.conns):
            if c.kind != "private" or not c.authed or c.stalled():
                continue
            for topic, text in out:
                if topic in c.topics:
                    try:
                        await c.ws.send_str(text)
                    except (ConnectionError, RuntimeError):
                        self.conns.discard(c)
                        break

    # ---- clock control -----------------------------------------------------------------------
    async def advance(self, to_ms: int) -> None:
        """Replay every event up to ``to_ms`` (as fast as possible), then pause there."""
        self.reached.clear()
        self.pause_at = to_ms
        self.paused = False
        self.wake.set()
        await self.reached.wait()
        self.anchor_market = self.v.now
        self.anchor_wall = time.monotonic()

    def resume(self, speed: float | None) -> None:
        if speed is not None:
            self.speed = speed
        self.paused = False
        self.pause_at = None
        self.anchor_market = self.v.now
        self.anchor_wall = time.monotonic()
        self.wake.set()

    def pause(self) -> None:
        self.paused = True
        self.wake.set()

    # ---- WebSocket endpoints -------------------------------------------------------------------
    async def ws_public(self, request: web.Request) -> web.StreamResponse:
        return await self._ws(request, "public")

    async def ws_private(self, request: web.Request) -> web.StreamResponse:
        return await self._ws(request, "private")

    async def _ws(self, request: web.Request, kind: str) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Conn(ws=ws, transport=request.transport, kind=kind)
        self.conns.add(conn)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.PING:
                    if not (conn.stalled() and conn.deaf):
                        await ws.pong(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    await self._on_client_message(conn, msg.data)
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.conns.discard(conn)
        return ws

    async def _on_client_message(self, conn: Conn, text: str) -> None:
        try:
            msg = json.loads(text)
            op = msg.get("op")
        except (ValueError, AttributeError):
            await conn.ws.send_str(json.dumps({"success": False, "ret_msg": "invalid json"}))
            return
        rid = msg.get("req_id", "")
        if op == "ping":
            if conn.stalled() and conn.deaf:
                return
            if conn.kind == "public":
                reply = {"success": True, "ret_msg": "pong", "conn_id": conn.conn_id, "op": "ping"}
            else:
                reply = {"op": "pong", "args": [str(self.wall_ms())], "conn_id": conn.conn_id}
            reply["req_id"] = rid
            await conn.ws.send_str(json.dumps(reply))
        elif op == "auth" and conn.kind == "private":
            ok, why = self._check_ws_auth(msg.get("args") or [])
            conn.authed = ok
            reply = {"success": ok, "ret_msg": "" if ok else why, "op": "auth"}
            reply["conn_id"] = conn.conn_id
            if rid:
                reply["req_id"] = rid
            await conn.ws.send_str(json.dumps(reply))
        elif op in ("subscribe", "unsubscribe"):
            await self._subscribe(conn, op, rid, msg.get("args") or [])
        else:
            reply = {"success": False, "ret_msg": f"unknown op {op!r}", "op": op, "req_id": rid}
            await conn.ws.send_str(json.dumps(reply))

    def _check_ws_auth(self, args: list[Any]) -> tuple[bool, str]:
        from at_core.exchange.signing import matches, ws_auth_signature

        if len(args) != 3:
            return False, "Params Error"
        key, expires, sig = args
        if key != self.s.api_key:
            return False, "Invalid apikey"
        try:
            exp = int(expires)
        except (TypeError, ValueError):
            return False, "Params Error"
        if exp <= self.wall_ms():
            return False, "Params Error: expires is in the past"
        if not matches(ws_auth_signature(self.s.api_secret, exp), str(sig)):
            return False, "Invalid sign"
        return True, ""

    async def _subscribe(self, conn: Conn, op: str, rid: str, args: list[str]) -> None:
        allowed = PUBLIC_TOPICS if conn.kind == "public" else PRIVATE_TOPICS
        bad = [a for a in args if a not in allowed]
        if conn.kind == "private" and not conn.authed:
            ok, why = False, "Request not authorized"
        elif bad or not args:
            ok, why = False, f"error:handler not found,topic:{','.join(bad) or '(none)'}"
        else:
            ok, why = True, ""
        reply = {"success": ok, "ret_msg": why, "conn_id": conn.conn_id, "req_id": rid, "op": op}
        await conn.ws.send_str(json.dumps(reply))
        if not ok:
            return
        if op == "unsubscribe":
            conn.topics.difference_update(args)
            return
        conn.topics.update(args)
        # a subscription starts with the current snapshot where Bybit sends one
        if f"orderbook.50.{SYMBOL}" in args and self.v.bid:
            await conn.ws.send_str(self.book50_snapshot())
        if f"orderbook.1.{SYMBOL}" in args and self.v.bid:
            await conn.ws.send_str(self._book1_msg(self.v.now)[1])
        if f"tickers.{SYMBOL}" in args:
            snap: dict[str, Any] = {"topic": f"tickers.{SYMBOL}", "type": "snapshot"}
            snap.update({"data": self.ticker_fields(), "cs": self.v.book_u, "ts": self.v.now})
            await conn.ws.send_str(json.dumps(snap))
