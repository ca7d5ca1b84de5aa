"""Parameter stability on a constructed grid: a broad plateau and a lone peak, the
neighbourhoods (one step in one key), the slice through the winner and the pair of keys
the metric is most sensitive to."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from at_core.errors import InputError
from at_core.grid.stability import (
    Grid,
    heat_map,
    most_sensitive_pair,
    neighbourhoods,
    slice_table,
)

A, B, C = [1, 2, 3, 4, 5], [0.1, 0.2, 0.3], ["x", "y"]


def _metric(a: int, b: float, c: str) -> float:
    if (a, b, c) == (5, 0.3, "x"):
        return 100.0  # a lone peak: every neighbour is poor
    plateau = 40.0 if 1 <= a <= 3 else 5.0
    return plateau + (1.0 if c == "x" else 0.0) + 0.0 * b


def _grid(mode: str = "max") -> Grid:
    rows = [
        ({"a": a, "b": b, "c": c, "fixed": 9}, {"net_pnl": _metric(a, b, c), "max_drawdown": 1.0})
        for a, b, c in itertools.product(A, B, C)
    ]
    return Grid(rows, {"a": A, "b": B, "c": C, "fixed": [9]}, "net_pnl", mode)


def test_a_lone_peak_and_a_plateau_are_told_apart() -> None:
    g = _grid()
    assert g.keys == ["a", "b", "c"]  # a key with one value is not a dimension
    top = neighbourhoods(g, top=3)
    peak = top[0]
    assert peak.params == {"a": 5, "b": 0.3, "c": "x"} and peak.metric == 100.0
    # neighbours: a=4 (5+1), b=0.2 (5+1), c=y (100 -> 5.0 + 0 = 5.0)
    assert peak.n_neighbours == 3
    assert peak.median == pytest.approx(6.0) and peak.worst == pytest.approx(5.0)
    assert peak.verdict == "lone peak"
    for n in top[1:]:  # the plateau: a in 1..3 with c = x (41), neighbours 41, 40 or 6
        assert n.params["a"] in (1, 2, 3) and n.params["c"] == "x"
        assert n.metric == 41.0 and n.verdict == "plateau"
    # minimising: the best is the first stored 5.0 (a=4, b=0.1, c=y); its neighbours are
    # a=3: 40, a=5: 5, b=0.2: 5, c=x: 6, median 5.5; it keeps own/median
    low = neighbourhoods(_grid("min"), top=1)[0]
    assert low.params == {"a": 4, "b": 0.1, "c": "y"} and low.n_neighbours == 4
    assert low.kept == pytest.approx(5.0 / 5.5) and low.verdict == "plateau"


def test_the_slice_through_the_winner_and_the_sensitive_pair() -> None:
    g = _grid()
    win = 0
    for r, (p, _) in enumerate(g.rows):
        if (p["a"], p["b"], p["c"]) == (5, 0.3, "x"):
            win = r
    z = slice_table(g, win, "a", "b")  # c held at "x"
    assert z.shape == (3, 5)
    want = np.array([[_metric(a, b, "x") for a in A] for b in B])
    np.testing.assert_array_equal(z, want)
    # one step in b or c drops the peak to 6 or 5; a keeps 41 at three of its four values
    assert set(most_sensitive_pair(g, win)) == {"b", "c"}
    with pytest.raises(InputError, match="'fixed' is not a swept key"):
        slice_table(g, win, "a", "fixed")


def test_the_heat_map_is_written(tmp_path: object) -> None:
    from pathlib import Path

    g = _grid()
    p = heat_map(g, 0, "a", "c", Path(str(tmp_path)) / "h.png")
    assert p.stat().st_size > 5_000
