"""``raw.duckdb`` as the collector owns it: appends, catch-up reads, gaps, the daily purge.

DuckDB allows one writing process per file, so only the collector opens ``raw.duckdb``; the
other actors get ticks from it (``ticks_after``) when they must catch up after a restart or
a lost batch. Rows are appended in release order, so ``seq`` order is time order within a
kind and a consumer's cursor is just the last ``seq`` of each kind it has fed.

Gaps (the feed was down, stalled, or the collector itself was not running) are recorded in
``feed_gaps`` with their reason; the features actor flags the minutes they touch. Rows that
arrived too late to be fed in time order go to ``late_ticks`` (kept, counted, never fed).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from at_core.errors import StorageError
from at_core.live.journal import Journal
from at_core.live.ticks import Arrays, Released
from at_core.storage.retention import HOUR_MS, PurgeReport, purge_connection

EXTRA_DDL = [
    """CREATE TABLE IF NOT EXISTS feed_gaps (
    start_ms    BIGINT NOT NULL,
    end_ms      BIGINT NOT NULL,
    reason      VARCHAR NOT NULL,
    recorded_ms BIGINT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS late_ticks (
    ts_ms       BIGINT NOT NULL,
    kind        VARCHAR NOT NULL,
    payload     VARCHAR NOT NULL,
    recorded_ms BIGINT NOT NULL
)""",
]

TRADE_COLS = ("ts_ms", "price", "size", "exchange_side", "trade_id", "seq")
CHECKPOINT_WAL_BYTES = 16 << 20  # DuckDB's own default threshold
QUOTE_COLS = ("ts_ms", "bid_px", "bid_sz", "ask_px", "ask_sz", "seq")


class RawStore:
    """The collector's connection to ``raw.duckdb`` (thread-safe: one lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.con = duckdb.connect(str(path))
        except duckdb.Error as exc:
            raise StorageError(
                f"cannot open {path} for writing (is another collector running?): {exc}"
            ) from exc
        for ddl in EXTRA_DDL:
            self.con.execute(ddl)
        # DuckDB checkpoints on its own once the WAL passes a threshold, inside whatever
        # commit crosses it: on the minute-close path that was a 100+ ms stall. The
        # collector checkpoints instead right after a minute has been sent (``checkpoint``).
        self.con.execute("SET checkpoint_threshold = '1GB'")
        self.wal = Path(str(path) + ".wal")
        self.lock = threading.Lock()
        self.journal = Journal(Path(str(path) + ".journal"))
        self.unstored = False  # a commit failed: the journal holds releases DuckDB lacks
        self.recovered = self._recover()

    def close(self) -> None:
        with self.lock:
            self.con.close()
            self.journal.close()

    def _recover(self) -> int:
        """Store the releases a collector journaled and sent but died before storing
        (see ``at_core.live.journal``). Idempotent: rows already stored (the process died
        after the commit, before the journal was cleared) are skipped by seq. Returns the
        rows stored."""
        with self.lock:
            return self._replay()

    def _replay(self) -> int:
        """``_recover`` under the lock."""
        pending = self.journal.pending()
        if not pending:
            return 0
        last = self._last()
        n = 0
        for rel in pending:
            rest = Released(
                trades=_after(rel.trades, last["trade_seq"]),
                quotes=_after(rel.quotes, last["quote_seq"]),
                close_through=rel.close_through,
            )
            if rest.rows:
                self._append(rest)
                n += rest.rows
        self.journal.clear()
        return n

    @contextmanager
    def storing(self, rel: Released) -> Iterator[None]:
        """Journal ``rel``, let the caller send it, then commit it to DuckDB and clear the
        journal. Readers wait throughout, so a catch-up read never misses a row that was
        sent. A failed commit leaves the release in the journal; the next call stores it
        first."""
        with self.lock:
            if self.unstored:
                # an earlier commit failed: its releases are still only in the journal
                self._replay()
                self.unstored = False
            self.journal.write(rel)
            try:
                yield
            finally:
                self.unstored = True
                self._append(rel)
                self.journal.clear()
                self.unstored = False

    # ---- cursor ------------------------------------------------------------------------------
    def last(self) -> dict[str, int]:
        """Last seq and ts of each kind (0 / -1 when empty)."""
        with self.lock:
            return self._last()

    def _last(self) -> dict[str, int]:
        t = self.con.execute("SELECT max(seq), max(ts_ms) FROM raw_trades").fetchone()
        q = self.con.execute("SELECT max(seq), max(ts_ms) FROM raw_quotes").fetchone()
        assert t is not None and q is not None
        return {
            "trade_seq": int(t[0] or 0),
            "quote_seq": int(q[0] or 0),
            "trade_ts": int(t[1] if t[1] is not None else -1),
            "quote_ts": int(q[1] if q[1] is not None else -1),
        }

    # ---- writes ------------------------------------------------------------------------------
    def append(self, rel: Released) -> None:
        """Both kinds of one release in one transaction (all or nothing), sent as one
        statement list: each call into DuckDB gives up the GIL, and getting it back from
        the WebSocket thread can take a switch interval, so the fewer calls the better."""
        with self.lock:
            self._append(rel)

    def _append(self, rel: Released) -> None:
        """The insert itself; the caller holds the lock."""
        sql = []
        names = []
        # its own call first: it also finishes any result a read left open, which
        # DuckDB requires before a table can be registered
        self.con.execute("BEGIN TRANSACTION")
        try:
            if rel.trades is not None:
                t = pa.table({c: _arrow(c, rel.trades[c]) for c in TRADE_COLS})
                self.con.register("t_in", t)
                names.append("t_in")
                cl = ", ".join(TRADE_COLS)
                sql.append(f"INSERT INTO raw_trades ({cl}) SELECT {cl} FROM t_in")
            if rel.quotes is not None:
                q = pa.table({c: pa.array(rel.quotes[c]) for c in QUOTE_COLS})
                self.con.register("q_in", q)
                names.append("q_in")
                cl = ", ".join(QUOTE_COLS)
                sql.append(f"INSERT INTO raw_quotes ({cl}) SELECT {cl} FROM q_in")
            sql.append("COMMIT")
            self.con.execute(";\n".join(sql))
        except Exception:
            self.con.execute("ROLLBACK")
            raise
        finally:
            for n in names:
                self.con.unregister(n)

    def checkpoint(self, wal_bytes: int = CHECKPOINT_WAL_BYTES) -> bool:
        """Checkpoint when the WAL has grown past ``wal_bytes`` (True when it did)."""
        try:
            size = self.wal.stat().st_size
        except FileNotFoundError:
            return False
        if size < wal_bytes:
            return False
        with self.lock:
            self.con.execute("CHECKPOINT")
        return True

    def record_gap(self, start_ms: int, end_ms: int, reason: str) -> None:
        with self.lock:
            self.con.execute(
                "INSERT INTO feed_gaps VALUES (?, ?, ?, ?)",
                [int(start_ms), int(end_ms), reason, int(time.time() * 1000)],
            )

    def record_late(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        now = int(time.time() * 1000)
        with self.lock:
            self.con.executemany(
                "INSERT INTO late_ticks VALUES (?, ?, ?, ?)",
                [[int(r["ts_ms"]), str(r["kind"]), json.dumps(r, default=str), now] for r in rows],
            )

    # ---- reads -------------------------------------------------------------------------------
    def gaps(self, since_ms: int = -(2**62)) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.con.execute(
                "SELECT start_ms, end_ms, reason FROM feed_gaps WHERE end_ms >= ? ORDER BY start_ms",
                [since_ms],
            ).fetchall()
        return [{"start_ms": a, "end_ms": b, "reason": r} for a, b, r in rows]

    def ticks_after(
        self,
        trade_seq: int,
        quote_seq: int,
        trade_upto: int | None = None,
        quote_upto: int | None = None,
    ) -> tuple[Arrays | None, Arrays | None]:
        """Rows with seq above the cursor (and at most ``*_upto``), in seq order."""
        big = 2**62
        with self.lock:
            t = self.con.execute(
                "SELECT ts_ms, seq, price, size, coalesce(exchange_side, 0)::TINYINT AS exchange_side "
                "FROM raw_trades WHERE seq > ? AND seq <= ? ORDER BY seq",
                [trade_seq, big if trade_upto is None else trade_upto],
            ).fetchnumpy()
            q = self.con.execute(
                "SELECT ts_ms, seq, bid_px, bid_sz, ask_px, ask_sz FROM raw_quotes "
                "WHERE seq > ? AND seq <= ? ORDER BY seq",
                [quote_seq, big if quote_upto is None else quote_upto],
            ).fetchnumpy()
        return _numpy(t), _numpy(q)

    def ticks_since_ms(self, from_ms: int) -> tuple[Arrays | None, Arrays | None, dict[str, int]]:
        """Rows with ts >= ``from_ms`` (a rebuild window) and the cursor just before them."""
        with self.lock:
            t0 = self.con.execute(
                "SELECT coalesce(min(seq) - 1, 0) FROM raw_trades WHERE ts_ms >= ?", [from_ms]
            ).fetchone()
            q0 = self.con.execute(
                "SELECT coalesce(min(seq) - 1, 0) FROM raw_quotes WHERE ts_ms >= ?", [from_ms]
            ).fetchone()
        assert t0 is not None and q0 is not None
        t, q = self.ticks_after(int(t0[0]), int(q0[0]))
        return t, q, {"trade_seq": int(t0[0]), "quote_seq": int(q0[0])}

    def window(
        self, lo_ms: int, hi_ms: int, quotes_from_ms: int | None
    ) -> tuple[Arrays | None, Arrays | None, int | None]:
        """Trades with ``lo_ms <= ts < hi_ms``, the quotes from ``quotes_from_ms`` to
        ``hi_ms`` (the prevailing quote of the first trades lies before ``lo_ms``; None:
        no quotes), and the
        first trade time this store still holds (older trades are in the lake).

        Read through a cursor of its own, outside the store's lock: a 4-hour read takes tens
        of milliseconds, and the pump must not wait that long to commit the next release
        (DuckDB gives the cursor a consistent snapshot while the pump appends)."""
        with self.lock:
            cur = self.con.cursor()
        try:
            t = cur.execute(
                "SELECT ts_ms, seq, price, size, coalesce(exchange_side, 0)::TINYINT AS exchange_side "
                "FROM raw_trades WHERE ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms, seq",
                [lo_ms, hi_ms],
            ).fetchnumpy()
            q = None
            if quotes_from_ms is not None:
                q = cur.execute(
                    "SELECT ts_ms, seq, bid_px, bid_sz, ask_px, ask_sz FROM raw_quotes "
                    "WHERE ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms, seq",
                    [quotes_from_ms, hi_ms],
                ).fetchnumpy()
            first = cur.execute("SELECT min(ts_ms) FROM raw_trades").fetchone()
        finally:
            cur.close()
        first_ts = None if first is None or first[0] is None else int(first[0])
        return _numpy(t), None if q is None else _numpy(q), first_ts

    def counts(self) -> dict[str, int]:
        with self.lock:
            out = {}
            for table in ("raw_trades", "raw_quotes", "feed_gaps", "late_ticks"):
                r = self.con.execute(f"SELECT count(*) FROM {table}").fetchone()
                out[table] = int(r[0]) if r else 0
        return out

    # ---- retention -----------------------------------------------------------------------------
    def purge(self, db_dir: Path, now_ms: int, keep_hours: float = 48.0) -> PurgeReport:
        """Move rows older than ``keep_hours`` into the lake, then delete them (SPEC §2.3)."""
        with self.lock:
            return purge_connection(self.con, db_dir, now_ms - int(keep_hours * HOUR_MS))


def _after(a: Arrays | None, seq: int) -> Arrays | None:
    """Rows of ``a`` with seq above ``seq`` (None when none)."""
    if a is None:
        return None
    keep = np.asarray(a["seq"]) > seq
    if not keep.any():
        return None
    return {k: np.asarray(v)[keep] for k, v in a.items()}


def _arrow(col: str, v: np.ndarray) -> pa.Array:
    if col == "trade_id":
        return pa.array(list(v), type=pa.string())
    return pa.array(v)


def _numpy(d: dict[str, Any]) -> Arrays | None:
    if not len(d["ts_ms"]):
        return None
    out: Arrays = {}
    for k, v in d.items():
        a = np.asarray(v)
        if k in ("ts_ms", "seq"):
            a = a.astype(np.int64)
        elif k == "exchange_side":
            a = a.astype(np.int8)
        else:
            a = a.astype(np.float64)
        out[k] = np.ascontiguousarray(a)
    return out
