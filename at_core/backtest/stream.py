"""Thin Python face of the streaming driver (``rust/at-backtest/src/stream.rs``).

The driver is the live graph's trading core in paper mode: ticks and quotes go in as they
come, the one feature engine, strategy kernel and execution core run in Rust, and each
closed minute comes back decided. :func:`replay` feeds it a lake's ticks day by day, which
is what the shadow comparison and the tests do: the result must be bit-identical to the
batch backtest of the same ticks, because it is the same code (see the Rust module doc).
Nothing here decides anything.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from at_core import _core
from at_core.backtest import BacktestRun
from at_core.config import Settings
from at_core.errors import InputError
from at_core.features.engine import engine_config, quotes_arrays, trades_arrays
from at_core.storage.lake import Lake
from at_core.strategy import params_dict


class StreamingDriver:
    """Features → kernel → execution core, minute by minute.

    ``fills="paper"``: the backtester's fill model on the live ticks (paper and shadow
    modes). ``fills="exchange"``: live mode; each minute's ``orders`` say what to send,
    and the exchange's fills come back through :meth:`entry_fill`, :meth:`entry_end`,
    :meth:`exit_fill` and :meth:`funding_paid` (partial entry fills accumulate). A report
    the driver cannot explain (a fill with no order, more than ordered, off the quantity
    grid) is an error and halts it: live trading must stop and alert, not guess.
    """

    def __init__(
        self,
        settings: Settings,
        overrides: dict[str, Any] | None = None,
        funding: tuple[np.ndarray, np.ndarray] | None = None,
        fills: str = "paper",
    ) -> None:
        self._d = _core.StreamingDriver(
            engine_config(settings), params_dict(settings, overrides), *_funding(funding), fills
        )

    def snapshot(self) -> bytes:
        """The whole driver as bytes (bit-exact; refused once halted)."""
        return bytes(self._d.snapshot())

    @classmethod
    def restore(
        cls,
        data: bytes,
        settings: Settings,
        overrides: dict[str, Any] | None = None,
        funding: tuple[np.ndarray, np.ndarray] | None = None,
        fills: str = "paper",
    ) -> StreamingDriver:
        """The driver of :meth:`snapshot`, continuing bit for bit. The arguments are the
        constructor's and must give the settings the snapshot was taken with: any
        difference (feature config, kernel parameter, funding history, fills) raises
        :class:`~at_core.errors.CoreError` naming the key, as do damaged bytes."""
        d = cls.__new__(cls)
        d._d = _core.StreamingDriver.restore(
            bytes(data),
            engine_config(settings),
            params_dict(settings, overrides),
            *_funding(funding),
            fills,
        )
        return d

    def state(self) -> dict[str, Any]:
        """The trading state now: ``minutes``, ``last_ts_min``, ``mode``, ``acceptance``,
        ``position`` and ``working`` (dicts or None), ``cash``, ``equity``, ``kill``,
        ``heat``, ``day_start_equity``, ``day_pnl``, ``trades`` (closed so far),
        ``events``, ``halted`` (see ``at_core/_core.pyi``)."""
        return dict(self._d.state())

    def set_permission(self, permission: str) -> None:
        """``allowed`` | ``close_only`` | ``blocked``: may the kernel open positions from
        the next decided minute on (the live graph's activation and halts; signals are
        computed and logged in every state, a working entry is cancelled unless allowed)."""
        self._d.set_permission(permission)

    def trades_since(self, n: int) -> dict[str, Any]:
        """Closed trades from index ``n`` on, in the ``trades`` layout of :meth:`finish`."""
        return dict(self._d.trades_since(n))

    def push(
        self, trades: dict[str, np.ndarray] | None, quotes: dict[str, np.ndarray] | None
    ) -> dict[str, Any]:
        """Feed time-sorted trades and quotes; returns the minutes this closed, decided
        (arrays ``ts_min``, ``action``, ``reason``, ``signals``, ``events``, ``heat``,
        ``equity``) and ``orders``: one dict per minute that places, exits or cancels."""
        return dict(self._d.push(trades, quotes))

    def entry_fill(
        self,
        ts_ms: int,
        price: float,
        qty: float,
        fee: float,
        maker: bool = False,
        order_ts_min: int | None = None,
    ) -> bool:
        """(Part of) the entry decided at minute ``order_ts_min`` filled (default: the
        working one). An entry the kernel has cancelled may still fill (the cancel races
        the exchange): it then opens the position it would have opened. True once the
        order is complete."""
        return bool(self._d.entry_fill(ts_ms, price, qty, fee, maker, order_ts_min))

    def set_keep_rows(self, rows: int | None) -> None:
        """Compact the minute table of a long-running (live) driver: keep at least
        ``rows`` rows (and any a working order refers to) once it holds twice as many, so
        its memory and snapshots stop growing with its age. Decisions, trades and metrics
        are unchanged; ``finish`` then reports the per-minute equity and decisions of the
        rows kept. ``None`` (the default): never, as a replay needs."""
        self._d.set_keep_rows(rows)

    def entry_end(self, ts_ms: int, order_ts_min: int | None = None) -> None:
        """The entry decided at ``order_ts_min`` (default: the working one) ended
        (cancelled, rejected, expired) with what filled: a position opens with that."""
        self._d.entry_end(ts_ms, order_ts_min)

    def exit_fill(self, kind: str, ts_ms: int, price: float, qty: float, fee: float) -> bool:
        """(Part of) an exit filled (``stop|tp1|tp2|market``); True once flat."""
        return bool(self._d.exit_fill(kind, ts_ms, price, qty, fee))

    def sync_cash(self, wallet: float) -> float:
        """Live: the book's cash becomes the exchange's wallet balance, so positions are
        sized from the real account (SPEC §7.4) rather than ``initial_equity``; the
        difference is not P&L (the kill switch's day start moves with it). Returns the
        adjustment."""
        return float(self._d.sync_cash(wallet))

    def funding_paid(self, amount: float) -> None:
        """Funding settled on the open position (positive = received)."""
        self._d.funding_paid(amount)

    def close_until(self, ts_min: int) -> dict[str, Any]:
        """Close and decide every minute through ``ts_min`` (the clock passed it)."""
        return dict(self._d.close_until(ts_min))

    def finish(self) -> BacktestRun:
        """End of data: the full result, as a backtest of the same ticks."""
        r = self._d.finish()
        return BacktestRun(
            metrics=dict(r["metrics"]),
            trades=r["trades"],
            equity=r["equity"],
            decisions=r["decisions"],
        )

    @property
    def events(self) -> int:
        return int(self._d.events)

    @property
    def minutes(self) -> int:
        return int(self._d.minutes)

    @property
    def halted(self) -> str | None:
        """The first error the driver met; it refuses every event after it (a live graph
        halts and alerts instead of trading on what it may have missed)."""
        return self._d.halted


def _funding(
    funding: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    if funding is None:
        return None, None
    ts, rate = funding
    return np.ascontiguousarray(ts, dtype=np.int64), np.ascontiguousarray(rate, dtype=np.float64)


def replay(
    db_dir: str | Path,
    settings: Settings,
    overrides: dict[str, Any] | None = None,
    funding: tuple[np.ndarray, np.ndarray] | None = None,
    progress: bool | None = None,
) -> BacktestRun:
    """Feed every tick of the lake, day by day, through a :class:`StreamingDriver`.

    With ``funding_source: history`` and no explicit ``funding``, the stored funding
    history of the instrument is used (as the batch backtest does)."""
    lake = Lake(db_dir)
    if funding is None and settings.funding_source == "history":
        from at_core.ingest.download import funding_rates

        funding = funding_rates(db_dir, 0, 2**62, symbol=settings.instrument)
    days = sorted(set(lake.days("trades")) | set(lake.days("quotes")))
    if not days:
        raise InputError(f"no ticks in {lake.root}: import or generate data first")
    d = StreamingDriver(settings, overrides, funding)
    show = sys.stderr.isatty() if progress is None else progress
    for day in tqdm(days, desc="replay", unit="day", disable=not show, file=sys.stderr):
        t = lake.read_day("trades", day)
        q = lake.read_day("quotes", day)
        d.push(
            trades_arrays(t) if t.num_rows else None,
            quotes_arrays(q) if q.num_rows else None,
        )
    return d.finish()
