"""The Execution actor: orders, fills and positions in ``execution.db``; the account's
state for the operator.

It alone owns ``execution.db``. In ``paper`` / ``shadow`` / ``dry_run`` the fills are the
driver's (the backtester's fill model on the live quotes, inside the signals actor): this
actor records every order the kernel decided (``live_orders``), every closed trade
(``live_trades``, the columns of ``backtest_trades``, and the spec's ``positions`` rows),
and a readable account snapshot on every state change (the spec's ``state_snapshots``). In
``live`` it also sends the orders through the exchange adapter (next part of the issue).

Nothing here decides: sizes, prices, exits and the kill switch are the kernel's.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

import at_core._core as _core
from at_core import logging as at_logging
from at_core.live.alerts import Alerter
from at_core.live.config import ACTOR_NAMES, NAMESPACE, LiveConfig, favour_latency
from at_core.live.snapshots import SnapshotStore
from at_core.storage.stores import connect_sqlite, init_store

log = at_logging.get(__name__)

#: the trade record's fields (declared once, in Rust: ``TradeRecord::COLUMNS``)
TRADE_COLUMNS: tuple[str, ...] = tuple(_core.backtest_trade_columns())
TEXT_COLUMNS = ("setup", "entry_reason", "exit_reason")

DDL = [
    """CREATE TABLE IF NOT EXISTS live_orders (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session     TEXT NOT NULL,
    mode        TEXT NOT NULL,
    ts_min      INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    side        TEXT,
    price       DOUBLE,
    qty         DOUBLE,
    reason      TEXT,
    link_id     TEXT,
    status      TEXT NOT NULL,
    detail      TEXT,
    created_ms  INTEGER NOT NULL
)""",
    "CREATE TABLE IF NOT EXISTS live_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
    "CREATE UNIQUE INDEX IF NOT EXISTS live_orders_once ON live_orders (session, ts_min, kind)",
    "CREATE TABLE IF NOT EXISTS live_trades (session TEXT NOT NULL, trade_no INTEGER NOT NULL, mode TEXT NOT NULL, "
    + ", ".join(f"{c} {'TEXT' if c in TEXT_COLUMNS else 'DOUBLE'}" for c in TRADE_COLUMNS)
    + ", PRIMARY KEY (session, trade_no))",
]


def _py(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    return v


MISMATCH_S = 3.0
#: the legs of minute close -> execution, between the stamps each stage adds to a batch:
#: the collector's journal write (synced) before the send, its batch and send, the Ray call
#: to the signals actor, the signals work (features + kernel), the call to execution
HOPS = ("collector_store", "collector_batch", "to_signals", "signals", "signals_to_execution")


def exchange_leverage(strategy_max: float) -> int:
    """The leverage set on the exchange: a quarter above the strategy's own cap.

    The kernel sizes at most ``available margin x max_leverage`` (SPEC §7.3), and sizing is
    from the wallet itself (§7.4); at exactly that leverage the exchange's initial margin
    would be the whole wallet and the order is refused for its fees. In cross margin the
    setting only fixes the initial margin (the size is the strategy's), so a little above
    leaves room while still refusing anything far beyond the strategy's cap."""
    return max(1, math.ceil(strategy_max * 1.25))


class Execution:
    def __init__(self, cfg: LiveConfig) -> None:
        self.cfg = cfg
        self.started_at = time.time()  # this process's start (the supervisor sees restarts)
        favour_latency()
        cfg.mode = cfg.current_mode()
        paths = init_store(cfg.db_dir, "execution")
        self.db = connect_sqlite(paths.execution)
        with self.db:
            for ddl in DDL:
                self.db.execute(ddl)
            # a trade field added since the table was made: the column, empty for old rows
            have = {r[1] for r in self.db.execute("PRAGMA table_info(live_trades)")}
            for c in TRADE_COLUMNS:
                if c not in have:
                    kind = "TEXT" if c in TEXT_COLUMNS else "DOUBLE"
                    self.db.execute(f"ALTER TABLE live_trades ADD COLUMN {c} {kind}")
        self.snaps = SnapshotStore(paths.execution, "execution")
        self.alerts = Alerter(cfg.alert_log, cfg.secret("webhook_url"), "execution")
        snap = self.snaps.latest()
        self.session = self._session()
        self.state: dict[str, Any] = snap[1].get("driver_state", {}) if snap else {}
        # what the store holds is the truth (a snapshot may lag it)
        row = self.db.execute(
            "SELECT coalesce(max(trade_no) + 1, 0) FROM live_trades WHERE session = ?",
            [self.session],
        ).fetchone()
        self.trades_recorded = int(row[0]) if row else 0
        self.orders = 0
        self.last_decided: dict[str, Any] | None = None
        self.restored_from = f"snapshot {snap[0]}" if snap else "fresh"
        self._signals: Any = None
        self.halted: str | None = None
        self.cash_synced: float | None = None  # the last wallet balance given to the driver
        self._mismatch_since: float | None = None
        self.live: Any = None
        self._lock = threading.RLock()
        if cfg.mode == "live":
            self._start_live(snap[1].get("orders") if snap else None)
        # wall ms from the release of the rows that closed a minute to its decision here
        self.close_latency_ms: deque[float] = deque(maxlen=10_000)
        self.hop_ms: dict[str, deque[float]] = {}  # the same path, hop by hop (see HOPS)

    # ---- live mode ----------------------------------------------------------------------------
    def _start_live(self, saved: dict[str, Any] | None) -> None:
        """The adapter (private streams), the order manager, then reconciliation: the
        executions missed while down are reported first, then position and open orders are
        compared with the exchange; a difference halts (fail closed, SPEC §10.4)."""
        from at_core.exchange.adapter import BybitAdapter
        from at_core.live.orders import LiveOrders, OrderState

        cfg = self.cfg
        key, secret = cfg.secret("api_key"), cfg.secret("api_secret")
        if not (key and secret):
            raise ValueError(
                "live mode needs BYBIT_API_KEY and BYBIT_API_SECRET (environment or .env)"
            )
        self.adapter = BybitAdapter(cfg.rest_url, cfg.ws_url, key, secret)
        self.adapter.start(public=False, private=True)
        self.adapter.wait_ready(30)
        self.adapter.set_leverage(exchange_leverage(float(cfg.settings.get("max_leverage", 10))))
        con = sqlite3.connect(
            str(Path(cfg.db_dir) / "execution.db"), timeout=30, check_same_thread=False
        )
        self.live = LiveOrders(
            self.adapter, con, cfg.settings, self._report, self._halt, OrderState.of(saved),
            alert=lambda m: self.alerts.emit("exchange", m, key=m[:40]),
        )  # fmt: skip
        adopted = self.live.adopt_intents()  # sent before a crash, after the last snapshot
        if adopted:
            log.warning("orders adopted from the intent log", orders=adopted)
        self._pump_once(timeout=0.5)  # the resync's executions: reported before comparing
        self.reconcile_issue = self._reconcile()
        if self.reconcile_issue:
            self._halt(self.reconcile_issue, kind="position_mismatch")
        else:
            self._sync_cash(self.state)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="execution", daemon=True)
        self._thread.start()

    def _sync_cash(self, st: dict[str, Any]) -> None:
        """Size from the real account (SPEC §7.4): when nothing is open here or on the
        exchange (no execution can be in flight), the driver's cash := the wallet balance."""
        if st.get("position") or st.get("working") or self.live.open_links():
            return
        try:
            wallet = float(self.adapter.wallet_balance())
        except Exception as exc:  # asked again after the next trade; sizing keeps the old
            log.warning("wallet balance not read", error=repr(exc))
            return
        if wallet > 0:
            self.cash_synced = wallet
            self._signals_handle().sync_cash.remote(wallet)

    def _reconcile(self) -> str | None:
        import ray

        sig = self._signals_handle()
        st = ray.get(sig.state.remote(), timeout=60)
        pos = st.get("position")
        mine = 0.0 if not pos else (1 if pos["side"] == "LONG" else -1) * float(pos["qty"])
        theirs = float(self.adapter.view.position_size())
        if abs(mine - theirs) > 1e-9:
            return f"position mismatch: exchange {theirs:+g} BTC, system {mine:+g} BTC"
        known = self.live.open_links()
        stray = [o.get("orderLinkId") or o.get("orderId") for o in self.adapter.view.open_orders()
                 if (o.get("orderLinkId") or "") not in known]  # fmt: skip
        if stray:
            return f"open orders the system does not know: {stray}"
        return None

    def _signals_handle(self) -> Any:
        import ray

        if self._signals is None:
            self._signals = ray.get_actor(ACTOR_NAMES["signals"], namespace=NAMESPACE)
        return self._signals

    def _report(self, kind: str, args: dict[str, Any]) -> bool:
        import ray

        return bool(ray.get(self._signals_handle().report.remote(kind, args), timeout=60))

    def _halt(self, reason: str, kind: str = "halted") -> None:
        import ray

        if self.halted is None:
            self.halted = reason
            self.alerts.emit(kind if kind != "halted" else "halted", reason, reason=reason)
            try:
                sup = ray.get_actor(ACTOR_NAMES["supervisor"], namespace=NAMESPACE)
                sup.halt.remote(reason)
            except ValueError:
                pass

    def _pump_once(self, timeout: float) -> None:
        for ev in self.adapter.drain(timeout=timeout):
            with self._lock:
                if ev.kind in ("fill", "funding"):
                    self.live.on_execution(ev.data["execution"], ev.kind == "funding")
                elif ev.kind == "alert":
                    what = str(ev.data.get("what", ""))
                    if what == "position mismatch":
                        self._halt(f"position mismatch: {ev.data}", kind="position_mismatch")
                    else:
                        self.alerts.emit("exchange", what, key=what, detail=str(ev.data)[:500])

    def _check_position(self) -> None:
        """The exchange's position against the one our fills imply. A fill and its
        position update arrive separately, so a difference must last ``MISMATCH_S`` before
        it counts; then trading halts (SPEC §10.4: alert, halt, no automatic fix)."""
        mm = self.adapter.view.mismatch()
        now = time.monotonic()
        if mm is None:
            self._mismatch_since = None
        elif self._mismatch_since is None:
            self._mismatch_since = now
        elif now - self._mismatch_since >= MISMATCH_S:
            self._halt(
                f"position mismatch: exchange {mm['exchange']} BTC, fills imply "
                f"{mm['fills_imply']} BTC",
                kind="position_mismatch",
            )

    def _pump(self) -> None:
        self._mismatch_since = None
        while not self._stop.is_set():
            try:
                self._pump_once(timeout=0.05)
                self._check_position()
            except Exception as exc:  # keep pumping; an unexplained state halts
                log.error("execution pump error", error=repr(exc))
                self._halt(f"execution pump error: {exc!r}")
                time.sleep(0.5)

    def _session(self) -> str:
        """One id for the deployment's stores (kept across restarts: records are keyed by it)."""
        with self.db:
            row = self.db.execute("SELECT v FROM live_meta WHERE k = 'session'").fetchone()
            if row is None:
                sid = uuid.uuid4().hex[:12]
                self.db.execute("INSERT INTO live_meta VALUES ('session', ?)", [sid])
                return sid
        return str(row[0])

    def _missed_trades(self, first: int) -> None:
        """Trades the signals actor reported while this actor was down: read them back."""
        import ray

        if self._signals is None:
            self._signals = ray.get_actor(ACTOR_NAMES["signals"], namespace=NAMESPACE)
        t = ray.get(self._signals.trades.remote(self.trades_recorded), timeout=60)
        if len(t.get("entry_price", ())):
            with self.db:
                self._record_trades(t, self.trades_recorded)

    def on_decided(self, msg: dict[str, Any]) -> None:
        """The minutes that placed, exited or cancelled, the driver's state, new trades."""
        was_open = bool(self.state.get("position") or self.state.get("working"))
        stamps = msg.get("stamps")
        if stamps:
            now = time.time()
            self.close_latency_ms.append((now - float(stamps[0])) * 1000.0)
            for hop, a, b in zip(HOPS, stamps, [*stamps[1:], now], strict=False):
                self.hop_ms.setdefault(hop, deque(maxlen=10_000)).append((b - a) * 1000.0)
        self.state = msg["state"]
        if self.live is not None and self.halted is None:
            last = (msg.get("last_decided") or {}).get("ts_min")
            with self._lock:
                self.live.t_release = float(stamps[0]) if stamps else None
                try:
                    self.live.on_decided(msg["orders"], self.state, last)
                finally:
                    self.live.t_release = None
                if was_open:
                    self._sync_cash(self.state)  # flat again: the account after the trade
        self.last_decided = msg.get("last_decided") or self.last_decided
        now = int(time.time() * 1000)
        rows = []
        for o in msg["orders"]:
            e, x = o.get("entry"), o.get("exit")
            if e is not None:
                rows.append(
                    [self.session, self.cfg.mode, o["ts_min"], "entry", _side(e.get("side")),
                     _py(e.get("limit_price", e.get("price"))), _py(e.get("qty")),
                     str(e.get("reason")), None, "paper" if self.cfg.mode != "live" else "new",
                     json.dumps(e, default=_py), now]
                )  # fmt: skip
            if x is not None:
                rows.append(
                    [self.session, self.cfg.mode, o["ts_min"], "exit", None, None, _py(x.get("qty")),
                     str(x.get("reason")), None, "paper" if self.cfg.mode != "live" else "new",
                     json.dumps(x, default=_py), now]
                )  # fmt: skip
            if o.get("cancel_entry"):
                rows.append(
                    [self.session, self.cfg.mode, o["ts_min"], "cancel", None, None, None, None,
                     None, "paper" if self.cfg.mode != "live" else "new", None, now]
                )  # fmt: skip
        t = msg.get("trades")
        first = int(msg["trades_from"])
        if t is not None and first > self.trades_recorded:
            self._missed_trades(first)
        with self.db:
            if rows:
                self.db.executemany(
                    "INSERT OR IGNORE INTO live_orders (session, mode, ts_min, kind, side, price, qty, reason, "
                    "link_id, status, detail, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self.orders += len(rows)
            if t is not None:
                self._record_trades(t, first)
            self._spec_snapshot("state_change", now)
        self.snaps.save(
            "state_change",
            {
                "session": self.session,
                "driver_state": self.state,
                "trades_recorded": self.trades_recorded,
                "orders": None if self.live is None else self.live.st.to_json(),
            },
        )

    def _record_trades(self, t: dict[str, Any], first: int) -> None:
        n = len(t["entry_price"])
        cols = ", ".join(TRADE_COLUMNS)
        marks = ", ".join("?" for _ in TRADE_COLUMNS)
        for i in range(n):
            no = first + i
            vals = [_py(t[c][i]) for c in TRADE_COLUMNS]
            cur = self.db.execute(
                f"INSERT OR IGNORE INTO live_trades (session, trade_no, mode, {cols}) "
                f"VALUES (?, ?, ?, {marks})",
                [self.session, no, self.cfg.mode, *vals],
            )
            if cur.rowcount != 1:
                continue  # recorded before (a replay after a restart): never twice
            r = dict(zip(TRADE_COLUMNS, vals, strict=True))
            self.db.execute(
                "INSERT INTO positions (ts_ms_open, ts_ms_close, side, entry_price, exit_price, "
                "qty_contracts, qty_at_tp1, stop_price, tp1_price, tp2_price, strategy_tag, status, "
                "realized_pnl, fees_paid, funding_paid, leverage_used, risk_pct_used) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [r["fill_ts_ms"], r["exit_ts_ms"], _side(r["side"]), r["entry_price"],
                 r["exit_price"], r["qty"], r["tp1_qty"], r["stop_initial"], r["tp1"], r["tp2"],
                 r["setup"], "closed", r["net_pnl"], r["fees"], r["funding"], None,
                 self.cfg.settings.get("risk_pct")],
            )  # fmt: skip
        self.trades_recorded = max(self.trades_recorded, first + n)

    def _spec_snapshot(self, kind: str, now: int) -> None:
        st = self.state
        self.db.execute(
            "INSERT INTO state_snapshots (ts_ms, snapshot_type, position_state, acceptance_state, "
            "pending_orders, account_state) VALUES (?, ?, ?, ?, ?, ?)",
            [now, kind, json.dumps(st.get("position"), default=_py),
             json.dumps(st.get("acceptance"), default=_py),
             json.dumps(st.get("working"), default=_py),
             json.dumps({k: st.get(k) for k in ("cash", "equity", "day_pnl", "kill", "heat",
                                                 "permission")}, default=_py)],
        )  # fmt: skip

    def set_mode(self, mode: str) -> None:
        self.cfg.mode = mode

    def status(self) -> dict[str, Any]:
        st = self.state
        return {
            "mode": self.cfg.mode,
            "session": self.session,
            "position": st.get("position"),
            "working": st.get("working"),
            "equity": st.get("equity"),
            "day_pnl": st.get("day_pnl"),
            "heat": st.get("heat"),
            "kill": st.get("kill"),
            "permission": st.get("permission"),
            "trades": self.trades_recorded,
            "orders": self.orders,
            "restored_from": self.restored_from,
            "started_at": self.started_at,
            "close_to_execution_ms": _pcts(self.close_latency_ms),
            "hops_ms": {h: _pcts(v) for h, v in self.hop_ms.items()},
            "halted": self.halted,
            "exchange": None
            if self.live is None
            else {
                "position": str(self.adapter.view.position_size()),
                "open_orders": len(self.adapter.view.open_orders()),
                "orders_sent": self.live.sent,
                "cash_synced": self.cash_synced,
                "release_to_send_ms": _pcts(self.live.release_to_send_ms),
                "stop_set": self.live.st.stop_set,
            },
        }

    def trades(self) -> list[dict[str, Any]]:
        cur = self.db.execute(
            f"SELECT trade_no, {', '.join(TRADE_COLUMNS)} FROM live_trades WHERE session = ? "
            "ORDER BY trade_no",
            [self.session],
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def ping(self) -> bool:
        return True

    def reconciled(self) -> str | None:
        """None once the account matches the system; else why trading must stay halted."""
        return getattr(self, "reconcile_issue", None)

    def stop(self) -> None:
        if self.live is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self.adapter.stop()
        self.alerts.close(timeout=2)


def _pcts(xs: deque[float]) -> dict[str, float | int | None]:
    if not xs:
        return {"n": 0, "p50": None, "p99": None}
    a = np.array(xs)
    return {"n": len(a), "p50": round(float(np.percentile(a, 50)), 3),
            "p99": round(float(np.percentile(a, 99)), 3)}  # fmt: skip


def _side(v: Any) -> str | None:
    v = _py(v)
    if v is None:
        return None
    if isinstance(v, str):
        return v
    return "long" if v > 0 else "short"
