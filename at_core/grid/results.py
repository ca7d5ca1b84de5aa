"""Grid results in SQLite (``execution.db``): the spec's ``grid_search_results`` plus bookkeeping.

Crash safety: all rows of one trial (one feature-grid point) and the trial's "finished" mark
are written in ONE transaction, so after a crash or Ctrl-C a trial is either wholly present or
absent; a rerun with the same run id asks ``finished_trials`` and skips those points.
``params_json`` holds the full effective parameters (every config key), not just the swept ones.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from at_core.errors import StorageError
from at_core.grid.evaluate import DailyReturns
from at_core.storage.stores import StorePaths, connect_sqlite, init_execution_db


@dataclass
class SweepReturns:
    """A sweep's combinations (result ids, full params, metrics) and their daily returns:
    ``returns[i, j]`` is combination i's return on UTC day ``days[j]`` (NaN throughout for a
    combination whose parameters were invalid)."""

    ids: list[int]
    params: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    days: np.ndarray
    returns: np.ndarray


def _now_ms() -> int:
    return int(time.time() * 1000)


class ResultStore:
    """Reads and writes sweep results in ``<db_dir>/execution.db``."""

    def __init__(self, db_dir: str | Path) -> None:
        self.paths = StorePaths(Path(db_dir))
        self.path = self.paths.execution
        init_execution_db(self.path)

    def _con(self) -> Any:
        return connect_sqlite(self.path)

    # ---- runs --------------------------------------------------------------------
    def start_run(
        self, run_id: str, name: str, fingerprint: str, grid: dict[str, Any], n_combinations: int
    ) -> bool:
        """Register a run; returns True when it already existed (resume)."""
        con = self._con()
        try:
            row = con.execute(
                "SELECT fingerprint FROM grid_runs WHERE run_id = ?", [run_id]
            ).fetchone()
            if row is not None:
                if row[0] != fingerprint:
                    raise StorageError(
                        f"run id {run_id} exists with a different grid/config (fingerprint {row[0]} != {fingerprint}); "
                        "use a new run id"
                    )
                with con:
                    con.execute(
                        "UPDATE grid_runs SET status = 'running' WHERE run_id = ?", [run_id]
                    )
                return True
            with con:
                con.execute(
                    "INSERT INTO grid_runs (run_id, name, fingerprint, grid_json, n_combinations, status, created_at)"
                    " VALUES (?,?,?,?,?,?,?)",
                    [
                        run_id,
                        name,
                        fingerprint,
                        json.dumps(grid, sort_keys=True),
                        n_combinations,
                        "running",
                        _now_ms(),
                    ],
                )
            return False
        finally:
            con.close()

    def finish_run(
        self, run_id: str, status: str = "finished", mlflow_run_id: str | None = None
    ) -> None:
        con = self._con()
        try:
            with con:
                con.execute(
                    "UPDATE grid_runs SET status = ?, finished_at = ?, mlflow_run_id = coalesce(?, mlflow_run_id) WHERE run_id = ?",
                    [status, _now_ms(), mlflow_run_id, run_id],
                )
        finally:
            con.close()

    def set_mlflow_run(self, run_id: str, mlflow_run_id: str) -> None:
        con = self._con()
        try:
            with con:
                con.execute(
                    "UPDATE grid_runs SET mlflow_run_id = ? WHERE run_id = ?",
                    [mlflow_run_id, run_id],
                )
        finally:
            con.close()

    def run_info(self, run_id: str) -> dict[str, Any] | None:
        con = self._con()
        try:
            con.row_factory = _dict_row
            row = con.execute("SELECT * FROM grid_runs WHERE run_id = ?", [run_id]).fetchone()
            return row
        finally:
            con.close()

    def list_runs(self) -> list[dict[str, Any]]:
        con = self._con()
        try:
            con.row_factory = _dict_row
            return list(
                con.execute(
                    "SELECT r.run_id, r.name, r.status, r.n_combinations, r.created_at, r.finished_at, r.mlflow_run_id,"
                    " (SELECT count(*) FROM grid_search_results g WHERE g.run_id = r.run_id) AS n_results"
                    " FROM grid_runs r ORDER BY r.created_at"
                )
            )
        finally:
            con.close()

    # ---- trials ------------------------------------------------------------------
    def add_trial(
        self,
        run_id: str,
        trial_key: str,
        rows: Sequence[tuple[dict[str, Any], dict[str, Any]]],
        best: dict[str, Any] | None = None,
        node: str | None = None,
        kernel_s: float | None = None,
        daily: DailyReturns | None = None,
    ) -> None:
        """Write all rows of one trial and mark it finished, atomically (idempotent per trial).
        ``daily``: the rows' daily returns (row i of the matrix belongs to ``rows[i]``)."""
        now = _now_ms()
        blobs: list[bytes | None] = [None] * len(rows)
        days_json = None
        if daily is not None:
            if daily.returns.shape != (len(rows), len(daily.days)):
                raise StorageError(
                    f"trial {trial_key}: daily returns {daily.returns.shape} do not match "
                    f"{len(rows)} rows x {len(daily.days)} days"
                )
            ret = np.ascontiguousarray(daily.returns, dtype="<f8")
            blobs = [ret[i].tobytes() for i in range(len(rows))]
            days_json = json.dumps([int(d) for d in daily.days])
        con = self._con()
        try:
            with con:
                done = con.execute(
                    "SELECT 1 FROM grid_trials WHERE run_id = ? AND trial_key = ?",
                    [run_id, trial_key],
                ).fetchone()
                if done:
                    return
                con.executemany(
                    "INSERT INTO grid_search_results (run_id, params_json, metrics_json, created_at,"
                    " daily_returns) VALUES (?,?,?,?,?)",
                    [
                        (
                            run_id,
                            json.dumps(p, sort_keys=True),
                            json.dumps(m, sort_keys=True),
                            now,
                            b,
                        )
                        for (p, m), b in zip(rows, blobs, strict=True)
                    ],
                )
                con.execute(
                    "INSERT INTO grid_trials (run_id, trial_key, n_rows, best_json, node, kernel_s,"
                    " finished_at, daily_days) VALUES (?,?,?,?,?,?,?,?)",
                    [
                        run_id,
                        trial_key,
                        len(rows),
                        json.dumps(best, sort_keys=True) if best else None,
                        node,
                        kernel_s,
                        now,
                        days_json,
                    ],
                )
        finally:
            con.close()

    def finished_trials(self, run_id: str) -> set[str]:
        con = self._con()
        try:
            return {
                r[0]
                for r in con.execute("SELECT trial_key FROM grid_trials WHERE run_id = ?", [run_id])
            }
        finally:
            con.close()

    def trials(self, run_id: str) -> list[dict[str, Any]]:
        con = self._con()
        try:
            con.row_factory = _dict_row
            return list(
                con.execute(
                    "SELECT * FROM grid_trials WHERE run_id = ? ORDER BY finished_at", [run_id]
                )
            )
        finally:
            con.close()

    # ---- results -----------------------------------------------------------------
    def results(self, run_id: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        con = self._con()
        try:
            return [
                (json.loads(p), json.loads(m))
                for p, m in con.execute(
                    "SELECT params_json, metrics_json FROM grid_search_results WHERE run_id = ? ORDER BY id",
                    [run_id],
                )
            ]
        finally:
            con.close()

    def result_ids(self, run_id: str) -> list[int]:
        """The stored rows' ids, in the order of ``results``."""
        con = self._con()
        try:
            return [
                int(r[0])
                for r in con.execute(
                    "SELECT id FROM grid_search_results WHERE run_id = ? ORDER BY id", [run_id]
                )
            ]
        finally:
            con.close()

    def export_returns(self, run_id: str, path: str | Path) -> tuple[int, int]:
        """The daily returns as one table: a ``day`` column (UTC date) and one column per
        combination named by its ``result_id`` (the id in the CSV export). Parquet when the
        file name ends in ``.parquet``, else CSV. Returns (days, combinations)."""
        import pyarrow as pa

        sr = self.daily_returns(run_id)
        days = (sr.days.astype("datetime64[D]")).astype(str)
        cols = {"day": pa.array(days)}
        for j, rid in enumerate(sr.ids):
            cols[str(rid)] = pa.array(sr.returns[j])
        table = pa.table(cols)
        if str(path).endswith(".parquet"):
            import pyarrow.parquet as pq

            pq.write_table(table, path)
        else:
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, path)
        return len(days), len(sr.ids)

    def daily_returns(self, run_id: str) -> SweepReturns:
        """Every combination's daily returns of a run, as one matrix (rows in stored order,
        the order of ``results``)."""
        con = self._con()
        try:
            day_lists = {
                r[0]
                for r in con.execute(
                    "SELECT daily_days FROM grid_trials WHERE run_id = ?", [run_id]
                )
            }
            rows = con.execute(
                "SELECT id, params_json, metrics_json, daily_returns FROM grid_search_results "
                "WHERE run_id = ? ORDER BY id",
                [run_id],
            ).fetchall()
        finally:
            con.close()
        if not rows:
            raise StorageError(f"no results of grid run {run_id!r} in {self.path}")
        if None in day_lists or any(r[3] is None for r in rows):
            raise StorageError(
                f"grid run {run_id!r} has no stored daily returns (it predates them): run the "
                "sweep again under a new run id to validate it"
            )
        if len(day_lists) != 1:
            raise StorageError(
                f"grid run {run_id!r}: its trials cover different days ({len(day_lists)} "
                "calendars); the statistics need one"
            )
        days = np.asarray(json.loads(day_lists.pop()), dtype=np.int64)
        mat = np.empty((len(rows), len(days)), dtype=np.float64)
        for i, r in enumerate(rows):
            v = np.frombuffer(r[3], dtype="<f8")
            if len(v) != len(days):
                raise StorageError(
                    f"grid run {run_id!r} result id {r[0]}: {len(v)} daily returns for "
                    f"{len(days)} days"
                )
            mat[i] = v
        return SweepReturns(
            ids=[int(r[0]) for r in rows],
            params=[json.loads(r[1]) for r in rows],
            metrics=[json.loads(r[2]) for r in rows],
            days=days,
            returns=mat,
        )

    def save_validation(self, run_id: str, summary: dict[str, Any]) -> None:
        """Keep the latest statistics of a run (``grid validate``)."""
        con = self._con()
        try:
            with con:
                con.execute(
                    "INSERT OR REPLACE INTO grid_validation (run_id, computed_at, summary_json) "
                    "VALUES (?,?,?)",
                    [run_id, _now_ms(), json.dumps(summary, sort_keys=True)],
                )
        finally:
            con.close()

    def validation(self, run_id: str) -> dict[str, Any] | None:
        con = self._con()
        try:
            row = con.execute(
                "SELECT summary_json FROM grid_validation WHERE run_id = ?", [run_id]
            ).fetchone()
        finally:
            con.close()
        return None if row is None else json.loads(row[0])

    def top(
        self, run_id: str, n: int = 10, sort: str = "net_pnl", mode: str = "max"
    ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        rows = self.results(run_id)
        if rows and sort not in rows[0][1]:
            raise StorageError(
                f"unknown metric {sort!r}; available: {', '.join(sorted(rows[0][1]))}"
            )
        key = rank_key(sort, mode)
        return sorted(rows, key=lambda r: key(r[1]))[:n]

    TIE_BREAK = "ties broken by the lower max_drawdown, then by the order stored"

    def export_csv(
        self,
        run_id: str,
        path: str | Path,
        swept_only: Iterable[str] | None = None,
        extra: Mapping[str, Sequence[Any]] | None = None,
    ) -> int:
        """Flatten params and metrics into columns (``param.X``, ``metric.Y``, then the
        ``extra`` columns, each one value per row in stored order); returns rows written."""
        rows = self.results(run_id)
        if not rows and self.run_info(run_id) is None:
            raise StorageError(f"no grid run {run_id!r} in {self.path}")
        ids = self.result_ids(run_id)
        pkeys = sorted({k for p, _ in rows for k in p}) if swept_only is None else list(swept_only)
        mkeys = sorted({k for _, m in rows for k in m})
        extra = extra or {}
        for name, col in extra.items():
            if len(col) != len(rows):
                raise StorageError(f"column {name}: {len(col)} values for {len(rows)} rows")
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                ["run_id", "result_id"] + [f"param.{k}" for k in pkeys]
                + [f"metric.{k}" for k in mkeys] + list(extra)
            )  # fmt: skip
            for i, (p, m) in enumerate(rows):
                w.writerow(
                    [run_id, ids[i]] + [p.get(k) for k in pkeys] + [m.get(k) for k in mkeys]
                    + [col[i] for col in extra.values()]
                )  # fmt: skip
        return len(rows)


