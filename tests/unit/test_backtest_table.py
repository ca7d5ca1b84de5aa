"""The backtester's minute table from feature-engine arrays (at_core/backtest/table.py).

Golden values are worked out by hand from the rules in the module doc: the fill
reference of minute m is the first quote of the next minute that has one; a VA is
tradeable only once the warm-up window lies inside the data (stage 2's rule, tested in
``rust/at-features/src/stage2.rs`` and through the streaming driver).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from at_core.backtest import MINUTE_TABLE_COLUMNS
from at_core.backtest.table import minute_table, slice_table
from at_core.errors import InputError

M = 60_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
NAN = float("nan")


def engine_arrays(n: int = 5) -> dict[str, np.ndarray]:
    """Five hand-made minutes in the engine's column names (stage 1 + stage 2)."""
    ts = T0 + M * np.arange(n, dtype=np.int64)
    f = lambda *v: np.array(v, dtype=np.float64)  # noqa: E731
    return {
        "ts_min": ts,
        "open": f(100.0, NAN, 100.2, 100.3, 100.1),
        "high": f(100.5, NAN, 100.4, 100.3, 100.2),
        "low": f(99.9, NAN, 100.0, 100.3, 100.0),
        "close": f(100.1, NAN, 100.3, 100.3, 100.2),
        "volume": f(2.0, 0.0, 1.0, 0.5, 3.0),
        "vah_trade_dist": f(0.1, NAN, 0.0, NAN, 0.2),
        "val_trade_dist": f(0.0, NAN, 0.1, NAN, 0.1),
        "mid_close": f(100.05, 100.05, 100.25, 100.35, 100.15),
        "spread_avg_60m": f(0.1, 0.1, 0.1, 0.12, 0.1),
        "poc": f(100.0, 100.0, 100.1, 100.1, 100.1),
        "vah": f(100.4, 100.4, 100.4, 100.4, 100.4),
        "val": f(99.9, 99.9, 99.9, 99.9, 99.9),
        "va_valid": np.array([True, True, True, False, True]),
        "of_1m": f(1.0, 0.0, -0.5, 0.5, 0.0),
        "of_norm_1m": f(0.5, NAN, -0.5, 1.0, 0.0),
        "qimb_close": f(0.1, 0.2, 0.3, 0.4, 0.5),
        "qimb_ema_60s": f(0.05, 0.1, 0.15, 0.2, 0.25),
        "ambiguous_trade_frac_1m": f(0.0, NAN, 0.5, 0.0, 0.1),
        "low_ts": np.array([T0 + 10, -1, T0 + 2 * M + 7, T0 + 3 * M, T0 + 4 * M + 50]),
        "high_ts": np.array([T0 + 20, -1, T0 + 2 * M + 9, T0 + 3 * M, T0 + 4 * M + 1]),
        # quotes in minutes 0, 2 and 4 only
        "fq_ts": np.array([T0 + 5, -1, T0 + 2 * M + 100, -1, T0 + 4 * M]),
        "fq_bid_px": f(100.0, NAN, 100.2, NAN, 100.1),
        "fq_ask_px": f(100.1, NAN, 100.3, NAN, 100.2),
        "bvc_net": np.full(n, NAN),
        # stage-1 extras the table ignores
        "vwap": f(100.1, NAN, 100.2, 100.3, 100.1),
    }


def test_golden_hand_built_minutes() -> None:
    t = minute_table(engine_arrays())
    assert list(t) == list(MINUTE_TABLE_COLUMNS)
    for k, dt in MINUTE_TABLE_COLUMNS.items():
        assert t[k].dtype == np.dtype(dt), k
        assert t[k].flags.c_contiguous, k
    # fill reference: the first quote of the next minute that has one
    assert t["next_quote_ts"].tolist() == [
        T0 + 2 * M + 100,
        T0 + 2 * M + 100,
        T0 + 4 * M,
        T0 + 4 * M,
        -1,
    ]
    np.testing.assert_array_equal(t["next_bid"], [100.2, 100.2, 100.1, 100.1, NAN])
    np.testing.assert_array_equal(t["next_ask"], [100.3, 100.3, 100.2, 100.2, NAN])
    # va_valid as the feature engine gave it (the warm-up is stage 2's)
    assert t["va_valid"].tolist() == [True, True, True, False, True]
    # renames
    np.testing.assert_array_equal(t["spread_avg"], [0.1, 0.1, 0.1, 0.12, 0.1])
    np.testing.assert_array_equal(t["qimb_ema"], [0.05, 0.1, 0.15, 0.2, 0.25])
    np.testing.assert_array_equal(t["ambiguous_frac"], [0.0, NAN, 0.5, 0.0, 0.1])
    np.testing.assert_array_equal(t["of_1m"], [1.0, 0.0, -0.5, 0.5, 0.0])
    np.testing.assert_array_equal(t["of_norm_1m"], [0.5, NAN, -0.5, 1.0, 0.0])
    assert t["low_ts"].tolist() == [T0 + 10, -1, T0 + 2 * M + 7, T0 + 3 * M, T0 + 4 * M + 50]
    np.testing.assert_array_equal(t["vah_trade_dist"], [0.1, NAN, 0.0, NAN, 0.2])
    np.testing.assert_array_equal(t["val_trade_dist"], [0.0, NAN, 0.1, NAN, 0.1])


