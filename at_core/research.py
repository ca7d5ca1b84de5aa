"""The research API for notebooks: the same code the CLI runs, as Python objects.

::

    from at_core import research as at

    at.generate("data", days=9, seed=3)              # a generated market + its features
    bt = at.backtest("data", accept_outside_k=2)     # overrides are config keys
    bt.metrics["net_pnl"], bt.trades.head(), bt.equity.tail(), bt.daily_returns
    bt.plot("bt.png")                                # price, value area, trades, equity

    sw = at.sweep("data", {"params": {"accept_outside_k": [1, 2, 3]}})
    sw.table.sort_values("net_pnl").tail()          # params + metrics + PSR / DSR per row
    v = sw.validate(walk_forward="3:1")              # DSR, PBO, walk-forward, stability
    print(v.report()); v.plots("plots/")

    at.ticks("data", "2024-01-02", "2024-01-02T01:00")    # Arrow table (trades or quotes)
    at.features("data", "2024-01-02")                      # pandas DataFrame (features_1m)

Nothing here computes a feature, a decision or a fill: backtests run through
``at_core.backtest.cli.backtest`` (the Rust backtester), sweeps through the grid runner
on a local Ray, statistics through ``at_core.grid.validation`` (Rust). Times are UTC:
an ISO date or datetime string, a ``datetime``, or milliseconds since the epoch.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from at_core.config import Settings, load_settings
from at_core.errors import InputError

Time = str | int | dt.datetime | dt.date | None
DAY_MS = 86_400_000


def _quiet_logs() -> None:
    """Warnings and errors to stderr, unless the notebook configured logging itself
    (structlog's default would print every info line into the cell's output)."""
    import os

    import structlog

    from at_core import logging as at_logging

    if not structlog.is_configured():
        at_logging.configure(os.environ.get("AT_LOG_LEVEL", "WARNING"))


_quiet_logs()


def _ms(t: Time, name: str) -> int | None:
    """UTC milliseconds of a time given as ISO text, datetime, date or ms."""
    if t is None:
        return None
    if isinstance(t, bool):
        raise InputError(f"{name}: expected a time, got {t!r}")
    if isinstance(t, int):
        return t
    if isinstance(t, str):
        try:
            t = dt.datetime.fromisoformat(t)
        except ValueError:
            raise InputError(f"{name}: {t!r} is not an ISO date or datetime") from None
    if isinstance(t, dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.UTC)
        return int(t.timestamp() * 1000)
    if isinstance(t, dt.date):
        return int(dt.datetime(t.year, t.month, t.day, tzinfo=dt.UTC).timestamp() * 1000)
    raise InputError(f"{name}: expected a time, got {type(t).__name__}")


def _range(start: Time, end: Time) -> tuple[int | None, int | None]:
    """[start, end] in ms; an end given as a bare date means the whole of that day."""
    lo, hi = _ms(start, "start"), _ms(end, "end")
    if (isinstance(end, dt.date) and not isinstance(end, dt.datetime)) or (
        isinstance(end, str) and len(end) == 10
    ):
        hi = None if hi is None else hi + DAY_MS - 1
    if lo is not None and hi is not None and lo > hi:
        raise InputError(f"start {start} is after end {end}")
    return lo, hi


def _settings(config: str | Path | None, overrides: dict[str, Any]) -> Settings:
    return load_settings(config, overrides)


def generate(db_dir: str | Path, days: int = 3, seed: int = 7, features: bool = True) -> Path:
    """A generated market of ``days`` UTC days in ``db_dir`` (and its features), as
    ``auction-trader generate`` + ``auction-trader features`` would make it.

    >>> import tempfile; d = generate(tempfile.mkdtemp() + "/m", days=1, seed=1)
    >>> (d / "lake").is_dir()
    True
    """
    from at_core.features.pipeline import run_features
    from at_core.ingest.synthetic import generate_market

    generate_market(db_dir, days=days, seed=seed, progress=False)
    if features:
        run_features(db_dir, load_settings(), progress=False)
    return Path(db_dir)


def ticks(
    db_dir: str | Path, start: Time = None, end: Time = None, kind: str = "trades"
) -> pa.Table:
    """Raw ``trades`` or ``quotes`` of [start, end] as an Arrow table (``.to_pandas()`` for a
    DataFrame), from the lake and the live buffer alike, read-only."""
    from at_core.storage.query import open_query_connection

    if kind not in ("trades", "quotes"):
        raise InputError(f"kind: `trades` or `quotes`, got {kind!r}")
    lo, hi = _range(start, end)
    con = open_query_connection(db_dir)
    try:
        return con.sql(
            f"SELECT * FROM raw_{kind} WHERE ts_ms BETWEEN $lo AND $hi ORDER BY ts_ms, seq",
            params={
                "lo": lo if lo is not None else -(2**62),
                "hi": hi if hi is not None else 2**62,
            },
        ).to_arrow_table()
    finally:
        con.close()


def features(db_dir: str | Path, start: Time = None, end: Time = None) -> pd.DataFrame:
    """The stored ``features_1m`` rows of [start, end] (one per minute, ``ts_min`` as a
    UTC timestamp index), read-only."""
    from at_core.storage.query import open_query_connection

    lo, hi = _range(start, end)
    con = open_query_connection(db_dir)
    try:
        df = con.execute(
            "SELECT * FROM features_1m WHERE ts_min BETWEEN ? AND ? ORDER BY ts_min",
            [lo if lo is not None else -(2**62), hi if hi is not None else 2**62],
        ).df()
    finally:
        con.close()
    df.index = pd.to_datetime(df["ts_min"], unit="ms", utc=True)
    return df


@dataclass
class Backtest:
    """One backtest: ``metrics`` (dict), ``trades`` (DataFrame, one row per trade),
    ``equity`` (Series per minute), ``daily_returns`` (Series per UTC day) and ``plot``."""

    settings: Settings
    metrics: dict[str, Any]
    trades: pd.DataFrame
    equity: pd.Series
    daily_returns: pd.Series
    _outcome: Any = field(repr=False, default=None)

    def plot(self, path: str | Path) -> Path:
        """The report chart (price with the value area, entries and exits over equity) as a
        PNG at ``path``; ``IPython.display.Image(path)`` shows it in a notebook."""
        from at_core.backtest.cli import plot_report

        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        plot_report(self._outcome, p)
        return p


def backtest(
    db_dir: str | Path,
    start: Time = None,
    end: Time = None,
    config: str | Path | None = None,
    **overrides: Any,
) -> Backtest:
    """Backtest the stored features of ``db_dir`` over [start, end] with ``config`` (default
    ``configs/default.yaml``) and ``overrides`` (config keys), without writing a report or
    a run row. Features are computed first if the lake is newer than them.

    >>> bt = backtest(_example_db(), accept_outside_k=2)
    >>> sorted(set(bt.trades.columns) & {"side", "net_pnl"})
    ['net_pnl', 'side']
    >>> growth = (1 + bt.daily_returns).prod()  # the days compound to the final equity
    >>> bool(abs(growth * bt.settings.initial_equity - bt.metrics["final_equity"]) < 1e-6)
    True
    """
    from at_core.backtest.cli import backtest as run

    s = _settings(config, overrides)
    lo, hi = _range(start, end)
    out = run(db_dir, s, lo, hi, write_report=False, store=False, progress=False)
    idx = pd.to_datetime(out.table["ts_min"], unit="ms", utc=True)
    r = out.result
    daily = pd.Series(
        np.asarray(r.daily_returns, dtype=float),
        index=pd.to_datetime(np.asarray(r.daily_days, dtype=np.int64) * DAY_MS, unit="ms", utc=True),
        name="daily_return",
    )  # fmt: skip
    return Backtest(
        settings=s,
        metrics=out.metrics(),
        trades=pd.DataFrame(out.trades()),
        equity=pd.Series(np.asarray(r.equity), index=idx, name="equity"),
        daily_returns=daily,
        _outcome=out,
    )


@dataclass
class Sweep:
    """A stored sweep: ``table`` (params, metrics, Sharpe / PSR / DSR per combination),
    ``returns`` (daily returns, one column per combination) and ``validate``."""

    db_dir: Path
    run_id: str
    table: pd.DataFrame
    returns: pd.DataFrame

    def validate(
        self,
        walk_forward: str | None = None,
        holdout_split: str | None = None,
        blocks: int | None = None,
        select_by: str | None = None,
        anchored: bool = False,
    ) -> Validated:
        """The sweep's statistics (``grid validate``): DSR, PBO, stability and, given or
        declared in the grid file, walk-forward (``"TRAIN:TEST[:STEP]"`` days) and hold-out."""
        import argparse

        from at_core.grid.cli import _validation_overrides, store_spec
        from at_core.grid.validation import validate

        ns = argparse.Namespace(walk_forward=walk_forward, holdout_split=holdout_split,
                                select_by=select_by, anchored=anchored)  # fmt: skip
        spec = _validation_overrides(store_spec(self.db_dir, self.run_id), ns)
        return Validated(validate(self.db_dir, self.run_id, blocks=blocks, spec=spec))


@dataclass
class Validated:
    """A sweep's statistics: ``summary`` (dict), ``report()`` (text), ``plots(dir)``."""

    validation: Any

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self.validation.summary())

    def report(self) -> str:
        from at_core.grid.validation_report import render

        return str(render(self.validation))

    def plots(self, out_dir: str | Path) -> list[Path]:
        from at_core.grid.validation_report import plots

        return list(plots(self.validation, Path(out_dir)))


