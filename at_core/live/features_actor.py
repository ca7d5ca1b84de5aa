"""The Features actor: ticks → the Rust feature engine → ``features.duckdb``, and on to
the signals actor's minute log.

It alone owns ``features.duckdb``. Each release from the collector is fed to the one
streaming feature engine (``_core.FeatureEngine``, the code the batch pipeline runs); the
minutes it closes go into ``bars_1m`` / ``features_1m`` / ``features_1m_ext`` (the
``fill_*`` reference of a minute is its successor's first quote: the previous minute's row
is rewritten when the next one closes), and their rows to the signals actor as the
minutes' feature snapshots (SPEC §15.3). The signals actor takes the collector's releases
itself (its driver runs the same feature engine): a decision never waits for this actor.

Restart: the engine's state is restored from its latest snapshot and the ticks stored
after the snapshot's cursor are read back through the collector, so the features after a
restart are those of a run without it. With no snapshot, the engine is rebuilt from the
last ``warmup_minutes`` of ``raw.duckdb`` (no new warm-up when that history exists).
Minutes a recorded feed gap touches are flagged in ``minute_flags``, never filled.

The engine also reports each trade's side, summed per minute and price tick into the
footprint cells the dashboard serves (``FootprintRecorder``, restored with the engine).
"""

from __future__ import annotations

import time
from typing import Any

import duckdb
import numpy as np

import at_core._core as _core
from at_core import logging as at_logging
from at_core.errors import StorageError
from at_core.features.engine import Arrays, concat, engine_config
from at_core.features.pipeline import FEATURES_COLUMNS, add_fill_refs, write_feature_rows
from at_core.live.alerts import Alerter
from at_core.live.config import LiveConfig, Peers, favour_latency
from at_core.live.cursor import Cursor, Follower, end_of
from at_core.live.footprint_recorder import FootprintRecorder
from at_core.live.snapshots import SnapshotStore
from at_core.storage.schema import MINUTE_FLAGS_DDL
from at_core.storage.stores import init_store

log = at_logging.get(__name__)
MINUTE_MS = 60_000


def feature_snapshot_rows(out: Arrays) -> list[dict[str, Any]]:
    """One dict per closed minute with the spec's feature columns (NaN → None)."""
    n = len(out.get("ts_min", ()))
    rows = []
    for i in range(n):
        row: dict[str, Any] = {}
        for c in (*FEATURES_COLUMNS, "va_valid", "volume", "close"):
            if c not in out:
                continue
            v = out[c][i].item()
            row[c] = None if isinstance(v, float) and v != v else v
        rows.append(row)
    return rows


