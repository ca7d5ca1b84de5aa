"""Live mode's order manager: the kernel's decisions → exchange orders; the exchange's
executions → the driver's fill reports (SPEC §10).

Nothing here decides what to trade: the kernel placed the entry (side, quantity, limit,
stop, targets) or decided the exit; this class only carries it out on Bybit and reports
what happened, so the driver books it with the backtester's own code.

* **Entry**: a limit at the signal price (market when the kernel gives none). At the close
  of the ``limit_order_timeout_minutes``-th minute after the decision the rest is
  cancelled and sent as a market order (the backtester's rule). Partial fills are
  reported as they come; the driver opens the position once the order's quantity is
  filled.
* **Protection**: from the first entry fill, the position's stop is held by the exchange
  (``trading-stop``), so a dead process never leaves a naked position; it follows the
  kernel's stop (breakeven after TP1, the trail). The targets are reduce-only conditional
  market orders at TP1 / TP2. Their executions are reported as ``stop`` / ``tp1`` /
  ``tp2`` exits.
* **Exits** the kernel decides are reduce-only market orders.
* **Once**: every order has its own ``orderLinkId``; an ambiguous send is resolved by
  querying it (the adapter) and never sent again; every execution is reported once (by
  ``execId``, kept in ``live_fills``); funding is reported as funding, never as a fill.
* **Unexplained**: an execution of an order we did not send, or one the driver refuses,
  halts trading and alerts; nothing is guessed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from at_core import logging as at_logging
from at_core.exchange.adapter import BybitAdapter
from at_core.exchange.sends import NOT_SENT, SENT

log = at_logging.get(__name__)
MINUTE_MS = 60_000
RETRIED, MAX_RETRIES = ("tp1", "tp2"), 3  # orders sent again after the exchange refused them
TERMINAL = ("Filled", "Cancelled", "Rejected", "Deactivated", "PartiallyFilledCanceled")

FILLS_DDL = """CREATE TABLE IF NOT EXISTS live_fills (
    exec_id     TEXT PRIMARY KEY,
    ts_ms       INTEGER NOT NULL,
    link_id     TEXT,
    role        TEXT NOT NULL,
    side        TEXT,
    price       DOUBLE,
    qty         DOUBLE,
    fee         DOUBLE,
    maker       INTEGER,
    reported    INTEGER NOT NULL,
    raw         TEXT NOT NULL
)"""

#: the write-ahead record of every order: committed before the request is sent, keyed by
#: the decision it carries out, so a restart between a send and the next snapshot neither
#: sends it again nor forgets it (the order is adopted and asked for by its link id)
INTENTS_DDL = """CREATE TABLE IF NOT EXISTS live_intents (
    intent          TEXT PRIMARY KEY,
    link_id         TEXT NOT NULL,
    role            TEXT NOT NULL,
    side            TEXT NOT NULL,
    qty             DOUBLE NOT NULL,
    price           DOUBLE,
    decided_ts_min  INTEGER,
    plan            TEXT,
    created_ms      INTEGER NOT NULL,
    outcome         TEXT
)"""


@dataclass
class Working:
    """One order we sent and still follow."""

    role: str  # entry | entry_mkt | exit | tp1 | tp2
    link: str
    side: str  # Buy | Sell
    qty: float
    price: float | None = None
    decided_ts_min: int | None = None
    filled: float = 0.0
    done: bool = False
    #: after a cancel: the quantity the exchange says filled in all (its last fills may
    #: still be on their way); None while the order may still fill
    end_at: float | None = None


@dataclass
class OrderState:
    orders: dict[str, Working] = field(default_factory=dict)  # by link id
    entry_plan: dict[str, Any] | None = None  # the kernel's entry order (stop, targets)
    stop_set: float | None = None
    position_side: int = 0
    entry_ts_min: int | None = None  # the decision minute of the position's entry
    #: entries the kernel cancelled (by decision minute) whose end the driver has not been
    #: told: the exchange may have filled them before the cancel arrived
    cancelled: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "entry_ts_min": self.entry_ts_min,
            "cancelled": list(self.cancelled),
            "orders": {k: asdict(v) for k, v in self.orders.items()},
            "entry_plan": self.entry_plan,
            "stop_set": self.stop_set,
            "position_side": self.position_side,
        }

    @staticmethod
    def of(d: dict[str, Any] | None) -> OrderState:
        if not d:
            return OrderState()
        return OrderState(
            orders={k: Working(**v) for k, v in d.get("orders", {}).items()},
            entry_plan=d.get("entry_plan"),
            stop_set=d.get("stop_set"),
            position_side=int(d.get("position_side", 0)),
            entry_ts_min=d.get("entry_ts_min"),
            cancelled=[int(k) for k in d.get("cancelled", [])],
        )


Report = Callable[[str, dict[str, Any]], bool]  # kind, args -> accepted


class LiveOrders:
    def __init__(
        self,
        adapter: BybitAdapter,
        db: sqlite3.Connection,
        settings: dict[str, Any],
        report: Report,
        halt: Callable[[str], None],
        state: OrderState | None = None,
        alert: Callable[[str], Any] | None = None,
    ) -> None:
        self.ad = adapter
        self.db = db
        self.timeout_min = int(settings.get("limit_order_timeout_minutes", 1))
        self.report = report
        self.halt = halt
        self.alert = alert or (lambda _m: None)
        self.last_send: dict[str, Any] | None = None
        self.st = state or OrderState()
        with self.db:
            self.db.execute(FILLS_DDL)
            self.db.execute(INTENTS_DDL)
        self.sent = 0
        #: wall time the rows closing the minute being carried out left the collector's
        #: buffer (set by the caller per decision); each send records how long after it
        #: the request went on the wire
        self.t_release: float | None = None
        self.release_to_send_ms: deque[float] = deque(maxlen=10_000)

    # ---- decisions ------------------------------------------------------------------------
    def on_decided(
        self, orders: list[dict[str, Any]], state: dict[str, Any], last_ts_min: int | None
    ) -> None:
        # a restarted signals actor re-sends the minutes it decided after its last snapshot:
        # each order is sent once (``_send`` finds its intent); a repeated cancel is harmless
        for o in orders:
            if o.get("cancel_entry"):
                self._cancel_entry()
            if o.get("exit") is not None:
                self._exit(o["exit"], state, int(o["ts_min"]))
            if o.get("entry") is not None:
                self._entry(o["entry"], int(o["ts_min"]))
        if last_ts_min is not None:
            self._timeouts(last_ts_min)
        self.sync_protection(state)

    def _send(self, w: Working, order_type: str, intent: str, **kw: Any) -> bool:
        """Send ``w`` once per ``intent`` (see INTENTS_DDL): True when it is on the exchange
        (or was sent before this restart and is followed again)."""
        prior = self.db.execute(
            "SELECT outcome FROM live_intents WHERE intent = ?", [intent]
        ).fetchone()
        if prior is not None and prior[0] == NOT_SENT and w.role in RETRIED:
            # a refused target is tried again on a later minute (a few times): a position
            # left without its target would quietly change the strategy
            tries = self.db.execute(
                "SELECT count(*) FROM live_intents WHERE intent = ? OR intent LIKE ?",
                [intent, intent + "#%"],
            ).fetchone()[0]
            if tries > MAX_RETRIES:
                return False
            intent = f"{intent}#{tries}"
            prior = self.db.execute(
                "SELECT outcome FROM live_intents WHERE intent = ?", [intent]
            ).fetchone()
        if prior is not None:
            # a decision repeated by a restarted signals actor: carried out before. A
            # refused order is refused again (the re-decided entry needs its end again).
            log.info("decision carried out before; not sent again", intent=intent, was=prior[0])
            return prior[0] != NOT_SENT
        with self.db:
            self.db.execute(
                "INSERT INTO live_intents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                [intent, w.link, w.role, w.side, w.qty, w.price, w.decided_ts_min,
                 json.dumps(self.st.entry_plan) if w.role == "entry" else None,
                 int(time.time() * 1000)],
            )  # fmt: skip
        if self.t_release is not None:
            self.release_to_send_ms.append((time.time() - self.t_release) * 1000.0)
        res = self.ad.place_order(w.side, w.qty, order_type, w.price, link_id=w.link, **kw)
        self.last_send = {
            "role": w.role,
            "outcome": res.outcome,
            "code": res.ret_code,
            "message": res.message,
        }
        self.sent += 1
        with self.db:
            self.db.execute(
                "UPDATE live_intents SET outcome = ? WHERE intent = ?", [res.outcome, intent]
            )
        if res.outcome == SENT:
            self.st.orders[w.link] = w
            return True
        if res.outcome == NOT_SENT:
            log.warning(
                "order not sent", role=w.role, link=w.link, code=res.ret_code, msg=res.message
            )
            self.alert(f"the exchange refused the {w.role} order: {res.ret_code} {res.message}")
            return False
        # ambiguous even after asking: we cannot know; never send it again, stop trading
        self.st.orders[w.link] = w
        self.halt(f"order {w.link} ({w.role}) ambiguous: {res.message}")
        return False

    def _entry(self, e: dict[str, Any], ts_min: int) -> None:
        side = "Buy" if e["side"] == "LONG" else "Sell"
        limit = e.get("limit_price")
        w = Working("entry", self.ad.new_link_id("en"), side, float(e["qty"]),
                    None if limit is None else float(limit), decided_ts_min=ts_min)  # fmt: skip
        self.st.entry_plan = dict(e)
        self.st.entry_ts_min = ts_min
        if not self._send(
            w, "Market" if limit is None else "Limit", f"{ts_min}:entry",
            tif=None if limit is None else "GTC",
        ):  # fmt: skip
            self._end_entry(ts_min)

    def _end_entry(self, ts_min: int | None) -> None:
        """Tell the driver the entry decided at ``ts_min`` ended with what it has been
        told filled (nothing, or part: the position opens with that)."""
        self.report("entry_end", {"ts_ms": int(time.time() * 1000), "order_ts_min": ts_min})

    def adopt_intents(self) -> list[str]:
        """After a restart: every order recorded as an intent but missing from the restored
        state was sent (or about to be) when the process died. Ask the exchange for each by
        its link id: found → followed again (its executions come with the resync); not
        found → halt (what the kernel believes about it cannot be known from here).
        Returns what was adopted, for the log."""
        known = set(self.st.orders)
        rows = self.db.execute(
            "SELECT intent, link_id, role, side, qty, price, decided_ts_min, plan FROM "
            "live_intents WHERE outcome IS NULL OR outcome != ? ORDER BY created_ms",
            [NOT_SENT],
        ).fetchall()
        out = []
        for intent, link, role, side, qty, price, ts_min, plan in rows:
            if link in known:
                continue
            res = self.ad.resolve(link)
            with self.db:
                self.db.execute(
                    "UPDATE live_intents SET outcome = ? WHERE intent = ?", [res.outcome, intent]
                )
            out.append(f"{link} ({role}): {res.outcome}")
            if res.outcome != SENT:
                # recorded, maybe sent, not on the exchange: the operator decides
                self.halt(f"order {link} ({role}) was recorded before a crash but is not on "
                          f"the exchange ({res.outcome}: {res.message})")  # fmt: skip
                continue
            w = Working(role, link, side, float(qty), price, decided_ts_min=ts_min)
            row = next(
                (r for r in self.ad.view.orders.values() if r.get("orderLinkId") == link), {}
            )
            w.done = row.get("orderStatus") in TERMINAL  # its fills still come by execId
            self.st.orders[link] = w
            if role == "entry":
                self.st.entry_plan = json.loads(plan) if plan else self.st.entry_plan
                self.st.entry_ts_min = ts_min
        return out

    def _entry_orders(self) -> list[Working]:
        return [
            w for w in self.st.orders.values() if w.role in ("entry", "entry_mkt") and not w.done
        ]

    def _cancel_entry(self) -> None:
        """The kernel dropped its working entry (kill switch, permission withdrawn). The
        exchange may have filled it, or part of it, before the cancel arrived, or while the
        graph was down: those fills are real and the driver books them against the
        cancelled order. Once every fill the exchange reports for it has been told, the
        driver is told the order ended (unless it filled in full: the position is open)."""
        keys = set()
        for w in self._entry_orders():
            self.ad.cancel_order(link_id=w.link)
            w.done = True
            w.end_at = self._final_filled(w)
            if w.decided_ts_min is not None:
                keys.add(w.decided_ts_min)
        for k in sorted(keys):
            if k not in self.st.cancelled:
                self.st.cancelled.append(k)
            self._settle_cancelled(k)

    def _final_filled(self, w: Working) -> float:
        """The quantity filled in all of an order that can no longer fill (cancelled,
        refused cancel of a filled order), asked of the exchange: the WebSocket's view may
        not have its last fills yet."""
        self.ad.resolve(w.link)
        return self._cum_filled(w.link)

    def _settle_cancelled(self, key: int) -> None:
        """If every order of the cancelled entry decided at ``key`` has reported all its
        fills: a full fill opened the position in the driver; otherwise tell it the end."""
        if key not in self.st.cancelled:
            return
        orders = [
            w for w in self.st.orders.values()
            if w.role in ("entry", "entry_mkt") and w.decided_ts_min == key
        ]  # fmt: skip
        eps = 1e-9
        for w in orders:
            if w.filled >= w.qty - eps:
                continue
            if w.end_at is None or w.filled < w.end_at - eps:
                return  # still open, or fills still on their way
        self.st.cancelled.remove(key)
        want = next((w.qty for w in orders if w.role == "entry"), None)
        total = sum(w.filled for w in orders)
        if want is None or total < want - eps:
            self._end_entry(key)

    def _timeouts(self, last_ts_min: int) -> None:
        for w in self._entry_orders():
            if w.role != "entry" or w.price is None or w.decided_ts_min is None:
                continue
            if last_ts_min < w.decided_ts_min + self.timeout_min * MINUTE_MS:
                continue
            res = self.ad.cancel_order(link_id=w.link)
            w.done = True
            # asked of the exchange: a limit filled just before its cancel must not be
            # bought again at market because the WebSocket has not said so yet
            filled = w.end_at = self._final_filled(w)
            rest = round(w.qty - filled, 9)
            if res.outcome != SENT and rest > 0:
                # the limit may have filled in the meantime: the executions will say
                log.info("timeout cancel refused", link=w.link, code=res.ret_code)
            if rest > 0:
                m = Working("entry_mkt", self.ad.new_link_id("em"), w.side, rest,
                            decided_ts_min=w.decided_ts_min, filled=0.0)  # fmt: skip
                if not self._send(m, "Market", f"{w.decided_ts_min}:entry_mkt"):
                    self._end_entry(w.decided_ts_min)

    def _cum_filled(self, link: str) -> float:
        for row in self.ad.view.orders.values():
            if row.get("orderLinkId") == link:
                return float(row.get("cumExecQty") or 0)
        w = self.st.orders.get(link)
        return w.filled if w else 0.0

    def _exit(self, x: dict[str, Any], state: dict[str, Any], ts_min: int) -> None:
        pos = state.get("position")
        if not pos:
            return
        side = "Sell" if pos["side"] == "LONG" else "Buy"
        w = Working("exit", self.ad.new_link_id("ex"), side, float(x["qty"]))
        self._send(w, "Market", f"{ts_min}:exit", reduce_only=True)

    # ---- protection ---------------------------------------------------------------------------
    def sync_protection(self, state: dict[str, Any]) -> None:
        """The exchange holds the kernel's stop and targets while a position is open; they
        go when it is flat."""
        pos = state.get("position")
        if pos is None:
            if self.st.stop_set is not None:
                self.ad.set_stop_loss(None)
                self.st.stop_set = None
            for w in list(self.st.orders.values()):
                if w.role in ("tp1", "tp2") and not w.done:
                    self.ad.cancel_order(link_id=w.link)
                    w.done = True
            self.st.position_side = 0
            return
        self._protect(float(pos["stop"]), pos)

    def _protect(self, stop: float, pos: dict[str, Any] | None) -> None:
        if self.st.stop_set != stop:
            res = self.ad.set_stop_loss(stop)
            if res.outcome == SENT:
                self.st.stop_set = stop
            elif res.ret_code == 10001 and "base_price" in (res.message or ""):
                self._stop_through(stop)
                return
            elif res.ret_code == 10001 and "zero position" in (res.message or ""):
                # flat on the exchange already (a stop or target fired; its execution is on
                # its way to the driver). Nothing to protect; a real difference is caught by
                # the position check, which halts if it lasts.
                log.info("no position on the exchange to protect", stop=stop)
                return
            else:
                self.halt(f"the protective stop at {stop} was not accepted: {res.message}")
        if pos is None:
            return
        side = "Sell" if pos["side"] == "LONG" else "Buy"
        self.st.position_side = 1 if pos["side"] == "LONG" else -1
        have = {w.role for w in self.st.orders.values() if w.role in ("tp1", "tp2") and not w.done}
        plan = self.st.entry_plan or {}
        qty = float(pos["qty"])
        tp1_qty = float(plan.get("tp1_qty") or 0.0)
        for role, price, q in (
            ("tp1", pos.get("tp1"), tp1_qty if not pos.get("tp1_done") else 0.0),
            ("tp2", pos.get("tp2"), round(qty - (0.0 if pos.get("tp1_done") else tp1_qty), 9)),
        ):
            if role in have or price is None or q <= 0:
                continue
            direction = 1 if side == "Sell" else 2  # a long's target is above: rising
            w = Working(role, self.ad.new_link_id(role), side, q, None)
            # keyed by the position (the kernel's entry time): one target of each kind each
            self._send(w, "Market", f"pos{pos['entry_ts_ms']}:{role}", reduce_only=True,
                       trigger_price=float(price), trigger_direction=direction)  # fmt: skip

    def _stop_through(self, stop: float) -> None:
        """The exchange refused the stop because its trigger, the last price, is already
        through it (the kernel moved it there, or the market moved while we were away).
        The stop's own effect, then: the whole position closed at market, reported as the
        stop's exit. The previous stop stays on the exchange until the position is flat."""
        size = float(self.ad.view.position_size())
        if size == 0:
            return
        side = "Sell" if size > 0 else "Buy"
        w = Working("stop", self.ad.new_link_id("sx"), side, abs(size))
        self.alert(f"the stop at {stop} is already through the last price: closed at market")
        self._send(w, "Market", f"{self.st.entry_ts_min}:stop_at_market:{stop}", reduce_only=True)

    # ---- executions -------------------------------------------------------------------------
    def on_execution(self, row: dict[str, Any], funding: bool) -> None:
        exec_id = str(row.get("execId", ""))
        if self.db.execute("SELECT 1 FROM live_fills WHERE exec_id = ?", [exec_id]).fetchone():
            return  # reported before (a resync after a reconnect sends it again)
        link = str(row.get("orderLinkId") or "")
        ts = int(row.get("execTime") or 0)
        price, qty = float(row.get("execPrice") or 0), float(row.get("execQty") or 0)
        fee = float(row.get("execFee") or 0)
        maker = bool(row.get("isMaker"))
        if funding:
            role, ok = "funding", self.report("funding", {"amount": -fee})
        else:
            w = self.st.orders.get(link)
            role = (
                w.role if w else ("stop" if row.get("stopOrderType") == "StopLoss" else "unknown")
            )
            if w is not None:
                w.filled = round(w.filled + qty, 9)
                if w.filled >= w.qty - 1e-12:
                    w.done = True
            args = {"ts_ms": ts, "price": price, "qty": qty, "fee": fee}
            if role in ("entry", "entry_mkt"):
                key = w.decided_ts_min if w else None
                ok = self.report("entry_fill", {**args, "maker": maker, "order_ts_min": key})
                if ok and self.st.entry_plan:
                    self._protect(float(self.st.entry_plan["stop"]), None)
                if ok and key is not None:
                    self._settle_cancelled(key)
            elif role in ("exit", "tp1", "tp2", "stop"):
                ok = self.report(
                    "exit_fill", {**args, "kind": "market" if role == "exit" else role}
                )
            else:
                ok = False
                self.halt(f"an execution of an order we did not send: {link or row.get('orderId')}")
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO live_fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [exec_id, ts, link, role, row.get("side"), price, qty, fee, int(maker), int(ok),
                 json.dumps(row)],
            )  # fmt: skip
        if not ok and role != "unknown":
            self.halt(f"the driver refused the {role} execution {exec_id}")

    def open_links(self) -> set[str]:
        return {w.link for w in self.st.orders.values() if not w.done}