def rank_key(sort: str, mode: str) -> Any:
    """Sort key over a combination's metrics, best first: n/a (None) last; ties broken by
    the lower max drawdown (``ResultStore.TIE_BREAK``), then by the order stored (use it
    with a stable sort)."""
    sign = -1.0 if mode == "max" else 1.0

    def key(m: dict[str, Any]) -> tuple[float, float]:
        v, dd = m.get(sort), m.get("max_drawdown")
        return (
            float("inf") if v is None else sign * float(v),
            float("inf") if dd is None else float(dd),
        )

    return key


def _dict_row(cursor: Any, row: tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


def inert_keys(rows: list[tuple[dict[str, Any], dict[str, Any]]], swept: list[str]) -> list[str]:
    """Swept keys that changed no result: for every setting of the other swept keys, all
    of this key's values gave identical metrics (e.g. a norm threshold under a raw-only
    rule, or a risk share when every trade is sized by the leverage cap). Measured on the
    results, not assumed: a key listed here only widened the grid."""
    out = []
    for k in swept:
        values = {json.dumps(p.get(k), sort_keys=True) for p, _ in rows}
        if len(values) < 2:
            continue
        groups: dict[str, set[str]] = {}
        for p, m in rows:
            rest = json.dumps({o: p.get(o) for o in swept if o != k}, sort_keys=True)
            groups.setdefault(rest, set()).add(json.dumps(m, sort_keys=True, default=str))
        if all(len(g) == 1 for g in groups.values()):
            out.append(k)
    return out
