"""The Signals actor: the strategy kernel through the streaming driver, minute by minute.

It owns ``signals.db``. The driver (``at_core.backtest.stream.StreamingDriver``: the one
feature engine, kernel and execution core in Rust) takes the same releases the features
actor took, in the same order, so its decisions are those of a backtest of the stored
ticks. It takes the collector's releases directly (the features actor stores the same
releases in parallel): the decision goes to the execution actor first, then each decided
minute is written to ``signals_1m`` with the six setup flags, the acceptance state, the
action and the reason; the minute's feature row (SPEC §15.3) arrives from the features
actor (``on_features``), usually a few milliseconds later, and fills the minute's
``feature_snapshot``. The minutes that place, exit or cancel go to the execution actor
with the driver's state.

Fills: ``paper``, ``shadow`` and ``dry_run`` use the backtester's fill model inside the
driver; ``live`` uses the exchange's fills, reported back by the execution actor.
Permission (``allowed`` / ``close_only`` / ``blocked``) is the kernel's own gate: the
graph starts in observation (``close_only``), the operator's activation allows entries,
and a halt blocks them; signals are computed and logged in every state.

Restart: the driver is restored from its latest snapshot (written atomically on every
state change and every snapshot period, with the tick cursor it had reached) and the
ticks stored after that cursor are read back through the collector, so the decisions
continue as if nothing had happened. With no snapshot it is rebuilt from the last
``warmup_minutes`` of stored ticks (observation only: nothing is traded on them).
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

import at_core._core as _core
from at_core import logging as at_logging
from at_core.backtest.stream import StreamingDriver
from at_core.live import shadow
from at_core.live.alerts import Alerter
from at_core.live.config import LiveConfig, Peers, favour_latency
from at_core.live.cursor import Cursor, Follower, end_of
from at_core.live.snapshots import SnapshotStore
from at_core.storage.stores import connect_sqlite, init_store

log = at_logging.get(__name__)
MINUTE_MS = 60_000
PERMISSIONS = ("allowed", "close_only", "blocked")
LOG_DDL = """CREATE TABLE IF NOT EXISTS permission_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms          INTEGER NOT NULL,
    trade_seq      INTEGER NOT NULL,
    quote_seq      INTEGER NOT NULL,
    closed_through INTEGER,
    permission     TEXT NOT NULL
)"""
START_DDL = """CREATE TABLE IF NOT EXISTS driver_starts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms       INTEGER NOT NULL,
    how         TEXT NOT NULL,
    from_ms     INTEGER,
    trade_seq   INTEGER NOT NULL,
    quote_seq   INTEGER NOT NULL
)"""
LEVERAGE_CAP_HIT = 1
KILL_SWITCH_ON = 2


class Signals(Follower):
    def __init__(self, cfg: LiveConfig, catch_up: bool = True) -> None:
        self.cfg = cfg
        self.started_at = time.time()  # this process's start (the supervisor sees restarts)
        favour_latency()
        cfg.mode = cfg.current_mode()
        self.settings = cfg.strategy()
        paths = init_store(cfg.db_dir, "signals")
        self.db = connect_sqlite(paths.signals)
        with self.db:
            self.db.execute(LOG_DDL)
            self.db.execute(START_DDL)
            self.db.execute(shadow.DDL)
        self.shadow: shadow.ShadowCheck | None = None
        self.closed_through: int | None = None
        self._last_state: tuple[Any, ...] = ()
        self.last_event_ts = -1
        self.snaps = SnapshotStore(paths.signals, "signals")
        self.alerts = Alerter(cfg.alert_log, cfg.secret("webhook_url"), "signals")
        self.fills = "exchange" if cfg.mode == "live" else "paper"
        self.reasons = list(_core.strategy_reason_codes())
        self.actions = list(_core.strategy_action_names())
        self.signal_names = list(_core.strategy_signal_names())
        self.last_snapshot = time.monotonic()
        self.trades_reported = 0
        self.decided = 0
        self.catch_ups = 0
        self.last_decided: dict[str, Any] | None = None
        #: feature rows the features actor sent before this actor logged their minute
        self._feature_rows: dict[int, dict[str, Any]] = {}
        self.last_logged: int | None = None  # the last minute written to signals_1m
        self.restored_from = "fresh"
        self.peers = Peers()
        snap = self.snaps.latest()
        blob = None if snap is None else snap[2]
        if snap is not None and blob is not None:
            seq, state = snap[0], snap[1]
            self.driver = StreamingDriver.restore(blob, self.settings, fills=self.fills)
            self.cursor = Cursor.of(state["cursor"])
            self.trades_reported = int(state.get("trades_reported", 0))
            self.closed_through = state.get("closed_through")
            self.last_event_ts = int(state.get("last_event_ts", -1))
            self.decided = int(state.get("decided", 0))
            self.restored_from = f"snapshot {seq}"
        else:
            self.driver = StreamingDriver(self.settings, fills=self.fills)
            self.driver.set_permission("close_only")
            self.cursor = Cursor()
            if catch_up:
                self._rebuild()
            if self.restored_from == "fresh":
                with self.db:
                    self.db.execute(
                        "INSERT INTO driver_starts (ts_ms, how, from_ms, trade_seq, quote_seq) "
                        "VALUES (?, 'fresh', NULL, 0, 0)",
                        [int(time.time() * 1000)],
                    )
        # a driver running for months keeps a day or two of its minute table
        self.driver.set_keep_rows(_core.stream_keep_rows())
        self._last_state = self._state_key()
        if catch_up:
            self._catch_up(None, None)
        self.snapshot("start")
        self._start_shadow()

    # ---- peers ------------------------------------------------------------------------------
    def _actor(self, role: str) -> Any:
        return self.peers.get(role)

    # ---- start-up -------------------------------------------------------------------------
    def _rebuild(self) -> None:
        import ray

        col = self._actor("collector")
        st = ray.get(col.status.remote())
        if st["last_ts"] < 0:
            return
        start = (st["last_ts"] // MINUTE_MS - self.settings.warmup_minutes) * MINUTE_MS
        t, q, before = ray.get(col.ticks_since_ms.remote(start))
        self.cursor = Cursor.of(before)
        self.restored_from = f"rebuilt from raw.duckdb since {start}"
        # the record a replay of the stored ticks needs to reproduce these decisions
        with self.db:
            self.db.execute(
                "INSERT INTO driver_starts (ts_ms, how, from_ms, trade_seq, quote_seq) "
                "VALUES (?, 'rebuild', ?, ?, ?)",
                [int(time.time() * 1000), start, self.cursor.trade_seq, self.cursor.quote_seq],
            )
        self._feed(t, q, end_of(self.cursor, t, q), None, forward=False)

    def _catch_up(self, upto: Cursor | None, close_through: int | None) -> None:
        import ray

        t, q = ray.get(
            self._actor("collector").ticks_after.remote(
                self.cursor.to_json(), None if upto is None else upto.to_json()
            )
        )
        if t is None and q is None and close_through is None:
            return
        self.catch_ups += 1
        self._feed(t, q, end_of(self.cursor, t, q), close_through)

    # ---- the stream ---------------------------------------------------------------------------
    def _feed_batch(self, batch: dict[str, Any], stamps: list[float] | None) -> None:
        self._feed(batch["trades"], batch["quotes"], Cursor.of(batch["to"]),
                   batch["close_through"], stamps=stamps)  # fmt: skip

    def _feed(
        self,
        t: Any,
        q: Any,
        end: Cursor,
        close_through: int | None,
        forward: bool = True,
        stamps: list[float] | None = None,
    ) -> None:
        got = []
        for a in (t, q):
            if a is not None:
                self.last_event_ts = max(self.last_event_ts, int(a["ts_ms"][-1]))
        if t is not None or q is not None:
            got.append(self.driver.push(t, q))
        if close_through is not None:
            got.append(self.driver.close_until(int(close_through)))
            self.closed_through = max(int(close_through), self.closed_through or -(2**62))
        self.cursor = end
        ts = np.concatenate([g["ts_min"] for g in got]) if got else np.zeros(0, np.int64)
        orders = [o for g in got for o in g["orders"]]
        st = self.driver.state()  # once per release: every use below reads this one
        key = self._state_key(st)
        changed = key != self._last_state or bool(orders)
        self._last_state = key
        decided = [g for g in got if len(g["ts_min"])]
        if forward and decided:
            g = decided[-1]
            self.last_decided = {
                "ts_min": int(g["ts_min"][-1]),
                "action": self.actions[int(g["action"][-1])],
                "reason": self.reasons[int(g["reason"][-1])],
            }
        # the decision goes out first; the records follow. A crash in between re-decides the
        # same minutes from the last snapshot, and the execution actor keys every order by
        # (session, minute, kind) and every trade by its index, so a repeat changes nothing.
        if forward and (len(ts) or changed):
            self._to_execution(orders, stamps if len(ts) else None, st)
        if self.shadow is not None and forward:
            self.shadow.note_live(got)
            if len(ts):
                self._shadow_check()
        if len(ts) and forward:  # a rebuild's minutes were decided (and logged) before
            # the stream's minutes take their rows when the features actor sends them
            # (``on_features``); a catch-up's are read back from it now
            feats = self._features_for(ts, fetch=stamps is None)
            self._log_minutes(got, feats, st)
            self.decided += len(ts)
        if changed:
            self.snapshot("state_change", st)
        elif time.monotonic() - self.last_snapshot >= self.cfg.snapshot_period_s():
            self.snapshot("periodic", st)

    def on_features(self, rows: list[dict[str, Any]]) -> int:
        """The features actor's rows of the minutes it closed: each becomes its minute's
        ``feature_snapshot`` in ``signals_1m`` (written now if the minute is logged, else
        when it is). Returns the rows written now."""
        done = 0
        with self.db:
            for r in rows:
                ts = int(r["ts_min"])
                cur = self.db.execute(
                    "UPDATE signals_1m SET feature_snapshot = ? WHERE ts_min = ? "
                    "AND feature_snapshot IS NULL",
                    [json.dumps(r, default=str), ts],
                )
                if cur.rowcount:
                    done += 1
                elif ts > (self.last_logged or -(2**62)):
                    self._feature_rows[ts] = r  # the minute is not decided here yet
        while len(self._feature_rows) > 240:  # never logged (a rebuild's): not kept
            self._feature_rows.pop(min(self._feature_rows))
        return done

    def _features_for(self, ts: np.ndarray, fetch: bool = True) -> dict[int, dict[str, Any]]:
        """The feature rows of the minutes ``ts``: those the features actor already sent,
        and with ``fetch`` the rest asked from it (a catch-up's minutes closed long ago)."""
        by: dict[int, dict[str, Any]] = {}
        for x in ts:
            row = self._feature_rows.pop(int(x), None)
            if row is not None:
                by[int(x)] = row
        missing = [int(x) for x in ts if int(x) not in by]
        if missing and fetch:
            import ray

            f = self._actor("features")
            if f is not None:
                for row in ray.get(f.rows.remote(min(missing), max(missing))):
                    by.setdefault(int(row["ts_min"]), row)
        return by

    def _log_minutes(
        self, got: list[dict[str, Any]], feats: dict[int, dict[str, Any]], st: dict[str, Any]
    ) -> None:
        acceptance = json.dumps(st.get("acceptance"), default=str)
        rows = []
        for g in got:
            for i in range(len(g["ts_min"])):
                ts = int(g["ts_min"][i])
                bits = int(g["signals"][i])
                events = int(g["events"][i])
                action = self.actions[int(g["action"][i])]
                reason = self.reasons[int(g["reason"][i])]
                flags = [int(bool(bits & (1 << k))) for k in range(len(self.signal_names))]
                snap = feats.get(ts)
                text = None if snap is None else json.dumps(snap, default=str)
                rows.append([ts, *flags, acceptance, action, reason, text])
                if events & KILL_SWITCH_ON:
                    self.alerts.emit(
                        "kill_switch",
                        f"daily loss limit breached at {ts}: no new entries until the next UTC day",
                        ts_min=ts,
                        equity=float(g["equity"][i]),
                    )
                if events & LEVERAGE_CAP_HIT:
                    self.alerts.emit(
                        "leverage_cap", f"entry at {ts} reduced by the leverage cap", ts_min=ts
                    )
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO signals_1m VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
        for g in got:
            if len(g["ts_min"]):
                last = int(g["ts_min"][-1])
                self.last_logged = max(last, self.last_logged or last)

    def _state_key(self, st: dict[str, Any] | None = None) -> tuple[Any, ...]:
        st = self.driver.state() if st is None else st
        return (
            json.dumps(st.get("position"), default=str),
            json.dumps(st.get("working"), default=str),
            st.get("trades"),
            st.get("kill"),
            st.get("permission"),
        )

    def _to_execution(
        self,
        orders: list[dict[str, Any]],
        stamps: list[float] | None = None,
        st: dict[str, Any] | None = None,
    ) -> None:
        ex = self._actor("execution")
        if ex is None:
            return
        new = self.driver.trades_since(self.trades_reported)
        n_new = len(new.get("entry_price", ()))
        msg = {
            "orders": orders,
            "state": self.driver.state() if st is None else st,
            "trades": new if n_new else None,
            "trades_from": self.trades_reported,
            "last_decided": self.last_decided,
            "stamps": None if stamps is None else [*stamps, time.time()],
        }
        self.trades_reported += n_new
        ex.on_decided.remote(msg)

    # ---- shadow mode ----------------------------------------------------------------------------
    def _start_shadow(self) -> None:
        """In shadow mode: a second driver from this one's exact state, fed the stored ticks."""
        self.shadow = None
        if self.cfg.mode == "shadow":
            self.shadow = shadow.ShadowCheck(
                bytes(self.driver.snapshot()), self.settings, self.fills, self.cursor,
                self.closed_through,
            )  # fmt: skip

    def _shadow_check(self) -> None:
        import ray

        assert self.shadow is not None
        col = self._actor("collector")

        def fetch(a: Cursor, b: Cursor) -> tuple[Any, Any]:
            return tuple(ray.get(col.ticks_after.remote(a.to_json(), b.to_json()), timeout=60))

        diffs = self.shadow.advance(fetch, self.cursor, self.closed_through, self.driver)
        if diffs:
            shadow.record(self.db, diffs)
            self.alerts.emit(
                "shadow_divergence",
                f"{len(diffs)} difference(s) between the live decisions and the backtest of "
                "the stored ticks (`auction-trader live divergence`)",
                key="shadow",
                first=diffs[0],
            )

    # ---- commands -----------------------------------------------------------------------------
    def set_permission(self, permission: str) -> dict[str, Any]:
        if permission not in PERMISSIONS:
            raise ValueError(f"permission `{permission}` is not one of {', '.join(PERMISSIONS)}")
        self.driver.set_permission(permission)
        with self.db:
            self.db.execute(
                "INSERT INTO permission_log (ts_ms, trade_seq, quote_seq, closed_through, "
                "permission) VALUES (?, ?, ?, ?, ?)",
                [int(time.time() * 1000), self.cursor.trade_seq, self.cursor.quote_seq,
                 self.closed_through, permission],
            )  # fmt: skip
        if self.shadow is not None:
            self.shadow.note_permission(self.cursor, self.closed_through, permission)
        self.snapshot("permission")
        self._last_state = self._state_key()
        self._to_execution([])
        return self.driver.state()

    def report(self, kind: str, args: dict[str, Any]) -> bool:
        """An exchange report (live mode): booked by the driver with the backtester's code.
        A report the driver cannot explain halts it (and so the graph); False then."""
        try:
            if kind == "entry_fill":
                self.driver.entry_fill(int(args["ts_ms"]), float(args["price"]), float(args["qty"]),
                                       float(args["fee"]), bool(args.get("maker")),
                                       args.get("order_ts_min"))  # fmt: skip
            elif kind == "entry_end":
                self.driver.entry_end(int(args["ts_ms"]), args.get("order_ts_min"))
            elif kind == "exit_fill":
                self.driver.exit_fill(str(args["kind"]), int(args["ts_ms"]), float(args["price"]),
                                      float(args["qty"]), float(args["fee"]))  # fmt: skip
            elif kind == "funding":
                self.driver.funding_paid(float(args["amount"]))
            else:
                raise ValueError(f"unknown report `{kind}`")
        except Exception as exc:
            self.alerts.emit(
                "halted", f"the driver refused a {kind} report: {exc}", report=kind, args=args
            )
            return False
        self.snapshot("fill")
        self._last_state = self._state_key()
        self._to_execution([])
        return True

    def sync_cash(self, wallet: float) -> float:
        """Live: the driver's cash := the exchange's wallet balance (sizing from the real
        account). Returns the adjustment; a refusal halts like a refused report."""
        try:
            delta = self.driver.sync_cash(float(wallet))
        except Exception as exc:
            self.alerts.emit("halted", f"the driver refused the wallet balance: {exc}")
            raise
        if delta:
            log.info("cash synced to the exchange wallet", wallet=wallet, adjustment=delta)
            self.snapshot("cash_sync")
        return delta

    def set_mode(self, mode: str) -> None:
        """Switch among the modes that share simulated fills (the supervisor checks)."""
        self.cfg.mode = mode
        self._start_shadow()

    def snapshot(self, reason: str = "operator", st: dict[str, Any] | None = None) -> int:
        """Save the driver with the cursor it reached. A halted driver is not saved (its
        state is what could not be explained): the last good snapshot stays, and a
        restart restores from it. Returns the snapshot's sequence number (the last good
        one's when halted)."""
        self.last_snapshot = time.monotonic()
        if self.driver.halted:
            log.warning("driver halted: snapshot kept from before", reason=reason,
                        halted=self.driver.halted)  # fmt: skip
            last = self.snaps.latest()
            return 0 if last is None else last[0]
        st = self.driver.state() if st is None else st
        state = {
            "cursor": self.cursor.to_json(),
            "trades_reported": self.trades_reported,
            "decided": self.decided,
            "closed_through": self.closed_through,
            "last_event_ts": self.last_event_ts,
            "position": st.get("position"),
            "working": st.get("working"),
            "permission": st.get("permission"),
            "kill": st.get("kill"),
        }
        return self.snaps.save(reason, state, bytes(self.driver.snapshot()))

    def state(self) -> dict[str, Any]:
        return {**self.driver.state(), "warm_minutes": self.warm_minutes()}

    def warm_minutes(self) -> int:
        """Minutes of data behind the next decision: those decided plus the open one (its
        close is the next decision, and it will have this much history)."""
        st = self.driver.state()
        n = int(st.get("minutes") or 0)
        last = st.get("last_ts_min")
        if self.last_event_ts >= 0 and (
            last is None or self.last_event_ts >= int(last) + MINUTE_MS
        ):
            n += 1
        return n

    def trades(self, start: int = 0) -> dict[str, Any]:
        return self.driver.trades_since(start)

    def status(self) -> dict[str, Any]:
        st = self.driver.state()
        return {
            "minutes": st.get("minutes"),
            "warm_minutes": self.warm_minutes(),
            "decided": self.decided,
            "last_decided": self.last_decided,
            "cursor": self.cursor.to_json(),
            "closed_through": self.closed_through,
            "catch_ups": self.catch_ups,
            "restored_from": self.restored_from,
            "started_at": self.started_at,
            "halted": self.driver.halted,
            "fills": self.fills,
            "snapshots": self.snaps.count(),
            "shadow": None
            if self.shadow is None
            else {
                "minutes_compared": self.shadow.minutes_compared,
                "divergences": self.shadow.divergences,
            },
        }

    def ping(self) -> bool:
        return True

    def stop(self) -> None:
        self.snapshot("stop")
        self.alerts.close(timeout=2)