def open_sweep(db_dir: str | Path, run_id: str) -> Sweep:
    """A sweep stored in ``db_dir`` (``auction-trader grid list`` names them)."""
    import json

    from at_core.grid.results import ResultStore
    from at_core.grid.validation import row_statistics

    store = ResultStore(db_dir)
    info = store.run_info(run_id)
    if info is None:
        raise InputError(f"no grid run {run_id!r} in {store.path}")
    swept = list(json.loads(info["grid_json"]).get("params", {}))
    sr = store.daily_returns(run_id)
    rows = [{"result_id": i, **{k: p.get(k) for k in swept}, **m}
            for i, p, m in zip(sr.ids, sr.params, sr.metrics, strict=True)]  # fmt: skip
    table = pd.DataFrame(rows).set_index("result_id")
    for name, col in (row_statistics(store, run_id) or {}).items():
        table[name.removeprefix("stat.")] = col
    days = pd.to_datetime(sr.days * DAY_MS, unit="ms", utc=True)
    returns = pd.DataFrame(sr.returns.T, index=days, columns=sr.ids)
    return Sweep(Path(db_dir), run_id, table, returns)


def sweep(
    db_dir: str | Path,
    grid: dict[str, Any] | str | Path,
    run_id: str | None = None,
    config: str | Path | None = None,
    mlflow: bool = True,
    **overrides: Any,
) -> Sweep:
    """Run a grid (a grid file's path or its mapping; ``name`` optional) on a local Ray,
    stored and tracked as ``grid run`` stores it, with its statistics; return it opened."""
    from at_core.grid.evaluate import evaluate_point, stage1_for
    from at_core.grid.results import ResultStore
    from at_core.grid.runner import run_sweep
    from at_core.grid.spec import load_grid, parse_grid
    from at_core.grid.tracking import default_tracking_uri
    from at_core.grid.validation import validate
    from at_core.grid.validation_report import record

    base = _settings(config, overrides)
    if isinstance(grid, dict):
        spec = parse_grid({"name": "notebook", **grid}, base, "<notebook grid>")
    else:
        spec = load_grid(grid, base)
    db = Path(db_dir).resolve()
    uri = default_tracking_uri(db) if mlflow else None
    cache: dict[str, Any] = {}

    def stage1(s: Settings) -> Any:
        key = repr({k: getattr(s, k) for k in Settings.keys_of_stage("stage1")})
        if key not in cache:
            cache[key] = stage1_for(db, s)
        return cache[key]

    summary = run_sweep(spec, db, stage1, evaluate_point, run_id=run_id, progress=False,
                        mlflow_uri=uri)  # fmt: skip
    try:
        v = validate(db, summary.run_id, settings=base)
        record(v, ResultStore(db), uri, summary.mlflow_run_id)
    except InputError:
        pass  # too few days or combinations: `validate` says why when asked
    return open_sweep(db, summary.run_id)


_EXAMPLE: dict[str, Path] = {}


def _example_db() -> Path:
    """A one-day generated market with features, made once per process (for the
    docstring examples)."""
    import tempfile

    if "db" not in _EXAMPLE:
        _EXAMPLE["db"] = generate(Path(tempfile.mkdtemp(prefix="at-example-")) / "db", 1, 1)
    return _EXAMPLE["db"]
