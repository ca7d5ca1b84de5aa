"""Bybit's public archive formats: where the daily files live and how they are written.

Paths (relative to the configured base URLs, ``bybit_archive_base_url`` and
``bybit_orderbook_base_url``):

* trades: ``/trading/<SYM>/<SYM><YYYY-MM-DD>.csv.gz``, header ``timestamp,symbol,side,size,
  price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional`` (newer files add
  ``RPI``), ``timestamp`` in epoch seconds with a fraction, ``side`` the taker side; old
  files list the newest trade first.
* order book: ``/orderbook/linear/<SYM>/<YYYY-MM-DD>_<SYM>_ob500.data.zip``, one zip member
  of JSON lines in the WebSocket ``orderbook.500`` message format (a snapshot, then deltas
  about every 100 ms; a new snapshot or ``u == 1`` resets the book).

The writers below produce files in exactly these formats. They exist so that the
downloader, the importers and the benchmark are exercised on the real layout (a loopback
server serves what they write) without an internet connection; they are not used on the
production path.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TRADE_HEADER = "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional"


def trade_path(symbol: str, day: dt.date) -> str:
    return f"/trading/{symbol}/{symbol}{day.isoformat()}.csv.gz"


def ob_path(symbol: str, day: dt.date) -> str:
    return f"/orderbook/linear/{symbol}/{day.isoformat()}_{symbol}_ob500.data.zip"


def ob_member_name(symbol: str, day: dt.date) -> str:
    return f"{day.isoformat()}_{symbol}_ob500.data"


# ---- trades --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchiveTrade:
    """One row of a trade archive: time as exact epoch-seconds text, taker side Buy/Sell."""

    ts_text: str  # e.g. "1704067200.1234"
    side: str
    size: str
    price: str
    trade_id: str
    rpi: int = 0


def trade_csv_text(
    trades: Sequence[ArchiveTrade], symbol: str, *, rpi: bool, newest_first: bool
) -> str:
    rows = list(reversed(trades)) if newest_first else list(trades)
    out = [TRADE_HEADER + (",RPI" if rpi else "")]
    prev = None
    for t in rows:
        px, sz = float(t.price), float(t.size)
        tick = (
            "ZeroPlusTick"
            if prev is None or px == prev
            else ("PlusTick" if px > prev else "MinusTick")
        )
        prev = px
        line = (
            f"{t.ts_text},{symbol},{t.side},{t.size},{t.price},{tick},{t.trade_id},"
            f"{px * sz * 1e8:.6e},{t.size},{px * sz:.8g}"
        )
        out.append(line + (f",{t.rpi}" if rpi else ""))
    return "\n".join(out) + "\n"


def write_trade_csv_gz(
    path: Path,
    trades: Sequence[ArchiveTrade],
    symbol: str,
    *,
    rpi: bool = True,
    newest_first: bool = False,
) -> Path:
    path.write_bytes(
        gzip.compress(trade_csv_text(trades, symbol, rpi=rpi, newest_first=newest_first).encode())
    )
    return path


# ---- order book ----------------------------------------------------------------------------
Level = tuple[str, str]


def ob_line(
    kind: str,
    u: int,
    cts: int,
    bids: Iterable[Level],
    asks: Iterable[Level],
    *,
    symbol: str = "BTCUSDT",
    ts: int | None = None,
    seq: int | None = None,
) -> str:
    """One archive line, key order and spelling as Bybit writes them."""
    b = ",".join(f'["{p}","{s}"]' for p, s in bids)
    a = ",".join(f'["{p}","{s}"]' for p, s in asks)
    return (
        f'{{"topic":"orderbook.500.{symbol}","type":"{kind}","ts":{cts + 2 if ts is None else ts},'
        f'"data":{{"s":"{symbol}","b":[{b}],"a":[{a}],"u":{u},"seq":{u * 7 + 1000 if seq is None else seq}}},'
        f'"cts":{cts}}}'
    )


def write_ob_zip(path: Path, lines: Iterable[str], member: str) -> Path:
    """Zip of one member holding the lines (deflate, as Bybit's archives)."""
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf,
        zf.open(member, "w") as fh,
        io.TextIOWrapper(fh, encoding="utf-8", newline="\n") as tw,
    ):
        for line in lines:
            tw.write(line)
            tw.write("\n")
    return path


def synthetic_ob_lines(
    messages: int,
    *,
    start_ms: int,
    seed: int = 11,
    depth: int = 500,
    snapshot_every: int = 5000,
    start_tick: int = 420_000,
    symbol: str = "BTCUSDT",
) -> Iterator[str]:
    """A realistic ob500 stream for benchmarks: ``depth``-level snapshots every
    ``snapshot_every`` messages, deltas every 100 ms changing a few levels near the top,
    the best price walking one tick at a time (the book stays one tick wide and uncrossed;
    levels pushed beyond ``depth`` are deleted as Bybit does)."""
    rng = np.random.default_rng(seed)
    best_bid = start_tick  # in 0.1 ticks
    bids: dict[int, int] = {best_bid - k: int(rng.integers(1, 5000)) for k in range(depth)}
    asks: dict[int, int] = {best_bid + 1 + k: int(rng.integers(1, 5000)) for k in range(depth)}

    def px(t: int) -> str:
        return f"{t // 10}.{t % 10}0"

    def sz(lots: int) -> str:
        return "0" if lots == 0 else f"{lots // 1000}.{lots % 1000:03d}"

    u = 0
    for i in range(messages):
        cts = start_ms + i * 100 + int(rng.integers(0, 20))
        u += 1
        if i % snapshot_every == 0:
            b = [(px(t), sz(bids[t])) for t in sorted(bids, reverse=True)]
            a = [(px(t), sz(asks[t])) for t in sorted(asks)]
            yield ob_line("snapshot", u, cts, b, a, symbol=symbol)
            continue
        db: dict[int, int] = {}
        da: dict[int, int] = {}
        r = rng.random()
        if r < 0.08:  # best bid lifted: ask level consumed, new bid level on top
            best_ask = best_bid + 1
            del asks[best_ask]
            da[best_ask] = 0
            best_bid += 1
            bids[best_bid] = int(rng.integers(1, 3000))
            db[best_bid] = bids[best_bid]
            far = best_bid - depth
            if far in bids:
                del bids[far]
                db[far] = 0
            new_far = best_bid + depth
            asks[new_far] = int(rng.integers(1, 5000))
            da[new_far] = asks[new_far]
        elif r < 0.16:  # best ask hit
            del bids[best_bid]
            db[best_bid] = 0
            asks[best_bid] = int(rng.integers(1, 3000))
            da[best_bid] = asks[best_bid]
            best_bid -= 1
            far = best_bid + 1 + depth
            if far in asks:
                del asks[far]
                da[far] = 0
            new_far = best_bid - depth + 1
            bids[new_far] = int(rng.integers(1, 5000))
            db[new_far] = bids[new_far]
        for _ in range(int(rng.integers(1, 6))):
            k = int(min(rng.geometric(0.15) - 1, depth - 1))
            lots = int(rng.integers(1, 5000))
            if rng.random() < 0.5:
                t = best_bid - k
                bids[t] = lots
                db[t] = lots
            else:
                t = best_bid + 1 + k
                asks[t] = lots
                da[t] = lots
        yield ob_line(
            "delta",
            u,
            cts,
            [(px(t), sz(v)) for t, v in db.items()],
            [(px(t), sz(v)) for t, v in da.items()],
            symbol=symbol,
        )
