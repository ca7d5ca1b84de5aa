"""A week of ticks (~150 M trades and quotes) into the lake and back, day by day, with peak
memory measured.

Issue 2: "A week of ticks (of the order of 150 M trades and quotes) imports and reads back
day by day within a few GB of memory". The calibrated synthetic market makes ~6.5 M events
per weekday (~45 M a week), so the generator runs at an activity scale that gives a busy
week of the required size: env ``AT_BENCH_WEEK_ACTIVITY``, default 3.5. Measured from
2024-01-01 (Monday to Sunday): seed 11, the one used here, gives 45 M events at 1 and 155 M
at 3.5; seeds 7, 11-14 give 141-155 M at 3.5 (the activity path is random, so the count
varies by ~5 % with the seed and is not exactly linear in the scale).

Each phase runs in a fresh subprocess so its peak RSS (``VmHWM``) is its own:

* write: the generator writes 7 days through ``Lake.write`` (the importers' path), one UTC
  day generated, written and dropped at a time; baseline = the same write of 1 day at the
  same activity (the ratio shows memory does not grow with the number of days);
* read: every day is read back with ``Lake.read_day`` and rows are counted per day with
  DuckDB through ``auction-trader sql``'s view; baseline = the same read of the first day.

Records: ``week_write_events`` (trades + quotes written), ``week_write_peak_rss``,
``week_read_peak_rss`` (MB, with the one-day baselines and ratios) and
``week_read_rows_per_s`` (the read phase over the week; baseline = decoding the same day
parts with ``pyarrow.parquet.read_table`` alone, the floor of any day-by-day reader; a
one-day rows/s would mostly time the process's first large allocations).

Run: ``.venv/bin/python benches/bench_storage_week.py`` (a few minutes; ~1 GB of disk).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAYS = 7
ACTIVITY = float(os.environ.get("AT_BENCH_WEEK_ACTIVITY", "3.5"))

# Peak RSS of this process alone: VmHWM belongs to the address space, which exec replaces.
# (getrusage's ru_maxrss is NOT usable here: Linux carries the parent's high-water mark
# across fork + exec, so a child of a 2.6 GB runner would report >= 2.6 GB whatever it does.)
PEAK = """
def peak_rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
"""

WRITE = (
    PEAK
    + """
import json, sys, time
from at_core.ingest.synthetic import generate_market
t = time.perf_counter()
s = generate_market(sys.argv[1], days=int(sys.argv[2]), seed=11, progress=False,
                    activity=float(sys.argv[3]))
busiest = max(r["trades"] + r["quotes"] for r in s["per_day"])
print(json.dumps({"events": s["trades"] + s["quotes"], "trades": s["trades"],
                  "busiest_day": busiest, "s": time.perf_counter() - t,
                  "rss_mb": peak_rss_mb()}))
"""
)

READ = (
    PEAK
    + """
import json, sys, time
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
                  "rss_mb": peak_rss_mb()}))
"""
)

READ_RAW = """
import json, sys, time
import pyarrow.parquet as pq
from at_core.storage.lake import Lake
lake = Lake(sys.argv[1]); days = lake.days("trades")[: int(sys.argv[2])]
t = time.perf_counter(); n = 0
for d in days:
    for kind in ("trades", "quotes"):
        for p in lake.parts(kind, d):
            n += pq.read_table(p).num_rows
print(json.dumps({"rows": n, "s": time.perf_counter() - t}))
"""


def _run(code: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run() -> list[dict[str, object]]:
    act = str(ACTIVITY)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        w1 = _run(WRITE, str(Path(tmp) / "day"), "1", act)
        db = str(Path(tmp) / "db")
        w = _run(WRITE, db, str(DAYS), act)
        one = _run(READ, db, "1")
        week = _run(READ, db, str(DAYS))
        raw = _run(READ_RAW, db, str(DAYS))
        wall = time.perf_counter() - t0
    return [
        {
            "name": "week_write_events",
            "value": w["events"],
            "unit": "events",
            "note": (
                f"{DAYS} generated days at activity {ACTIVITY:g} (AT_BENCH_WEEK_ACTIVITY): "
                f"{w['trades']:,} trades, busiest day {w['busiest_day']:,} events"
            ),
        },
        {
            "name": "week_write_peak_rss",
            "value": round(w["rss_mb"]),
            "unit": "MB",
            "baseline": round(w1["rss_mb"]),
            "ratio": round(w["rss_mb"] / w1["rss_mb"], 2),
            "note": (
                f"generate+write {DAYS} days in {w['s']:.1f}s; baseline = 1 day at the same "
                f"activity ({w1['events']:,} events in {w1['s']:.1f}s)"
            ),
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
            "baseline": round(raw["rows"] / raw["s"]),
            "ratio": round((week["rows"] / week["s"]) / (raw["rows"] / raw["s"]), 2),
            "note": (
                f"Lake.read_day (+ DuckDB count per day); baseline = pyarrow.parquet.read_table "
                f"of the same parts ({raw['rows']:,} rows in {raw['s']:.1f}s)"
            ),
        },
    ]


if __name__ == "__main__":
    for rec in run():
        print(json.dumps(rec))
