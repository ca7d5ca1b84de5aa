"""The simulated venue: one account trading the BTCUSDT linear perpetual against a replayed
market. Pure and synchronous: the server feeds it market events and requests, and sends
the private events it queues. The matching rules (docs/exchange.md has the table):

- **Arrival.** An accepted order reaches the book with the *next quote* of the replay: it
  is acknowledged at once, but it meets the first quote after it was sent, never the quote
  already known when it was sent. This is the backtester's fill reference (the first quote
  strictly after the decision close), so the same orders on the same data fill at the same
  prices, and no order can trade on a quote its sender had already seen (no zero latency).
- **Market** (and the marketable part of a limit): takes the touch, ask for a buy and bid
  for a sell, up to the touch size; the rest waits for the next quote and takes its touch
  (partial fills, ``PartiallyFilled``). A limit never fills beyond its price. Taker fee.
- **Resting limit:** filled whole at its price, maker fee, by the first trade *through* it
  (strictly below a buy, above a sell) after its arrival. A touch is not enough: the queue
  position is unknown. Quotes that cross a resting order do not fill it (the recorded
  market never saw the order).
- **Conditional** (``triggerPrice``; ``stopLoss`` held on the position): triggered by the
  last traded price reaching the trigger (``triggerDirection`` 1 rising, 2 falling); it
  fills at once, whole, at the triggering trade's price, taker fee: the backtester's tick
  path at zero slippage.
- **Reduce-only:** refused (110017) when it would open or add; cut to the position size.
- **Funding** at every 00:00, 08:00 and 16:00 UTC of the market clock on the open position,
  at the mark (mid) times the rate: an ``execution`` of type ``Funding``, never a fill.
- **Margin:** an order that opens or adds needs its initial margin plus the taker fee in
  available balance (110007 otherwise); fees and P&L settle into the wallet at each fill.

Quantities are integer qty steps and prices integer ticks (see ``instrument``); money is
float USDT.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from at_core.exchange.instrument import Instrument, fmt_amount

FUNDING_PERIOD_MS = 8 * 3_600_000
OPEN_STATUSES = ("New", "PartiallyFilled", "Untriggered", "Triggered")


class VenueError(Exception):
    """A request the venue refuses: Bybit's retCode and retMsg."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg


@dataclass
class Order:
    order_id: str
    link_id: str
    side: int  # +1 Buy, -1 Sell
    order_type: str  # Market | Limit
    qty: int  # steps
    price: int  # ticks; 0 for a market order
    tif: str
    reduce_only: bool
    created: int
    trigger_price: int = 0
    trigger_direction: int = 0
    stop_order_type: str = ""
    status: str = "New"
    cum_qty: int = 0
    cum_value: float = 0.0
    cum_fee: float = 0.0
    updated: int = 0
    arrived: bool = False
    reject_reason: str = "EC_NoError"
    cancel_type: str = "UNKNOWN"
    last_price_on_created: int = 0

    @property
    def leaves(self) -> int:
        return self.qty - self.cum_qty if self.status in OPEN_STATUSES else 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass
class Position:
    size: int = 0  # signed steps
    avg: float = 0.0  # USDT price of the open size
    cum_realised: float = 0.0  # realised P&L less fees and funding, Bybit's cumRealisedPnl
    cur_realised: float = 0.0  # the same for the current position
    stop_loss: int = 0  # ticks, 0 = none
    created: int = 0
    updated: int = 0
    seq: int = 0


