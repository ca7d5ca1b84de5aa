"""Atomic, numbered snapshots of an actor's state in its own SQLite store.

One row per snapshot: a sequence number that only grows (``seq``; the next is ``max + 1``
inside the same transaction, so two snapshots can never share one, and a reader always
takes the highest), the wall time, why it was taken (``periodic``, ``state_change``,
``stop``...), a JSON part a person can read (position, counters, pending orders, account)
and an opaque binary part (the Rust driver's state). SQLite commits the row whole or not at
all, so a crash mid-write leaves the previous snapshot as the latest. Old rows are pruned
(``keep``) in the same transaction. Secrets never enter a snapshot (the caller's state has
none).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from at_core.storage.stores import connect_sqlite

DDL = """CREATE TABLE IF NOT EXISTS live_snapshots (
    actor     TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    ts_ms     INTEGER NOT NULL,
    reason    TEXT NOT NULL,
    state     TEXT NOT NULL,
    blob      BLOB,
    PRIMARY KEY (actor, seq)
)"""


class SnapshotStore:
    def __init__(self, path: Path, actor: str, keep: int = 100) -> None:
        self.path, self.actor, self.keep = path, actor, keep
        self.con = connect_sqlite(path)
        with self.con:
            self.con.execute(DDL)

    def save(self, reason: str, state: dict[str, Any], blob: bytes | None = None) -> int:
        """Write one snapshot; returns its sequence number."""
        text = json.dumps(state, default=str, allow_nan=True)
        with self.con:
            self.con.execute("BEGIN IMMEDIATE")
            row = self.con.execute(
                "SELECT coalesce(max(seq), 0) FROM live_snapshots WHERE actor = ?", [self.actor]
            ).fetchone()
            seq = int(row[0]) + 1
            self.con.execute(
                "INSERT INTO live_snapshots VALUES (?, ?, ?, ?, ?, ?)",
                [self.actor, seq, int(time.time() * 1000), reason, text, blob],
            )
            self.con.execute(
                "DELETE FROM live_snapshots WHERE actor = ? AND seq <= ?",
                [self.actor, seq - self.keep],
            )
        return seq

    def latest(self) -> tuple[int, dict[str, Any], bytes | None] | None:
        row = self.con.execute(
            "SELECT seq, state, blob FROM live_snapshots WHERE actor = ? ORDER BY seq DESC LIMIT 1",
            [self.actor],
        ).fetchone()
        if row is None:
            return None
        return int(row[0]), json.loads(row[1]), row[2]

    def count(self) -> int:
        row = self.con.execute(
            "SELECT count(*) FROM live_snapshots WHERE actor = ?", [self.actor]
        ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.con.close()


def connect(path: Path) -> sqlite3.Connection:
    return connect_sqlite(path)
