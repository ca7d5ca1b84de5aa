"""Benchmark: the synthetic market generator (``at_core._core.SynthGenerator``).

Records:

* ``generate_events_per_s``: trades + quotes per second of one UTC day generated in memory
  (seed 7, 2024-01-01, the demo's default market; NumPy arrays included). Baseline,
  measured in the same run: NumPy's ``default_rng`` (PCG64) drawing one standard normal and
  one standard exponential per event, i.e. the least randomness an event-driven simulator
  needs per event, vectorised with no logic at all; ``ratio`` = generator / baseline.
* ``generate_day_seconds``: wall time of that day (target: well under 5 s, issue 2).
* ``generate_lake_day_seconds``: one day through ``generate_market`` into a fresh lake
  (generation + Arrow tables + zstd Parquet), baseline = writing the same two tables with
  ``pyarrow.parquet.write_table`` alone.

Run: ``.venv/bin/python benches/bench_generate.py``
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from at_core import _core
from at_core.ingest.synthetic import batch_tables, generate_market
from at_core.storage.lake import day_start_ms

START = dt.date(2024, 1, 1)
SEED = 7


def _generate_day() -> tuple[float, dict[str, np.ndarray]]:
    g = _core.SynthGenerator(SEED, day_start_ms(START))
    t = time.perf_counter()
    batch = g.next_day()
    return time.perf_counter() - t, dict(batch)


def _baseline_rng(n: int) -> float:
    rng = np.random.default_rng(SEED)
    t = time.perf_counter()
    rng.standard_normal(n)
    rng.standard_exponential(n)
    return time.perf_counter() - t


def run() -> list[dict[str, Any]]:
    secs, batch = _generate_day()
    events = len(batch["trade_ts_ms"]) + len(batch["quote_ts_ms"])
    base = _baseline_rng(events)
    eps, base_eps = events / secs, events / base
    records: list[dict[str, Any]] = [
        {
            "name": "generate_events_per_s",
            "value": round(eps),
            "unit": "events/s",
            "baseline": round(base_eps),
            "ratio": round(eps / base_eps, 4),
            "note": f"one day, {events:,} events; baseline: numpy PCG64 1 normal + 1 exponential per event",
        },
        {
            "name": "generate_day_seconds",
            "value": round(secs, 3),
            "unit": "s",
            "baseline": 5.0,
            "ratio": round(secs / 5.0, 4),
            "note": "one UTC day in memory; baseline is the issue's 5 s budget (lower is better)",
        },
    ]
    trades, quotes = batch_tables(batch)
    del batch
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        pq.write_table(trades, Path(tmp) / "t.parquet", compression="zstd")
        pq.write_table(quotes, Path(tmp) / "q.parquet", compression="zstd")
        write_s = time.perf_counter() - t
        t = time.perf_counter()
        generate_market(Path(tmp) / "db", 1, SEED, START, progress=False)
        lake_s = time.perf_counter() - t
    records.append(
        {
            "name": "generate_lake_day_seconds",
            "value": round(lake_s, 3),
            "unit": "s",
            "baseline": round(write_s, 3),
            "ratio": round(lake_s / write_s, 4),
            "note": "generate_market 1 day into a fresh lake; baseline: pq.write_table of the same two tables",
        }
    )
    return records


if __name__ == "__main__":
    for r in run():
        print(json.dumps(r))
