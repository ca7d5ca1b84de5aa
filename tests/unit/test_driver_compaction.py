"""A live driver compacts its minute table (``set_keep_rows``): its decisions are those
of a driver that never compacts, and its snapshot stops growing with its age; without
``set_keep_rows`` (a replay) nothing is dropped."""

from __future__ import annotations

import at_core._core as _core
from at_core.backtest.stream import StreamingDriver
from at_core.config import load_settings
from tests.unit.test_driver_cash_sync import TRADY
from tests.unit.test_driver_permission import _cut, _day
from tests.unit.test_driver_snapshot import DAY0, M


def test_a_compacting_driver_decides_the_same_and_stays_small() -> None:
    t, q = _day()
    settings = load_settings(overrides=TRADY)
    whole = StreamingDriver(settings)
    small = StreamingDriver(settings)
    small.set_keep_rows(30)
    step = 20 * M
    sizes = []
    for at in range(DAY0, DAY0 + 24 * 60 * M, step):
        a = whole.push(_cut(t, at, at + step), _cut(q, at, at + step))
        b = small.push(_cut(t, at, at + step), _cut(q, at, at + step))
        for k in ("ts_min", "action", "reason", "equity"):
            assert list(a[k]) == list(b[k]), k
        assert a["orders"] == b["orders"]
        sizes.append(len(bytes(small.snapshot())))
    assert small.minutes <= 60 < whole.minutes
    assert sizes[-1] < 1.2 * sizes[len(sizes) // 2], sizes  # flat, not growing by the day
    # most of a snapshot is the feature engine's state (constant); the table's part goes
    assert len(bytes(whole.snapshot())) - len(bytes(small.snapshot())) > 150 * 1200
    ra, rb = whole.finish(), small.finish()
    nan_free = {k: (None if v != v else v) for k, v in ra.metrics.items()}
    assert nan_free == {k: (None if v != v else v) for k, v in rb.metrics.items()}
    assert len(ra.trades["entry_price"]) == len(rb.trades["entry_price"]) > 0
    assert _core.stream_keep_rows() == 1440
