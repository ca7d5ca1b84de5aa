"""Before a sweep: which swept keys change nothing under the fixed settings, on this data.

A grid of 1,536 combinations that gives 16 distinct results wastes the search and, worse,
prints identical rows as a "top 5". Some keys are inert for a reason the trader can fix
(a normalised threshold under a raw-only rule, a risk share when every trade is sized by
the leverage cap, a time stop longer than any trade lasts). Saying which, before the
sweep, lets them drop the key or change the fixed settings.

How: each swept key alone, every other key at its base value, one backtest per value on
the stored data (the same Rust path the sweep runs; a few milliseconds per value). A key
whose values all give the same metrics is reported. That is a hint, not a proof: a key
inert with the others at their base values may matter in combination, which is why
``grid show`` and the sweep's summary also report, from the results, the keys that
changed nothing in the whole sweep. Stage-1 keys are not checked (each value would
re-read the ticks).
"""

from __future__ import annotations

import json
from typing import Any

from at_core.config import Settings
from at_core.grid.evaluate import evaluate_point
from at_core.grid.spec import GridSpec


def inert_alone(spec: GridSpec, stage1: Any) -> list[str]:
    """Swept keys whose values give identical metrics with every other key at its base."""
    base = spec.base
    out: list[str] = []
    for key, values in spec.params.items():
        if len(values) < 2 or Settings.stage_of(key) == "stage1":
            continue
        if key in spec.strategy_keys:
            rows = evaluate_point(stage1, base, [{key: v} for v in values]).rows
        else:
            rows = [
                evaluate_point(
                    stage1, Settings.model_validate({**base.model_dump(), key: v}), [{}]
                ).rows[0]
                for v in values
            ]
        seen = {json.dumps(m, sort_keys=True, default=str) for _, m in rows}
        if len(seen) == 1:
            out.append(key)
    return out
