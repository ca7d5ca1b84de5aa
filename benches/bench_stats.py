"""The statistics of a 10,000-combination sweep over 30 days: the returns matrix read back
from SQLite, per-combination PSR / DSR with the effective number of trials, and PBO by
CSCV with S = 16 (12,870 splits), through the calls ``grid validate`` makes. Without a
purge: ``grid validate`` purges a whole day after each boundary (the 240-minute memory
rounded up to the daily returns), which 16 blocks of 30 days cannot hold (it would use
S = 14); the work per split is the same either way.

Baseline, measured in the same run: the obvious NumPy implementation of the same CSCV
(per split, slice the two halves' columns and take every combination's Sharpe), timed over
500 splits and scaled to 12,870. Memory: the peak resident set of this process.
Targets: <= 5 s, <= 1 GB.
"""

from __future__ import annotations

import itertools
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from at_core import _core
from at_core.grid.evaluate import DailyReturns
from at_core.grid.results import ResultStore

N, T, S = 10_000, 30, 16
PER_TRIAL = 1_000


def _store(root: Path, rng: np.random.Generator) -> ResultStore:
    """A sweep of N combinations in 10 trials, stored as the runner stores it."""
    store = ResultStore(root)
    store.start_run("bench", "bench", "fp", {"metric": "net_pnl", "params": {"k": []}}, N)
    days = np.arange(19_700, 19_700 + T, dtype=np.int64)
    for t in range(N // PER_TRIAL):
        r = rng.normal(0.0, 0.01, (PER_TRIAL, T))
        rows = [
            ({"k": t * PER_TRIAL + i}, {"net_pnl": float(r[i].sum())}) for i in range(PER_TRIAL)
        ]
        store.add_trial("bench", f"t{t}", rows, daily=DailyReturns(days, r))
    return store


def _numpy_cscv(r: np.ndarray, splits: list[tuple[int, ...]]) -> float:
    bounds = np.linspace(0, r.shape[1], S + 1).round().astype(int)
    t0 = time.perf_counter()
    for chosen in splits:
        is_cols = np.concatenate([np.arange(bounds[b], bounds[b + 1]) for b in chosen])
        oos_cols = np.setdiff1d(np.arange(r.shape[1]), is_cols)
        a, b = r[:, is_cols], r[:, oos_cols]
        is_sr = a.mean(1) / a.std(1, ddof=1)
        oos_sr = b.mean(1) / b.std(1, ddof=1)
        best = int(np.argmax(is_sr))
        _ = (oos_sr < oos_sr[best]).sum()
    return time.perf_counter() - t0


def run() -> list[dict[str, Any]]:
    rng = np.random.default_rng(1)
    root = Path(tempfile.mkdtemp(prefix="bench-stats-"))
    try:
        store = _store(root, rng)
        t0 = time.perf_counter()
        sr = store.daily_returns("bench")
        t_read = time.perf_counter() - t0
        ret = np.ascontiguousarray(sr.returns)
        t1 = time.perf_counter()
        st = _core.sweep_statistics(ret)
        t_dsr = time.perf_counter() - t1
        p = _core.cscv_pbo(ret, S, 0, 2)
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        splits = list(itertools.combinations(range(S), S // 2))
        sample = splits[:: len(splits) // 500][:500]
        base = _numpy_cscv(sr.returns, sample) * len(splits) / len(sample)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert p["n_splits"] == 12_870
    return [
        {
            "name": "stats.sweep_10k_x_30d_s16_s",
            "value": wall,
            "unit": "s",
            "baseline": base,
            "ratio": wall / base,
            "note": f"{N:,} combinations x {T} days: read back from SQLite {t_read:.2f} s, "
            f"PSR/DSR/N_eff {t_dsr:.3f} s (N_eff {st['n_eff']:,.0f}), PBO by CSCV S={S} "
            f"({p['n_splits']:,} splits, 2 threads) {wall - t_read - t_dsr:.2f} s; PBO "
            f"{p['pbo']:.3f} on noise; baseline = NumPy "
            f"per-split CSCV ({len(sample)} splits timed, scaled); peak RSS {peak_mb:,.0f} MB; "
            "targets <= 5 s, <= 1 GB",
        },
        {"name": "stats.sweep_10k_x_30d_peak_rss_mb", "value": peak_mb, "unit": "MB"},
    ]


if __name__ == "__main__":
    for r in run():
        print(r)