class Features(Follower):
    def __init__(self, cfg: LiveConfig, catch_up: bool = True) -> None:
        self.cfg = cfg
        self.started_at = time.time()  # this process's start (the supervisor sees restarts)
        favour_latency()
        self.settings = cfg.strategy()
        paths = init_store(cfg.db_dir, "features")
        cfg.live_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(paths.features))
        except duckdb.Error as exc:
            raise StorageError(f"cannot open {paths.features} (another writer?): {exc}") from exc
        self.con.execute(MINUTE_FLAGS_DDL)
        self.footprint = FootprintRecorder(self.con, self.settings.tick_size)
        self.alerts = Alerter(cfg.alert_log, cfg.secret("webhook_url"), "features")
        self.snaps = SnapshotStore(cfg.live_dir / "features_state.db", "features")
        self.engine_cfg = engine_config(self.settings)
        self.pending_row: Arrays | None = None  # last closed minute, awaiting its fill ref
        self.minutes = 0
        self.last_ts_min: int | None = None
        #: wall clock when the last closed minute was committed (the dashboard's latency)
        self.stored_at_ms: int | None = None
        self.catch_ups = 0
        self.last_snapshot = time.monotonic()
        self.restored_from = "fresh"
        self.peers = Peers()
        snap = self.snaps.latest()
        blob = None if snap is None else snap[2]
        if snap is not None and blob is not None:
            seq, state = snap[0], snap[1]
            self.engine = _core.FeatureEngine.restore(blob, self.engine_cfg, record_trades=True)
            self.footprint.restore(
                state.get("footprint"), self.engine.last_ts, self.engine.pending_trades
            )
            self.cursor = Cursor.of(state["cursor"])
            self.minutes = int(state.get("minutes", 0))
            self.last_ts_min = state.get("last_ts_min")
            self.restored_from = f"snapshot {seq}"
        else:
            self.engine = _core.FeatureEngine(self.engine_cfg, record_trades=True)
            self.cursor = Cursor()
            if catch_up:
                self._rebuild()
        if catch_up:
            self._catch_up(None)
        self.snapshot("start")

    # ---- peers --------------------------------------------------------------------------------
    def collector(self) -> Any:
        return self.peers.need("collector")

    def signals(self) -> Any:
        return self.peers.get("signals")

    # ---- start-up -------------------------------------------------------------------------
    def _rebuild(self) -> None:
        """No snapshot: start from the last ``warmup_minutes`` of stored ticks."""
        import ray

        c = ray.get(self.collector().position.remote())
        if not (c["trade_seq"] or c["quote_seq"]):
            return
        last = ray.get(self.collector().status.remote())["last_ts"]
        start = (last // MINUTE_MS - self.settings.warmup_minutes) * MINUTE_MS
        t, q, before = ray.get(self.collector().ticks_since_ms.remote(start))
        self.cursor = Cursor.of(before)
        self.restored_from = f"rebuilt from raw.duckdb since {start}"
        self._feed(t, q, end_of(self.cursor, t, q), None, forward=False)

    def _catch_up(self, upto: Cursor | None, close_through: int | None = None) -> None:
        """Feed the stored rows after the cursor (through ``upto``) read back from the
        collector: after a restart, or when a batch was lost on the way."""
        import ray

        t, q = ray.get(
            self.collector().ticks_after.remote(
                self.cursor.to_json(), None if upto is None else upto.to_json()
            )
        )
        if t is None and q is None and close_through is None:
            return
        end = end_of(self.cursor, t, q)
        self.catch_ups += 1
        self._feed(t, q, end, close_through, forward=upto is not None)

    # ---- the stream ---------------------------------------------------------------------------
    def _feed_batch(self, batch: dict[str, Any], stamps: list[float] | None) -> None:
        self._feed(batch["trades"], batch["quotes"], Cursor.of(batch["to"]),
                   batch["close_through"])  # fmt: skip

    def _feed(
        self,
        t: Arrays | None,
        q: Arrays | None,
        end: Cursor,
        close_through: int | None,
        forward: bool = True,
    ) -> None:
        """``forward``: send the closed minutes' rows to the signals actor (not for a
        rebuild's or a start's catch-up: the signals actor reads those back itself)."""
        parts = []
        if t is not None or q is not None:
            parts.append(dict(self.engine.push(t, q)))
        if close_through is not None:  # idempotent: a minute already closed yields nothing
            parts.append(dict(self.engine.close_minute(int(close_through))))
        self.cursor = end
        if not self.footprint.add(
            t, dict(self.engine.take_trade_sides()), self.engine.pending_trades
        ):
            self.alerts.emit(
                "footprint_mismatch",
                "the engine's trade sides did not match the trades fed: the dashboard's "
                "footprint reads these minutes from the stored trades",
                key="footprint",
            )
        closed = concat([p for p in parts if len(p.get("ts_min", ()))])
        if closed:
            self._store(closed)
            s = self.signals() if forward else None
            if s is not None:
                # the minute's feature snapshot for ``signals_1m`` (SPEC §15.3); the
                # signals actor decided the minute from the same ticks meanwhile
                s.on_features.remote(feature_snapshot_rows(closed))
            self.footprint.close(closed["ts_min"])
        self._maybe_snapshot()

    def _store(self, closed: Arrays) -> None:
        rows = closed if self.pending_row is None else concat([self.pending_row, closed])
        rows = add_fill_refs({k: np.asarray(v) for k, v in rows.items()})
        lo, hi = int(rows["ts_min"][0]), int(rows["ts_min"][-1])
        write_feature_rows(self.con, rows, self.settings, lo, hi)
        self.pending_row = {k: v[-1:] for k, v in closed.items()}
        n = len(closed["ts_min"])
        self.minutes += n
        self.last_ts_min = int(closed["ts_min"][-1])
        self.stored_at_ms = int(time.time() * 1000)
        self._quality_alerts(closed)

    def _quality_alerts(self, closed: Arrays) -> None:
        s = self.settings
        amb_max = self.cfg.ambiguous_alert or s.ambiguous_trade_frac_max
        for i in range(len(closed["ts_min"])):
            ts = int(closed["ts_min"][i])
            bins = closed["va_bin_count"][i]
            if self.minutes >= s.warmup_minutes and bins < s.min_va_bins:
                self.alerts.emit(
                    "va_invalid",
                    f"value area at {ts} has {int(bins)} bins (< {s.min_va_bins})",
                    key="va",
                    ts_min=ts,
                )
            amb = float(closed["ambiguous_trade_frac_1m"][i])
            if amb == amb and amb > amb_max:
                self.alerts.emit(
                    "high_ambiguous",
                    f"ambiguous trade fraction {amb:.2f} at {ts} (> {amb_max})",
                    key="amb",
                    ts_min=ts,
                    frac=amb,
                )

    # ---- gaps, snapshots, reads -------------------------------------------------------------
    def on_gap(self, start_ms: int, end_ms: int, reason: str) -> int:
        lo, hi = start_ms - start_ms % MINUTE_MS, end_ms - end_ms % MINUTE_MS
        mins = list(range(lo, hi + 1, MINUTE_MS))
        self.con.executemany(
            "INSERT OR REPLACE INTO minute_flags VALUES (?, TRUE, ?)", [[m, reason] for m in mins]
        )
        return len(mins)

    def _maybe_snapshot(self, force: str | None = None) -> None:
        if force is None and time.monotonic() - self.last_snapshot < self.cfg.snapshot_period_s():
            return
        self.snapshot(force or "periodic")

    def snapshot(self, reason: str = "operator") -> int:
        self.last_snapshot = time.monotonic()
        state = {
            "cursor": self.cursor.to_json(),
            "minutes": self.minutes,
            "last_ts_min": self.last_ts_min,
            "footprint": self.footprint.state(),
        }
        return self.snaps.save(reason, state, bytes(self.engine.snapshot()))

    def rows(self, lo: int, hi: int) -> list[dict[str, Any]]:
        cols = ", ".join(FEATURES_COLUMNS)
        got = self.con.execute(
            f"SELECT {cols} FROM features_1m WHERE ts_min BETWEEN ? AND ? ORDER BY ts_min", [lo, hi]
        ).fetchall()
        return [dict(zip(FEATURES_COLUMNS, r, strict=True)) for r in got]

    def minute_rows(self, lo: int, hi: int) -> dict[str, Any]:
        """Bars and features of ``[lo, hi)`` as columns, for the dashboard (which cannot
        open ``features.duckdb`` while this actor holds it)."""
        from at_core.storage.minutes import minute_columns

        return {**minute_columns(self.con, lo, hi), "stored_at_ms": self.stored_at_ms}

    def footprint_bins(self, lo: int, hi: int, bin_ticks: int) -> dict[str, Any]:
        """Footprint cells of ``[lo, hi)`` in bins of ``bin_ticks`` ticks and the minutes
        they cover, for the dashboard (``FootprintRecorder.binned``)."""
        return self.footprint.binned(lo, hi, bin_ticks, self.engine.last_ts)

    def extent(self) -> dict[str, Any]:
        lo, hi, n = self.con.execute(
            "SELECT min(ts_min), max(ts_min), count(*) FROM features_1m"
        ).fetchall()[0]
        return {"first_ts_min": lo, "last_ts_min": hi, "minutes": int(n)}

    def last_minute(self) -> int | None:
        """The last minute written (what the dashboard's live feed polls)."""
        return self.last_ts_min

    def flagged(self) -> list[dict[str, Any]]:
        got = self.con.execute("SELECT ts_min, reason FROM minute_flags ORDER BY ts_min").fetchall()
        return [{"ts_min": a, "reason": b} for a, b in got]

    def status(self) -> dict[str, Any]:
        return {
            "minutes": self.minutes,
            "last_ts_min": self.last_ts_min,
            "cursor": self.cursor.to_json(),
            "catch_ups": self.catch_ups,
            "restored_from": self.restored_from,
            "started_at": self.started_at,
            "snapshots": self.snaps.count(),
        }

    def ping(self) -> bool:
        return True

    def stop(self) -> None:
        self.snapshot("stop")
        self.alerts.close(timeout=2)
        self.con.close()
