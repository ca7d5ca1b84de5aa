"""The exchange adapter: the one place that talks to Bybit (or to the loopback simulator),
for the collector and the execution engine.

- The unmodified pybit ``HTTP`` and ``WebSocket`` pointed at a configurable base URL
  (``None``: the real Bybit hosts).
- Instrument facts and fee rates loaded at start-up; prices and quantities sent as decimal
  strings on the tick and qty-step grid (a limit rounded towards the passive side, a
  quantity down).
- A unique ``orderLinkId`` per intent; every send classified sent / not sent / ambiguous
  (``at_core.exchange.sends``), an ambiguous one resolved by querying its ``orderLinkId``,
  never by sending again. A caller that retries a *not sent* intent reuses its link id, so
  the exchange itself refuses a duplicate (110072).
- Rate limits respected from the ``X-Bapi-Limit-Status`` / ``-Reset-Timestamp`` headers:
  a group whose window is used up waits for its reset before the next request.
- The clock offset to the exchange measured from ``/v5/market/time`` (midpoint of the round
  trip); pybit stamps requests with this machine's clock, so a server ahead of us is met
  with a wider ``recv_window``, and one behind us by more than Bybit's 1 s tolerance is an
  alert (requests would be refused with 10002).
- Supervised WebSockets (``at_core.exchange.streams``) whose callbacks only enqueue, and a
  REST resync (book, open orders, position, wallet, executions since the last seen one)
  after every reconnect and on demand.

Events reach the owner through ``poll()``/``drain()`` on the owner's thread, which also
applies private events to the account view (``at_core.exchange.view``), so the view is only
ever touched by one thread.
"""

from __future__ import annotations

import itertools
import logging
import queue
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from at_core.exchange import sends
from at_core.exchange.client import WebSocket, http_session
from at_core.exchange.instrument import Instrument
from at_core.exchange.sends import AMBIGUOUS, NOT_SENT, SENT, SendResult
from at_core.exchange.streams import Stream
from at_core.exchange.view import AccountView

log = logging.getLogger("at_core.exchange.adapter")
LINEAR = "linear"
ORDER_PATHS = ("create", "amend", "cancel", "cancel-all")


