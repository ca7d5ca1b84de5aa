"""Benchmark: Bybit ob500 order-book archive -> L1 quotes, book messages per second.

Generates a realistic ob500 stream (``at_core.ingest.bybit_files.synthetic_ob_lines``:
500-level snapshots every 5,000 messages, deltas of 1-7 levels near the top, the best
price walking tick by tick) of ``AT_BENCH_OB_UNIQUE`` messages (default 100,000), repeated
``AT_BENCH_OB_REPEAT`` times (default 3; each repeat starts with a snapshot, so the stream
stays valid) in memory, then measures:

* ``ob500_messages_per_s``: the Rust decoder (``at_core._core.Ob500Decoder``) fed 4 MB
  chunks from Python, as the importer does. Baseline, same run: Python ``json.loads`` of
  the same lines (parsing only, no book); ``ratio`` = decoder / baseline. Target (issue 6):
  >= 1,000,000 messages/s.
* ``ob500_import_messages_per_s``: ``import_files(..., "bybit-ob", ...)`` end to end on the
  zipped stream (inflate, decode, validate, lake write); baseline = the decoder alone.

Run: ``.venv/bin/python benches/bench_ob500.py``
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

TARGET = 1_000_000.0


def run() -> list[dict]:
    from at_core._core import Ob500Decoder
    from at_core.ingest import bybit_files as bf
    from at_core.ingest.importer import import_files

    unique = int(os.environ.get("AT_BENCH_OB_UNIQUE", "100000"))
    repeat = int(os.environ.get("AT_BENCH_OB_REPEAT", "3"))
    t_gen = time.perf_counter()
    lines = list(
        bf.synthetic_ob_lines(
            unique, start_ms=1_704_067_200_000, seed=11, depth=500, snapshot_every=5000
        )
    )
    block = ("\n".join(lines) + "\n").encode()
    data = block * repeat
    gen_s = time.perf_counter() - t_gen
    n = unique * repeat

    def decode() -> tuple[float, int]:
        t = time.perf_counter()
        d = Ob500Decoder()
        for i in range(0, len(data), 4 << 20):
            d.feed(data[i : i + (4 << 20)])
        d.finish()
        q = d.take_quotes()
        bad = d.take_anomalies()
        assert not bad, bad[:3]
        return time.perf_counter() - t, len(q["ts_ms"])

    best = min(decode()[0] for _ in range(3))
    _s, quotes = decode()
    rate = n / best
    sample = lines[: min(len(lines), 50_000)]
    t = time.perf_counter()
    for line in sample:
        json.loads(line)
    base = len(sample) / (time.perf_counter() - t)
    records = [
        {
            "name": "ob500_messages_per_s",
            "value": round(rate),
            "unit": "messages/s",
            "baseline": round(base),
            "ratio": round(rate / base, 2),
            "note": (
                f"{n:,} messages ({len(data) / 1e6:.0f} MB, {quotes:,} L1 quotes, 500-level snapshots every "
                f"5,000), best of 3; baseline = Python json.loads of the same lines (no book); "
                f"target {TARGET:,.0f}/s: {'met' if rate >= TARGET else 'NOT met'} "
                f"({len(data) / best / 1e6:.0f} MB/s); generation {gen_s:.1f} s"
            ),
        }
    ]
    with tempfile.TemporaryDirectory(prefix="bench_ob500_") as tmp:
        zpath = Path(tmp) / "2024-01-01_BTCUSDT_ob500.data.zip"
        import zipfile

        with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            zf.writestr("2024-01-01_BTCUSDT_ob500.data", data)
        t = time.perf_counter()
        (rep,) = import_files(Path(tmp) / "db", "bybit-ob", [zpath], show_progress=False)
        imp_s = time.perf_counter() - t
        assert rep.imported.get("quotes") == quotes, rep.summary()
        records.append(
            {
                "name": "ob500_import_messages_per_s",
                "value": round(n / imp_s),
                "unit": "messages/s",
                "baseline": round(rate),
                "ratio": round((n / imp_s) / rate, 2),
                "note": (
                    f"import_files bybit-ob end to end (zip {zpath.stat().st_size / 1e6:.0f} MB: inflate, "
                    f"id, decode, validate, lake write) {imp_s:.2f} s; baseline = decoder alone; "
                    f"stages {', '.join(f'{k} {v:.2f} s' for k, v in rep.timings.items())}"
                ),
            }
        )
    return records


if __name__ == "__main__":
    for r in run():
        print(json.dumps(r))
