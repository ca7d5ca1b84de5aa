"""The generator's price-path contract: Auction-Market-Theory structure over a few days.

A simple detector on 1-minute closes (independent of the generator's internals):

* **balance** at minute t: the 5-95 % range of the previous 120 closes is at most 0.8 %
  of price (BTC's 4-hour range is 0.9-3.7 % in the real 2022-01 bars, so a balance is a
  clearly contained stretch);
* **breakout** at minute t: a balance at t and a close beyond that range by a quarter of
  its width;
* **failed**: within 60 minutes a close comes back past the middle of the old range;
* **accepted**: otherwise, when at least 80 % of the closes 30-90 minutes later stay
  outside the old range.

Over three days every kind must occur several times, and some detections must coincide
with the generator's own regime log (so the structure is the designed one, not noise).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from at_core import _core
from at_core.storage.lake import day_start_ms

START = dt.date(2024, 1, 1)
LOOKBACK = 120
HORIZON = 90
MAX_WIDTH = 0.008


def _closes_and_drives(seed: int, days: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
    t0 = day_start_ms(START)
    g = _core.SynthGenerator(seed, t0)
    closes, drives = [], []
    for _ in range(days):
        b = g.next_day()
        m = b["quote_ts_ms"] // 60_000
        last = np.ones(len(m), dtype=bool)
        last[:-1] = m[1:] != m[:-1]
        closes.append((b["bid_px"][last] + b["ask_px"][last]) / 2)
        for ts, kind, outcome in zip(
            b["regime_ts_ms"], b["regime_kind"], b["regime_outcome"], strict=True
        ):
            if kind == 1:  # drive
                drives.append((int(ts - t0) // 60_000, "accepted" if outcome > 0 else "failed"))
    return np.concatenate(closes), drives


def _detect(c: np.ndarray) -> tuple[np.ndarray, list[tuple[int, str]]]:
    n = len(c)
    lo = np.full(n, np.nan)
    hi = np.full(n, np.nan)
    for i in range(LOOKBACK, n):
        lo[i], hi[i] = np.quantile(c[i - LOOKBACK : i], [0.05, 0.95])
    balance = (hi - lo) / c <= MAX_WIDTH
    events: list[tuple[int, str]] = []
    t = LOOKBACK
    while t < n - HORIZON:
        width = hi[t] - lo[t]
        up, down = c[t] > hi[t] + 0.25 * width, c[t] < lo[t] - 0.25 * width
        if balance[t] and (up or down):
            fut = c[t : t + HORIZON]
            mid = (lo[t] + hi[t]) / 2
            back = fut < mid if up else fut > mid
            outside = fut > hi[t] if up else fut < lo[t]
            if back[:60].any():
                events.append((t, "failed"))
            elif outside[30:].mean() >= 0.8:
                events.append((t, "accepted"))
            else:
                events.append((t, "other"))
            t += HORIZON
        else:
            t += 1
    return balance, events


def _stretches(mask: np.ndarray, min_len: int) -> int:
    n, run = 0, 0
    for v in mask:
        run = run + 1 if v else 0
        if run == min_len:
            n += 1
    return n


@pytest.mark.slow
@pytest.mark.parametrize("seed", [7, 1])
def test_three_days_show_balance_accepted_and_failed_breakouts(seed: int) -> None:
    closes, drives = _closes_and_drives(seed, 3)
    assert len(closes) == 3 * 1440
    balance, events = _detect(closes)
    assert balance[LOOKBACK:].mean() >= 0.4
    assert _stretches(balance, 240) >= 3
    kinds = [k for _, k in events]
    assert kinds.count("accepted") >= 3, events
    assert kinds.count("failed") >= 3, events
    # detections line up with the generator's drives (start within -60..+45 minutes)
    matched = {
        kind
        for t, kind in events
        for start, truth in drives
        if -60 <= t - start <= 45 and truth == kind
    }
    assert matched == {"accepted", "failed"}
    # and the price stays BTC-like
    assert 30_000 < closes.min() < closes.max() < 70_000
