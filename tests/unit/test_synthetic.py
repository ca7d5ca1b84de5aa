"""The synthetic market: determinism (arrays and Parquet bytes), invariants, lake behaviour."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from at_core import _core
from at_core.cli import main as cli_main
from at_core.errors import CoreError, InputError, StorageError
from at_core.ingest.synthetic import generate_market, generate_range, source_id
from at_core.storage.lake import Lake, day_start_ms

START = dt.date(2024, 1, 1)
T0 = day_start_ms(START)
MIN = 60_000


def _equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def test_same_seed_same_arrays_however_chunked() -> None:
    end = T0 + 15 * MIN
    whole = generate_range(3, T0, end)
    g = _core.SynthGenerator(3, T0)
    edges = [T0 + 1, T0 + 7_777, T0 + 7_777, T0 + 2 * MIN, T0 + 9 * MIN + 1, end]
    chunked = _concat([g.generate(e) for e in edges])
    assert _equal(whole, chunked)
    assert g.now_ms == end
    assert len(whole["trade_ts_ms"]) > 1_000


def test_different_seed_different_market() -> None:
    a = generate_range(1, T0, T0 + 5 * MIN)
    b = generate_range(2, T0, T0 + 5 * MIN)
    assert not np.array_equal(a["trade_price"][:100], b["trade_price"][:100])


def test_invariants_of_the_ticks() -> None:
    d = generate_range(11, T0, T0 + 20 * MIN)
    # prices on the 0.10 grid, sizes on the 0.001 grid, positive
    for k in ("trade_price", "bid_px", "ask_px"):
        t = d[k] * 10
        assert np.all(np.abs(t - np.rint(t)) < 1e-6), k
    for k in ("trade_size", "bid_sz", "ask_sz"):
        lots = d[k] * 1000
        assert np.all(np.abs(lots - np.rint(lots)) < 1e-6) and np.all(d[k] >= 0.001), k
    assert np.all(np.rint(d["bid_px"] * 10) < np.rint(d["ask_px"] * 10))
    assert set(np.unique(d["trade_side"]).tolist()) == {-1, 1}
    # time monotone inside the range, seq unique and increasing along time
    for ts in (d["trade_ts_ms"], d["quote_ts_ms"]):
        assert np.all(np.diff(ts) >= 0) and ts.min() >= T0 and ts.max() < T0 + 20 * MIN
    seq = np.concatenate([d["trade_seq"], d["quote_seq"]])
    ts = np.concatenate([d["trade_ts_ms"], d["quote_ts_ms"]])
    assert len(np.unique(seq)) == len(seq)
    order = np.argsort(seq)
    assert np.all(np.diff(ts[order]) >= 0)
    # the first event is a quote: no trade without a book
    assert d["quote_seq"][0] < d["trade_seq"][0]


def test_a_trade_and_the_quote_it_causes_share_the_millisecond() -> None:
    d = generate_range(5, T0, T0 + 20 * MIN)
    # the quote right after each order (by seq) carries the order's ms
    qseq, qts = d["quote_seq"], d["quote_ts_ms"]
    last_of_order = np.ones(len(d["trade_seq"]), dtype=bool)
    last_of_order[:-1] = d["trade_seq"][1:] != d["trade_seq"][:-1] + 1
    after = np.searchsorted(qseq, d["trade_seq"][last_of_order])
    ok = after < len(qseq)
    same_ms = qts[after[ok]] == d["trade_ts_ms"][last_of_order][ok]
    assert same_ms.mean() > 0.85


def test_bad_arguments_are_refused(db_dir: Path) -> None:
    with pytest.raises(InputError, match="--days"):
        generate_market(db_dir, 0, 1)
    with pytest.raises(InputError, match="--seed"):
        generate_market(db_dir, 1, -1)
    g = _core.SynthGenerator(1, T0)
    g.generate(T0 + 5_000)
    with pytest.raises(CoreError, match="already generated"):
        g.generate(T0 + 1_000)


def _digest(lake: Lake, sid: str) -> dict[str, str]:
    out = {}
    for p in sorted(lake.root.glob(f"*/date=*/part-{sid}.parquet")):
        out[str(p.relative_to(lake.root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.mark.slow
def test_cli_writes_reproducible_bytes_and_reruns_replace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    rc = cli_main(["generate", "--db-dir", str(a), "--days", "1", "--seed", "9", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    sid = source_id(9, START)
    assert summary["source_id"] == sid and summary["days"] == 1
    assert summary["trades"] > 100_000 and summary["quotes"] > summary["trades"]
    assert 30_000 < summary["price_min"] < summary["price_max"] < 70_000
    lake_a = Lake(a)
    first = _digest(lake_a, sid)
    assert len(first) == 2
    # same command again: same bytes, no duplicate rows
    assert cli_main(["generate", "--db-dir", str(a), "--days", "1", "--seed", "9"]) == 0
    assert _digest(lake_a, sid) == first
    rec = lake_a.imported(sid)
    assert rec is not None and rec["trades"] == summary["trades"]
    # a 2-day run writes the identical first day (state carried, not restarted per day)
    generate_market(b, 2, 9, START)
    second = _digest(Lake(b), sid)
    assert {k: v for k, v in second.items() if "2024-01-01" in k} == first
    assert len(second) == 4
    t = Lake(b).read_day("trades", START)
    assert t["exchange_side"].null_count == 0 and t["seq"].null_count == 0


@pytest.mark.slow
def test_other_sources_refused_unless_forced(db_dir: Path) -> None:
    lake = Lake(db_dir)
    foreign = pa.table(
        {
            "ts_ms": pa.array([T0 + 5, T0 + 4 * 86_400_000 + 5], pa.int64()),
            "price": [42000.0, 42000.1],
            "size": [0.5, 0.5],
            "seq": pa.array([1, 2], pa.int64()),
        }
    )
    lake.write("trades", foreign, "import-x")
    lake.record_import("import-x", "/somewhere/x.csv", "csv", 2, 0, 0)
    with pytest.raises(StorageError, match="import-x"):
        generate_market(db_dir, 1, 4, START)
    assert len(lake.parts("trades", START)) == 1  # nothing written, nothing removed
    summary = generate_market(db_dir, 1, 4, START, force=True)
    sid = source_id(4, START)
    assert [p.name for p in lake.parts("trades", START)] == [f"part-{sid}.parquet"]
    assert summary["removed_parts"] == [
        {"source_id": "import-x", "kind": "trades", "day": "2024-01-01", "rows": 1}
    ]
    # the foreign source's other day is untouched and its manifest row says what remains
    assert len(lake.parts("trades", START + dt.timedelta(days=4))) == 1
    rec = lake.imported("import-x")
    assert rec is not None and rec["trades"] == 1
