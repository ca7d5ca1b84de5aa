"""Grid sweeps for the dashboard (SPEC §13.3): runs, the combinations table (sorted and
filtered on the server: a sweep has 10,000 rows), validation statistics and plots,
sensitivity for one or two keys, a combination's equity, CSV.

Everything comes from ``ResultStore`` (SQLite, safe beside a running sweep) and the grid
package's own computations (``validate``, ``row_statistics``, ``rank_key``): nothing is
re-derived here.

Pitfall: filters and sort keys are column names chosen by the user; they are matched
against the sweep's own columns, never pasted into SQL.
"""

from __future__ import annotations

import csv
import io
import json
import math
import operator
import re
import statistics
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from at_core.config import Settings
from at_core.errors import InputError
from at_core.grid.results import ResultStore, rank_key

_OPS = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    "=": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}
_FILTER = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*(>=|<=|!=|=|>|<)\s*(.+?)\s*$")
MAX_PAGE = 1000


@dataclass
class Table:
    """A sweep's rows flattened: ``result_id``, ``param.*``, ``metric.*``, ``stat.*``."""

    run_id: str
    columns: list[str]
    swept: list[str]
    rows: list[dict[str, Any]]
    metric: str
    mode: str


class Sweeps:
    """Read access to the sweeps of one data folder, with a small per-run cache."""

    def __init__(self, db_dir: Path, settings: Settings) -> None:
        self.db_dir, self.settings = db_dir, settings
        self.store = ResultStore(db_dir)
        self._cache: dict[str, tuple[int, Table]] = {}
        self._lock = threading.Lock()
        self._plots = Path(tempfile.mkdtemp(prefix="at-dashboard-plots-"))

    # ---- runs --------------------------------------------------------------------
    def runs(self) -> list[dict[str, Any]]:
        out = []
        for r in self.store.list_runs():
            v = self.store.validation(r["run_id"])
            out.append(
                {
                    **r,
                    "validated": v is not None,
                    "pbo": None if v is None else v.get("pbo"),
                    "winner_dsr": None if v is None else (v.get("winner") or {}).get("dsr"),
                    "winner_flagged": None if v is None else v.get("winner_flagged"),
                }
            )
        return out

    def info(self, run_id: str) -> dict[str, Any]:
        info = self.store.run_info(run_id)
        if info is None:
            raise LookupError(f"no grid run {run_id!r}")
        grid = json.loads(info.pop("grid_json"))
        t = self.table(run_id)
        return {
            **info,
            "grid": grid,
            "swept": t.swept,
            "columns": t.columns,
            "n_rows": len(t.rows),
            "metric": t.metric,
            "mode": t.mode,
            "mlflow_url": self._mlflow_url(info.get("mlflow_run_id")),
        }

    def _mlflow_url(self, mlflow_run_id: str | None) -> str | None:
        if not mlflow_run_id:
            return None
        from at_core.grid.tracking import default_tracking_uri, parent_run_url

        try:
            return parent_run_url(default_tracking_uri(self.db_dir), mlflow_run_id)
        except Exception:
            return None

    # ---- the table ---------------------------------------------------------------
    def table(self, run_id: str) -> Table:
        from at_core.grid.validation import row_statistics

        info = self.store.run_info(run_id)
        if info is None:
            raise LookupError(f"no grid run {run_id!r}")
        ids = self.store.result_ids(run_id)
        with self._lock:
            hit = self._cache.get(run_id)
            if hit is not None and hit[0] == len(ids):
                return hit[1]
        grid = json.loads(info["grid_json"])
        swept = list(grid.get("params", {}))
        results = self.store.results(run_id)
        stats = row_statistics(self.store, run_id) or {}
        mkeys = sorted({k for _, m in results for k in m})
        rows = []
        for i, (p, m) in enumerate(results):
            row: dict[str, Any] = {"result_id": ids[i]}
            row.update({f"param.{k}": p.get(k) for k in swept})
            row.update({f"metric.{k}": _num(m.get(k)) for k in mkeys})
            row.update({k: col[i] for k, col in stats.items()})
            rows.append(row)
        columns = (
            ["result_id"] + [f"param.{k}" for k in swept]
            + [f"metric.{k}" for k in mkeys] + list(stats)
        )  # fmt: skip
        t = Table(run_id, columns, swept, rows, grid.get("metric", "net_pnl"),
                  grid.get("mode", "max"))  # fmt: skip
        with self._lock:
            self._cache[run_id] = (len(ids), t)
        return t

    def rows(
        self,
        run_id: str,
        sort: str | None = None,
        order: str = "desc",
        filters: list[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        """One page of the table, filtered (``column OP value``, all must hold) and sorted
        (missing values last whichever the order); without ``sort``, the sweep's ranking."""
        t = self.table(run_id)
        if order not in ("asc", "desc"):
            raise InputError(f"order: 'asc' or 'desc', got {order!r}")
        if not 1 <= limit <= MAX_PAGE:
            raise InputError(f"limit: 1 .. {MAX_PAGE}, got {limit}")
        if offset < 0:
            raise InputError(f"offset: must be >= 0, got {offset}")
        rows = t.rows
        for f in filters or []:
            rows = [r for r in rows if _filter(t, f)(r)]
        if sort is None:
            key = rank_key(t.metric, t.mode)
            rows = sorted(rows, key=lambda r: key(_metrics_of(r)))
        else:
            if sort not in t.columns:
                raise InputError(f"sort: unknown column {sort!r}; columns: {', '.join(t.columns)}")
            present = [r for r in rows if r.get(sort) is not None]
            missing = [r for r in rows if r.get(sort) is None]
            present.sort(key=lambda r: _sortable(r[sort]), reverse=order == "desc")
            rows = present + missing
        return {
            "run_id": run_id,
            "columns": t.columns,
            "total": len(rows),
            "offset": offset,
            "rows": rows[offset : offset + limit],
        }

    def csv(self, run_id: str) -> str:
        t = self.table(run_id)
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["run_id", *t.columns])
        for r in t.rows:
            w.writerow([run_id, *(r.get(c) for c in t.columns)])
        return buf.getvalue()

    # ---- statistics --------------------------------------------------------------
    def validation(self, run_id: str) -> dict[str, Any]:
        """The stored statistics (``grid validate``) or, when none are stored, computed now
        (not stored: the dashboard is read-only); plus the plots' names."""
        from at_core.grid.validation import validate
        from at_core.grid.validation_report import plots

        if self.store.run_info(run_id) is None:
            raise LookupError(f"no grid run {run_id!r}")
        try:
            v = validate(self.db_dir, run_id, settings=self.settings)
        except InputError as exc:  # too few days / combinations, no returns: say why
            return {"run_id": run_id, "available": False, "reason": str(exc)}
        out_dir = self._plots / _safe(run_id)
        if not out_dir.exists():
            plots(v, out_dir)
            if v.grid is not None and v.heat_keys is not None:
                from at_core.grid.stability import heat_map

                heat_map(v.grid, v.winner_row, *v.heat_keys, out_dir / "heat_map.png")
        stored = self.store.validation(run_id)
        return {
            "run_id": run_id,
            "available": True,
            "stored": stored is not None,
            "summary": v.summary(),
            "plots": sorted(p.name for p in out_dir.glob("*.png")),
        }

    def plot(self, run_id: str, name: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+\.png", name):
            raise InputError(f"plot: bad name {name!r}")
        p = self._plots / _safe(run_id) / name
        if not p.is_file():
            self.validation(run_id)
        if not p.is_file():
            raise LookupError(f"no plot {name!r} for grid run {run_id!r}")
        return p

    def sensitivity(self, run_id: str, keys: list[str], metric: str | None) -> dict[str, Any]:
        """One key: per value, mean / median / best / worst of the metric over all other
        keys. Two keys: the same over the grid of both (mean and best per cell)."""
        t = self.table(run_id)
        metric = metric or t.metric
        mcol = f"metric.{metric}"
        if mcol not in t.columns:
            raise InputError(f"metric: unknown {metric!r}")
        if not 1 <= len(keys) <= 2 or len(set(keys)) != len(keys):
            raise InputError(f"keys: one or two different swept keys, got {keys}")
        for k in keys:
            if k not in t.swept:
                raise InputError(f"keys: {k!r} is not swept in {run_id}; swept: {t.swept}")
        cells: dict[tuple[str, ...], list[float]] = {}
        for r in t.rows:
            v = r.get(mcol)
            if v is not None:
                cells.setdefault(tuple(json.dumps(r[f"param.{k}"]) for k in keys), []).append(v)
        out: list[dict[str, Any]] = [
            {
                "values": [json.loads(x) for x in cell],
                "n": len(xs),
                "mean": statistics.fmean(xs),
                "median": statistics.median(xs),
                "best": max(xs) if t.mode == "max" else min(xs),
                "worst": min(xs) if t.mode == "max" else max(xs),
            }
            for cell, xs in cells.items()
        ]
        out.sort(key=lambda c: [_sortable(x) for x in c["values"]])
        return {"run_id": run_id, "metric": metric, "mode": t.mode, "keys": keys, "cells": out}

    def equity(self, run_id: str, result_id: int) -> dict[str, Any]:
        """A combination's equity at each UTC day's end, compounded from its stored daily
        returns (so it is the backtest's day-end equity, not a re-run)."""
        sr = self.store.daily_returns(run_id)
        try:
            i = sr.ids.index(result_id)
        except ValueError:
            raise LookupError(f"no result {result_id} in grid run {run_id!r}") from None
        r = sr.returns[i]
        eq = self.settings.initial_equity * np.cumprod(1.0 + np.nan_to_num(r))
        return {
            "run_id": run_id,
            "result_id": result_id,
            "params": sr.params[i],
            "metrics": {k: _num(v) for k, v in sr.metrics[i].items()},
            "day_ms": [int(d) * 86_400_000 for d in sr.days],
            "daily_return": [None if not math.isfinite(x) else float(x) for x in r],
            "equity": [float(x) for x in eq],
            "initial_equity": self.settings.initial_equity,
        }


def _num(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _metrics_of(row: dict[str, Any]) -> dict[str, Any]:
    return {k.removeprefix("metric."): v for k, v in row.items() if k.startswith("metric.")}


def _sortable(v: Any) -> tuple[int, Any]:
    if isinstance(v, bool) or v is None:
        return (0, str(v))
    if isinstance(v, int | float):
        return (1, float(v))
    return (2, str(v))


def _filter(t: Table, expr: str) -> Any:
    m = _FILTER.match(expr)
    if m is None:
        raise InputError(f"filter {expr!r}: expected COLUMN OP VALUE with OP one of >= <= != = > <")
    col, op, raw = m.groups()
    if col not in t.columns:
        raise InputError(f"filter {expr!r}: unknown column {col!r}")
    fn = _OPS[op]
    try:
        want: Any = float(raw)
    except ValueError:
        want = raw.strip("'\"")
        if op not in ("=", "!="):
            raise InputError(f"filter {expr!r}: {op} needs a number") from None

    def keep(r: dict[str, Any]) -> bool:
        v = r.get(col)
        if v is None:
            return False
        if isinstance(want, float):
            if isinstance(v, bool) or not isinstance(v, int | float):
                return bool(fn(str(v), str(raw)))
            return bool(fn(float(v), want))
        return bool(fn(str(v), want))

    return keep


def _safe(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
