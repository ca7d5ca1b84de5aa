"""Writes the seeded synthetic BTCUSDT market (``at_core._core.SynthGenerator``) into the lake.

The generator is the project's embedded default data: the demo, the tests and the
benchmarks run on it, because only minutes of real tick data with quotes exist here.
Its statistics are checked against the real windows by
``tests/integration/test_synthetic_vs_real.py``.

Guarantees:

* **Same inputs, same bytes.** ``(seed, start, activity)`` fixes the market; the Rust
  generator has its own PRNG and carries its state across days, so day *k* is the same
  whether it was written in a run of 1 or of 30 days. The source id names the model
  version, the seed, the start day and (when not 1) the activity; re-running rewrites the
  same part files (no duplicates).
* **Activity.** ``activity=k`` scales the order flow and the passive quote rate: about
  ``k`` times the trades and quotes (~6.5 M events per weekday at 1, the calibration to
  the real windows; ~150 M per week at 3.5) with the same microstructure per event and
  the same price process. It must be in (0, 20].
* **Bounded memory.** One UTC day is generated, written and dropped at a time.
* **No silent mixing.** A day that already holds data of another source (a real import, or
  a synthetic market of another seed/start) is refused: two markets on one day would
  interleave two price paths and make every feature garbage. With ``force=True`` the other
  sources' parts *on the generated days only* are removed, each one after the synthetic
  day has been fully written (a crash leaves both, never neither). Their days outside the
  range are kept, and their manifest rows are rewritten with the row counts that remain;
  to get a removed day back, delete this synthetic source and re-import that file.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from at_core import _core
from at_core.errors import InputError, StorageError
from at_core.progress import Progress
from at_core.storage.lake import KINDS, Kind, Lake, day_start_ms
from at_core.storage.schema import QUOTES_ARROW, TRADES_ARROW
from at_core.storage.tmpfiles import sweep

DEFAULT_START = dt.date(2024, 1, 1)
DEFAULT_SEED = 7
MAX_DAYS = 3660
MAX_ACTIVITY = 20.0
FORMAT = "synthetic"
#: The manifest says which market a generated source is: never mistaken for a real venue.
VENUE = "synthetic"
SYMBOL = "BTCUSDT"


def _activity_tag(activity: float) -> str:
    # repr is the shortest exact decimal of the float: distinct activities, distinct tags
    return repr(float(activity)).removesuffix(".0")


def source_id(
    seed: int, start: dt.date, activity: float = 1.0, accept_prob: float | None = None
) -> str:
    """Lake source id of a generated market: model version, seed, start day, and the
    activity when it is not 1 (``-a3.3``) and the breakout acceptance when it is set
    (``-p0.95``), so a busier market or one with a planted edge is another source."""
    sid = f"synth-v{_core.synth_generator_version()}-s{seed}-{start:%Y%m%d}"
    if activity != 1.0:
        sid += f"-a{_activity_tag(activity)}"
    if accept_prob is not None:
        sid += f"-p{_activity_tag(accept_prob)}"
    return sid


def check_accept_prob(p: float | None) -> float | None:
    """``None`` for the calibrated market (also when ``p`` is its value: one market, one
    source id), else a probability in [0, 1]."""
    if p is None:
        return None
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
        raise InputError(f"--accept-prob must be a probability in [0, 1], got {p!r}")
    calibrated = _core.SynthGenerator(0, 0).accept_prob
    return None if float(p) == calibrated else float(p)


def check_activity(activity: float) -> float:
    """``activity`` as a float, or ``InputError`` unless it is finite and in (0, 20]."""
    if isinstance(activity, bool) or not isinstance(activity, (int, float)):
        raise InputError(f"--activity must be a number in (0, {MAX_ACTIVITY:g}], got {activity!r}")
    a = float(activity)
    if not (math.isfinite(a) and 0.0 < a <= MAX_ACTIVITY):
        raise InputError(f"--activity must be a finite number in (0, {MAX_ACTIVITY:g}], got {a!r}")
    return a


def _check_args(days: int, seed: int, activity: float = 1.0) -> float:
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InputError(f"--days must be an integer in 1..{MAX_DAYS}, got {days!r}")
    if not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise InputError(f"--seed must be an integer in 0..2**64-1, got {seed!r}")
    return check_activity(activity)


def batch_tables(batch: dict[str, np.ndarray]) -> tuple[pa.Table, pa.Table]:
    """Lake tables (``TRADES_ARROW``, ``QUOTES_ARROW``) of one generator batch.

    Trades carry the exchange aggressor side and a global ``seq`` shared with the quotes
    (the quote a trade causes has the trade's ``ts_ms`` and a larger ``seq``). Inferred side
    and quote match columns stay null: the normaliser fills them. ``trade_id`` is null.
    """
    n = len(batch["trade_ts_ms"])
    trades = pa.Table.from_arrays(
        [
            pa.array(batch["trade_ts_ms"], pa.int64()),
            pa.array(batch["trade_price"], pa.float64()),
            pa.array(batch["trade_size"], pa.float64()),
            pa.nulls(n, pa.int8()),
            pa.nulls(n, pa.float64()),
            pa.nulls(n, pa.float64()),
            pa.nulls(n, pa.int32()),
            pa.array(batch["trade_side"], pa.int8()),
            pa.nulls(n, pa.string()),
            pa.array(batch["trade_seq"], pa.int64()),
        ],
        schema=TRADES_ARROW,
    )
    quotes = pa.Table.from_arrays(
        [
            pa.array(batch["quote_ts_ms"], pa.int64()),
            pa.array(batch["bid_px"], pa.float64()),
            pa.array(batch["bid_sz"], pa.float64()),
            pa.array(batch["ask_px"], pa.float64()),
            pa.array(batch["ask_sz"], pa.float64()),
            pa.array(batch["quote_seq"], pa.int64()),
        ],
        schema=QUOTES_ARROW,
    )
    return trades, quotes


def _part_name(sid: str) -> str:
    return f"part-{sid}.parquet"


def _sid_of(part: Path) -> str:
    return part.name[len("part-") : -len(".parquet")]


def _conflicts(lake: Lake, days: list[dt.date], sid: str) -> dict[dt.date, list[Path]]:
    out: dict[dt.date, list[Path]] = {}
    for day in days:
        others = [p for kind in KINDS for p in lake.parts(kind, day) if p.name != _part_name(sid)]
        if others:
            out[day] = others
    return out


def _remove_parts(lake: Lake, parts: list[Path]) -> list[dict[str, Any]]:
    """Delete other sources' parts of one day and keep their manifest counts truthful."""
    removed: list[dict[str, Any]] = []
    by_source: dict[str, dict[str, int]] = {}
    for p in parts:
        kind: Kind = "trades" if p.parent.parent.name == "trades" else "quotes"
        rows = pq.ParquetFile(p).metadata.num_rows
        sid = _sid_of(p)
        by_source.setdefault(sid, {"trades": 0, "quotes": 0})[kind] += rows
        p.unlink()
        removed.append(
            {"source_id": sid, "kind": kind, "day": p.parent.name.split("=", 1)[1], "rows": rows}
        )
    for sid, n in by_source.items():
        info = lake.imported(sid)
        if info is not None:
            lake.sources.record(
                sid,
                str(info["path"]),
                str(info["format"]),
                max(0, int(str(info["trades"])) - n["trades"]),
                max(0, int(str(info["quotes"])) - n["quotes"]),
                int(str(info["rejected"])),
                venue=info.get("venue"),  # type: ignore[arg-type]
                symbol=info.get("symbol"),  # type: ignore[arg-type]
            )
    return removed


def _rows_of_source(lake: Lake, kind: Kind, sid: str) -> int:
    return sum(
        pq.ParquetFile(p).metadata.num_rows
        for p in lake.kind_dir(kind).glob(f"date=*/{_part_name(sid)}")
    )


def generate_market(
    db_dir: str | Path,
    days: int,
    seed: int,
    start: dt.date | None = None,
    *,
    force: bool = False,
    progress: bool | None = None,
    on_day: Callable[[dt.date, dict[str, Any]], None] | None = None,
    activity: float = 1.0,
    accept_prob: float | None = None,
) -> dict[str, Any]:
    """Generate ``days`` UTC days from ``start`` (default 2024-01-01) into the lake.

    ``activity`` scales the event flow (see the module docstring); a market of another
    activity is another source. ``accept_prob``: the share of breakouts the market
    accepts (default the calibrated 0.55); a high one plants a continuation edge, which
    tests use to check that research statistics find an edge that is there. Returns a summary: source id, days, trades, quotes, price
    range and one row per day. Raises ``StorageError`` when another source holds data on
    those days (unless ``force``), ``InputError`` for an invalid argument.
    """
    activity = _check_args(days, seed, activity)
    accept_prob = check_accept_prob(accept_prob)
    start = start or DEFAULT_START
    sid = source_id(seed, start, activity, accept_prob)
    lake = Lake(db_dir)
    sweep(lake.db_dir)  # temporaries of a writer killed earlier
    held = lake.sources.instrument()
    if held is not None and held.venue != VENUE:
        raise StorageError(
            f"the lake in {lake.root} holds {held.instrument()} data ({held.describe()}); a "
            "synthetic market beside it would be taken for the same market. Generate into "
            "another --db-dir"
        )
    day_list = [start + dt.timedelta(days=i) for i in range(days)]
    conflicts = _conflicts(lake, day_list, sid)
    if conflicts and not force:
        first = min(conflicts)
        names = sorted({_sid_of(p) for p in conflicts[first]})
        raise StorageError(
            f"the lake in {lake.root} already holds other data on {len(conflicts)} of the "
            f"{days} requested days (first {first}: sources {', '.join(names)}); mixing two "
            "markets on one day corrupts every feature. Choose another --start, or pass "
            "--force to remove those sources' parts on these days"
        )

    t_begin = time.perf_counter()
    gen = _core.SynthGenerator(
        seed, day_start_ms(start), activity=activity, accept_prob=accept_prob
    )
    per_day: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    bar = Progress(days, f"generate {sid}", "day", None if progress is None else bool(progress))
    try:
        for day in day_list:
            batch = gen.next_day()
            trades, quotes = batch_tables(batch)
            lake.write("trades", trades, sid)
            lake.write("quotes", quotes, sid)
            if day in conflicts:
                removed.extend(_remove_parts(lake, conflicts[day]))
            px = batch["trade_price"]
            row: dict[str, Any] = {
                "date": day.isoformat(),
                "trades": int(trades.num_rows),
                "quotes": int(quotes.num_rows),
                "open": float(px[0]) if len(px) else None,
                "high": float(px.max()) if len(px) else None,
                "low": float(px.min()) if len(px) else None,
                "close": float(px[-1]) if len(px) else None,
                "buy_volume": float(batch["trade_size"][batch["trade_side"] > 0].sum()),
                "sell_volume": float(batch["trade_size"][batch["trade_side"] < 0].sum()),
            }
            per_day.append(row)
            if on_day is not None:
                on_day(day, row)
            bar.update(1, trades=row["trades"], quotes=row["quotes"])
            del batch, trades, quotes
    finally:
        bar.close()

    total_t = _rows_of_source(lake, "trades", sid)
    total_q = _rows_of_source(lake, "quotes", sid)
    origin = f"synthetic:seed={seed},start={start.isoformat()}"
    if activity != 1.0:
        origin += f",activity={_activity_tag(activity)}"
    if accept_prob is not None:
        origin += f",accept_prob={_activity_tag(accept_prob)}"
    lake.sources.record(sid, origin, FORMAT, total_t, total_q, 0, venue=VENUE, symbol=SYMBOL)
    lows = [r["low"] for r in per_day if r["low"] is not None]
    highs = [r["high"] for r in per_day if r["high"] is not None]
    return {
        "source_id": sid,
        "seed": seed,
        "activity": activity,
        "accept_prob": accept_prob,
        "start": start.isoformat(),
        "end": (start + dt.timedelta(days=days)).isoformat(),
        "days": days,
        "trades": sum(r["trades"] for r in per_day),
        "quotes": sum(r["quotes"] for r in per_day),
        "price_min": min(lows) if lows else None,
        "price_max": max(highs) if highs else None,
        "source_rows_in_lake": {"trades": total_t, "quotes": total_q},
        "removed_parts": removed,
        "per_day": per_day,
        "seconds": round(time.perf_counter() - t_begin, 3),
    }


def generate_range(
    seed: int, start_ms: int, end_ms: int, *, activity: float = 1.0
) -> dict[str, np.ndarray]:
    """The market of ``seed`` started at ``start_ms``, from ``start_ms`` to ``end_ms``, in memory.

    For tests and benchmarks that need ticks without a lake.
    """
    if end_ms < start_ms:
        raise InputError(f"end_ms {end_ms} is before start_ms {start_ms}")
    gen = _core.SynthGenerator(seed, start_ms, activity=check_activity(activity))
    return dict(gen.generate(end_ms))
