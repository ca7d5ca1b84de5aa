"""The market the simulator replays: trades and L1 quotes merged into one time-ordered
event stream, from the lake (a recorded or imported history) or straight from the
synthetic generator (no store needed).

Order within one millisecond: trades before quotes. A quote update caused by a trade
carries the trade's millisecond (measured on real captures, see ``../shared/data``), so
"trade first" replays cause before effect; it is also the rule the feature engine's
trade↔quote alignment follows (the quote a trade met is the one strictly before it).

Prices and sizes are held as integer ticks and qty steps of the instrument: the matching
engine compares and books integers, never floats.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from at_core import _core
from at_core.errors import InputError
from at_core.exchange.instrument import Instrument
from at_core.storage.lake import Lake

TRADE = 0
QUOTE = 1


@dataclass
class MarketEvents:
    """Columns of the merged stream, one row per event (``kind`` TRADE or QUOTE).

    Trade rows: ``px`` price ticks, ``sz`` size steps, ``side`` +1 buy / -1 sell taker.
    Quote rows: ``px``/``sz`` the bid, ``ask_px``/``ask_sz`` the ask.
    """

    ts: np.ndarray  # int64 ms
    kind: np.ndarray  # int8
    px: np.ndarray  # int64 ticks
    sz: np.ndarray  # int64 steps
    ask_px: np.ndarray  # int64 ticks (quotes)
    ask_sz: np.ndarray  # int64 steps (quotes)
    side: np.ndarray  # int8 (trades)
    source: str

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def first_ms(self) -> int:
        return int(self.ts[0]) if len(self.ts) else 0

    @property
    def last_ms(self) -> int:
        return int(self.ts[-1]) if len(self.ts) else 0

    def n_trades(self) -> int:
        return int(np.count_nonzero(self.kind == TRADE))


def _merge(
    inst: Instrument,
    t_ts: np.ndarray,
    t_px: np.ndarray,
    t_sz: np.ndarray,
    t_side: np.ndarray,
    q_ts: np.ndarray,
    bid: np.ndarray,
    bid_sz: np.ndarray,
    ask: np.ndarray,
    ask_sz: np.ndarray,
    source: str,
) -> MarketEvents:
    nt, nq = len(t_ts), len(q_ts)
    tick, step = float(inst.tick_size), float(inst.qty_step)
    ts = np.concatenate([t_ts.astype(np.int64), q_ts.astype(np.int64)])
    kind = np.concatenate([np.zeros(nt, np.int8), np.ones(nq, np.int8)])
    order = np.lexsort((kind, ts))  # by ts, trades first within a millisecond (stable)

    def ticks(a: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(a, np.float64) / tick).astype(np.int64)

    def steps(a: np.ndarray) -> np.ndarray:
        return np.maximum(np.rint(np.asarray(a, np.float64) / step), 1).astype(np.int64)

    zeros_t = np.zeros(nt, np.int64)
    return MarketEvents(
        ts=ts[order],
        kind=kind[order],
        px=np.concatenate([ticks(t_px), ticks(bid)])[order],
        sz=np.concatenate([steps(t_sz), steps(bid_sz)])[order],
        ask_px=np.concatenate([zeros_t, ticks(ask)])[order],
        ask_sz=np.concatenate([zeros_t, steps(ask_sz)])[order],
        side=np.concatenate([np.asarray(t_side, np.int8), np.zeros(nq, np.int8)])[order],
        source=source,
    )


def _infer_missing_sides(
    t_ts: np.ndarray, t_px: np.ndarray, side: np.ndarray, q_ts: np.ndarray, mid: np.ndarray
) -> np.ndarray:
    """Taker side where the store has none: above the mid of the quote strictly before the
    trade is a buy, below a sell, at the mid the previous trade's side (the tick rule's
    fallback). Only the public trade stream's ``S`` field uses it; matching does not."""
    out = side.astype(np.int8).copy()
    missing = out == 0
    if not missing.any():
        return out
    idx = np.searchsorted(q_ts, t_ts, side="left") - 1
    ref = np.where(idx >= 0, mid[np.clip(idx, 0, None)], t_px)
    guess = np.sign(t_px - ref).astype(np.int8)
    out[missing] = guess[missing]
    for i in np.flatnonzero(out == 0):
        out[i] = out[i - 1] if i > 0 and out[i - 1] != 0 else 1
    return out


