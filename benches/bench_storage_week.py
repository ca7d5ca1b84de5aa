"""A week of ticks into the lake and back, day by day, with peak memory measured.

Issue 2: "a week of ticks imports and reads back day by day within a few GB of memory".
Each phase runs in a fresh subprocess so its peak RSS (``ru_maxrss``) is its own. The write
phase is the generator writing 7 days through ``Lake.write`` (the importers' path); the
read phase reads every day back with ``Lake.read_day`` and counts rows per day with DuckDB
through ``auction-trader sql``'s view. Memory is bounded per day, so the figure does not
grow with the number of days. Baseline: the same read phase over a single day.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAYS = 7

WRITE = """
import resource, json, sys, time
from at_core.ingest.synthetic import generate_market
t = time.perf_counter()
s = generate_market(sys.argv[1], days=int(sys.argv[2]), seed=11, progress=False)
print(json.dumps({"events": s["trades"] + s["quotes"], "s": time.perf_counter() - t,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

READ = """
import resource, json, sys, time
from at_core.storage.lake import Lake
from at_core.storage.query import open_query_connection
lake = Lake(sys.argv[1]); days = lake.days("trades")[: int(sys.argv[2])]
t = time.perf_counter(); n = 0
con = open_query_connection(sys.argv[1], memory_limit="1GB")
for d in days:
    for kind in ("trades", "quotes"):
        n += lake.read_day(kind, d).num_rows
    con.execute("SELECT count(*), sum(size) FROM raw_trades WHERE ts_ms // 86400000 = ?", [(d.toordinal() - 719163)]).fetchall()
print(json.dumps({"rows": n, "s": time.perf_counter() - t,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _run(code: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run() -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "db")
        t0 = time.perf_counter()
        w = _run(WRITE, db, str(DAYS))
        one = _run(READ, db, "1")
        week = _run(READ, db, str(DAYS))
        wall = time.perf_counter() - t0
    return [
        {
            "name": "week_write_events",
            "value": w["events"],
            "unit": "events",
            "note": f"{DAYS} generated days",
        },
        {
            "name": "week_write_peak_rss",
            "value": round(w["rss_mb"]),
            "unit": "MB",
            "note": f"generate+write {DAYS} days in {w['s']:.1f}s",
        },
        {
            "name": "week_read_peak_rss",
            "value": round(week["rss_mb"]),
            "unit": "MB",
            "baseline": round(one["rss_mb"]),
            "ratio": round(week["rss_mb"] / one["rss_mb"], 2),
            "note": f"day-by-day read of {week['rows']:,} rows in {week['s']:.1f}s; baseline = one day; total wall {wall:.0f}s",
        },
        {
            "name": "week_read_rows_per_s",
            "value": round(week["rows"] / week["s"]),
            "unit": "rows/s",
        },
    ]


if __name__ == "__main__":
    for rec in run():
        print(json.dumps(rec))
