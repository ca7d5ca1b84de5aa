"""Microstructure statistics of a tick sample (trades + L1 quotes): a test-side measure
for the calibration check of the synthetic market (not product code: it signs trades by
its own quote rule, a second copy of what the feature engine does).

One definition, used both on the real Binance USD-M windows in ``shared/data`` and on the
synthetic market, so the calibration check compares like with like. The numbers in
``shared/data/README.md`` are reproduced by these definitions.

Pitfall encoded here: the L1 update a trade causes carries the trade's own millisecond.
Matching a trade to "the latest quote at or before its time" therefore often picks the
post-trade book and mis-signs the trade; "strictly before" picks the book the aggressor
actually met. Both agreements with the exchange's aggressor flag are reported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

MINUTE_MS = 60_000


@dataclass(frozen=True)
class MarketStats:
    seconds: float
    trades: int
    quotes: int
    trades_per_s: float
    quotes_per_s: float
    spread_one_tick_share: float
    size_median: float
    size_p99: float
    same_ms_share: float
    distinct_ticks_per_min_median: float
    vol_1m: float
    strict_before_agree: float
    at_or_before_agree: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def sign_trades(
    trade_ts: npt.NDArray[np.int64],
    trade_px: npt.NDArray[np.float64],
    quote_ts: npt.NDArray[np.int64],
    bid: npt.NDArray[np.float64],
    ask: npt.NDArray[np.float64],
    *,
    strict: bool,
) -> npt.NDArray[np.int8]:
    """Quote-rule side of each trade (+1 at/above ask, -1 at/below bid, 0 inside or no quote).

    ``quote_ts`` must be sorted (ties in arrival order). ``strict`` matches the latest quote
    with ``ts < trade ts``; otherwise ``ts <= trade ts``.
    """
    idx = np.searchsorted(quote_ts, trade_ts, side="left" if strict else "right") - 1
    ok = idx >= 0
    j = np.maximum(idx, 0)
    b = bid[j]
    a = ask[j]
    eps = 1e-9
    s = np.where(trade_px >= a - eps, 1, np.where(trade_px <= b + eps, -1, 0)).astype(np.int8)
    s[~ok] = 0
    return s


def market_stats(
    trade_ts: npt.ArrayLike,
    trade_px: npt.ArrayLike,
    trade_sz: npt.ArrayLike,
    trade_side: npt.ArrayLike,
    quote_ts: npt.ArrayLike,
    bid: npt.ArrayLike,
    ask: npt.ArrayLike,
    tick: float = 0.1,
) -> MarketStats:
    """Statistics of one sample; trades in time order, quotes in time (then arrival) order."""
    tts = np.asarray(trade_ts, dtype=np.int64)
    tpx = np.asarray(trade_px, dtype=np.float64)
    tsz = np.asarray(trade_sz, dtype=np.float64)
    side = np.asarray(trade_side, dtype=np.int8)
    qts = np.asarray(quote_ts, dtype=np.int64)
    qb = np.asarray(bid, dtype=np.float64)
    qa = np.asarray(ask, dtype=np.float64)
    if len(tts) == 0 or len(qts) == 0:
        raise ValueError("market_stats needs at least one trade and one quote")
    t0 = min(int(tts.min()), int(qts.min()))
    t1 = max(int(tts.max()), int(qts.max()))
    seconds = max((t1 - t0) / 1000.0, 1e-3)

    _, inv, cnt = np.unique(tts, return_inverse=True, return_counts=True)
    same_ms = float((cnt[inv] > 1).mean())

    ticks = np.rint(tpx / tick).astype(np.int64)
    minutes = tts // MINUTE_MS
    order = np.lexsort((ticks, minutes))
    m_s, k_s = minutes[order], ticks[order]
    new_pair = np.ones(len(m_s), dtype=bool)
    new_pair[1:] = (m_s[1:] != m_s[:-1]) | (k_s[1:] != k_s[:-1])
    _, per_min = np.unique(m_s[new_pair], return_counts=True)

    spread_ticks = np.rint((qa - qb) / tick).astype(np.int64)

    mid = (qa + qb) / 2.0
    qmin = qts // MINUTE_MS
    last_in_min = np.ones(len(qmin), dtype=bool)
    last_in_min[:-1] = qmin[1:] != qmin[:-1]
    closes = mid[last_in_min]
    vol_1m = float(np.std(np.diff(np.log(closes)))) if len(closes) > 2 else float("nan")

    strict = sign_trades(tts, tpx, qts, qb, qa, strict=True)
    loose = sign_trades(tts, tpx, qts, qb, qa, strict=False)
    return MarketStats(
        seconds=seconds,
        trades=len(tts),
        quotes=len(qts),
        trades_per_s=len(tts) / seconds,
        quotes_per_s=len(qts) / seconds,
        spread_one_tick_share=float((spread_ticks == 1).mean()),
        size_median=float(np.median(tsz)),
        size_p99=float(np.quantile(tsz, 0.99)),
        same_ms_share=same_ms,
        distinct_ticks_per_min_median=float(np.median(per_min)),
        vol_1m=vol_1m,
        strict_before_agree=float((strict == side).mean()),
        at_or_before_agree=float((loose == side).mean()),
    )
