"""Lake.write orders each day by (ts_ms, seq) whatever the input order: already sorted
input is kept, input in strictly the opposite order (newest-first archives) is reversed,
anything else is sorted, and the stored parts are those of a plain sort in every case.
Day cuts fall exactly on UTC midnight, empty days in between included."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from at_core.storage.lake import Lake, day_start_ms

DAY = dt.date(2024, 1, 1)
T0 = day_start_ms(DAY)
DAY_MS = 86_400_000


def _trades(ts: list[int], seq: list[int]) -> pa.Table:
    n = len(ts)
    return pa.table(
        {
            "ts_ms": pa.array(ts, pa.int64()),
            "price": [42000.0 + i for i in range(n)],  # tells the rows apart
            "size": [0.01] * n,
            "exchange_side": pa.array([1] * n, pa.int8()),
            "trade_id": pa.array([f"t{i}" for i in range(n)], pa.string()),
            "seq": pa.array(seq, pa.int64()),
        }
    )


def _stored(db: Path) -> dict[dt.date, pa.Table]:
    lake = Lake(db)
    return {d: pq.read_table(lake.parts("trades", d)[0]) for d in lake.days("trades")}


def _by_sort(table: pa.Table) -> pa.Table:
    return table.sort_by([("ts_ms", "ascending"), ("seq", "ascending")])


@pytest.mark.parametrize(
    ("ts", "seq"),
    [
        # ascending (kept as is)
        ([T0 + 1, T0 + 1, T0 + 2, T0 + DAY_MS + 5], [1, 2, 0, 3]),
        # newest-first: strictly descending in (ts_ms, seq) -> reversed
        ([T0 + DAY_MS + 5, T0 + 2, T0 + 1, T0 + 1], [3, 2, 1, 0]),
        # descending times but a tie in (ts_ms, seq): a stable sort, not a reversal
        ([T0 + 9, T0 + 5, T0 + 5, T0 + 1], [3, 2, 2, 0]),
        # mixed order
        ([T0 + 5, T0 + 1, T0 + 9, T0 + 2 * DAY_MS], [0, 1, 2, 3]),
        # three days apart: the empty day in between gets no part
        ([T0 + 3 * DAY_MS, T0 + 2, T0 + 1], [2, 1, 0]),
    ],
)
def test_day_parts_equal_a_plain_sort(tmp_path: Path, ts: list[int], seq: list[int]) -> None:
    table = _trades(ts, seq)
    rep = Lake(tmp_path).write("trades", table, "src")
    want = _by_sort(table)
    stored = _stored(tmp_path)
    days = (np.array(want["ts_ms"].to_pylist()) // DAY_MS).tolist()
    expected_days = sorted({dt.date(1970, 1, 1) + dt.timedelta(days=d) for d in days})
    assert list(stored) == expected_days == sorted(rep.rows_by_day)
    got = pa.concat_tables(stored[d] for d in expected_days)
    assert got.select(want.column_names).equals(want.cast(got.select(want.column_names).schema))


def test_midnight_belongs_to_the_new_day(tmp_path: Path) -> None:
    ts = [T0 + DAY_MS - 1, T0 + DAY_MS, T0 + DAY_MS + 1]
    rep = Lake(tmp_path).write("trades", _trades(ts, [0, 1, 2]), "src")
    assert rep.rows_by_day == {DAY: 1, DAY + dt.timedelta(days=1): 2}


@pytest.mark.parametrize("block", [1, 2, 3, 1 << 20])
def test_order_check_sees_every_inversion_across_blocks(block: int) -> None:
    from at_core.storage.lake import _in_ts_seq_order

    ordered = _trades([1, 1, 2, 5, 5, 5, 9], [0, 1, 0, 2, 3, 3, 0])
    assert _in_ts_seq_order(ordered, block)
    for ts, seq in (
        ([1, 1, 2, 5, 4, 5, 9], [0, 1, 0, 2, 3, 3, 0]),  # ts steps back
        ([1, 1, 2, 5, 5, 5, 9], [0, 1, 0, 2, 4, 3, 0]),  # seq steps back within one ts
        ([2, 1, 2, 5, 5, 5, 9], [0, 1, 0, 2, 3, 3, 0]),  # first pair
        ([1, 1, 2, 5, 5, 5, 4], [0, 1, 0, 2, 3, 3, 0]),  # last pair
    ):
        assert not _in_ts_seq_order(_trades(ts, seq), block)


def test_read_day_merges_interleaved_sources_in_order(tmp_path: Path) -> None:
    """Two sources on one day interleave in time: read_day must sort them together."""
    lake = Lake(tmp_path)
    lake.write("trades", _trades([T0 + 1, T0 + 5, T0 + 9], [0, 0, 0]), source_id="a")
    b = _trades([T0 + 2, T0 + 5, T0 + 7], [1, 1, 1])
    ids = pa.array(["b0", "b1", "b2"], pa.string())  # other trades, not duplicates of a's
    b = b.set_column(b.schema.get_field_index("trade_id"), "trade_id", ids)
    lake.write("trades", b, source_id="b")
    assert len(lake.parts("trades", DAY)) == 2
    got = lake.read_day("trades", DAY)
    assert got.column("ts_ms").to_pylist() == [T0 + 1, T0 + 2, T0 + 5, T0 + 5, T0 + 7, T0 + 9]
    assert got.column("seq").to_pylist() == [0, 1, 0, 1, 1, 0]
    # one in-order part comes back as stored
    lake2 = Lake(tmp_path / "one")
    lake2.write("trades", _trades([T0 + 1, T0 + 3], [0, 0]), source_id="c")
    assert lake2.read_day("trades", DAY).column("ts_ms").to_pylist() == [T0 + 1, T0 + 3]
