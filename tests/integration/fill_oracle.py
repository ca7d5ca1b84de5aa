"""A slow, independent oracle of the Rust fill model (tests only; never product code).

Drives the live-path kernel class minute by minute from Python with a market-only fill
model written here from the rules in ``rust/at-backtest/src/engine.rs``'s module doc. Two
uses: the tests check that it ends with the same trades and equity as the Rust backtester
for market entries (``use_limit_for_entry = false``) and worst-case stops, and the
benchmark uses it as the minute-by-minute baseline. It re-implements only fills, never
decisions (those come from the one Rust kernel). Rules: an order fills at its reference
quote (the first after the deciding close) in the minute that holds that quote, and is
pending until then; market buys at the ask plus slippage, sells at the bid minus slippage;
in the minute of the entry fill only extremes first printed after the fill count (at the
fill's millisecond: against the position only); stops at the worse of the level and the
minute's open (the open only when the whole minute is the position's); targets at the
level minus slippage; funding at 00/08/16 UTC on positions opened before the instant.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from at_core import _core
from at_core.strategy import MINUTE_FIELDS

FUNDING_PERIOD = 8 * 3_600_000


def replay(table: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Run the kernel over ``table`` one minute at a time; returns trades and final equity."""
    if (
        params.get("use_limit_for_entry", True)
        or params.get("stop_fill_mode", "worst_case") != "worst_case"
    ):
        raise ValueError("the Python replay models market entries and worst-case stops only")
    k = _core.StrategyKernel(params)
    cols = {
        f: table[f].tolist()
        for f in (*MINUTE_FIELDS, "next_quote_ts", "next_bid", "next_ask", "low_ts", "high_ts")
    }
    n = len(cols["ts_min"])
    tick = float(params["tick_size"])
    slip_in = float(params["slippage_ticks_entry"]) * tick
    slip_out = float(params["slippage_ticks_exit"]) * tick
    taker = float(params["taker_fee_bps"]) / 1e4
    rate = float(params["funding_rate_8h_bps"]) / 1e4
    pend_exit: int | None = None
    pend_entry: tuple[int, dict[str, Any]] | None = None
    last_mark = float("nan")
    next_funding = (cols["ts_min"][0] // FUNDING_PERIOD + 1) * FUNDING_PERIOD if n else 0
    fills: list[tuple[str, int, float, float]] = []
    trades = 0

    def quote(j: int) -> tuple[int, float, float]:
        b, a = cols["next_bid"][j], cols["next_ask"][j]
        if b == b and a == a:
            return cols["next_quote_ts"][j], b, a
        nxt = cols["open"][j + 1] if j + 1 < n else float("nan")
        px = nxt if nxt == nxt else last_mark
        return cols["ts_min"][j] + 60_000, px, px

    def exit_fill(kind: str, ts: int, px: float, qty: float) -> None:
        nonlocal trades
        if k.on_exit_fill(kind, ts, px, qty, px * qty * taker):
            trades += 1
        fills.append((kind, ts, px, qty))

    for m in range(n):
        ts_min = cols["ts_min"][m]
        while next_funding <= ts_min:
            pos = k.position()
            if pos is not None and pos["open_ts_ms"] < next_funding and last_mark == last_mark:
                side = 1.0 if pos["side"] == "LONG" else -1.0
                k.on_funding(-side * pos["qty"] * last_mark * rate)
            next_funding += FUNDING_PERIOD
        close_m = ts_min + 59_999
        exit_waits = False
        if pend_exit is not None:
            ts, bid, ask = quote(pend_exit)
            if ts <= close_m:
                pos = k.position()
                assert pos is not None
                px = bid - slip_out if pos["side"] == "LONG" else ask + slip_out
                exit_fill("market", ts, px, pos["qty"])
                pend_exit = None
            else:
                exit_waits = True
        if pend_entry is not None and not exit_waits:
            j, o = pend_entry
            ts, bid, ask = quote(j)
            if ts <= close_m:
                px = ask + slip_in if o["side"] == "LONG" else bid - slip_in
                k.on_entry_fill(ts, px, px * o["qty"] * taker)
                fills.append(("entry", ts, px, o["qty"]))
                pend_entry = None
        pos = k.position()
        hi, lo, op = cols["high"][m], cols["low"][m], cols["open"][m]
        if pos is not None and pos["exit_pending"] is None and hi == hi and lo == lo:
            d = 1.0 if pos["side"] == "LONG" else -1.0
            adverse, favour = (lo, hi) if d > 0 else (hi, lo)
            adv_ts, fav_ts = (
                (cols["low_ts"][m], cols["high_ts"][m])
                if d > 0
                else (cols["high_ts"][m], cols["low_ts"][m])
            )
            stop = pos["stop"]
            opened = pos["open_ts_ms"]
            whole = opened < ts_min
            adv_seen = whole or adv_ts >= opened
            fav_seen = whole or fav_ts > opened
            if adv_seen and d * (adverse - stop) <= 0:
                lvl = op if whole and d * (op - stop) < 0 else stop
                exit_fill("stop", adv_ts, lvl - d * slip_out, pos["qty"])
            elif fav_seen:
                ts = fav_ts
                remaining = pos["qty"]
                go_tp2 = True
                if pos["tp1"] is not None and not pos["tp1_done"] and pos["tp1_qty"] > 0:
                    if d * (favour - pos["tp1"]) >= 0:
                        exit_fill("tp1", ts, pos["tp1"] - d * slip_out, pos["tp1_qty"])
                        remaining = round(remaining - pos["tp1_qty"], 9)
                    else:
                        go_tp2 = False
                if (
                    go_tp2
                    and pos["tp2"] is not None
                    and remaining > 0
                    and d * (favour - pos["tp2"]) >= 0
                ):
                    exit_fill("tp2", ts, pos["tp2"] - d * slip_out, remaining)
        minute = {f: cols[f][m] for f in MINUTE_FIELDS}
        dec = k.on_minute(minute)
        mid, cl = cols["mid_close"][m], cols["close"][m]
        if mid == mid:
            last_mark = mid
        elif cl == cl:
            last_mark = cl
        if dec["cancel_entry"]:
            pend_entry = None
        if dec["exit"] is not None:
            pend_exit = m
        if dec["entry"] is not None:
            pend_entry = (m, dec["entry"])
    if n:
        end_ts = cols["ts_min"][n - 1] + 60_000
        if pend_exit is not None:
            ts, bid, ask = quote(pend_exit)
            pos = k.position()
            if pos is not None:
                px = bid - slip_out if pos["side"] == "LONG" else ask + slip_out
                exit_fill("market", ts, px, pos["qty"])
        pos = k.position()
        if pos is not None:
            exit_fill("market", end_ts, last_mark, pos["qty"])
    return {
        "n_trades": trades,
        "final_equity": k.equity(last_mark),
        "fills": fills,
        "minutes": n,
        "equity_array": np.asarray([], dtype=np.float64),
    }
