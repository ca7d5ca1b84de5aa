"""What may enter a store: one instrument per store, one source per stream and time.

Checked by the importer after a file is parsed and validated and before anything of it
is written (see ``at_core.storage.sources`` for why):

* **instrument**: the file's symbol (from its rows, or ``--symbol`` for a generic CSV)
  must be the configured ``instrument`` once normalised (``BTC-USDT`` = ``BTCUSDT``), so
  Bitmex XBTUSD (sized in USD contracts) or Huobi BTC-USD are refused for a BTCUSDT store;
  and its venue must be the venue of the store's existing sources (a synthetic market
  beside real Binance days, or Binance beside Bybit, are two markets, not one history);
* **overlap**: per stream (trades, quotes), the file's time range must not meet another
  source's range of that stream; ``--force`` replaces the other source's rows of that
  stream instead (after the new rows are committed: an interruption can leave both, never
  neither).

The tick grid (prices on multiples of the configured ``tick_size``) is a per-row rule in
``at_core.ingest.validate``, reported as file:line:field like any bad value.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from at_core.errors import InputError
from at_core.storage.lake import Lake
from at_core.storage.sources import Source, contract_unit, normalize_symbol, short_id

#: The venue each format's files come from (Tardis files and generic CSVs say it
#: themselves, or through ``--venue``).
FORMAT_VENUE = {
    "bybit": "bybit",
    "bybit-ob": "bybit",
    "binance-ws": "binance",
    "binance-trades": "binance",
    "binance-bookticker": "binance",
    "synthetic": "synthetic",
}


@dataclass(frozen=True)
class Instrument:
    venue: str | None
    symbol: str | None

    def text(self) -> str:
        unit = contract_unit(self.symbol) if self.symbol else "?"
        return (
            f"{self.venue or 'unknown venue'} {self.symbol or 'unknown symbol'} (sizes in {unit})"
        )


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def instrument_of(
    fmt: str, file_venue: str | None, file_symbol: str | None, venue: str | None, symbol: str | None
) -> Instrument:
    """The file's instrument: what its rows say, else the format's venue, else the flags."""
    return Instrument(
        venue=file_venue or FORMAT_VENUE.get(fmt) or venue,
        symbol=file_symbol or symbol,
    )


def check_instrument(lake: Lake, name: str, inst: Instrument, expected_symbol: str) -> None:
    """Refuse a file of another market than the store's (module notes)."""
    if inst.symbol and normalize_symbol(inst.symbol) != normalize_symbol(expected_symbol):
        raise InputError(
            f"{name}: holds {inst.text()}, but this store is for {expected_symbol} "
            f"(config `instrument`): its prices and sizes would be mixed with another market's. "
            f"Import it into its own --db-dir with --set instrument={inst.symbol}"
        )
    first = lake.sources.instrument()
    if first is not None and inst.venue and first.venue != inst.venue:
        raise InputError(
            f"{name}: holds {inst.text()}, but this store holds {first.instrument()} data "
            f"({first.describe()}): one store keeps one venue's market. Use another --db-dir"
        )


def stream_ranges(tables: dict[str, pa.Table]) -> dict[str, tuple[int, int] | None]:
    """First and last ``ts_ms`` of each stream about to be stored."""
    out: dict[str, tuple[int, int] | None] = {}
    for kind, t in tables.items():
        if t.num_rows:
            ts = t["ts_ms"].to_numpy()
            out[kind] = (int(np.min(ts)), int(np.max(ts)))
        else:
            out[kind] = None
    return out


def overlaps(
    lake: Lake, ranges: dict[str, tuple[int, int] | None], exclude: str
) -> list[tuple[str, Source]]:
    """(stream, source) pairs of other sources whose range of a stream meets the file's."""
    out: list[tuple[str, Source]] = []
    for stream, r in ranges.items():
        if r is not None:
            out.extend((stream, s) for s in lake.sources.overlapping(stream, r[0], r[1], exclude))
    return out


def refuse_overlaps(
    name: str, conflicts: list[tuple[str, Source]], ranges: dict[str, tuple[int, int] | None]
) -> None:
    lines = []
    for stream, s in conflicts:
        r, o = ranges[stream], s.ranges[stream]
        assert r is not None and o is not None
        lines.append(
            f"  its {stream} ({_iso(r[0])} .. {_iso(r[1])}) overlap {s.describe()}, "
            f"{stream} {_iso(o[0])} .. {_iso(o[1])}"
        )
    ids = " ".join(sorted({short_id(s.source_id) for _, s in conflicts}))
    raise InputError(
        f"{Path(name)}: the store already holds these streams for this time; storing both "
        f"would count the same market twice:\n" + "\n".join(lines) + "\n"
        f"  replace them with --force (their rows of these streams are removed), or remove "
        f"them first: auction-trader sources remove {ids}"
    )


def replace(lake: Lake, conflicts: list[tuple[str, Source]]) -> list[str]:
    """Remove the replaced sources' rows of the conflicting streams; notes for the report."""
    notes = []
    by_source: dict[str, list[str]] = {}
    for stream, s in conflicts:
        by_source.setdefault(s.source_id, []).append(stream)
    for sid, streams in by_source.items():
        src = lake.sources.get(sid)
        if src is None:
            continue
        removed = lake.sources.remove(sid, streams)
        what = ", ".join(f"{n:,} {k}" for k, n in removed.items())
        notes.append(f"replaced {src.describe()}: {what} removed")
    return notes
