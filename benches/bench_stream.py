"""Streaming-driver benchmark (issue 9): events per second through features + strategy
kernel + execution core, the live graph's paper-mode path.

One generated day of ~20 M events (``bench_features.generated_day``: 16 M L1 quotes, 4 M
trades) fed in one-minute slices (as a live feed delivers them) through
``_core.StreamingDriver`` (default settings, market and limit entries), against the feature
engine alone (``_core.FeatureEngine.push``) fed the same slices in the same run: the ratio
is what the kernel and the execution core add on top of the features. Target >= 5 M
events/s on one core.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import at_core._core as core
from at_core.config import load_settings
from at_core.features.engine import engine_config
from at_core.strategy import params_dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_features import generated_day

MINUTE = 60_000


def slices(
    trades: dict[str, np.ndarray], quotes: dict[str, np.ndarray], width_ms: int
) -> list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    lo = int(min(trades["ts_ms"][0], quotes["ts_ms"][0])) // width_ms * width_ms
    hi = int(max(trades["ts_ms"][-1], quotes["ts_ms"][-1])) + 1
    edges = np.arange(lo, hi + width_ms, width_ms)
    ti = np.searchsorted(trades["ts_ms"], edges)
    qi = np.searchsorted(quotes["ts_ms"], edges)
    out = []
    for k in range(len(edges) - 1):
        t = {c: np.ascontiguousarray(v[ti[k] : ti[k + 1]]) for c, v in trades.items()}
        q = {c: np.ascontiguousarray(v[qi[k] : qi[k + 1]]) for c, v in quotes.items()}
        out.append((t, q))
    return out


def run() -> list[dict[str, Any]]:
    s = load_settings()
    cfg = engine_config(s)
    trades, quotes = generated_day()
    n_ev = len(trades["ts_ms"]) + len(quotes["ts_ms"])
    parts = slices(trades, quotes, MINUTE)

    def features_only() -> float:
        e = core.FeatureEngine(cfg)
        t0 = time.perf_counter()
        for t, q in parts:
            e.push(t, q)
        e.finish()
        return time.perf_counter() - t0

    def driver(limit: bool) -> tuple[float, int]:
        d = core.StreamingDriver(cfg, params_dict(s, {"use_limit_for_entry": limit}))
        t0 = time.perf_counter()
        for t, q in parts:
            d.push(t, q)
        r = d.finish()
        return time.perf_counter() - t0, len(r["trades"]["side"])

    base_s = min(features_only() for _ in range(2))
    runs = [driver(True) for _ in range(2)]
    drv_s = min(r[0] for r in runs)
    mkt_s, mkt_trades = driver(False)
    eps, base_eps = n_ev / drv_s, n_ev / base_s
    return [
        {
            "name": "stream.events_per_s",
            "value": eps,
            "unit": "events/s",
            "baseline": base_eps,
            "ratio": eps / base_eps,
            "note": f"one generated day, {n_ev:,} events in {len(parts):,} one-minute slices; "
            f"features + kernel + execution core {drv_s:.3f} s (limit entries, "
            f"{runs[0][1]} trades; market entries {mkt_s:.3f} s, {mkt_trades} trades); "
            f"baseline = feature engine alone {base_s:.3f} s; target >= 5 M events/s",
        }
    ]


if __name__ == "__main__":
    import json

    for r in run():
        print(json.dumps(r))
