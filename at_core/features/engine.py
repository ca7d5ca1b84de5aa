"""Thin Python face of the Rust feature engine: config and array conversion.

Everything here is glue; the feature logic lives once, in ``rust/at-features``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

import at_core._core as _core
from at_core.config import Settings

Arrays = dict[str, np.ndarray]

#: Config keys the engine reads (stage 1 and stage 2), declared once in Rust.
ENGINE_KEYS: tuple[str, ...] = tuple(_core.features_config_keys())

#: Stage-1 per-minute columns (everything the engine returns that is not stage 2 or the
#: histogram triple).
STAGE2_COLUMNS = (
    "sigma_240",
    "spread_avg_60m",
    "bin_width",
    "bin_width_ticks",
    "bin_width_candidate_ticks",
    "rebucketed",
    "poc",
    "vah",
    "val",
    "va_coverage",
    "va_bin_count",
    "va_valid",
    "total_volume_4h",
    "bvc_net",
    "vah_trade_dist",
    "val_trade_dist",
)
HIST_COLUMNS = ("hist_minute", "hist_bin", "hist_qty")


def engine_config(settings: Settings) -> dict[str, Any]:
    """The engine's config dict from validated settings."""
    dump = settings.model_dump()
    return {k: dump[k] for k in ENGINE_KEYS}


def trades_arrays(t: pa.Table) -> Arrays:
    """Engine input from a lake trades table (sorted by ts_ms, seq); a missing exchange side is 0."""
    side = (
        t.column("exchange_side").to_numpy(zero_copy_only=False)
        if "exchange_side" in t.column_names
        else None
    )
    n = t.num_rows
    if side is None:
        side_arr = np.zeros(n, dtype=np.int8)
    else:
        side_arr = np.nan_to_num(np.asarray(side, dtype=np.float64), nan=0.0).astype(np.int8)
    return {
        "ts_ms": np.ascontiguousarray(t.column("ts_ms").to_numpy(), dtype=np.int64),
        "seq": np.ascontiguousarray(t.column("seq").to_numpy(), dtype=np.int64),
        "price": np.ascontiguousarray(t.column("price").to_numpy(), dtype=np.float64),
        "size": np.ascontiguousarray(t.column("size").to_numpy(), dtype=np.float64),
        "exchange_side": side_arr,
    }


def quotes_arrays(q: pa.Table) -> Arrays:
    """Engine input from a lake quotes table (sorted by ts_ms, seq)."""
    return {
        k: np.ascontiguousarray(
            q.column(k).to_numpy(), dtype=np.int64 if k in ("ts_ms", "seq") else np.float64
        )
        for k in ("ts_ms", "seq", "bid_px", "bid_sz", "ask_px", "ask_sz")
    }


def concat(parts: list[Arrays]) -> Arrays:
    """Concatenate engine outputs key by key (empty parts are fine)."""
    parts = [p for p in parts if p]
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def batch(trades: Arrays | None, quotes: Arrays | None, settings: Settings) -> Arrays:
    """Both stages over whole arrays (the streaming engine fed in one Rust loop)."""
    return dict(_core.features_batch(trades, quotes, engine_config(settings)))


def stage2(stage1: Arrays, settings: Settings) -> Arrays:
    """Stage 2 from stored stage-1 columns (what a grid point recomputes)."""
    return dict(_core.features_stage2(stage1, engine_config(settings)))
