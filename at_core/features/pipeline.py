"""Ticks in the lake → stage 1 → stage 2 → ``bars_1m`` / ``features_1m`` (+ extras).

Reading: the lake is read day by day (``Lake.read_day``, rows sorted by (ts_ms, seq)) into
ONE engine whose state carries across days, so results do not depend on the day split
(a trade at 23:59:59.999 is signed against the quote of the previous day, the qimb EMA and
the tick rule continue, the rolling profile spans midnight).

Range: ``--from/--to`` choose which minutes are *written*; the computation always starts at
the lake's first day, so the written rows are exactly those of a full run (sigma, the
240-minute profile, the EMA and the tick rule all have their full history). Events after
the last minute of ``--to`` are not read (no look-ahead, no partial minute).

Stores:
* ``features.duckdb``: ``bars_1m`` and ``features_1m`` (spec columns), plus
  ``features_1m_ext`` (validity flag, side agreement, fill references, extremes, ...); the
  rows of the written range are replaced in one transaction (all three tables or none).
* ``<db_dir>/stage1/``: the stage-1 minute summaries (``minutes.parquet``), the minute
  histograms as a flat triple (``hist.parquet``: ``hist_minute``, ``hist_bin`` = lower
  edge of the base bin in ticks, ``hist_qty`` = volume in 1e-8 units) and ``meta.json``
  (stage-1 config and range). Stage 2 / the grid / the backtester reload them without
  touching ticks. Each file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import at_core._core as _core
from at_core import logging as at_logging
from at_core.config import Settings
from at_core.errors import CoreInputError, InputError, StorageError
from at_core.features.engine import (
    HIST_COLUMNS,
    STAGE2_COLUMNS,
    Arrays,
    concat,
    engine_config,
    quotes_arrays,
    trades_arrays,
)
from at_core.features.trade_sides import TradeSidesWriter
from at_core.progress import track
from at_core.storage.lake import Lake, day_start_ms
from at_core.storage.stores import init_stores
from at_core.storage.tmpfiles import sweep

log = at_logging.get(__name__)
MINUTE_MS = 60_000

BARS_COLUMNS = (
    "ts_min", "open", "high", "low", "close", "volume", "vwap", "trade_count", "bid_px_close",
    "ask_px_close", "bid_sz_close", "ask_sz_close", "spread_close", "spread_avg_60m",
)  # fmt: skip
FEATURES_COLUMNS = (
    "ts_min", "mid_close", "sigma_240", "bin_width", "poc", "vah", "val", "va_coverage", "va_bin_count",
    "of_1m", "of_norm_1m", "qimb_close", "qimb_ema_60s", "ambiguous_trade_frac_1m", "total_volume_4h",
)  # fmt: skip
INT32_COLUMNS = {"trade_count", "va_bin_count"}
TS_COLUMNS = {"first_trade_ts", "last_trade_ts", "l1_ts", "fq_ts", "fill_ts"}
EXT_TYPES: dict[str, str] = {
    "ts_min": "BIGINT PRIMARY KEY",
    "va_valid": "BOOLEAN",
    "bin_width_candidate_ticks": "BIGINT",
    "rebucketed": "BOOLEAN",
    "bvc_net": "DOUBLE",
    "group_count": "BIGINT",
    "buy_volume": "DOUBLE",
    "sell_volume": "DOUBLE",
    "ambiguous_volume": "DOUBLE",
    "stale_trades": "BIGINT",
    "unmatched_trades": "BIGINT",
    "side_cmp_quote": "BIGINT",
    "side_agree_quote": "BIGINT",
    "side_cmp_final": "BIGINT",
    "side_agree_final": "BIGINT",
    "quote_count": "BIGINT",
    "first_trade_ts": "BIGINT",
    "last_trade_ts": "BIGINT",
    "l1_ts": "BIGINT",
    "bid_hi": "DOUBLE",
    "bid_lo": "DOUBLE",
    "ask_hi": "DOUBLE",
    "ask_lo": "DOUBLE",
    "fq_ts": "BIGINT",
    "fq_bid_px": "DOUBLE",
    "fq_ask_px": "DOUBLE",
    "fq_bid_sz": "DOUBLE",
    "fq_ask_sz": "DOUBLE",
    "fill_ts": "BIGINT",
    "fill_bid_px": "DOUBLE",
    "fill_ask_px": "DOUBLE",
    "fill_bid_sz": "DOUBLE",
    "fill_ask_sz": "DOUBLE",
}
FEATURES_EXT_DDL = (
    "CREATE TABLE IF NOT EXISTS features_1m_ext (\n    "
    + ",\n    ".join(f"{k} {t}" for k, t in EXT_TYPES.items())
    + "\n)"
)


@dataclass
class FeaturesReport:
    """What one ``features`` run computed and wrote (the ``--summary-json`` payload)."""

    minutes: int
    first_minute: str | None
    last_minute: str | None
    computed_minutes: int
    valid_va_minutes: int
    ambiguous: dict[str, float | int | None]
    side_agreement: dict[str, float | int | None]
    stale_trades: int
    unmatched_trades: int
    last_value_area: dict[str, Any] | None
    stage1_dir: str
    config: dict[str, Any] = field(default_factory=dict)
    #: Contiguous stretches of written minutes (data gaps between them, see
    #: ``max_gap_minutes``): first / last minute and minute count of each.
    segments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def gaps(self) -> int:
        return max(len(self.segments) - 1, 0)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "gaps": self.gaps}


def iso_min(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def compute(
    db_dir: str | Path,
    settings: Settings,
    to_ms: int | None = None,
    progress: bool | None = None,
    sides: TradeSidesWriter | None = None,
) -> Arrays:
    """Run the engine over the lake from its first day through the minute of ``to_ms``.

    With ``sides``, the engine also records each trade's inferred side and matched quote,
    which ``sides`` stores beside the lake (``raw_trades.inferred_side`` etc.).
    """
    lake = Lake(db_dir)
    days = sorted(set(lake.days("trades")) | set(lake.days("quotes")))
    cut = None if to_ms is None else (to_ms // MINUTE_MS) * MINUTE_MS + MINUTE_MS
    if cut is not None:
        days = [d for d in days if day_start_ms(d) < cut]
    if not days:
        raise InputError(f"no ticks in {lake.root} (in range): import or generate data first")
    engine = _core.FeatureEngine(engine_config(settings), record_trades=sides is not None)
    parts: list[Arrays] = []
    show = None if progress is None else bool(progress)
    try:
        for day in track(days, len(days), "features", "day", show):
            t = lake.read_day("trades", day)
            q = lake.read_day("quotes", day)
            if cut is not None:
                t = t.filter(pc.less(t["ts_ms"], pa.scalar(cut, pa.int64())))
                q = q.filter(pc.less(q["ts_ms"], pa.scalar(cut, pa.int64())))
            try:
                pushed = engine.push(
                    trades_arrays(t) if t.num_rows else None,
                    quotes_arrays(q) if q.num_rows else None,
                )
            except CoreInputError as exc:
                # the engine names the row within the day's arrays; say which day and parts
                files = [p.name for k in ("trades", "quotes") for p in lake.parts(k, day)]
                raise InputError(
                    f"{lake.root} day {day} ({', '.join(files)}): {exc} (config tick_size "
                    f"{settings.tick_size}; see `auction-trader sources list` for where the day "
                    "came from)"
                ) from exc
            parts.append(dict(pushed))
            if sides is not None:
                sides.add_day(day, t["ts_ms"].to_numpy(), t["seq"].to_numpy())
                sides.add_sides(dict(engine.take_trade_sides()))
    except BaseException:
        if sides is not None:
            sides.discard()
        raise
    parts.append(dict(engine.finish()))
    if sides is not None:
        sides.add_sides(dict(engine.take_trade_sides()))
        sides.finish()
    return add_fill_refs(concat(parts))


def add_fill_refs(out: Arrays) -> Arrays:
    """Add ``fill_*``: for minute t, the first quote AFTER its close (SPEC §12.4 fill
    reference of a decision at close(t)), i.e. the first-quote columns ``fq_*`` of the next
    minute that has a quote (the backtester's rule, from Rust). Deliberately look-ahead, for
    the backtester's users only; -1 / NaN when no later quote exists in the minute's segment
    (a reference never crosses a data gap)."""
    if not len(out.get("fq_ts", ())):
        return out
    src = np.asarray(
        _core.fill_reference_rows(
            np.ascontiguousarray(out["ts_min"], dtype=np.int64),
            np.ascontiguousarray(out["fq_ts"], dtype=np.int64),
            np.ascontiguousarray(out["fq_bid_px"], dtype=np.float64),
            np.ascontiguousarray(out["fq_ask_px"], dtype=np.float64),
        )
    )
    ok = src >= 0
    at = np.where(ok, src, 0)
    out["fill_ts"] = np.where(ok, out["fq_ts"][at], -1).astype(np.int64)
    for k in ("bid_px", "ask_px", "bid_sz", "ask_sz"):
        out[f"fill_{k}"] = np.where(ok, out[f"fq_{k}"][at], np.nan)
    return out


def _col(name: str, v: np.ndarray) -> pa.Array:
    if v.dtype.kind == "f":
        return pa.array(v, mask=np.isnan(v))
    if name in TS_COLUMNS:
        return pa.array(v, mask=v < 0)
    if name in INT32_COLUMNS:
        return pa.array(v.astype(np.int32))
    return pa.array(v)


def _table(cols: dict[str, np.ndarray], names: tuple[str, ...] | list[str]) -> pa.Table:
    return pa.table({n: _col(n, cols[n]) for n in names})


def _atomic_parquet(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def write_stage1(
    db_dir: str | Path, out: Arrays, settings: Settings, sources: list[list[object]] | None = None
) -> Path:
    """Store the stage-1 minute summaries and histograms under ``<db_dir>/stage1``.

    ``sources``: the lake's source fingerprint the ticks were read under (taken before the
    computation; ``Sources.fingerprint``): a later import or ``sources remove`` makes the
    stored summaries stale, and every reader recomputes instead of using them."""
    d = Path(db_dir) / "stage1"
    d.mkdir(parents=True, exist_ok=True)
    minute_cols = [k for k in out if k not in STAGE2_COLUMNS and k not in HIST_COLUMNS]
    _atomic_parquet(pa.table({k: out[k] for k in minute_cols}), d / "minutes.parquet")
    _atomic_parquet(pa.table({k: out[k] for k in HIST_COLUMNS}), d / "hist.parquet")
    s1_keys = [k for k in engine_config(settings) if Settings.stage_of(k) == "stage1"]
    meta = {
        "stage1_config": {k: getattr(settings, k) for k in s1_keys},
        "volume_quantum": _core.features_volume_quantum(),
        "minutes": len(out["ts_min"]),
        "first_minute": int(out["ts_min"][0]) if len(out["ts_min"]) else None,
        "last_minute": int(out["ts_min"][-1]) if len(out["ts_min"]) else None,
        "sources": sources if sources is not None else Lake(db_dir).sources.fingerprint(),
    }
    tmp = d / f".meta.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, d / "meta.json")
    return d


def load_stage1(db_dir: str | Path) -> Arrays:
    """Reload stored stage-1 columns (input of ``at_core.features.engine.stage2``)."""
    d = Path(db_dir) / "stage1"
    if not (d / "minutes.parquet").exists():
        raise StorageError(f"no stage-1 summaries in {d}: run `auction-trader features` first")
    out: Arrays = {}
    for name in ("minutes.parquet", "hist.parquet"):
        t = pq.read_table(d / name)
        for k in t.column_names:
            out[k] = t.column(k).to_numpy()
    return out


def write_features(db_dir: str | Path, out: Arrays, settings: Settings, lo: int, hi: int) -> int:
    """Replace rows with ``lo <= ts_min <= hi`` of the three tables in one transaction."""
    paths = init_stores(db_dir)
    try:
        con = duckdb.connect(str(paths.features))
    except duckdb.Error as exc:
        raise StorageError(
            f"cannot open {paths.features} for writing (is another process using it?): {exc}"
        ) from exc
    try:
        return write_feature_rows(con, out, settings, lo, hi)
    except duckdb.Error as exc:
        raise StorageError(
            f"writing features into {paths.features} failed, nothing changed: {exc}"
        ) from exc
    finally:
        con.close()


def write_feature_rows(
    con: duckdb.DuckDBPyConnection, out: Arrays, settings: Settings, lo: int, hi: int
) -> int:
    """``write_features`` on an open connection (the live features actor owns the file)."""
    ts = out["ts_min"]
    sel = (ts >= lo) & (ts <= hi)
    cols = {k: v[sel] for k, v in out.items() if k not in HIST_COLUMNS}
    if settings.use_bvc_fallback:
        vol = cols["volume"]
        cols["of_1m"] = cols["bvc_net"].copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            cols["of_norm_1m"] = np.where(
                vol > 0, cols["bvc_net"] / np.where(vol > 0, vol, 1.0), np.nan
            )
    bars = _table(cols, BARS_COLUMNS)
    feats = _table(cols, FEATURES_COLUMNS)
    ext = _table(cols, list(EXT_TYPES))
    con.execute(FEATURES_EXT_DDL)
    con.register("bars_in", bars)
    con.register("feats_in", feats)
    con.register("ext_in", ext)
    con.execute("BEGIN TRANSACTION")
    try:
        for table, src, names in (
            ("bars_1m", "bars_in", BARS_COLUMNS),
            ("features_1m", "feats_in", FEATURES_COLUMNS),
            ("features_1m_ext", "ext_in", tuple(EXT_TYPES)),
        ):
            con.execute(f"DELETE FROM {table} WHERE ts_min BETWEEN ? AND ?", [lo, hi])
            cl = ", ".join(names)
            con.execute(f"INSERT INTO {table} ({cl}) SELECT {cl} FROM {src}")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        for name in ("bars_in", "feats_in", "ext_in"):
            con.unregister(name)
    return int(sel.sum())


def segments(ts: np.ndarray) -> list[dict[str, Any]]:
    """Contiguous minute stretches of ``ts`` (sorted minute starts): a jump of more than
    one minute is a data gap (the engine emits no minute across one)."""
    if not len(ts):
        return []
    cuts = np.flatnonzero(np.diff(ts) > MINUTE_MS) + 1
    out = []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(ts)], strict=True):
        out.append(
            {
                "first": iso_min(int(ts[a])),
                "last": iso_min(int(ts[b - 1])),
                "minutes": int(b - a),
                "valid_va_minutes": 0,
            }
        )
    return out


def _stats(x: np.ndarray) -> dict[str, float | int | None]:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return {"minutes": 0, "mean": None, "p50": None, "p95": None, "max": None}
    return {
        "minutes": len(x),
        "mean": float(x.mean()),
        "p50": float(np.percentile(x, 50)),
        "p95": float(np.percentile(x, 95)),
        "max": float(x.max()),
    }


def summarize(out: Arrays, sel: np.ndarray, settings: Settings, stage1_dir: Path) -> FeaturesReport:
    ts = out["ts_min"][sel]
    amb = out["ambiguous_trade_frac_1m"][sel]
    amb_stats = _stats(amb)
    finite = amb[np.isfinite(amb)]
    amb_stats["share_above_max"] = (
        float((finite > settings.ambiguous_trade_frac_max).mean()) if len(finite) else None
    )

    def ratio(a: str, c: str) -> tuple[float | None, int]:
        n = int(out[c][sel].sum())
        return (float(out[a][sel].sum()) / n if n else None), n

    q_rate, q_n = ratio("side_agree_quote", "side_cmp_quote")
    f_rate, f_n = ratio("side_agree_final", "side_cmp_final")
    last_va = None
    if len(ts):
        i = np.flatnonzero(sel)[-1]
        last_va = {
            "ts_min": int(out["ts_min"][i]),
            "minute": iso_min(int(out["ts_min"][i])),
            **{
                k: (None if not np.isfinite(out[k][i]) else float(out[k][i]))
                for k in ("poc", "val", "vah", "bin_width", "va_coverage", "total_volume_4h")
            },
            "va_bin_count": int(out["va_bin_count"][i]),
            "va_valid": bool(out["va_valid"][i]),
        }
    return FeaturesReport(
        minutes=int(sel.sum()),
        first_minute=iso_min(int(ts[0])) if len(ts) else None,
        last_minute=iso_min(int(ts[-1])) if len(ts) else None,
        computed_minutes=len(out["ts_min"]),
        valid_va_minutes=int(out["va_valid"][sel].sum()),
        ambiguous=amb_stats,
        side_agreement={
            "quote_rule_rate": q_rate,
            "quote_rule_compared": q_n,
            "final_rate": f_rate,
            "final_compared": f_n,
        },
        stale_trades=int(out["stale_trades"][sel].sum()),
        unmatched_trades=int(out["unmatched_trades"][sel].sum()),
        last_value_area=last_va,
        stage1_dir=str(stage1_dir),
        config=engine_config(settings),
        segments=_segments_with_validity(ts, out["va_valid"][sel]),
    )


def _segments_with_validity(ts: np.ndarray, valid: np.ndarray) -> list[dict[str, Any]]:
    segs = segments(ts)
    cuts = np.r_[0, np.cumsum([s["minutes"] for s in segs])]
    for s, a, b in zip(segs, cuts[:-1], cuts[1:], strict=True):
        s["valid_va_minutes"] = int(valid[a:b].sum())
    return segs


def run_features(
    db_dir: str | Path,
    settings: Settings,
    from_ms: int | None = None,
    to_ms: int | None = None,
    progress: bool | None = None,
) -> FeaturesReport:
    """Compute features from the lake and write the minutes of [from, to] (inclusive)."""
    if from_ms is not None and to_ms is not None and from_ms > to_ms:
        raise InputError(f"--from ({from_ms}) is after --to ({to_ms})")
    sweep(Path(db_dir))  # temporaries of a run killed earlier
    sides = TradeSidesWriter(Lake(db_dir).root)
    sources = Lake(db_dir).sources.fingerprint()
    try:
        report = _compute_and_write(db_dir, settings, from_ms, to_ms, progress, sides, sources)
    except BaseException:
        sides.discard()  # a failed run leaves the stored sidecars as they were
        raise
    sides.commit()
    return report


def _compute_and_write(
    db_dir: str | Path,
    settings: Settings,
    from_ms: int | None,
    to_ms: int | None,
    progress: bool | None,
    sides: TradeSidesWriter,
    sources: list[list[object]],
) -> FeaturesReport:
    out = compute(db_dir, settings, to_ms=to_ms, progress=progress, sides=sides)
    ts = out.get("ts_min")
    if ts is None or len(ts) == 0:
        raise InputError("the lake holds no minute in the requested range")
    stage1_dir = write_stage1(db_dir, out, settings, sources)
    lo = int(ts[0]) if from_ms is None else max(int(ts[0]), (from_ms // MINUTE_MS) * MINUTE_MS)
    hi = int(ts[-1]) if to_ms is None else min(int(ts[-1]), (to_ms // MINUTE_MS) * MINUTE_MS)
    if lo > hi:
        raise InputError(
            f"no minute of the lake falls in the requested range ({iso_min(lo)} .. {iso_min(hi)})"
        )
    n = write_features(db_dir, out, settings, lo, hi)
    sel = (ts >= lo) & (ts <= hi)
    report = summarize(out, sel, settings, stage1_dir)
    log.info(
        "features written",
        minutes=n,
        first=report.first_minute,
        last=report.last_minute,
        valid_va=report.valid_va_minutes,
    )
    return report
