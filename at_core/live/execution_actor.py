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
import time
import uuid
from typing import Any

import numpy as np

from at_core import logging as at_logging
from at_core.live.alerts import Alerter
from at_core.live.config import ACTOR_NAMES, NAMESPACE, LiveConfig
from at_core.live.snapshots import SnapshotStore
from at_core.storage.stores import connect_sqlite, init_store

log = at_logging.get(__name__)

TRADE_COLUMNS = (
    "side", "setup", "entry_reason", "decision_ts_ms", "fill_ts_ms", "entry_price", "entry_maker",
    "qty", "stop_initial", "tp1", "tp2", "tp1_ts_ms", "tp1_price", "tp1_qty",
    "exit_decision_ts_ms", "exit_ts_ms", "exit_price", "exit_reason", "gross_pnl", "fees",
    "funding", "slippage_cost", "net_pnl",
)  # fmt: skip

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
    + ", ".join(
        f"{c} {'TEXT' if c in ('setup', 'entry_reason', 'exit_reason') else 'DOUBLE'}"
        for c in TRADE_COLUMNS
    )
    + ", PRIMARY KEY (session, trade_no))",
]


def _py(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    return v


class Execution:
    def __init__(self, cfg: LiveConfig) -> None:
        self.cfg = cfg
        paths = init_store(cfg.db_dir, "execution")
        self.db = connect_sqlite(paths.execution)
        with self.db:
            for ddl in DDL:
                self.db.execute(ddl)
        self.snaps = SnapshotStore(paths.execution, "execution")
        self.alerts = Alerter(cfg.alert_log, cfg.webhook_url, "execution")
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
        self.state = msg["state"]
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

    def stop(self) -> None:
        self.alerts.close(timeout=2)


def _side(v: Any) -> str | None:
    v = _py(v)
    if v is None:
        return None
    if isinstance(v, str):
        return v
    return "long" if v > 0 else "short"
