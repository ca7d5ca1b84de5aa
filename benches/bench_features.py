"""Feature-engine benchmarks: stage 1 (ticks -> minute summaries) and stage 2 (minute
summaries -> profile / VA features).

* stage 1: one generated day of ~20 M events (16 M L1 quotes, 4 M trades in same-ms groups,
  a random-walk book on the 0.1 grid) through ``features_stage1`` (bindings included: array
  conversion, tick-grid checks, output arrays), against a plain NumPy implementation of the
  same stage in the same run (``numpy_stage1``; vectorised except for a per-minute loop of
  the EMA recurrence). One core: the Rust stage 1 is single-threaded.
* stage 2: 7 days of minute summaries (10,080 minutes, ~120 base bins each) through
  ``features_stage2`` (sigma, spread, bin width/rebucketing, rolling 240-minute profile,
  POC/VA every minute). Target: <= 100 ms.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

import at_core._core as core
from at_core.config import load_settings
from at_core.features.engine import engine_config

MINUTE = 60_000
DAY0 = 1_712_188_800_000


def generated_day(
    n_quotes: int = 16_000_000, n_trades: int = 4_000_000, seed: int = 1
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    qts = np.sort(DAY0 + rng.integers(0, 86_400_000, n_quotes))
    bid = 600_000 + np.cumsum(rng.integers(-1, 2, n_quotes, dtype=np.int64))
    groups = n_trades // 2
    at = np.sort(rng.integers(1, n_quotes, groups))
    buy = rng.random(groups) < 0.5
    px = np.where(buy, bid[at - 1] + 1, bid[at - 1])
    tts = np.repeat(qts[at], 2)
    trades = {
        "ts_ms": tts,
        "seq": np.arange(len(tts), dtype=np.int64),
        "price": np.repeat(px, 2) / 10,
        "size": rng.integers(1, 2000, len(tts)) / 1000,
        "exchange_side": np.repeat(np.where(buy, 1, -1), 2).astype(np.int8),
    }
    quotes = {
        "ts_ms": qts,
        "seq": np.arange(n_quotes, dtype=np.int64),
        "bid_px": bid / 10,
        "bid_sz": rng.random(n_quotes) * 5,
        "ask_px": (bid + 1) / 10,
        "ask_sz": rng.random(n_quotes) * 5,
    }
    return trades, quotes


def numpy_stage1(
    trades: dict[str, np.ndarray],
    quotes: dict[str, np.ndarray],
    tick: float = 0.1,
    tau_ms: float = 60_000.0,
) -> dict[str, np.ndarray]:
    """Plain NumPy stage 1 (baseline): strictly-before quote match, quote rule, tick rule on
    same-ms groups (continuation from the previous group's net sign, one pass), minute OHLCV
    / VWAP / OF / ambiguous volume, L1 at close, qimb close + time EMA, minute histograms."""
    tts, tpx_f, tsz = trades["ts_ms"], trades["price"], trades["size"]
    qts = quotes["ts_ms"]
    tpx = np.round(tpx_f / tick).astype(np.int64)
    bid = np.round(quotes["bid_px"] / tick).astype(np.int64)
    ask = np.round(quotes["ask_px"] / tick).astype(np.int64)
    j = np.searchsorted(qts, tts, side="left") - 1
    has = j >= 0
    jj = np.where(has, j, 0)
    qs = np.where(~has, 0, np.where(tpx >= ask[jj], 1, np.where(tpx <= bid[jj], -1, 0))).astype(
        np.int8
    )
    # same-ms groups; tick rule against the previous group's last price
    new_group = np.r_[True, tts[1:] != tts[:-1]]
    gid = np.cumsum(new_group) - 1
    g_last = np.r_[np.flatnonzero(new_group)[1:] - 1, len(tts) - 1]
    g_last_px = tpx[g_last]
    prev_px = np.r_[tpx[0], g_last_px[:-1]][gid]
    tick_sign = np.sign(tpx - prev_px).astype(np.int8)
    first = np.r_[True, np.zeros(len(tts) - 1, dtype=bool)]
    g_net = np.bincount(gid, weights=np.where(qs != 0, qs, tick_sign) * tsz)
    g_sign = np.sign(g_net)
    idx = np.where(g_sign != 0, np.arange(len(g_sign)), 0)
    carried = g_sign[np.maximum.accumulate(idx)]
    prev_carried = np.r_[0, carried[:-1]][gid]
    tick_sign = np.where((tick_sign == 0) & ~first, prev_carried, tick_sign)
    sign = np.where(qs != 0, qs, tick_sign)
    # minutes
    m_t = tts // MINUTE
    m0 = min(m_t[0], qts[0] // MINUTE)
    m1 = max(m_t[-1], qts[-1] // MINUTE)
    nmin = int(m1 - m0 + 1)
    mi = m_t - m0
    starts = np.searchsorted(mi, np.arange(nmin))
    nonempty = np.diff(np.r_[starts, len(mi)]) > 0
    count = np.bincount(mi, minlength=nmin)
    vol = np.bincount(mi, weights=tsz, minlength=nmin)
    pv = np.bincount(mi, weights=tpx * tsz, minlength=nmin)
    of = np.bincount(mi, weights=sign * tsz, minlength=nmin)
    amb = np.bincount(mi, weights=(qs == 0) * tsz, minlength=nmin)
    hi = np.full(nmin, np.nan)
    lo = np.full(nmin, np.nan)
    op = np.full(nmin, np.nan)
    cl = np.full(nmin, np.nan)
    s_ne = starts[nonempty]
    hi[nonempty] = np.maximum.reduceat(tpx, s_ne) * tick
    lo[nonempty] = np.minimum.reduceat(tpx, s_ne) * tick
    op[nonempty] = tpx[s_ne] * tick
    ends = np.r_[starts[1:], len(mi)] - 1
    cl[nonempty] = tpx[ends[nonempty]] * tick
    # L1 at close
    m_end = (np.arange(nmin) + m0 + 1) * MINUTE - 1
    k = np.searchsorted(qts, m_end, side="right") - 1
    bsz, asz = quotes["bid_sz"], quotes["ask_sz"]
    qimb = (bsz - asz) / (bsz + asz)
    qimb_close = np.where(k >= 0, qimb[np.maximum(k, 0)], np.nan)
    # time EMA of the step function qimb(t), evaluated at every minute end
    mq = qts // MINUTE - m0
    t_end = (mq + m0 + 1) * MINUTE
    nxt = np.r_[qts[1:], 0]
    same_min = np.r_[mq[1:] == mq[:-1], False]
    seg_end = np.where(same_min, nxt, t_end)
    contrib = qimb * (np.exp(-(t_end - seg_end) / tau_ms) - np.exp(-(t_end - qts) / tau_ms))
    x = np.bincount(mq, weights=contrib, minlength=nmin)
    q_first = np.searchsorted(mq, np.arange(nmin))
    has_q = np.diff(np.r_[q_first, len(mq)]) > 0
    lead = np.where(
        has_q,
        np.exp(
            -(t_end[np.minimum(q_first, len(qts) - 1)] - qts[np.minimum(q_first, len(qts) - 1)])
            / tau_ms
        ),
        0.0,
    )
    decay = np.exp(-MINUTE / tau_ms)
    last_q = np.flatnonzero(np.r_[mq[1:] != mq[:-1], True])
    last_of_min = np.full(nmin, -1)
    last_of_min[mq[last_q]] = last_q
    ema = np.full(nmin, np.nan)
    e = np.nan
    held = np.nan
    for m in range(nmin):  # one step per minute: E_T = E_S*decay + held*(lead - decay) + x
        if np.isnan(e):
            if has_q[m]:
                e = qimb[q_first[m]] * lead[m] + x[m]  # starts at the first quote
        else:
            e = e * decay + held * ((lead[m] if has_q[m] else 1.0) - decay) + x[m]
        ema[m] = e
        if last_of_min[m] >= 0:
            held = qimb[last_of_min[m]]
    # minute histograms as a sorted (minute, tick) -> volume triple
    key = mi.astype(np.int64) * (1 << 32) + (tpx - tpx.min())
    uk, inv = np.unique(key, return_inverse=True)
    hq = np.bincount(inv, weights=np.round(tsz * 1e8))
    return {
        "open": op, "high": hi, "low": lo, "close": cl, "volume": vol, "vwap": pv / np.where(vol > 0, vol, np.nan) * tick,
        "trade_count": count, "of_1m": of, "ambiguous_volume": amb, "qimb_close": qimb_close, "qimb_ema": ema,
        "hist_minute": (uk >> 32) + m0, "hist_bin": (uk & ((1 << 32) - 1)) + tpx.min(), "hist_qty": hq,
    }  # fmt: skip


def minutes_7d(seed: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 7 * 1440
    ts = DAY0 + np.arange(n, dtype=np.int64) * MINUTE
    mid = 600_000 + np.cumsum(rng.integers(-40, 41, n))
    per = rng.integers(60, 180, n)
    hm = np.repeat(ts, per)
    centre = np.repeat(mid, per)
    hb = centre + rng.integers(-150, 151, len(hm))
    order = np.lexsort((hb, hm))
    hm, hb = hm[order], hb[order]
    keep = np.r_[True, (hm[1:] != hm[:-1]) | (hb[1:] != hb[:-1])]
    hm, hb = hm[keep], hb[keep]
    return {
        "ts_min": ts,
        "bid_px_close": mid / 10,
        "ask_px_close": (mid + 1) / 10,
        "close": mid / 10,
        "volume": np.full(n, 10.0),
        "hist_minute": hm,
        "hist_bin": hb,
        "hist_qty": rng.integers(100_000, 500_000_000, len(hm)),
    }


def _best(f: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def run() -> list[dict[str, Any]]:
    cfg = engine_config(load_settings())
    trades, quotes = generated_day()
    n_ev = len(trades["ts_ms"]) + len(quotes["ts_ms"])
    rust_s = _best(lambda: core.features_stage1(trades, quotes, cfg), 3)
    numpy_s = _best(lambda: numpy_stage1(trades, quotes), 1)
    rust_eps = n_ev / rust_s
    numpy_eps = n_ev / numpy_s
    s1 = minutes_7d()
    s2_s = _best(lambda: core.features_stage2(s1, cfg), 5)
    return [
        {
            "name": "features.stage1_events_per_s",
            "value": rust_eps,
            "unit": "events/s",
            "baseline": numpy_eps,
            "ratio": rust_eps / numpy_eps,
            "note": f"one generated day, {n_ev:,} events ({len(trades['ts_ms']):,} trades); Rust {rust_s:.3f} s "
            f"incl. bindings, NumPy baseline {numpy_s:.3f} s; target >= 20 M events/s on one core",
        },
        {
            "name": "features.stage2_7d_ms",
            "value": s2_s * 1000,
            "unit": "ms",
            "baseline": None,
            "ratio": None,
            "note": f"7 days = {len(s1['ts_min']):,} minutes, {len(s1['hist_minute']):,} histogram entries; "
            "sigma, spread, bin width, rolling 240-min profile, POC/VA each minute; target <= 100 ms",
        },
    ]


if __name__ == "__main__":
    import json

    for r in run():
        print(json.dumps(r))
