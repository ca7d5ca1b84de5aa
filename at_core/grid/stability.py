"""Parameter stability: is a sweep's winner on a plateau or a lone peak?

A combination whose immediate neighbours in the grid (one step up or down in one swept
key, everything else equal) score nearly as well sits on a plateau: small changes in the
market that move the optimum a step will not ruin it. A winner whose neighbours score far
worse is a peak the sweep found by fitting noise, however good its own number.

For each of the top combinations: the number of neighbours, their median and worst metric
and the share of its own metric the median keeps. And for any two keys, the metric over
their grid with the other swept keys held at the winner's values (the slice through the
winner), as a table and a heat map.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from at_core.errors import InputError
from at_core.grid.results import rank_key

#: a neighbourhood whose median keeps at least this share of the combination's own metric
#: (a positive metric), with no neighbour at or below 0, is called a plateau
PLATEAU_SHARE = 0.5


def _k(v: Any) -> str:
    return json.dumps(v, sort_keys=True)


@dataclass
class Neighbourhood:
    rank: int
    params: dict[str, Any]
    metric: float | None
    n_neighbours: int
    median: float | None
    worst: float | None
    #: the share of its own metric the neighbours' median keeps: median / own when
    #: maximising, own / median when minimising (positive metrics only; else None)
    kept: float | None
    verdict: str


class Grid:
    """The swept values and where each stored combination sits among them."""

    def __init__(
        self,
        rows: list[tuple[dict[str, Any], dict[str, Any]]],
        swept: dict[str, list[Any]],
        metric: str,
        mode: str,
    ) -> None:
        self.rows, self.metric, self.mode = rows, metric, mode
        self.keys = [k for k, vals in swept.items() if len(vals) > 1]
        self.values = {k: list(swept[k]) for k in self.keys}
        self.pos = {k: {_k(v): i for i, v in enumerate(vals)} for k, vals in self.values.items()}
        self.at: dict[tuple[int, ...], int] = {}
        for r, (p, _) in enumerate(rows):
            try:
                coord = tuple(self.pos[k][_k(p.get(k))] for k in self.keys)
            except KeyError:
                continue  # a value outside the grid (cannot happen for a stored sweep)
            self.at.setdefault(coord, r)

    def value(self, r: int) -> float | None:
        v = self.rows[r][1].get(self.metric)
        return None if v is None or not math.isfinite(float(v)) else float(v)

    def coord(self, r: int) -> tuple[int, ...]:
        p = self.rows[r][0]
        return tuple(self.pos[k][_k(p.get(k))] for k in self.keys)

    def neighbours(self, r: int) -> list[int]:
        c = self.coord(r)
        out = []
        for d, k in enumerate(self.keys):
            for step in (-1, 1):
                j = c[d] + step
                if 0 <= j < len(self.values[k]):
                    n = self.at.get((*c[:d], j, *c[d + 1 :]))
                    if n is not None:
                        out.append(n)
        return out


def neighbourhoods(grid: Grid, top: int = 5) -> list[Neighbourhood]:
    """The top ``top`` combinations by the sweep's metric, each with its neighbourhood."""
    key = rank_key(grid.metric, grid.mode)
    order = sorted(range(len(grid.rows)), key=lambda r: key(grid.rows[r][1]))[:top]
    out = []
    for rank, r in enumerate(order, 1):
        own = grid.value(r)
        vals = [v for v in (grid.value(n) for n in grid.neighbours(r)) if v is not None]
        med = float(np.median(vals)) if vals else None
        worst = (min(vals) if grid.mode == "max" else max(vals)) if vals else None
        kept = None
        if own is not None and own > 0 and med is not None and med > 0:
            kept = med / own if grid.mode == "max" else own / med
        if not vals:
            verdict = "no neighbours"
        elif own is None or own <= 0:
            verdict = "n/a (metric not positive)"
        elif kept is not None and kept >= PLATEAU_SHARE and worst is not None and worst > 0:
            verdict = "plateau"
        else:
            verdict = "lone peak"
        out.append(
            Neighbourhood(
                rank=rank,
                params={k: grid.rows[r][0].get(k) for k in grid.keys},
                metric=own,
                n_neighbours=len(vals),
                median=med,
                worst=worst,
                kept=kept,
                verdict=verdict,
            )
        )
    return out


def most_sensitive_pair(grid: Grid, around: int) -> tuple[str, str]:
    """The two swept keys whose single steps move the metric most around ``around``."""
    if len(grid.keys) < 2:
        raise InputError("a heat map needs two swept keys with more than one value")
    c = grid.coord(around)
    own = grid.value(around) or 0.0
    move: dict[str, float] = {}
    for d, k in enumerate(grid.keys):
        deltas = []
        for j in range(len(grid.values[k])):
            n = grid.at.get((*c[:d], j, *c[d + 1 :]))
            v = None if n is None else grid.value(n)
            if v is not None and j != c[d]:
                deltas.append(abs(v - own))
        move[k] = float(np.median(deltas)) if deltas else 0.0
    a, b = sorted(grid.keys, key=lambda k: -move[k])[:2]
    return a, b


def slice_table(grid: Grid, around: int, x: str, y: str) -> np.ndarray:
    """The metric over keys ``x`` (columns) and ``y`` (rows), the other swept keys held at
    the values of combination ``around``; NaN where no combination was stored."""
    for k in (x, y):
        if k not in grid.keys:
            raise InputError(
                f"{k!r} is not a swept key with more than one value; one of: {', '.join(grid.keys)}"
            )
    if x == y:
        raise InputError("a heat map needs two different keys")
    c = list(grid.coord(around))
    dx, dy = grid.keys.index(x), grid.keys.index(y)
    out = np.full((len(grid.values[y]), len(grid.values[x])), np.nan)
    for iy in range(len(grid.values[y])):
        for ix in range(len(grid.values[x])):
            c[dx], c[dy] = ix, iy
            n = grid.at.get(tuple(c))
            v = None if n is None else grid.value(n)
            if v is not None:
                out[iy, ix] = v
    return out


def heat_map(grid: Grid, around: int, x: str, y: str, path: Path) -> Path:
    """``slice_table`` as a PNG, the combination ``around`` outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = slice_table(grid, around, x, y)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * z.shape[1], 1.2 + 0.6 * z.shape[0]))
    im = ax.imshow(z, cmap="RdYlGn" if grid.mode == "max" else "RdYlGn_r", aspect="auto")
    ax.set_xticks(range(z.shape[1]), [str(v) for v in grid.values[x]])
    ax.set_yticks(range(z.shape[0]), [str(v) for v in grid.values[y]])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    for iy in range(z.shape[0]):
        for ix in range(z.shape[1]):
            if np.isfinite(z[iy, ix]):
                ax.text(ix, iy, f"{z[iy, ix]:.3g}", ha="center", va="center", fontsize=7)
    c = grid.coord(around)
    cx, cy = c[grid.keys.index(x)], c[grid.keys.index(y)]
    ax.add_patch(plt.Rectangle((cx - 0.5, cy - 0.5), 1, 1, fill=False, lw=2.5, ec="k"))
    others = {k: grid.rows[around][0].get(k) for k in grid.keys if k not in (x, y)}
    ax.set_title(
        f"{grid.metric} over {x} x {y}\n"
        + (", ".join(f"{k}={v}" for k, v in others.items()) or "no other swept keys"),
        fontsize=8,
    )
    fig.colorbar(im, ax=ax, label=grid.metric)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
