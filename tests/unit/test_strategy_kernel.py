"""Live-path kernel class: restore equivalence, input checks, parameter errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from at_core.backtest import synthetic_table
from at_core.config import load_settings
from at_core.errors import CoreError
from at_core.strategy import MINUTE_FIELDS, StrategyKernel, params_dict, reason_codes

DAY0 = 1_704_067_200_000


def minutes(n: int, seed: int) -> list[dict[str, Any]]:
    t = synthetic_table(n, seed, DAY0)
    cols = {f: t[f].tolist() for f in MINUTE_FIELDS}
    return [{f: cols[f][i] for f in MINUTE_FIELDS} for i in range(n)]


def drive(k: Any, ms: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Fill entries and exits at the next minute's open (a minimal executor)."""
    out = []
    for m in ms:
        if m["open"] == m["open"]:
            pos = k.position()
            if pos is not None and pos["exit_pending"] is not None:
                k.on_exit_fill("market", m["ts_min"] + 1, m["open"], pos["qty"], 0.0)
            if k.working_entry() is not None and k.position() is None:
                k.on_entry_fill(m["ts_min"] + 1, m["open"], 0.0)
        d = k.on_minute(m)
        out.append((d["action"], d["reason"], d["equity"], d["mode"], d["acceptance_state"]))
    return out


def test_export_restore_mid_run_equals_never_stopping() -> None:
    p = params_dict(load_settings())
    ms = minutes(1_500, 4)
    full = drive(StrategyKernel(p), ms)
    assert sum(1 for a in full if a[0].startswith("ENTER")) > 5
    for cut in (300, 777, 1_200):
        k = StrategyKernel(p)
        head = drive(k, ms[:cut])
        k2 = StrategyKernel.restore(p, k.export_state())
        assert head + drive(k2, ms[cut:]) == full


def test_out_of_order_minute_is_rejected() -> None:
    k = StrategyKernel(params_dict(load_settings()))
    ms = minutes(3, 1)
    k.on_minute(ms[1])
    with pytest.raises(CoreError, match="does not follow"):
        k.on_minute(ms[0])


def test_bad_parameters_name_the_key() -> None:
    p = params_dict(load_settings())
    with pytest.raises(CoreError, match="risk_pct"):
        StrategyKernel({**p, "risk_pct": 0.0})
    with pytest.raises(CoreError, match="of_threshold_mode"):
        StrategyKernel({**p, "of_threshold_mode": "sometimes"})
    with pytest.raises(CoreError, match="line 1"):
        StrategyKernel.restore(p, "{not json")


def test_decision_carries_reason_and_snapshot() -> None:
    k = StrategyKernel(params_dict(load_settings()))
    d = k.on_minute(minutes(1, 2)[0])
    assert d["reason"] in reason_codes()
    assert d["action"] in {"HOLD", "ENTER_LONG", "ENTER_SHORT", "EXIT"}
    assert '"vah"' in d["feature_snapshot"] and '"above"' in d["acceptance_state"]
    assert np.isfinite(d["equity"])
