"""The Collector actor: the exchange's public stream → ``raw.duckdb`` → the signals and
features actors.

It alone owns ``raw.duckdb``. Its pump thread drains the adapter (publicTrade and
orderbook.1 over a supervised WebSocket with a stall watchdog and capped backoff), puts
rows through the reorder buffer (``at_core.live.ticks``), writes every release to a synced
journal and only then sends it on, then commits it to ``raw.duckdb`` in one transaction
(readers wait meanwhile), so a consumer never holds a tick the store lacks (the store is
the record every catch-up reads; a release journaled by a collector that died before the
commit is stored when it starts again: ``at_core.live.journal``).

Gaps are recorded, never filled: when the stream stalls or drops, the gap runs from the
last row stored before it to the first row after it; when the collector itself was down
(a restart), from the last stored row to the first new one. Each goes to ``feed_gaps`` and
to the consumers, which flag the minutes it touches. Feed health is kept per topic (wall
time of the last message) and a topic silent for ``stale_feed_s`` raises ``stale_feed``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from at_core import logging as at_logging
from at_core.exchange.adapter import BybitAdapter
from at_core.live.alerts import Alerter
from at_core.live.config import LiveConfig, Peers, favour_latency
from at_core.live.cursor import Cursor, make_batch
from at_core.live.raw_store import RawStore
from at_core.live.ticks import Released, TickBuffer
from at_core.storage.stores import init_store

log = at_logging.get(__name__)
DAY_MS = 86_400_000
TOPICS = ("publicTrade", "orderbook.1")
HOLD_S = 0.05  # longest a released row waits to be stored and sent (no decision waits)
HOLD_ROWS = 20_000


class Collector:
    def __init__(self, cfg: LiveConfig, start_stream: bool = True) -> None:
        self.cfg = cfg
        self.started_at = time.time()  # this process's start (the supervisor sees restarts)
        favour_latency()
        paths = init_store(cfg.db_dir, "raw")
        self.db_root = paths.root
        self.store = RawStore(paths.raw)
        # kept in memory: a status poll must not take the store's lock from the pump
        self.stored = self.store.counts()
        self.alerts = Alerter(cfg.alert_log, cfg.secret("webhook_url"), "collector")
        last = self.store.last()
        self.cursor = Cursor(last["trade_seq"], last["quote_seq"])
        self.buf = TickBuffer(
            next_trade_seq=self.cursor.trade_seq + 1,
            next_quote_seq=self.cursor.quote_seq + 1,
            reorder_ms=cfg.reorder_ms,
        )
        self.last_stored_ts = max(last["trade_ts"], last["quote_ts"])
        self.buf.released_ts = self.last_stored_ts
        # a restart with stored rows is a gap until the first new row
        self.gap_open: str | None = "collector restart" if self.last_stored_ts >= 0 else None
        self.last_msg: dict[str, float] = {}
        self.stale: dict[str, bool] = dict.fromkeys(TOPICS, False)
        self.started = time.monotonic()
        self.messages = 0
        self.rows = 0
        self.batches = 0
        self.feed_state = "starting"
        self.last_purge_day: int | None = None
        self.errors: list[str] = []
        self.peers = Peers()
        self._held: Released | None = None  # releases coalesced, not yet stored (see _hold)
        self._held_since = 0.0
        self.delivered_close: int | None = None
        self._stop = threading.Event()
        self.adapter: BybitAdapter | None = None
        self._thread: threading.Thread | None = None
        if start_stream:
            self.adapter = BybitAdapter(
                cfg.rest_url, cfg.ws_url, None, None, stall_after_s=min(6.0, cfg.stale_feed_s)
            )
            self.adapter.start(public=True, private=False)
            self._thread = threading.Thread(target=self._pump, name="collector", daemon=True)
            self._thread.start()

    # ---- the pump ---------------------------------------------------------------------------
    def _pump(self) -> None:
        assert self.adapter is not None
        last_wall = time.monotonic()
        while not self._stop.is_set():
            try:
                events = self.adapter.drain(timeout=0.01)
                for ev in events:
                    self._on_event(ev.kind, ev.data)
                now = time.monotonic()
                if events:
                    last_wall = now
                idle = now - last_wall >= self.cfg.idle_flush_s
                self._hold(self.buf.release(idle=idle), now, idle)
                self._check_health(now)
            except Exception as exc:  # the pump must keep running; report and go on
                self.errors.append(repr(exc))
                log.error("collector pump error", error=repr(exc))
                time.sleep(0.1)

    def _on_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "public":
            topic = str(data.get("topic", ""))
            name = "publicTrade" if topic.startswith("publicTrade") else "orderbook.1"
            self.last_msg[name] = time.monotonic()
            self.messages += 1
            self.buf.on_message(data)
            if self.feed_state != "up":
                self.feed_state = "up"
        elif kind in ("stall", "disconnected"):
            if self.gap_open is None:
                self.gap_open = f"{kind}: {data.get('why') or data.get('topic') or ''}".strip()
            self.feed_state = kind
        elif kind == "reconnected":
            self.feed_state = "reconnecting"

    def _hold(self, rel: Released, now: float, idle: bool) -> None:
        """Coalesce releases into fewer, larger deliveries (one DuckDB transaction and one
        actor call each instead of one per pump cycle). A release that completes a minute
        goes at once with everything held before it, so no decision waits; other rows wait
        at most ``HOLD_S``."""
        if rel.rows:
            if self._held is None:
                self._held, self._held_since = rel, now
            else:
                self._held = self._held.merged(rel)
        held = self._held
        if held is None:
            return
        closes = held.close_through is not None and (
            self.delivered_close is None or held.close_through > self.delivered_close
        )
        if idle or closes or now - self._held_since >= HOLD_S or held.rows >= HOLD_ROWS:
            self._held = None
            self.deliver(held)

    def deliver(self, rel: Released) -> None:
        """Store one release, then send it on (see the module doc for the order)."""
        t_release = time.time()  # wall time the rows left the buffer (latency measurements)
        start = self.cursor
        first_ts = min(int(a["ts_ms"][0]) for a in (rel.trades, rel.quotes) if a is not None)
        if self.gap_open is not None and self.last_stored_ts >= 0:
            self._gap(self.last_stored_ts, first_ts, self.gap_open)
        self.gap_open = None
        with self.store.storing(rel):  # journaled now; in DuckDB after the send
            batch = self._send_on(rel, start, t_release, time.time())
        # the features actor's work competes for the two cores with the decision: it
        # starts once the decision is under way and the commit is done
        f = self.peers.get("features")
        if f is not None:
            f.on_ticks.remote(batch)
        self._after_store(rel)

    def _send_on(
        self, rel: Released, start: Cursor, t_release: float, t_stored: float
    ) -> dict[str, Any]:
        """The release is durable (journaled): the cursor advances and it goes to the
        signals actor. Runs under the store's lock: nothing here may write the store."""
        end = Cursor(self.buf.next_trade_seq - 1, self.buf.next_quote_seq - 1)
        self.cursor = end
        self.last_stored_ts = max(self.last_stored_ts, rel.last_ts or -1)
        if rel.close_through is not None:
            self.delivered_close = max(rel.close_through, self.delivered_close or rel.close_through)
        batch = make_batch(rel.trades, rel.quotes, start, end, rel.close_through)
        batch["stamps"] = [t_release, t_stored, time.time()]  # each stage adds its in/out
        batch["trades"] = _strip_ids(batch["trades"])
        s = self.peers.get("signals")
        if s is not None:
            s.on_ticks.remote(batch)
        return batch

    def _after_store(self, rel: Released) -> None:
        self.stored["raw_trades"] += 0 if rel.trades is None else len(rel.trades["ts_ms"])
        self.stored["raw_quotes"] += 0 if rel.quotes is None else len(rel.quotes["ts_ms"])
        self.rows += rel.rows
        self.batches += 1
        if self.buf.late:
            late, self.buf.late = self.buf.late, []
            self.store.record_late(late)
            self.stored["late_ticks"] += len(late)
            self.alerts.emit(
                "late_ticks",
                f"{len(late)} rows arrived after their time was released; stored, not fed",
                key="late",
                total=self.buf.late_count,
            )
        if rel.close_through is not None:
            self.store.checkpoint()  # the next minute's close is a minute away
        self._maybe_purge()

    def _gap(self, start_ms: int, end_ms: int, reason: str) -> None:
        self.store.record_gap(start_ms, end_ms, reason)
        self.stored["feed_gaps"] += 1
        self.alerts.emit(
            "feed_gap",
            f"no ticks from {start_ms} to {end_ms} ({reason}); the minutes are flagged",
            start_ms=start_ms,
            end_ms=end_ms,
            reason=reason,
        )
        f = self.peers.get("features")
        if f is not None:
            f.on_gap.remote(start_ms, end_ms, reason)

    def _check_health(self, now: float) -> None:
        for topic in TOPICS:
            seen = self.last_msg.get(topic, self.started)
            stale = now - seen > self.cfg.stale_feed_s
            if stale and not self.stale[topic]:
                self.alerts.emit(
                    "stale_feed",
                    f"no {topic} message for {now - seen:.1f} s",
                    key=topic,
                    topic=topic,
                    silent_s=round(now - seen, 1),
                )
            self.stale[topic] = stale

    def _maybe_purge(self) -> None:
        day = self.last_stored_ts // DAY_MS
        if self.last_purge_day == day:
            return
        self.last_purge_day = day
        try:
            rep = self.store.purge(self.db_root, self.last_stored_ts, self.cfg.raw_keep_hours)
            if any(rep.deleted.values()):
                log.info("raw purge", archived=rep.archived, deleted=rep.deleted)
        except Exception as exc:  # retried on the next day change; nothing deleted unarchived
            self.errors.append(f"purge: {exc!r}")

    # ---- called by other actors and the operator --------------------------------------------
    def ticks_after(
        self, cursor: dict[str, int], upto: dict[str, int] | None = None
    ) -> tuple[Any, Any]:
        c = Cursor.of(cursor)
        u = Cursor.of(upto) if upto else None
        t, q = self.store.ticks_after(
            c.trade_seq,
            c.quote_seq,
            None if u is None else u.trade_seq,
            None if u is None else u.quote_seq,
        )
        return _strip_ids(t), q

    def ticks_since_ms(self, from_ms: int) -> tuple[Any, Any, dict[str, int]]:
        return self.store.ticks_since_ms(from_ms)

    def window(self, lo_ms: int, hi_ms: int, quotes_from_ms: int | None) -> tuple[Any, int | None]:
        """The trades of a time window for the dashboard's footprint and profile (it
        cannot open ``raw.duckdb`` while this actor holds it), and the first trade time
        this store holds (``RawStore.window``). With ``quotes_from_ms``, each trade also
        gets its side (``side``: +1 / -1 / 0 ambiguous) from the Rust feature engine over
        the quotes from that time: classified here, so only the trades travel (a 4-hour
        window's quotes are ~40 MB through Ray; its trades with sides ~4 MB)."""
        t, q, first = self.store.window(lo_ms, hi_ms, quotes_from_ms)
        if t is None or quotes_from_ms is None:
            return t, first
        import numpy as np

        import at_core._core as _core
        from at_core.features.engine import engine_config

        cfg = engine_config(self.cfg.strategy())
        sign = np.asarray(_core.features_stage1(t, q, cfg, record_trades=True)["trade_sign"])
        if len(sign) != len(t["ts_ms"]):
            raise RuntimeError(
                f"the engine classified {len(sign)} of {len(t['ts_ms'])} trades of "
                f"[{lo_ms}, {hi_ms})"
            )
        return {**t, "side": sign.astype(np.int8)}, first

    def gaps(self, since_ms: int = -(2**62)) -> list[dict[str, Any]]:
        return self.store.gaps(since_ms)

    def position(self) -> dict[str, int]:
        return self.cursor.to_json()

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "feed_state": self.feed_state,
            "started_at": self.started_at,
            "topics": {
                t: {
                    "last_msg_s_ago": None
                    if t not in self.last_msg
                    else round(now - self.last_msg[t], 3),
                    "stale": self.stale[t],
                }
                for t in TOPICS
            },
            "messages": self.messages,
            "rows": self.rows,
            "batches": self.batches,
            "cursor": self.cursor.to_json(),
            "last_ts": self.last_stored_ts,
            "late": self.buf.late_count,
            "book_resends_skipped": self.buf.skipped_book_resends,
            "pending": self.buf.pending() + (0 if self._held is None else self._held.rows),
            "errors": self.errors[-5:],
            "stored": dict(self.stored),
        }

    def ping(self) -> bool:
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.adapter is not None:
            self.adapter.stop()
        rel = self.buf.release(idle=True)
        held, self._held = self._held, None
        if held is not None:
            rel = held.merged(rel)
        if rel.rows:
            self.deliver(rel)
        self.alerts.close(timeout=2)
        # A clean close checkpoints ``raw.duckdb``: left in its WAL (the supervisor kills
        # this process next), the rows would be replayed by every later reader's open.
        self.store.close()


def _strip_ids(t: Any) -> Any:
    if t is None:
        return None
    return {k: v for k, v in t.items() if k != "trade_id"}
