"""Properties of the feature engine on generated multi-hour tick sets, checked against
independent NumPy oracles: the rolling 240-minute histogram, value-area invariants,
causality (no look-ahead) and independence from how the stream is split."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import at_core._core as core
from at_core.config import load_settings
from at_core.features.engine import engine_config

MINUTE = 60_000
T0 = 1_712_188_800_000 + 22 * 3_600_000  # 2024-04-04 22:00 UTC: the set spans midnight
Q = 1e8  # hist units per 1.0 size


def market(seed: int, minutes: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Random-walk book with a drift regime, quotes ~3/s, trades ~1/s in same-ms groups,
    one silent stretch; prices on the 0.1 grid."""
    rng = np.random.default_rng(seed)
    nq = minutes * 180
    qts = np.sort(T0 + rng.integers(0, minutes * MINUTE, nq))
    keep = ~((qts > T0 + 40 * MINUTE) & (qts < T0 + 43 * MINUTE))  # 3 silent minutes
    qts = qts[keep]
    nq = len(qts)
    steps = rng.integers(-1, 2, nq) + (rng.random(nq) < 0.02) * rng.integers(-30, 31, nq)
    bid = 600_000 + np.cumsum(steps)
    spread = np.where(rng.random(nq) < 0.05, 2, 1)
    ntr = minutes * 60
    at = np.sort(rng.integers(1, nq, ntr))
    buy = rng.random(ntr) < 0.5
    inside = rng.random(ntr) < 0.05
    px = np.where(
        inside & (spread[at - 1] == 2),
        bid[at - 1] + 1,
        np.where(buy, bid[at - 1] + spread[at - 1], bid[at - 1]),
    )
    # trades at the quote's millisecond (the quote they caused) and split prints
    reps = rng.integers(1, 4, ntr)
    tts = np.repeat(qts[at], reps)
    tpx = np.repeat(px, reps)
    tside = np.repeat(np.where(buy, 1, -1), reps).astype(np.int8)
    tsz = rng.integers(1, 2000, len(tts)) / 1000
    trades = {
        "ts_ms": tts.astype(np.int64),
        "seq": np.arange(len(tts), dtype=np.int64),
        "price": tpx / 10,
        "size": tsz,
        "exchange_side": tside,
    }
    quotes = {
        "ts_ms": qts.astype(np.int64),
        "seq": np.arange(nq, dtype=np.int64),
        "bid_px": bid / 10,
        "bid_sz": rng.random(nq) * 5,
        "ask_px": (bid + spread) / 10,
        "ask_sz": rng.random(nq) * 5,
    }
    return trades, quotes


def cfg(**over: Any) -> dict[str, Any]:
    return engine_config(load_settings(overrides=over))


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray], n: int | None = None) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if k.startswith("hist_"):
            continue
        x, y = (a[k], b[k]) if n is None else (a[k][:n], b[k][:n])
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), k


