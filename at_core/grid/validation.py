"""How much of a sweep winner's edge is real: the statistics of a finished sweep, computed
from every combination's stored daily returns (``grid validate RUN``).

- **Deflated Sharpe** (Bailey & López de Prado 2014) of every combination: its Probabilistic
  Sharpe against the Sharpe the best of the sweep's *independent* trials reaches by luck
  (the effective number of trials from the correlation of the return series; estimator and
  reasons in ``rust/at-stats/src/trials.rs``). All Sharpe ratios are per day, not annualised.
- **PBO** by CSCV over S contiguous blocks of days (default 16; fewer, said so, when the
  history is too short), purged: a block that follows a block of the other half loses its
  first days, as many as the embargo covers. The embargo is the longest memory any
  combination has: the profile and sigma windows (features of a minute see that far back)
  and the time stop (a position opened before a boundary is closed that long after it),
  rounded up to whole days because the returns are daily.
- The winner is the combination the sweep ranks first by its own metric (``grid show``);
  it is flagged when its DSR is below ``validation_dsr_min``.

All arithmetic is in Rust (``at_core._core.sweep_statistics`` / ``cscv_pbo``); this module
reads the store, picks the inputs and reports.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from at_core import _core
from at_core.config import Settings
from at_core.errors import InputError
from at_core.grid import out_of_sample
from at_core.grid.out_of_sample import OutOfSample
from at_core.grid.results import ResultStore, SweepReturns, rank_key
from at_core.grid.stability import Grid, Neighbourhood, most_sensitive_pair, neighbourhoods
from at_core.grid.validation_spec import ValidationSpec, from_dict, select_for

DAY_MIN = 1440
#: the sigma estimate's fixed window (``sigma_240``), a memory every combination has
SIGMA_WINDOW_MIN = 240


def embargo_minutes(params: list[dict[str, Any]]) -> int:
    """The longest memory of any combination: feature windows and the time stop."""
    base = Settings()
    longest = 0
    for p in params:
        longest = max(
            longest,
            int(p.get("rolling_window_minutes", base.rolling_window_minutes)),
            int(p.get("spread_lookback_minutes", base.spread_lookback_minutes)),
            int(p.get("max_hold_minutes", base.max_hold_minutes)),
            SIGMA_WINDOW_MIN,
        )
    return longest


def cscv_blocks(n_days: int, purge_days: int, want: int, explicit: bool) -> tuple[int | None, str]:
    """The blocks CSCV can use: ``want``, or (unless the caller insisted) the largest even
    S >= 4 below it whose blocks outlast the purge with 2+ days in each half. (S, note)."""

    def fits(s: int) -> bool:
        base = n_days // s
        return base > purge_days and (base - purge_days) * (s // 2) >= 2

    if fits(want):
        return want, ""
    if explicit:
        return None, (
            f"{want} blocks of {n_days} days are {n_days // want} days long: too short for a "
            f"purge of {purge_days} day(s)"
        )
    for s in range(want - 2, 3, -2):
        if fits(s):
            return s, f"{want} blocks would be too short for {n_days} days; used {s}"
    return None, (
        f"{n_days} days are too few for CSCV with a purge of {purge_days} day(s) "
        "(needs at least 4 blocks longer than the purge)"
    )


@dataclass
class Combination:
    """One combination's line in the report."""

    result_id: int
    params: dict[str, Any]
    metric: Any
    sharpe_day: float
    sharpe_ann: float
    psr: float
    dsr: float
    min_track_record_days: float


