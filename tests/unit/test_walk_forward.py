"""Walk-forward and hold-out selection on a sweep's daily returns, against a NumPy
reference of the same procedure: choose on the training days, score on the test days after
the embargo, stitch the test days."""

from __future__ import annotations

import math

import numpy as np
import pytest

from at_core.errors import ConfigError, InputError
from at_core.grid.results import SweepReturns
from at_core.grid.validation import compute
from at_core.grid.validation_spec import ValidationSpec, WalkForward, parse_validation

DAY0 = 19_723  # 2024-01-01


def _sweep(n: int = 40, t: int = 30, seed: int = 3) -> SweepReturns:
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0005, 0.01, (n, t))
    r[7, :] = 0.0  # never trades
    return SweepReturns(
        ids=[100 + i for i in range(n)],
        params=[{"k": i} for i in range(n)],
        metrics=[{"net_pnl": float(x.sum()), "max_drawdown": 0.0} for x in r],
        days=np.arange(DAY0, DAY0 + t, dtype=np.int64),
        returns=r,
    )


def _validate(sr: SweepReturns, spec: ValidationSpec, metric: str = "net_pnl") -> object:
    return compute(
        "r", sr, metric=metric, mode="max", swept=["k"], blocks=None, blocks_default=16,
        embargo_min=None, confidence=0.95, dsr_min=0.95, threads=1, spec=spec,
    )  # fmt: skip


def test_walk_forward_equals_a_numpy_reference() -> None:
    sr = _sweep()
    v = _validate(sr, ValidationSpec(walk_forward=WalkForward(7, 2, 3)))
    wf = v.walk_forward  # type: ignore[attr-defined]
    r = sr.returns
    # reference: train [e-7, e), purge 1 day (the 240-minute memory), test [e+1, e+3)
    want_sel, curve = [], []
    e = 7
    while e + 1 + 2 <= 30:
        growth = np.prod(1 + r[:, e - 7 : e], axis=1)
        j = int(np.argmax(growth))
        want_sel.append(100 + j)
        curve.extend(r[j, e + 1 : e + 3])
        e += 3
    assert [w.result_id for w in wf.windows] == want_sel
    np.testing.assert_allclose(wf.curve, curve, rtol=0, atol=0)
    assert wf.windows[0].train_from == "2024-01-01" and wf.windows[0].train_to == "2024-01-07"
    assert wf.windows[0].test_from == "2024-01-09"  # the embargo day 01-08 is skipped
    total = float(np.prod(1 + np.asarray(curve)) - 1)
    assert wf.oos_return == pytest.approx(total, rel=1e-12)
    c = np.asarray(curve)
    assert wf.oos_sharpe_ann == pytest.approx(c.mean() / c.std(ddof=1) * math.sqrt(365))
    assert wf.purge_days == 1 and wf.select_by == "return"


def test_anchored_windows_and_selection_by_sharpe() -> None:
    sr = _sweep(seed=4)
    v = _validate(sr, ValidationSpec(walk_forward=WalkForward(10, 5, 5, anchored=True),
                                     select_by="sharpe"))  # fmt: skip
    wf = v.walk_forward  # type: ignore[attr-defined]
    r = sr.returns
    for w, end in zip(wf.windows, (10, 15, 20), strict=True):
        assert w.train_from == "2024-01-01"
        x = r[:, :end]
        sd = x.std(1, ddof=1)
        sharpe = np.where(sd > 0, x.mean(1) / np.where(sd > 0, sd, 1.0), 0.0)
        assert w.result_id == 100 + int(np.argmax(sharpe))


def test_holdout_split_and_ranges() -> None:
    sr = _sweep()
    spec = parse_validation({"holdout": {"split": "2024-01-21"}}, "t", "net_pnl")
    ho = _validate(sr, spec).holdout  # type: ignore[attr-defined]
    (w,) = ho.windows
    assert (w.train_from, w.train_to, w.test_from, w.test_to) == (
        "2024-01-01", "2024-01-20", "2024-01-22", "2024-01-30",
    )  # fmt: skip
    j = int(np.argmax(np.prod(1 + sr.returns[:, :20], axis=1)))
    assert w.result_id == 100 + j
    close = parse_validation(
        {"holdout": {"in_sample": {"from": "2024-01-01", "to": "2024-01-10"},
                     "out_of_sample": {"from": "2024-01-11", "to": "2024-01-20"}}}, "t", "net_pnl",
    )  # fmt: skip
    with pytest.raises(
        InputError, match="0 day\\(s\\) after in_sample ends 2024-01-10; the embargo needs 1"
    ):
        _validate(sr, close)
    with pytest.raises(InputError, match="no window of 40 training"):
        _validate(sr, ValidationSpec(walk_forward=WalkForward(40, 1, 1)))


def test_bad_validation_sections_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"validation\.walk_forward\.train_days"):
        parse_validation({"walk_forward": {"train_days": 1, "test_days": 1}}, "g.yaml", "net_pnl")
    with pytest.raises(ConfigError, match="unknown key"):
        parse_validation({"walkforward": {}}, "g.yaml", "net_pnl")
    with pytest.raises(ConfigError, match=r"cscv\.blocks"):
        parse_validation({"cscv": {"blocks": 7}}, "g.yaml", "net_pnl")
    with pytest.raises(ConfigError, match="select_by"):
        _validate(_sweep(), ValidationSpec(walk_forward=WalkForward(7, 1, 1)), metric="win_rate")