SLOW = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(seed=st.integers(0, 2**31), window=st.sampled_from([240, 37]))
def test_rolling_profile_matches_from_scratch_oracle(seed: int, window: int) -> None:
    trades, quotes = market(seed, 300)
    c = cfg(rolling_window_minutes=window, min_va_bins=5)
    out = core.features_batch(trades, quotes, c)
    # stage-1 histogram = from-scratch per-minute histogram of the trades
    ticks = np.round(trades["price"] * 10).astype(np.int64)
    mins = trades["ts_ms"] // MINUTE * MINUTE
    key = np.stack([mins, ticks])
    uniq, inv = np.unique(key, axis=1, return_inverse=True)
    vol = np.bincount(inv.ravel(), weights=np.round(trades["size"] * Q))
    assert np.array_equal(out["hist_minute"], uniq[0]) and np.array_equal(out["hist_bin"], uniq[1])
    assert np.array_equal(out["hist_qty"], vol.astype(np.int64))
    hm, hb, hq = out["hist_minute"], out["hist_bin"], out["hist_qty"]
    for i, t in enumerate(out["ts_min"]):
        sel = (hm > t - window * MINUTE) & (hm <= t)
        total = hq[sel].sum()
        assert (
            out["total_volume_4h"][i] == total / Q
            or abs(out["total_volume_4h"][i] - total / Q) < 1e-9
        )
        if total == 0:
            assert np.isnan(out["poc"][i])
            continue
        w = int(out["bin_width_ticks"][i])
        agg_keys = hb[sel] // w
        k0 = agg_keys.min()
        agg = np.bincount(agg_keys - k0, weights=hq[sel]).astype(np.int64)
        assert out["va_bin_count"][i] == np.count_nonzero(agg)
        lo = round(out["val"][i] * 10) // w - k0
        hi = round(out["vah"][i] * 10) // w - k0
        poc = round(out["poc"][i] * 10) // w - k0
        assert (
            out["val"][i] * 10 == round(out["val"][i] * 10) and round(out["val"][i] * 10) % w == 0
        )
        assert lo <= poc <= hi, "VA contains the POC"
        assert agg[poc] == agg.max(), "POC holds the maximum volume"
        inside = agg[lo : hi + 1].sum()  # contiguous, zero bins included
        assert out["va_coverage"][i] == inside / total
        assert inside >= c["va_fraction"] * total
        # valid: enough bins, and the warm-up (max(warmup, window) minutes of data) is over
        warm = t - out["ts_min"][0] >= (max(c["warmup_minutes"], window) - 1) * MINUTE
        assert out["va_valid"][i] == (warm and np.count_nonzero(agg) >= c["min_va_bins"])


@SLOW
@given(seed=st.integers(0, 2**31), cut=st.integers(5, 295))
def test_no_look_ahead(seed: int, cut: int) -> None:
    """Features up to minute t are identical when every event after t is removed."""
    trades, quotes = market(seed, 300)
    c = cfg()
    full = core.features_batch(trades, quotes, c)
    end = T0 // MINUTE * MINUTE + cut * MINUTE
    t_keep = trades["ts_ms"] < end
    q_keep = quotes["ts_ms"] < end
    part = core.features_batch(
        {k: v[t_keep] for k, v in trades.items()}, {k: v[q_keep] for k, v in quotes.items()}, c
    )
    n = len(part["ts_min"])
    assert part["ts_min"][-1] < end
    same(part, {k: v[:n] if not k.startswith("hist_") else v for k, v in full.items()})


@SLOW
@given(
    seed=st.integers(0, 2**31), cuts=st.lists(st.integers(0, 300 * MINUTE), min_size=1, max_size=6)
)
def test_stream_split_does_not_matter(seed: int, cuts: list[int]) -> None:
    """The streaming engine fed in arbitrary chunks (e.g. day files) gives the batch result bit
    for bit, and stage 2 from the stored stage-1 columns gives the same features."""
    trades, quotes = market(seed, 300)
    c = cfg()
    batch = core.features_batch(trades, quotes, c)
    eng = core.FeatureEngine(c)
    bounds = [*sorted({T0 + x for x in cuts}), 2**62]
    parts = []
    prev = -(2**62)
    for b in bounds:
        ts_sel = (trades["ts_ms"] >= prev) & (trades["ts_ms"] < b)
        qs_sel = (quotes["ts_ms"] >= prev) & (quotes["ts_ms"] < b)
        parts.append(
            eng.push(
                {k: v[ts_sel] for k, v in trades.items()}, {k: v[qs_sel] for k, v in quotes.items()}
            )
        )
        prev = b
    parts.append(eng.finish())
    streamed = {k: np.concatenate([p[k] for p in parts]) for k in batch}
    same(batch, streamed)
    for k in ("hist_minute", "hist_bin", "hist_qty"):
        assert np.array_equal(batch[k], streamed[k])
    s2 = core.features_stage2(batch, c)
    for k, v in s2.items():
        assert np.array_equal(v, batch[k], equal_nan=v.dtype.kind == "f"), k


def test_same_features_every_run() -> None:
    """SPEC §21.2: replaying the same ticks gives the same features (bit for bit)."""
    trades, quotes = market(11, 120)
    a = core.features_batch(trades, quotes, cfg())
    b = core.features_batch(trades, quotes, cfg())
    same(a, b)