@dataclass
class Validation:
    run_id: str
    metric: str
    mode: str
    n_combinations: int
    n_failed: int
    n_days: int
    first_day: str
    last_day: str
    n_eff: float
    n_flat: int
    mean_sq_corr: float
    sharpe_sd_day: float
    threshold_day: float
    threshold_ann: float
    confidence: float
    dsr_min: float
    embargo_minutes: int
    purge_days: int
    winner: Combination
    best_sharpe: Combination
    winner_flagged: bool
    pbo: float | None = None
    pbo_blocks: int | None = None
    pbo_splits: int | None = None
    oos_is_slope: float | None = None
    oos_is_intercept: float | None = None
    prob_oos_loss: float | None = None
    pbo_note: str = ""
    walk_forward: OutOfSample | None = None
    holdout: OutOfSample | None = None
    #: the top combinations' neighbourhoods in the grid (plateau or lone peak)
    stability: list[Neighbourhood] = field(default_factory=list)
    #: the heat map's keys (the two the metric is most sensitive to around the winner)
    heat_keys: tuple[str, str] | None = None
    grid: Grid | None = field(default=None, repr=False)
    winner_row: int = -1
    #: per split, for the plots (not in the JSON summary)
    logits: list[float] = field(default_factory=list, repr=False)
    is_sharpe: list[float] = field(default_factory=list, repr=False)
    oos_sharpe: list[float] = field(default_factory=list, repr=False)
    #: per combination (stored order, failed ones NaN), for tables and plots
    dsr: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    sharpe_day: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def summary(self) -> dict[str, Any]:
        """The JSON-safe headline (no per-split or per-combination arrays, no curves)."""
        d = asdict(self)
        for k in ("logits", "is_sharpe", "oos_sharpe", "dsr", "sharpe_day", "grid", "winner_row"):
            d.pop(k)
        for k in ("walk_forward", "holdout"):
            oos = getattr(self, k)
            d[k] = None if oos is None else oos.summary()
        return _json_safe(d)

    def metrics(self) -> dict[str, float]:
        """The numbers an MLflow parent run carries."""
        out = {
            "validation.n_eff": self.n_eff,
            "validation.dsr_winner": self.winner.dsr,
            "validation.dsr_best_sharpe": self.best_sharpe.dsr,
            "validation.psr_winner": self.winner.psr,
            "validation.sharpe_ann_winner": self.winner.sharpe_ann,
            "validation.deflated_threshold_ann": self.threshold_ann,
            "validation.winner_flagged": float(self.winner_flagged),
        }
        if self.pbo is not None:
            out.update(
                {
                    "validation.pbo": self.pbo,
                    "validation.oos_is_slope": _nan_none(self.oos_is_slope),
                    "validation.prob_oos_loss": _nan_none(self.prob_oos_loss),
                }
            )
        for name, oos in (("walk_forward", self.walk_forward), ("holdout", self.holdout)):
            if oos is not None:
                out[f"validation.{name}.oos_sharpe_ann"] = oos.oos_sharpe_ann
                out[f"validation.{name}.oos_return"] = oos.oos_return
                out[f"validation.{name}.sharpe_ratio_oos_is"] = oos.sharpe_ratio_oos_is
                out[f"validation.{name}.efficiency"] = oos.efficiency
        return {k: v for k, v in out.items() if v is not None and math.isfinite(v)}


def _nan_none(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def _json_safe(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    if isinstance(v, float | np.floating):
        f = float(v)
        return f if math.isfinite(f) else (None if math.isnan(f) else ("inf" if f > 0 else "-inf"))
    if isinstance(v, np.integer):
        return int(v)
    return v


def _day(d: int) -> str:
    import datetime as dt

    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(d))).isoformat()


def validate(
    db_dir: str | Path,
    run_id: str,
    *,
    blocks: int | None = None,
    embargo_min: int | None = None,
    confidence: float = 0.95,
    dsr_min: float | None = None,
    threads: int = 2,
    settings: Settings | None = None,
    spec: ValidationSpec | None = None,
) -> Validation:
    """The statistics of one stored sweep (see the module doc). ``spec``: the out-of-sample
    checks (default: the grid file's ``validation`` section, stored with the run)."""
    store = ResultStore(db_dir)
    info = store.run_info(run_id)
    if info is None:
        raise InputError(f"no grid run {run_id!r} in {store.path}")
    grid = json.loads(info["grid_json"])
    metric, mode = grid.get("metric", "net_pnl"), grid.get("mode", "max")
    swept = list(grid.get("params", {}))
    cfg = settings or Settings()
    vspec = spec if spec is not None else from_dict(grid.get("validation"))
    sr = store.daily_returns(run_id)
    return compute(
        run_id,
        sr,
        metric=metric,
        mode=mode,
        swept=swept,
        blocks=blocks,
        blocks_default=cfg.validation_cscv_blocks,
        embargo_min=embargo_min,
        confidence=confidence,
        dsr_min=cfg.validation_dsr_min if dsr_min is None else dsr_min,
        threads=threads,
        spec=vspec,
        swept_values=grid.get("params"),
    )


