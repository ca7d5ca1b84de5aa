"""The research statistics through the bindings: the issue's reference values (computed
independently from the papers' formulas), PBO against a NumPy reference of CSCV, and the
behaviour on generated return matrices (noise looks overfit, a planted edge does not)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from at_core import _core
from at_core.errors import CoreInputError


def test_reference_values_of_the_papers() -> None:
    assert _core.expected_max_sharpe(10) == pytest.approx(1.5746, abs=5e-5)
    assert _core.expected_max_sharpe(100) == pytest.approx(2.5306, abs=5e-5)
    assert _core.expected_max_sharpe(1000) == pytest.approx(3.2551, abs=5e-5)
    assert _core.probabilistic_sharpe(0.1, 1000, skew=-0.5, kurt=4.0) == pytest.approx(
        0.998942, abs=5e-7
    )
    assert 0.05 * _core.expected_max_sharpe(100) == pytest.approx(0.12653, abs=5e-6)
    assert _core.deflated_sharpe(0.1, 1000, 0.05, 100, skew=-0.5, kurt=4.0) == pytest.approx(
        0.207416, abs=5e-6
    )
    # the minimum track record is where PSR reaches the confidence
    n = _core.min_track_record(0.1, skew=-0.5, kurt=4.0)
    assert _core.probabilistic_sharpe(0.1, math.ceil(n), -0.5, 4.0) >= 0.95
    assert _core.probabilistic_sharpe(0.1, math.floor(n) - 1, -0.5, 4.0) < 0.95


def _numpy_cscv(r: np.ndarray, s: int, purge: int) -> list[float]:
    """CSCV spelled out: per split, the kept periods of each half, Sharpe from scratch."""
    n, t = r.shape
    bounds = np.concatenate([[0], np.cumsum([t // s + (b < t % s) for b in range(s)])])
    logits = []
    # in the bindings' split order: by the bit mask of the in-sample blocks (block b = bit b)
    splits = sorted(itertools.combinations(range(s), s // 2), key=lambda c: sum(1 << b for b in c))
    for chosen in splits:
        in_is = [b in chosen for b in range(s)]

        def kept(want: bool, in_is: list[bool] = in_is) -> list[int]:
            out: list[int] = []
            for b in range(s):
                if in_is[b] != want:
                    continue
                lo = bounds[b] + (purge if b > 0 and in_is[b - 1] != in_is[b] else 0)
                out.extend(range(lo, bounds[b + 1]))
            return out

        def sharpe(cols: list[int]) -> np.ndarray:
            x = r[:, cols]
            sd = x.std(axis=1, ddof=1)
            return np.where(sd > 0, x.mean(axis=1) / np.where(sd > 0, sd, 1), 0.0)

        is_sr, oos_sr = sharpe(kept(True)), sharpe(kept(False))
        best = int(np.argmax(is_sr))
        less = int((oos_sr < oos_sr[best]).sum())
        equal = int((oos_sr == oos_sr[best]).sum())
        w = (less + (equal + 1) / 2) / (n + 1)
        logits.append(math.log(w / (1 - w)))
    return logits


def test_pbo_equals_a_numpy_reference_of_cscv() -> None:
    rng = np.random.default_rng(5)
    r = rng.normal(0, 0.01, (15, 45))
    r[4] += 0.003
    for purge in (0, 2):
        got = _core.cscv_pbo(r, blocks=6, purge=purge, threads=2)
        want = _numpy_cscv(r, 6, purge)
        assert got["n_splits"] == 20
        np.testing.assert_allclose(got["logits"], want, rtol=0, atol=1e-9)
        assert got["pbo"] == pytest.approx(np.mean(np.asarray(want) <= 0))


def test_noise_is_overfit_about_half_the_time_and_a_planted_edge_almost_never() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.01, (300, 320))
    p = _core.cscv_pbo(noise, blocks=16, threads=2)
    assert p["n_splits"] == 12_870
    assert 0.35 < p["pbo"] < 0.65
    edge = noise.copy()
    edge[123] += 0.004  # 0.4 sd a day
    q = _core.cscv_pbo(edge, blocks=16, purge=1, threads=2)
    assert q["pbo"] < 0.05
    assert q["prob_oos_loss"] < 0.05
    assert np.mean(q["selected"] == 123) > 0.9
    s = _core.sweep_statistics(edge)
    assert s["best"] == 123 and s["dsr"][123] > 0.95


def test_the_best_of_noise_is_deflated_and_clusters_are_few_trials() -> None:
    rng = np.random.default_rng(2)
    noise = rng.normal(0, 0.01, (1000, 250))
    s = _core.sweep_statistics(noise)
    b = s["best"]
    assert s["psr"][b] > 0.99  # alone it looks significant
    assert s["dsr"][b] < 0.8  # against 1,000 trials it is luck
    assert s["n_eff"] > 700
    # 6 rules, 50 near-identical parameter sets each, and their mirror images: 6 trials
    base = rng.normal(0, 0.01, (6, 250))
    clusters = np.repeat(base, 50, axis=0) + rng.normal(0, 1e-5, (300, 250))
    c = _core.sweep_statistics(np.vstack([clusters, -clusters]))
    assert 5 <= c["n_eff"] <= 8


def test_bad_matrices_are_refused_with_where() -> None:
    r = np.zeros((4, 30))
    r[2, 7] = np.nan
    with pytest.raises(CoreInputError, match="combination 2 period 7"):
        _core.sweep_statistics(r)
    with pytest.raises(CoreInputError, match="even"):
        _core.cscv_pbo(np.ones((4, 30)), blocks=5)
