"""The ``validation:`` section of a grid file: which out-of-sample checks a sweep gets
beyond the deflated Sharpe (always computed)::

    validation:
      walk_forward: {train_days: 7, test_days: 1, step_days: 1, anchored: false}
      holdout: {split: 2024-01-21}          # or in_sample: {from, to}, out_of_sample: {from, to}
      cscv: {blocks: 16}                    # PBO (on by default; blocks from the config)
      embargo_minutes: 240                  # default and minimum: the sweep's memory
      select_by: return                     # return | sharpe (default: by the grid's metric)

Dates are UTC days, inclusive. Validated when the grid file is read (names the key); fitted
to the sweep's days when the statistics are computed (a window the data cannot hold is an
error that says which). The section does not change the sweep's results, so it is not part
of the run's fingerprint: a finished run can be validated again with other windows
(``grid validate RUN --walk-forward 7:1``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from at_core.errors import ConfigError

#: metrics a window of daily returns can rank by: money made (compounded return) or Sharpe
RETURN_METRICS = ("net_pnl", "return_pct", "final_equity", "gross_pnl", "pnl_per_trade")


@dataclass(frozen=True)
class WalkForward:
    train_days: int
    test_days: int
    step_days: int
    anchored: bool = False


@dataclass(frozen=True)
class Holdout:
    """In-sample and out-of-sample UTC days, inclusive (``split``: OOS from that day)."""

    in_sample: tuple[dt.date, dt.date] | None = None
    out_of_sample: tuple[dt.date, dt.date] | None = None
    split: dt.date | None = None


@dataclass(frozen=True)
class ValidationSpec:
    walk_forward: WalkForward | None = None
    holdout: Holdout | None = None
    cscv_blocks: int | None = None
    cscv: bool = True
    embargo_minutes: int | None = None
    select_by: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def _int(raw: dict[str, Any], key: str, where: str, lo: int, default: int | None = None) -> int:
    v = raw.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        raise ConfigError(f"{where}.{key}: expected an integer >= {lo}, got {v!r}")
    return v


def _date(v: Any, where: str) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    try:
        return dt.date.fromisoformat(str(v))
    except ValueError:
        raise ConfigError(f"{where}: expected a date YYYY-MM-DD, got {v!r}") from None


def _range(raw: Any, where: str) -> tuple[dt.date, dt.date]:
    if not isinstance(raw, dict) or set(raw) != {"from", "to"}:
        raise ConfigError(f"{where}: expected {{from: YYYY-MM-DD, to: YYYY-MM-DD}}, got {raw!r}")
    lo, hi = _date(raw["from"], f"{where}.from"), _date(raw["to"], f"{where}.to")
    if hi < lo:
        raise ConfigError(f"{where}: `to` {hi} is before `from` {lo}")
    return lo, hi


def _keys(raw: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}")
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return raw


def parse_validation(raw: Any, source: str, metric: str) -> ValidationSpec:
    """Validate a grid file's ``validation`` section (None: the defaults)."""
    if raw is None:
        return ValidationSpec()
    where = f"{source}: validation"
    raw = _keys(raw, {"walk_forward", "holdout", "cscv", "embargo_minutes", "select_by"}, where)
    wf = None
    if raw.get("walk_forward") is not None:
        w = _keys(raw["walk_forward"], {"train_days", "test_days", "step_days", "anchored"},
                  f"{where}.walk_forward")  # fmt: skip
        test = _int(w, "test_days", f"{where}.walk_forward", 1)
        wf = WalkForward(
            train_days=_int(w, "train_days", f"{where}.walk_forward", 2),
            test_days=test,
            step_days=_int(w, "step_days", f"{where}.walk_forward", 1, default=test),
            anchored=bool(w.get("anchored", False)),
        )
    ho = None
    if raw.get("holdout") is not None:
        h = _keys(raw["holdout"], {"split", "in_sample", "out_of_sample"}, f"{where}.holdout")
        if "split" in h:
            if len(h) != 1:
                raise ConfigError(f"{where}.holdout: give `split` or in_sample + out_of_sample")
            ho = Holdout(split=_date(h["split"], f"{where}.holdout.split"))
        else:
            if set(h) != {"in_sample", "out_of_sample"}:
                raise ConfigError(f"{where}.holdout: needs in_sample and out_of_sample")
            ins = _range(h["in_sample"], f"{where}.holdout.in_sample")
            oos = _range(h["out_of_sample"], f"{where}.holdout.out_of_sample")
            if oos[0] <= ins[1]:
                raise ConfigError(
                    f"{where}.holdout: out_of_sample starts {oos[0]}, not after in_sample "
                    f"ends {ins[1]}"
                )
            ho = Holdout(in_sample=ins, out_of_sample=oos)
    cscv, blocks = True, None
    c = raw.get("cscv")
    if c is False:
        cscv = False
    elif c is not None:
        c = _keys(c, {"blocks"}, f"{where}.cscv")
        if "blocks" in c:
            blocks = _int(c, "blocks", f"{where}.cscv", 2)
            if blocks % 2 or blocks > 20:
                raise ConfigError(f"{where}.cscv.blocks: must be even and <= 20, got {blocks}")
    embargo = None
    if raw.get("embargo_minutes") is not None:
        embargo = _int(raw, "embargo_minutes", where, 0)
    select = raw.get("select_by")
    if select is not None and select not in ("return", "sharpe"):
        raise ConfigError(f"{where}.select_by: `return` or `sharpe`, got {select!r}")
    return ValidationSpec(wf, ho, blocks, cscv, embargo, select)


def from_dict(d: dict[str, Any] | None) -> ValidationSpec:
    """A spec stored with a run (``as_dict``) back."""
    if not d:
        return ValidationSpec()
    wf = WalkForward(**d["walk_forward"]) if d.get("walk_forward") else None
    ho = None
    if d.get("holdout"):
        h = d["holdout"]
        ho = Holdout(
            in_sample=None if h.get("in_sample") is None else
            (dt.date.fromisoformat(h["in_sample"][0]), dt.date.fromisoformat(h["in_sample"][1])),
            out_of_sample=None if h.get("out_of_sample") is None else
            (dt.date.fromisoformat(h["out_of_sample"][0]),
             dt.date.fromisoformat(h["out_of_sample"][1])),
            split=None if h.get("split") is None else dt.date.fromisoformat(h["split"]),
        )  # fmt: skip
    return ValidationSpec(
        wf, ho, d.get("cscv_blocks"), d.get("cscv", True), d.get("embargo_minutes"),
        d.get("select_by"),
    )  # fmt: skip


def select_for(spec: ValidationSpec, metric: str) -> str:
    """What windows choose by: the spec's ``select_by``, else by the grid's metric."""
    if spec.select_by:
        return spec.select_by
    if metric == "sharpe":
        return "sharpe"
    if metric in RETURN_METRICS:
        return "return"
    raise ConfigError(
        f"validation: the grid's metric {metric!r} cannot be measured on a window of daily "
        "returns; set validation.select_by to `return` or `sharpe`"
    )