@dataclass
class Event:
    kind: str  # public | private | stall | disconnected | reconnected | book_gap | resync | alert | fill | funding
    data: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class BybitAdapter:
    def __init__(
        self,
        rest_url: str | None = None,
        ws_url: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        *,
        symbol: str = "BTCUSDT",
        testnet: bool = False,
        stall_after_s: float = 6.0,
        backoff_start_s: float = 0.5,
        backoff_cap_s: float = 60.0,
        resolve_tries: int = 5,
        resolve_wait_s: float = 0.2,
        link_prefix: str = "at",
        resync_every_s: float = 60.0,
    ) -> None:
        self.rest_url, self.ws_url = rest_url, ws_url
        self.api_key, self.api_secret = api_key, api_secret
        self.symbol = symbol
        self.testnet = testnet
        self.stall_after_s = stall_after_s
        self.backoff_start_s, self.backoff_cap_s = backoff_start_s, backoff_cap_s
        self.resolve_tries, self.resolve_wait_s = resolve_tries, resolve_wait_s
        # a private socket that stays open but stops sending cannot be told from a quiet
        # account (private topics have no heartbeat): a periodic REST resync bounds how
        # long such a silence can hide a fill
        self.resync_every_s = resync_every_s
        self._last_resync = time.monotonic()
        self.http = http_session(
            rest_url, api_key, api_secret, testnet=testnet, return_response_headers=True
        )
        self.inst = Instrument(symbol=symbol)
        self.maker_fee = Decimal(0)
        self.taker_fee = Decimal(0)
        self.clock_offset_ms = 0
        self.view = AccountView()
        self.book: dict[str, Any] = {}
        self.events: queue.Queue[Event] = queue.Queue()
        self.streams: list[Stream] = []
        self._ids = itertools.count(1)
        self._session = f"{link_prefix}{int(time.time()) % 100_000:05d}{secrets.token_hex(2)}"
        self._limits: dict[str, tuple[int, int]] = {}  # group -> (remaining, reset ms)
        self._rest_lock = threading.Lock()
        # the recent sends, for the operator and tests (bounded: a live process runs for weeks)
        self.sends: deque[SendResult] = deque(maxlen=10_000)

    # ---- start-up -----------------------------------------------------------------------------
    def start(self, public: bool = True, private: bool = True, book_depth: int = 1) -> None:
        """Load instrument facts, fees and the clock offset; resync; open the streams."""
        self.load_instrument()
        self.measure_clock()
        if self.api_key:
            fee = self._get("fee", self.http.get_fee_rates, category=LINEAR, symbol=self.symbol)
            row = fee["result"]["list"][0]
            self.maker_fee, self.taker_fee = (
                Decimal(row["makerFeeRate"]),
                Decimal(row["takerFeeRate"]),
            )
            self.resync()
        if public:
            topics = (f"orderbook.{book_depth}.{self.symbol}",)

            def sub_public(ws: WebSocket) -> None:
                ws.orderbook_stream(book_depth, self.symbol, _ignore)
                ws.trade_stream(self.symbol, _ignore)

            self._open("public", sub_public, topics)
        if private and self.api_key:

            def sub_private(ws: WebSocket) -> None:
                for stream in (
                    ws.order_stream,
                    ws.execution_stream,
                    ws.position_stream,
                    ws.wallet_stream,
                ):
                    stream(_ignore)

            self._open("private", sub_private, ())

    def _open(self, kind: str, subscribe: Any, watched: tuple[str, ...]) -> None:
        s = Stream(
            kind,
            self.ws_url,
            subscribe,
            self._enqueue,
            api_key=self.api_key,
            api_secret=self.api_secret,
            watched=watched,
            stall_after_s=self.stall_after_s,
            backoff_start_s=self.backoff_start_s,
            backoff_cap_s=self.backoff_cap_s,
            on_reconnect=lambda: self._enqueue("resync_needed", {"stream": kind}),
            testnet=self.testnet,
        )
        self.streams.append(s)
        s.start()

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """True once every stream is connected with a subscription acknowledged."""
        end = time.monotonic() + timeout
        return all(s.ready.wait(max(0.0, end - time.monotonic())) for s in self.streams)

    def stop(self) -> None:
        for s in self.streams:
            s.stop()
        self.streams.clear()

    def load_instrument(self) -> Instrument:
        info = self._get(
            "info", self.http.get_instruments_info, category=LINEAR, symbol=self.symbol
        )
        row = info["result"]["list"][0]
        lot, pf = row["lotSizeFilter"], row["priceFilter"]
        self.inst = Instrument(
            symbol=self.symbol,
            tick_size=Decimal(pf["tickSize"]),
            qty_step=Decimal(lot["qtyStep"]),
            min_qty=Decimal(lot["minOrderQty"]),
            max_qty=Decimal(lot["maxOrderQty"]),
            max_mkt_qty=Decimal(lot.get("maxMktOrderQty") or lot["maxOrderQty"]),
            min_notional=Decimal(lot.get("minNotionalValue") or "0"),
            max_leverage=Decimal(row["leverageFilter"]["maxLeverage"]),
            funding_interval_min=int(row.get("fundingInterval") or 480),
        )
        return self.inst

    def measure_clock(self, samples: int = 3) -> int:
        """Offset (exchange − local, ms) from the fastest of a few round trips; widens the
        recv_window when the exchange is ahead, alerts when it is behind beyond 1 s."""
        best: tuple[float, int] | None = None
        for _ in range(samples):
            t0 = time.time() * 1000
            r = self._get("time", self.http.get_server_time)
            t1 = time.time() * 1000
            server = int(r["result"]["timeNano"]) // 1_000_000
            rtt = t1 - t0
            if best is None or rtt < best[0]:
                best = (rtt, int(server - (t0 + t1) / 2))
        assert best is not None
        self.clock_offset_ms = best[1]
        if self.clock_offset_ms > 0:
            self.http.recv_window = 5000 + self.clock_offset_ms + 1000
        elif self.clock_offset_ms < -800:
            self._enqueue(
                "alert",
                {
                    "what": "clock skew",
                    "detail": f"this machine is {-self.clock_offset_ms} ms ahead of the exchange",
                },
            )
        return self.clock_offset_ms

    # ---- REST plumbing -------------------------------------------------------------------------
    def _wait_rate_limit(self, group: str) -> None:
        remaining, reset = self._limits.get(group, (1, 0))
        if remaining <= 0:
            now = time.time() * 1000 + self.clock_offset_ms
            if reset > now:
                time.sleep(min((reset - now) / 1000, 10.0))

    def _note_limits(self, group: str, headers: Any) -> None:
        try:
            status = headers.get("X-Bapi-Limit-Status")
            reset = headers.get("X-Bapi-Limit-Reset-Timestamp")
            if status is not None and reset is not None:
                self._limits[group] = (int(status), int(reset))
        except (AttributeError, ValueError):
            pass

    def _get(self, group: str, fn: Any, **params: Any) -> dict[str, Any]:
        """A call whose failure is simply an error (queries, settings): raises."""
        self._wait_rate_limit(group)
        with self._rest_lock:
            out = fn(**params)
        body, _elapsed, headers = out
        self._note_limits(group, headers)
        return dict(body)

    def _send(self, group: str, fn: Any, link_id: str, **params: Any) -> SendResult:
        """A call that may change state at the exchange: classified, never retried here."""
        self._wait_rate_limit(group)
        try:
            with self._rest_lock:
                body, _elapsed, headers = fn(**params)
        except Exception as exc:  # classify() re-raises what it does not know
            outcome, code, msg = sends.classify(exc)
            headers = getattr(exc, "resp_headers", None)
            if headers is not None:
                self._note_limits(group, headers)
            res = SendResult(outcome, link_id=link_id, ret_code=code, message=msg)
        else:
            self._note_limits(group, headers)
            result = body.get("result") or {}
            res = SendResult(
                SENT,
                link_id=link_id,
                order_id=str(result.get("orderId", "")),
                ret_code=0,
                result=result,
            )
        self.sends.append(res)
        return res

    # ---- intents ------------------------------------------------------------------------------
    def new_link_id(self, tag: str = "o") -> str:
        """A unique orderLinkId for one intent (≤ 36 characters, [A-Za-z0-9_-])."""
        return f"{self._session}-{tag}-{next(self._ids)}"[:36]

    def place_order(
        self,
        side: str,
        qty: float | str,
        order_type: str = "Market",
        price: float | str | None = None,
        *,
        reduce_only: bool = False,
        tif: str | None = None,
        link_id: str | None = None,
        trigger_price: float | str | None = None,
        trigger_direction: int | None = None,
    ) -> SendResult:
        """Send one order. An ambiguous send is resolved by its link id before returning:
        the result is then *sent* (found) or *not sent* (the exchange does not have it), or
        stays *ambiguous* when the exchange cannot be asked (the caller must hold)."""
        if side not in ("Buy", "Sell"):
            raise ValueError(f"side {side!r}: Buy or Sell")
        link = link_id or self.new_link_id()
        sgn = 1 if side == "Buy" else -1
        params: dict[str, Any] = {
            "category": LINEAR,
            "symbol": self.symbol,
            "side": side,
            "orderType": order_type,
            "qty": qty if isinstance(qty, str) else self.inst.quantise_qty(qty),
            "orderLinkId": link,
            "positionIdx": 0,
        }
        if price is not None:
            params["price"] = (
                price if isinstance(price, str) else self.inst.quantise_price(price, sgn)
            )
        if tif:
            params["timeInForce"] = tif
        if reduce_only:
            params["reduceOnly"] = True
        if trigger_price is not None:
            params["triggerPrice"] = (
                trigger_price
                if isinstance(trigger_price, str)
                else self.inst.quantise_price(trigger_price)
            )
            params["triggerDirection"] = trigger_direction or (1 if sgn > 0 else 2)
        res = self._send("order", self.http.place_order, link, **params)
        if res.outcome == AMBIGUOUS:
            res = self.resolve(link, res)
        return res

    def resolve(self, link_id: str, res: SendResult | None = None) -> SendResult:
        """Was the order with this link id created? Ask the exchange, a few times (it may
        still be processing it); never send it again."""
        last_error = res.message if res else ""
        for i in range(self.resolve_tries):
            try:
                rows = self._get(
                    "query",
                    self.http.get_open_orders,
                    category=LINEAR,
                    symbol=self.symbol,
                    orderLinkId=link_id,
                )["result"]["list"]
            except Exception as exc:  # cannot ask: stays ambiguous
                last_error = f"resolving {link_id}: {exc}"
                time.sleep(self.resolve_wait_s * (i + 1))
                continue
            if rows:
                self.view.apply_order(rows[0])
                return SendResult(
                    SENT,
                    link_id=link_id,
                    order_id=rows[0]["orderId"],
                    ret_code=0,
                    message="found by orderLinkId",
                    resolved_by_query=True,
                )
            time.sleep(self.resolve_wait_s)
        if last_error.startswith("resolving"):
            self._enqueue(
                "alert", {"what": "ambiguous order send", "detail": last_error, "link_id": link_id}
            )
            return SendResult(AMBIGUOUS, link_id=link_id, message=last_error)
        return SendResult(
            NOT_SENT,
            link_id=link_id,
            message="not found by orderLinkId after an ambiguous send",
            resolved_by_query=True,
        )

    def cancel_order(self, link_id: str | None = None, order_id: str | None = None) -> SendResult:
        p: dict[str, Any] = {"category": LINEAR, "symbol": self.symbol}
        if order_id:
            p["orderId"] = order_id
        else:
            p["orderLinkId"] = link_id
        res = self._send("order", self.http.cancel_order, link_id or "", **p)
        if res.outcome == AMBIGUOUS and link_id:
            # a cancel is idempotent: asking again is safe, and the order row says the truth
            self.resolve(link_id)
        return res

    def amend_order(
        self, link_id: str, qty: float | None = None, price: float | None = None
    ) -> SendResult:
        p: dict[str, Any] = {"category": LINEAR, "symbol": self.symbol, "orderLinkId": link_id}
        if qty is not None:
            p["qty"] = self.inst.quantise_qty(qty)
        if price is not None:
            p["price"] = self.inst.quantise_price(price)
        return self._send("order", self.http.amend_order, link_id, **p)

    def cancel_all(self) -> SendResult:
        return self._send(
            "order", self.http.cancel_all_orders, "", category=LINEAR, symbol=self.symbol
        )

    def set_leverage(self, leverage: int) -> SendResult:
        res = self._send(
            "position",
            self.http.set_leverage,
            "",
            category=LINEAR,
            symbol=self.symbol,
            buyLeverage=str(leverage),
            sellLeverage=str(leverage),
        )
        if res.ret_code == 110043:  # already at that leverage
            return SendResult(SENT, ret_code=110043, message=res.message)
        return res

    def set_stop_loss(self, price: float | None) -> SendResult:
        """The exchange-held stop of the position (None removes it)."""
        sl = "0" if price is None else self.inst.quantise_price(price)
        return self._send(
            "position",
            self.http.set_trading_stop,
            "",
            category=LINEAR,
            symbol=self.symbol,
            stopLoss=sl,
            positionIdx=0,
            tpslMode="Full",
        )

    # ---- resync ------------------------------------------------------------------------------------
    def resync(self) -> dict[str, Any]:
        """The exchange's truth over REST: book, open orders (and every order we hold as
        open), position, wallet, and executions since the last one seen. New executions
        (fills and funding missed during a gap) are emitted as events."""
        book = self._get(
            "query", self.http.get_orderbook, category=LINEAR, symbol=self.symbol, limit=1
        )["result"]
        self.book = book
        if not self.api_key:  # a public-only adapter (the collector): the book is all there is
            self._last_resync = time.monotonic()
            self._enqueue("resync", {"open_orders": 0, "new_executions": 0, "mismatch": None})
            return {"open_orders": 0, "new_executions": 0, "mismatch": None}
        rows = self._paged(self.http.get_open_orders)
        open_ids = {r["orderId"] for r in rows}
        for r in rows:
            self.view.apply_order(r)
        for oid in [o["orderId"] for o in self.view.open_orders() if o["orderId"] not in open_ids]:
            got = self._get(
                "query",
                self.http.get_order_history,
                category=LINEAR,
                symbol=self.symbol,
                orderId=oid,
            )["result"]["list"]
            if got:
                self.view.apply_order(got[0])
        since = self.view.last_exec_time
        execs = self._paged(self.http.get_executions, startTime=since or None, most=100)
        new = [e for e in reversed(execs) if self.view.apply_execution(e)]
        pos = self._get("query", self.http.get_positions, category=LINEAR, symbol=self.symbol)[
            "result"
        ]["list"][0]
        self.view.apply_position(
            {**pos, "seq": max(int(pos.get("seq") or 0), int(self.view.position.get("seq") or 0))}
        )
        if self.view.ledger_size is None:
            self.view.ledger_size = self.view.position_size()
        self.wallet_balance()
        for e in new:
            self._enqueue(
                "funding" if e.get("execType") == "Funding" else "fill",
                {"execution": e, "via": "resync"},
            )
        mismatch = self.view.mismatch()
        if mismatch:
            self._enqueue("alert", {"what": "position mismatch", **mismatch})
        self._last_resync = time.monotonic()
        summary = {"open_orders": len(rows), "new_executions": len(new), "mismatch": mismatch}
        self._enqueue("resync", summary)
        return summary

    def wallet_balance(self) -> Decimal:
        """The account's wallet balance (realised cash) asked of the exchange now, over
        REST: the stream's last wallet message may predate the latest execution."""
        w = self._get("account", self.http.get_wallet_balance, accountType="UNIFIED")["result"][
            "list"
        ][0]
        self.view.apply_wallet(w, int(time.time() * 1000))
        return self.view.balance()

    def _paged(self, fn: Any, most: int = 50, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(100):
            p = {
                "category": LINEAR,
                "symbol": self.symbol,
                "limit": most,
                **{k: v for k, v in params.items() if v is not None},
            }
            if cursor:
                p["cursor"] = cursor
            r = self._get("query", fn, **p)["result"]
            out.extend(r["list"])
            cursor = r.get("nextPageCursor") or ""
            if not cursor:
                break
        return out

    # ---- events -------------------------------------------------------------------------------------
    def _enqueue(self, kind: str, data: dict[str, Any]) -> None:
        self.events.put(Event(kind, data))

    def poll(self, timeout: float | None = 0.0) -> Event | None:
        """The next event, private ones applied to the account view first; a reconnect's
        resync is done here, on the owner's thread."""
        if (
            self.api_key
            and self.streams
            and time.monotonic() - self._last_resync > self.resync_every_s
        ):
            self._last_resync = time.monotonic()
            self._enqueue("resync_needed", {"stream": "timer"})
        try:
            ev = self.events.get(timeout=timeout) if timeout else self.events.get_nowait()
        except queue.Empty:
            return None
        if ev.kind == "private":
            return self._apply_private(ev)
        if ev.kind == "public":
            topic = ev.data.get("topic", "")
            if topic.startswith("orderbook."):
                self.book = ev.data.get("data", {})
        if ev.kind in ("resync_needed", "book_gap"):
            try:
                self.resync()
            except Exception as exc:  # reported; the next trigger tries again
                self._enqueue("alert", {"what": "resync failed", "detail": str(exc)})
        return ev

    def drain(self, timeout: float = 0.0) -> list[Event]:
        """Every queued event (waiting up to ``timeout`` for the first)."""
        out = []
        ev = self.poll(timeout)
        while ev is not None:
            out.append(ev)
            ev = self.poll(0)
        return out

    def _apply_private(self, ev: Event) -> Event:
        msg = ev.data
        if self.view.seen(str(msg.get("id", ""))):
            return Event("duplicate", {"id": msg.get("id"), "topic": msg.get("topic")}, ev.at)
        topic = msg.get("topic")
        for row in msg.get("data") or []:
            if topic == "order":
                self.view.apply_order(row)
            elif topic == "execution":
                if self.view.apply_execution(row):
                    kind = "funding" if row.get("execType") == "Funding" else "fill"
                    self._enqueue(kind, {"execution": row, "via": "ws"})
            elif topic == "position":
                self.view.apply_position(row)
            elif topic == "wallet":
                self.view.apply_wallet(row, int(msg.get("creationTime") or 0))
        return ev


def _ignore(_msg: dict[str, Any]) -> None:
    """Per-topic callbacks are unused: the stream's raw callback receives everything."""