@dataclass
class Venue:
    inst: Instrument = field(default_factory=Instrument)
    balance: float = 10_000.0
    maker_fee: float = 0.0002
    taker_fee: float = 0.00055
    funding_rate: float = 0.0001
    leverage: int = 10
    # "next_quote": an order meets the first quote after it was sent (the backtester's
    # fill reference, the default); "immediate": it meets the book it was sent into (no
    # market latency; for measuring the system's own round trip)
    arrival: str = "next_quote"
    now: int = 0
    bid: int = 0
    bid_sz: int = 0
    ask: int = 0
    ask_sz: int = 0
    last: int = 0
    book_u: int = 0
    next_funding: int = 0
    pos: Position = field(default_factory=Position)
    orders: dict[str, Order] = field(default_factory=dict)
    by_link: dict[str, str] = field(default_factory=dict)
    executions: list[dict[str, Any]] = field(default_factory=list)
    funding_history: list[tuple[int, float]] = field(default_factory=list)
    # private events waiting to be pushed: (topic, data row)
    outbox: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _waiting: list[str] = field(default_factory=list)  # not yet arrived, in send order
    _working: list[str] = field(default_factory=list)  # arrived market remainders
    _live: list[str] = field(default_factory=list)  # open orders (pruned as they close)

    # ---- market --------------------------------------------------------------------------
    @property
    def mark(self) -> float:
        """Mark price: the mid of the last quote (the last trade before any quote)."""
        if self.bid and self.ask:
            return (self.bid + self.ask) * float(self.inst.tick_size) / 2
        return self.last * float(self.inst.tick_size)

    def start(self, first_ms: int) -> None:
        self.now = first_ms
        self.next_funding = (first_ms // FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS

    def _clock(self, ts: int) -> None:
        while ts >= self.next_funding:
            self.now = self.next_funding
            self.settle_funding(self.funding_rate)
            self.next_funding += FUNDING_PERIOD_MS
        self.now = ts

    def on_trade(self, ts: int, px: int, sz: int) -> None:
        self._clock(ts)
        self.last = px
        if self.pos.stop_loss:
            self._check_position_stop(px)
        if not self._live:
            return
        self._live = [oid for oid in self._live if self.orders[oid].is_open]
        for oid in self._live:
            o = self.orders[oid]
            if o.status == "Untriggered":
                self._check_trigger(o, px)
            elif (
                o.arrived
                and o.order_type == "Limit"
                and o.status in ("New", "PartiallyFilled")
                and (px < o.price if o.side > 0 else px > o.price)
            ):
                self._fill(o, o.leaves, o.price, maker=True)

    def on_quote(self, ts: int, bid: int, bid_sz: int, ask: int, ask_sz: int) -> None:
        self._clock(ts)
        self.bid, self.bid_sz, self.ask, self.ask_sz = bid, bid_sz, ask, ask_sz
        self.book_u += 1
        if not (self._waiting or self._working):
            return
        touch = {1: ask_sz, -1: bid_sz}  # what is left at the touch for our orders
        for oid in self._working:
            self._take(self.orders[oid], touch)
        arriving, self._waiting = self._waiting, []
        for oid in arriving:
            o = self.orders[oid]
            if not o.is_open:
                continue
            o.arrived = True
            self._arrive(o, touch)
        self._working = [
            oid
            for oid in dict.fromkeys(self._working + arriving)
            if self.orders[oid].is_open
            and self.orders[oid].order_type == "Market"
            and self.orders[oid].arrived
        ]

    def _arrive(self, o: Order, touch: dict[int, int]) -> None:
        if o.order_type == "Market":
            self._take(o, touch)
            return
        marketable = o.price >= self.ask if o.side > 0 else o.price <= self.bid
        if marketable and o.tif == "PostOnly":
            self._cancel(o, "EC_PostOnlyWillTakeLiquidity", "CancelByUser", status="Cancelled")
            return
        if marketable:
            if o.tif == "FOK" and touch[o.side] < o.leaves:
                self._cancel(o, "EC_FOKOrderNotFilled", "CancelByUser")
                return
            self._take(o, touch)
        if o.is_open and o.tif in ("IOC", "FOK"):
            self._cancel(o, "EC_NoImmediateQtyToFill", "CancelByUser")

    def _take(self, o: Order, touch: dict[int, int]) -> None:
        """Take the touch for ``o`` (market, or a marketable limit never beyond its price)."""
        px = self.ask if o.side > 0 else self.bid
        if o.order_type == "Limit" and (px > o.price if o.side > 0 else px < o.price):
            return
        qty = min(o.leaves, touch[o.side])
        if qty <= 0:
            return
        touch[o.side] -= qty
        self._fill(o, qty, px, maker=False)

    def _check_position_stop(self, px: int) -> None:
        p = self.pos
        if p.size and (px <= p.stop_loss if p.size > 0 else px >= p.stop_loss):
            side = -1 if p.size > 0 else 1
            o = self._new_order(
                side, "Market", abs(p.size), 0, "IOC", True, link_id="", stop_type="StopLoss"
            )
            o.status = "Triggered"
            o.trigger_price = p.stop_loss
            o.arrived = True
            self._emit_order(o)
            self._fill(o, o.leaves, px, maker=False)

    def _check_trigger(self, o: Order, px: int) -> None:
        hit = px >= o.trigger_price if o.trigger_direction == 1 else px <= o.trigger_price
        if not hit:
            return
        o.status = "Triggered"
        o.updated = self.now
        self._emit_order(o)
        if o.order_type == "Market":
            o.arrived = True
            self._fill(o, o.leaves, px, maker=False)
        else:
            # a triggered limit becomes an ordinary limit that meets the next quote
            o.status = "New"
            self._waiting.append(o.order_id)

    # ---- fills and the account -------------------------------------------------------------
    def _fill(self, o: Order, qty: int, px: int, maker: bool) -> None:
        if o.reduce_only:
            room = abs(self.pos.size) if self.pos.size * o.side < 0 else 0
            if room == 0:
                self._cancel(o, "EC_ReduceOnlySetButNotReduce", "CancelByReduceOnly")
                return
            qty = min(qty, room)
        inst = self.inst
        price = px * float(inst.tick_size)
        qty_f = qty * float(inst.qty_step)
        value = price * qty_f
        rate = self.maker_fee if maker else self.taker_fee
        fee = value * rate
        closed = self._book(o.side, qty, price, fee)
        o.cum_qty += qty
        o.cum_value += value
        o.cum_fee += fee
        o.updated = self.now
        o.status = "Filled" if o.cum_qty >= o.qty else "PartiallyFilled"
        if o.reduce_only and o.status == "PartiallyFilled" and self.pos.size == 0:
            o.status = "Cancelled"
            o.cancel_type = "CancelByReduceOnly"
        ex = {
            "category": "linear",
            "symbol": inst.symbol,
            "execId": str(uuid.uuid4()),
            "orderId": o.order_id,
            "orderLinkId": o.link_id,
            "side": "Buy" if o.side > 0 else "Sell",
            "orderPrice": inst.price_str(o.price) if o.price else "0",
            "orderQty": inst.qty_str(o.qty),
            "orderType": o.order_type,
            "stopOrderType": o.stop_order_type or "UNKNOWN",
            "execPrice": inst.price_str(px),
            "execQty": inst.qty_str(qty),
            "execValue": fmt_amount(value),
            "execFee": fmt_amount(fee),
            "feeRate": fmt_amount(rate),
            "execType": "Trade",
            "isMaker": maker,
            "execTime": str(self.now),
            "leavesQty": inst.qty_str(o.leaves),
            "closedSize": inst.qty_str(closed),
            "markPrice": fmt_amount(self.mark, 2),
            "indexPrice": fmt_amount(self.mark, 2),
            "blockTradeId": "",
            "seq": self._next_seq(),
        }
        self.executions.append(ex)
        self.outbox.append(("execution", ex))
        self._emit_order(o)
        self._emit_account()

    def _book(self, side: int, qty: int, price: float, fee: float) -> int:
        """Apply a fill of ``qty`` steps at ``price`` to the position; returns the steps
        it closed. Realised P&L and the fee settle into the wallet."""
        p = self.pos
        step = float(self.inst.qty_step)
        closed = 0
        if p.size == 0 or (p.size > 0) == (side > 0):
            new = abs(p.size) + qty
            p.avg = (p.avg * abs(p.size) + price * qty) / new
            if p.size == 0:
                p.created = self.now
                p.cur_realised = 0.0
            p.size += side * qty
        else:
            closed = min(qty, abs(p.size))
            pnl = (1 if p.size > 0 else -1) * (price - p.avg) * closed * step
            self.balance += pnl
            p.cum_realised += pnl
            p.cur_realised += pnl
            p.size += side * closed
            rest = qty - closed
            if p.size == 0:
                p.avg = 0.0
                p.stop_loss = 0
                self._cancel_reduce_only()
            if rest:
                p.size = side * rest
                p.avg = price
                p.created = self.now
                p.cur_realised = 0.0
        self.balance -= fee
        p.cum_realised -= fee
        p.cur_realised -= fee
        p.updated = self.now
        return closed

    def _cancel_reduce_only(self) -> None:
        for oid in self._live:
            o = self.orders[oid]
            if o.is_open and o.reduce_only and o.status != "Untriggered":
                self._cancel(o, "EC_NoError", "CancelByReduceOnly")

    def settle_funding(self, rate: float) -> None:
        """Funding at the current market instant on the open position (longs pay a
        positive rate): an execution of type Funding, position and wallet updates."""
        self.funding_history.append((self.now, rate))
        p = self.pos
        if p.size == 0:
            return
        qty = abs(p.size) * float(self.inst.qty_step)
        value = qty * self.mark
        fee = (1 if p.size > 0 else -1) * value * rate
        self.balance -= fee
        p.cum_realised -= fee
        p.cur_realised -= fee
        ex = {
            "category": "linear",
            "symbol": self.inst.symbol,
            "execId": str(uuid.uuid4()),
            "orderId": "",
            "orderLinkId": "",
            "side": "Buy" if p.size > 0 else "Sell",
            "orderPrice": "0",
            "orderQty": "0",
            "orderType": "UNKNOWN",
            "stopOrderType": "UNKNOWN",
            "execPrice": fmt_amount(self.mark, 2),
            "execQty": self.inst.qty_str(abs(p.size)),
            "execValue": fmt_amount(value),
            "execFee": fmt_amount(fee),
            "feeRate": fmt_amount(rate),
            "execType": "Funding",
            "isMaker": False,
            "execTime": str(self.now),
            "leavesQty": "0",
            "closedSize": "0",
            "markPrice": fmt_amount(self.mark, 2),
            "indexPrice": fmt_amount(self.mark, 2),
            "blockTradeId": "",
            "seq": self._next_seq(),
        }
        self.executions.append(ex)
        self.outbox.append(("execution", ex))
        self._emit_account()

    def _next_seq(self) -> int:
        self.pos.seq += 1
        return self.pos.seq

    # ---- requests ------------------------------------------------------------------------
    def _new_order(
        self,
        side: int,
        order_type: str,
        qty: int,
        price: int,
        tif: str,
        reduce_only: bool,
        link_id: str,
        stop_type: str = "",
    ) -> Order:
        o = Order(
            order_id=str(uuid.uuid4()),
            link_id=link_id,
            side=side,
            order_type=order_type,
            qty=qty,
            price=price,
            tif=tif,
            reduce_only=reduce_only,
            created=self.now,
            updated=self.now,
            stop_order_type=stop_type,
            last_price_on_created=self.last,
        )
        self.orders[o.order_id] = o
        self._live.append(o.order_id)
        if link_id:
            self.by_link[link_id] = o.order_id
        return o

    def create(
        self,
        side: int,
        order_type: str,
        qty: int,
        price: int,
        tif: str,
        reduce_only: bool,
        link_id: str,
        trigger_price: int = 0,
        trigger_direction: int = 0,
    ) -> Order:
        """Accept an order (raises ``VenueError`` with Bybit's code when refused)."""
        inst = self.inst
        if link_id and link_id in self.by_link:
            raise VenueError(110072, "OrderLinkedID is duplicate")
        if qty < inst.qty_steps(str(inst.min_qty)):
            raise VenueError(
                10001, f"The number of contracts is below the minimum ({inst.min_qty})"
            )
        limit = inst.max_mkt_qty if order_type == "Market" else inst.max_qty
        if qty > inst.qty_steps(str(limit)):
            raise VenueError(
                10001, f"The number of contracts exceeds maximum limit allowed ({limit})"
            )
        ref = price or (self.ask if side > 0 else self.bid) or self.last
        notional = ref * float(inst.tick_size) * qty * float(inst.qty_step)
        if not reduce_only and notional < float(inst.min_notional):
            raise VenueError(
                110094, f"Order does not meet minimum order value {inst.min_notional}USDT"
            )
        if reduce_only:
            if self.pos.size == 0 or (self.pos.size > 0) == (side > 0):
                raise VenueError(110017, "Reduce-only rule not satisfied")
            qty = min(qty, abs(self.pos.size))
        else:
            opening = self._opening_steps(side, qty)
            if opening:
                need = opening * float(inst.qty_step) * ref * float(inst.tick_size)
                need = need / self.leverage + need * self.taker_fee
                if need > self.available() + 1e-9:
                    raise VenueError(110007, "ab not enough for new order")
        o = self._new_order(side, order_type, qty, price, tif, reduce_only, link_id)
        if trigger_price:
            o.trigger_price = trigger_price
            o.trigger_direction = trigger_direction
            o.stop_order_type = "Stop"
            o.status = "Untriggered"
            self._emit_order(o)
        elif self.arrival == "immediate" and self.bid and self.ask:
            self._emit_order(o)
            o.arrived = True
            self._arrive(o, {1: self.ask_sz, -1: self.bid_sz})
            if o.is_open and o.order_type == "Market":
                self._working.append(o.order_id)
        else:
            self._waiting.append(o.order_id)
            self._emit_order(o)
        return o

    def _opening_steps(self, side: int, qty: int) -> int:
        p = self.pos.size
        if p == 0 or (p > 0) == (side > 0):
            return qty
        return max(0, qty - abs(p))

    def find(self, order_id: str = "", link_id: str = "") -> Order:
        oid = order_id or self.by_link.get(link_id, "")
        o = self.orders.get(oid)
        if o is None or (link_id and o.link_id != link_id):
            raise VenueError(110001, "order not exists or too late to cancel")
        return o

    def amend(self, o: Order, qty: int | None, price: int | None, trigger: int | None) -> Order:
        if not o.is_open:
            raise VenueError(110001, "order not exists or too late to replace")
        if qty is not None:
            if qty <= o.cum_qty:
                raise VenueError(110003, "Order quantity is below the filled quantity")
            o.qty = qty
        if price is not None:
            o.price = price
        if trigger is not None:
            o.trigger_price = trigger
        o.updated = self.now
        self._emit_order(o)
        return o

    def cancel(self, o: Order) -> Order:
        if not o.is_open:
            raise VenueError(110001, "order not exists or too late to cancel")
        self._cancel(o, "EC_PerCancelRequest", "CancelByUser")
        return o

    def _cancel(self, o: Order, reason: str, cancel_type: str, status: str = "Cancelled") -> None:
        o.status = status
        o.reject_reason = reason
        o.cancel_type = cancel_type
        o.updated = self.now
        self._emit_order(o)

    def cancel_all(self) -> list[Order]:
        out = [self.orders[oid] for oid in self._live if self.orders[oid].is_open]
        for o in out:
            self._cancel(o, "EC_PerCancelRequest", "CancelByUser")
        return out

    def set_leverage(self, lev: int) -> None:
        if lev == self.leverage:
            raise VenueError(110043, "Set leverage not modified")
        if not 1 <= lev <= int(self.inst.max_leverage):
            raise VenueError(10001, f"leverage {lev} out of range [1, {self.inst.max_leverage}]")
        self.leverage = lev
        self._emit_account()

    def set_stop_loss(self, ticks: int) -> None:
        if self.pos.size == 0:
            raise VenueError(10001, "can not set tp/sl/ts for zero position")
        if ticks and self.last:
            # Bybit refuses a stop the last price (its trigger) is already through
            long = self.pos.size > 0
            if ticks >= self.last if long else ticks <= self.last:
                side = "lower" if long else "higher"
                raise VenueError(
                    10001,
                    f"StopLoss:{self.inst.price_str(ticks)} set for "
                    f"{'Buy' if long else 'Sell'} position should be {side} than base_price "
                    f"{self.inst.price_str(self.last)} (LastPrice)",
                )
        self.pos.stop_loss = ticks
        self.pos.updated = self.now
        self._emit_account()

    # ---- balances --------------------------------------------------------------------------
    def unrealised(self) -> float:
        p = self.pos
        if p.size == 0:
            return 0.0
        return (self.mark - p.avg) * p.size * float(self.inst.qty_step)

    def position_im(self) -> float:
        return abs(self.pos.size) * float(self.inst.qty_step) * self.mark / self.leverage

    def order_im(self) -> float:
        total = 0.0
        for oid in self._live:
            o = self.orders[oid]
            if o.is_open and not o.reduce_only:
                ref = o.price or (self.ask if o.side > 0 else self.bid)
                total += o.leaves * float(self.inst.qty_step) * ref * float(self.inst.tick_size)
        return total / self.leverage

    def available(self) -> float:
        return self.balance + min(0.0, self.unrealised()) - self.position_im() - self.order_im()

    # ---- private events ----------------------------------------------------------------------
    def _emit_order(self, o: Order) -> None:
        from at_core.exchange.views import order_view

        self.outbox.append(("order", order_view(self, o)))

    def _emit_account(self) -> None:
        from at_core.exchange.views import position_view, wallet_view

        self.outbox.append(("position", position_view(self, ws=True)))
        self.outbox.append(("wallet", wallet_view(self)))

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        out, self.outbox = self.outbox, []
        return out

    def drift_position(self, steps: int, price: int, notify: bool) -> None:
        """A position change the account did not make through this API (the operator on
        the web UI, an ADL, a liquidation): the reconciliation case."""
        self._book(1 if steps > 0 else -1, abs(steps), price * float(self.inst.tick_size), 0.0)
        if notify:
            self._emit_account()