def from_lake(db_dir: str | Path, start_ms: int, end_ms: int, inst: Instrument) -> MarketEvents:
    """Trades and quotes of the lake in ``[start_ms, end_ms)``."""
    if end_ms <= start_ms:
        raise InputError(f"--to must be after --from ({start_ms} .. {end_ms})")
    lake = Lake(db_dir)
    if not lake.has_data("trades") or not lake.has_data("quotes"):
        raise InputError(
            f"the lake in {lake.root} holds no trades and quotes to replay: import or "
            "generate a market first, or replay the generator (--seed)"
        )
    first_day = dt.datetime.fromtimestamp(start_ms / 1000, tz=dt.UTC).date()
    last_day = dt.datetime.fromtimestamp((end_ms - 1) / 1000, tz=dt.UTC).date()
    tables: dict[str, list[pa.Table]] = {"trades": [], "quotes": []}
    day = first_day
    while day <= last_day:
        for kind in ("trades", "quotes"):
            t = lake.read_day(kind, day)
            mask = pc.and_(pc.greater_equal(t["ts_ms"], start_ms), pc.less(t["ts_ms"], end_ms))
            tables[kind].append(t.filter(mask))
        day += dt.timedelta(days=1)
    trades = pa.concat_tables(tables["trades"])
    quotes = pa.concat_tables(tables["quotes"])
    if trades.num_rows == 0 or quotes.num_rows == 0:
        raise InputError(
            f"the lake in {lake.root} holds {trades.num_rows} trades and {quotes.num_rows} "
            f"quotes between {_iso(start_ms)} and {_iso(end_ms)}: nothing to replay "
            f"(its days: {_days_text(lake)})"
        )
    t_ts = trades["ts_ms"].to_numpy()
    t_px = trades["price"].to_numpy()
    q_ts = quotes["ts_ms"].to_numpy()
    bid, ask = quotes["bid_px"].to_numpy(), quotes["ask_px"].to_numpy()
    side = trades["exchange_side"].fill_null(0).to_numpy(zero_copy_only=False)
    side = _infer_missing_sides(t_ts, t_px, side, q_ts, (bid + ask) / 2)
    return _merge(
        inst,
        t_ts,
        t_px,
        trades["size"].to_numpy(),
        side,
        q_ts,
        bid,
        quotes["bid_sz"].to_numpy(),
        ask,
        quotes["ask_sz"].to_numpy(),
        source=f"lake {lake.root} {_iso(start_ms)} .. {_iso(end_ms)}",
    )


def from_generator(
    seed: int, start_ms: int, end_ms: int, inst: Instrument, activity: float = 1.0
) -> MarketEvents:
    """The synthetic market of ``seed`` from ``start_ms`` to ``end_ms`` (deterministic:
    the same seed and start give the same events as ``auction-trader generate``)."""
    if end_ms <= start_ms:
        raise InputError(f"--to must be after --from ({start_ms} .. {end_ms})")
    gen = _core.SynthGenerator(seed, start_ms, activity=activity)
    b = gen.generate(end_ms)
    return _merge(
        inst,
        b["trade_ts_ms"],
        b["trade_price"],
        b["trade_size"],
        b["trade_side"],
        b["quote_ts_ms"],
        b["bid_px"],
        b["bid_sz"],
        b["ask_px"],
        b["ask_sz"],
        source=f"generator seed {seed} {_iso(start_ms)} .. {_iso(end_ms)}",
    )


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _days_text(lake: Lake) -> str:
    days = lake.days("trades")
    if not days:
        return "none"
    return f"{days[0]} .. {days[-1]} ({len(days)} days)"
