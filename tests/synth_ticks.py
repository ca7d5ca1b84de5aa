"""Generated ticks as the feature engine's input dicts (trades, quotes)."""

from __future__ import annotations

from typing import Any

import numpy as np

from at_core.ingest.synthetic import generate_range

Arrays = dict[str, np.ndarray]


def tick_arrays(b: dict[str, Any]) -> tuple[Arrays, Arrays]:
    """A ``SynthGenerator`` batch (``generate_range``, ``next_day``) split into the engine's
    trade and quote dicts."""
    trades = {
        "ts_ms": b["trade_ts_ms"],
        "seq": b["trade_seq"],
        "price": b["trade_price"],
        "size": b["trade_size"],
        "exchange_side": b["trade_side"].astype(np.int8),
    }
    quotes = {
        "ts_ms": b["quote_ts_ms"],
        "seq": b["quote_seq"],
        "bid_px": b["bid_px"],
        "bid_sz": b["bid_sz"],
        "ask_px": b["ask_px"],
        "ask_sz": b["ask_sz"],
    }
    return trades, quotes


def ticks(seed: int, start_ms: int, end_ms: int) -> tuple[Arrays, Arrays]:
    """The generated market of ``seed`` over ``[start_ms, end_ms)``."""
    return tick_arrays(generate_range(seed, start_ms, end_ms))