def test_bvc_fallback_replaces_order_flow() -> None:
    a = engine_arrays()
    a["bvc_net"] = np.array([0.4, 0.0, -0.3, 0.25, 1.5])
    t = minute_table(a)
    np.testing.assert_array_equal(t["of_1m"], [0.4, 0.0, -0.3, 0.25, 1.5])
    # of_norm = bvc / volume, NaN without volume
    np.testing.assert_array_equal(t["of_norm_1m"], [0.2, NAN, -0.3, 0.5, 0.5])


def test_missing_or_short_columns_are_named() -> None:
    a = engine_arrays()
    del a["low_ts"]
    with pytest.raises(InputError, match=r"low_ts.*re-run `auction-trader features`"):
        minute_table(a)
    b = engine_arrays()
    b["vah"] = b["vah"][:3]
    with pytest.raises(InputError, match="vah"):
        minute_table(b)


def test_slice_keeps_fill_reference_past_the_range() -> None:
    t = minute_table(engine_arrays())
    s = slice_table(t, T0 + M, T0 + 2 * M)
    assert s["ts_min"].tolist() == [T0 + M, T0 + 2 * M]
    assert s["next_quote_ts"].tolist() == [T0 + 2 * M + 100, T0 + 4 * M]


def test_slice_rebases_tick_path() -> None:
    t: dict[str, Any] = minute_table(engine_arrays())
    t["tick_ts"] = np.array([T0 + 1, T0 + 2, T0 + 2 * M + 1, T0 + 3 * M + 5, T0 + 4 * M + 1])
    t["tick_price"] = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    t["tick_start"] = np.array([0, 2, 2, 3, 4, 5], dtype=np.uint32)
    s = slice_table(t, T0 + 2 * M, T0 + 3 * M)
    assert s["tick_start"].tolist() == [0, 1, 2]
    assert s["tick_price"].tolist() == [3.0, 4.0]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, M - 1), st.integers(1, 3)),
        min_size=1,
        max_size=60,
    )
)
def test_no_look_ahead_and_first_later_quote(rows: list[tuple[bool, int, int]]) -> None:
    """Generated minute grids (with gaps between rows and quiet minutes): every finite fill
    reference is strictly after its minute's close, and it is the earliest first-quote of
    any later row of the same segment: a reference never crosses a data gap (a row that
    does not follow its predecessor by one minute) (brute force against the Rust table
    builder)."""
    ts = []
    t = T0
    for _, _, gap in rows:
        ts.append(t)
        t += gap * M
    n = len(rows)
    ts_a = np.array(ts, dtype=np.int64)
    fq_ts = np.array([ts[i] + off if has else -1 for i, (has, off, _) in enumerate(rows)])
    bid = np.where(fq_ts >= 0, 100.0 + np.arange(n), np.nan)
    a = {k: np.resize(v, n) for k, v in engine_arrays().items()}
    a.update(ts_min=ts_a, fq_ts=fq_ts, fq_bid_px=bid, fq_ask_px=bid + 0.1)
    tab = minute_table(a)
    nts, nb, na = tab["next_quote_ts"], tab["next_bid"], tab["next_ask"]
    for m in range(n):
        seg_end = m + 1
        while seg_end < n and ts_a[seg_end] - ts_a[seg_end - 1] == M:
            seg_end += 1
        later = [j for j in range(m + 1, seg_end) if fq_ts[j] >= 0]
        if np.isfinite(nb[m]):
            assert nts[m] > ts_a[m] + 59_999, "fill at or before the decision"
            assert later and nts[m] == fq_ts[later[0]] and nb[m] == bid[later[0]]
        else:
            assert not later and nts[m] == -1 and np.isnan(na[m])
