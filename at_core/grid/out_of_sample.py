"""Walk-forward and hold-out checks of a sweep, on its stored daily returns.

Each window chooses the combination with the best training days (compounded return or
Sharpe, see ``validation_spec.select_for``), then scores that choice on its test days,
which start ``purge`` days after the training days end. The walk-forward test days, each
traded by the combination chosen just before it, stitch into one out-of-sample curve.
Degradation compares it with what the choices showed in sample: the Sharpe ratio of the
stitched curve over the mean in-sample Sharpe of the choices, and walk-forward efficiency
(annualised out-of-sample return over the mean annualised in-sample return).

The selection itself runs in Rust (``_core.walk_forward_select``); windows come from
``_core.walk_forward_windows``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from at_core import _core
from at_core.errors import InputError
from at_core.grid.validation_spec import Holdout, WalkForward

EPOCH = dt.date(1970, 1, 1)


def _day(d: int) -> str:
    return (EPOCH + dt.timedelta(days=int(d))).isoformat()


def _ann_return(r: float, days: int) -> float:
    return (1.0 + r) ** (365.0 / days) - 1.0 if days > 0 and r > -1.0 else float("nan")


@dataclass
class WindowRow:
    train_from: str
    train_to: str
    test_from: str
    test_to: str
    result_id: int
    params: dict[str, Any]
    is_return: float
    is_sharpe_ann: float
    oos_return: float


@dataclass
class OutOfSample:
    kind: str
    select_by: str
    purge_days: int
    windows: list[WindowRow]
    oos_days: int
    oos_return: float
    oos_return_ann: float
    oos_sharpe_ann: float
    is_sharpe_ann_mean: float
    is_return_ann_mean: float
    #: OOS Sharpe / mean IS Sharpe of the choices (1 = no degradation)
    sharpe_ratio_oos_is: float
    #: annualised OOS return / mean annualised IS return (walk-forward efficiency)
    efficiency: float
    #: the stitched out-of-sample daily returns, with their UTC days
    curve_days: list[str] = field(default_factory=list)
    curve: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("curve")
        d.pop("curve_days")
        return d


def _run(
    kind: str,
    windows: list[tuple[int, int, int, int]],
    days: np.ndarray,
    ret: np.ndarray,
    ids: list[int],
    params: list[dict[str, Any]],
    select: str,
    purge: int,
) -> OutOfSample:
    res = _core.walk_forward_select(ret, windows, select)
    rows: list[WindowRow] = []
    curve: list[float] = []
    curve_days: list[str] = []
    for k, (a, b, c, d) in enumerate(windows):
        j = int(res["selected"][k])
        rows.append(
            WindowRow(
                train_from=_day(days[a]), train_to=_day(days[b - 1]),
                test_from=_day(days[c]), test_to=_day(days[d - 1]),
                result_id=ids[j], params=params[j],
                is_return=float(res["is_return"][k]),
                is_sharpe_ann=float(res["is_sharpe"][k]) * math.sqrt(365),
                oos_return=float(res["oos_return"][k]),
            )
        )  # fmt: skip
        curve.extend(float(x) for x in ret[j, c:d])
        curve_days.extend(_day(x) for x in days[c:d])
    r = np.asarray(curve)
    total = float(np.prod(1.0 + r) - 1.0)
    sd = float(r.std(ddof=1)) if len(r) > 1 else float("nan")
    oos_sharpe = float(r.mean() / sd * math.sqrt(365)) if sd and sd > 0 else float("nan")
    is_sharpe = float(np.nanmean([w.is_sharpe_ann for w in rows]))
    is_ann = float(np.nanmean([_ann_return(w.is_return, b - a) for w, (a, b, _, _) in
                               zip(rows, windows, strict=True)]))  # fmt: skip
    oos_ann = _ann_return(total, len(r))
    return OutOfSample(
        kind=kind,
        select_by=select,
        purge_days=purge,
        windows=rows,
        oos_days=len(r),
        oos_return=total,
        oos_return_ann=oos_ann,
        oos_sharpe_ann=oos_sharpe,
        is_sharpe_ann_mean=is_sharpe,
        is_return_ann_mean=is_ann,
        sharpe_ratio_oos_is=oos_sharpe / is_sharpe if is_sharpe else float("nan"),
        efficiency=oos_ann / is_ann if is_ann else float("nan"),
        curve_days=curve_days,
        curve=curve,
    )


def walk_forward(
    wf: WalkForward,
    days: np.ndarray,
    ret: np.ndarray,
    ids: list[int],
    params: list[dict[str, Any]],
    select: str,
    purge: int,
) -> OutOfSample:
    """Rolling (or anchored) windows over the sweep's days."""
    _contiguous(days)
    windows = _core.walk_forward_windows(
        len(days), wf.train_days, wf.test_days, wf.step_days, purge, wf.anchored
    )
    return _run("walk_forward", windows, days, ret, ids, params, select, purge)


def holdout(
    h: Holdout,
    days: np.ndarray,
    ret: np.ndarray,
    ids: list[int],
    params: list[dict[str, Any]],
    select: str,
    purge: int,
) -> OutOfSample:
    """One in-sample range and one out-of-sample range, ``purge`` days or more apart."""
    _contiguous(days)
    first, last = EPOCH + dt.timedelta(days=int(days[0])), EPOCH + dt.timedelta(days=int(days[-1]))

    def index(d: dt.date) -> int:
        return (d - first).days

    if h.split is not None:
        s = index(h.split)
        if not 2 <= s <= len(days) - 1 - purge:
            raise InputError(
                f"holdout split {h.split}: the sweep covers {first} .. {last}; the split needs "
                f"2+ in-sample days before it and 1+ out-of-sample day after a {purge}-day embargo"
            )
        win = (0, s, s + purge, len(days))
    else:
        assert h.in_sample is not None and h.out_of_sample is not None
        (a, b), (c, d) = h.in_sample, h.out_of_sample
        if a < first or d > last:
            raise InputError(
                f"holdout {a} .. {d} reaches outside the sweep's days {first} .. {last}"
            )
        if (c - b).days - 1 < purge:
            raise InputError(
                f"holdout: out_of_sample starts {c}, {(c - b).days - 1} day(s) after in_sample "
                f"ends {b}; the embargo needs {purge}"
            )
        win = (index(a), index(b) + 1, index(c), index(d) + 1)
        if win[1] - win[0] < 2:
            raise InputError("holdout: the in-sample range needs 2+ days")
    return _run("holdout", [win], days, ret, ids, params, select, purge)


def _contiguous(days: np.ndarray) -> None:
    gaps = np.flatnonzero(np.diff(days) != 1)
    if len(gaps):
        raise InputError(
            f"the sweep's days are not contiguous ({_day(days[gaps[0]])} is followed by "
            f"{_day(days[gaps[0] + 1])}): windows of days need a gap-free history"
        )