def compute(
    run_id: str,
    sr: SweepReturns,
    *,
    metric: str,
    mode: str,
    swept: list[str],
    blocks: int | None,
    blocks_default: int,
    embargo_min: int | None,
    confidence: float,
    dsr_min: float,
    threads: int,
    spec: ValidationSpec | None = None,
    swept_values: dict[str, list[Any]] | None = None,
) -> Validation:
    """``validate`` on returns already loaded (``swept_values``: the grid's values of each
    swept key, for the parameter-stability table; none without)."""
    spec = spec or ValidationSpec()
    if embargo_min is None:
        embargo_min = spec.embargo_minutes
    if blocks is None:
        blocks = spec.cscv_blocks
    ok = np.isfinite(sr.returns).all(axis=1)
    idx = np.flatnonzero(ok)
    n_days = sr.returns.shape[1]
    if len(idx) < 2:
        raise InputError(
            f"grid run {run_id!r}: {len(idx)} combination(s) with returns; the statistics "
            "need at least 2"
        )
    if n_days < 3:
        raise InputError(f"grid run {run_id!r} covers {n_days} day(s); the statistics need 3+")
    ret = np.ascontiguousarray(sr.returns[idx])
    st = _core.sweep_statistics(ret, confidence)
    embargo = embargo_minutes(sr.params) if embargo_min is None else embargo_min
    need = embargo_minutes(sr.params)
    if embargo < need:
        raise InputError(
            f"embargo {embargo} minutes is shorter than the sweep's memory ({need} minutes: "
            "feature windows and the time stop)"
        )
    purge = math.ceil(embargo / DAY_MIN)
    n = len(sr.ids)
    dsr_all = np.full(n, np.nan)
    dsr_all[idx] = st["dsr"]
    sharpe_all = np.full(n, np.nan)
    sharpe_all[idx] = st["sharpe"]

    def combo(j: int) -> Combination:
        """Combination at position j of the valid rows."""
        i = int(idx[j])
        return Combination(
            result_id=sr.ids[i],
            params={k: sr.params[i].get(k) for k in swept},
            metric=sr.metrics[i].get(metric),
            sharpe_day=float(st["sharpe"][j]),
            sharpe_ann=float(st["sharpe"][j]) * math.sqrt(365),
            psr=float(st["psr"][j]),
            dsr=float(st["dsr"][j]),
            min_track_record_days=float(st["min_track_record"][j]),
        )

    key = rank_key(metric, mode)
    win_j = min(range(len(idx)), key=lambda j: key(sr.metrics[int(idx[j])]))
    winner = combo(win_j)
    v = Validation(
        run_id=run_id,
        metric=metric,
        mode=mode,
        n_combinations=n,
        n_failed=n - len(idx),
        n_days=n_days,
        first_day=_day(int(sr.days[0])),
        last_day=_day(int(sr.days[-1])),
        n_eff=float(st["n_eff"]),
        n_flat=int(st["n_flat"]),
        mean_sq_corr=float(st["mean_sq_corr"]),
        sharpe_sd_day=float(st["sharpe_sd"]),
        threshold_day=float(st["threshold"]),
        threshold_ann=float(st["threshold"]) * math.sqrt(365),
        confidence=confidence,
        dsr_min=dsr_min,
        embargo_minutes=embargo,
        purge_days=purge,
        winner=winner,
        best_sharpe=combo(int(st["best"])),
        winner_flagged=not (winner.dsr >= dsr_min),
        dsr=dsr_all,
        sharpe_day=sharpe_all,
    )
    ids = [sr.ids[int(i)] for i in idx]
    swept_params = [{k: sr.params[int(i)].get(k) for k in swept} for i in idx]
    if spec.walk_forward is not None or spec.holdout is not None:
        select = select_for(spec, metric)
        if spec.walk_forward is not None:
            v.walk_forward = out_of_sample.walk_forward(
                spec.walk_forward, sr.days, ret, ids, swept_params, select, purge
            )
        if spec.holdout is not None:
            v.holdout = out_of_sample.holdout(
                spec.holdout, sr.days, ret, ids, swept_params, select, purge
            )
    if swept_values:
        g = Grid(list(zip(sr.params, sr.metrics, strict=True)), swept_values, metric, mode)
        v.grid, v.winner_row = g, int(idx[win_j])
        v.stability = neighbourhoods(g, top=5)
        if len(g.keys) >= 2:
            v.heat_keys = most_sensitive_pair(g, v.winner_row)
    s, note = cscv_blocks(n_days, purge, blocks or blocks_default, explicit=blocks is not None)
    if not spec.cscv:
        s, note = None, "not asked for (validation.cscv: false)"
    v.pbo_note = note
    if s is not None:
        p = _core.cscv_pbo(ret, s, purge, threads)
        v.pbo = float(p["pbo"])
        v.pbo_blocks = s
        v.pbo_splits = int(p["n_splits"])
        v.oos_is_slope = float(p["slope"])
        v.oos_is_intercept = float(p["intercept"])
        v.prob_oos_loss = float(p["prob_oos_loss"])
        v.logits = [float(x) for x in p["logits"]]
        v.is_sharpe = [float(x) for x in p["is_sharpe"]]
        v.oos_sharpe = [float(x) for x in p["oos_sharpe"]]
    return v


def row_statistics(store: ResultStore, run_id: str) -> dict[str, list[Any]] | None:
    """Per-combination Sharpe (annualised), PSR and DSR in stored order, for tables and the
    CSV export; None when the run has no stored daily returns (or too few days)."""
    from at_core.errors import StorageError

    try:
        sr = store.daily_returns(run_id)
    except StorageError:
        return None
    ok = np.isfinite(sr.returns).all(axis=1)
    if ok.sum() < 2 or sr.returns.shape[1] < 3:
        return None
    st = _core.sweep_statistics(np.ascontiguousarray(sr.returns[ok]))
    out: dict[str, list[Any]] = {}
    for name, col, scale in (
        ("stat.sharpe_ann", "sharpe", math.sqrt(365)),
        ("stat.psr", "psr", 1.0),
        ("stat.dsr", "dsr", 1.0),
    ):
        full = np.full(len(sr.ids), np.nan)
        full[ok] = np.asarray(st[col]) * scale
        out[name] = [None if not math.isfinite(x) else float(x) for x in full]
    return out
