"""Value rules every imported row must pass, vectorised, reported per line and field.

One rule list per kind, applied after parsing whatever the format, so that a new format
cannot skip a check. A row failing any rule is rejected as a whole (a trade without a
valid size is no trade). Rules: finite numbers, price > 0, size > 0, and for quotes
bid <= ask (a crossed book is a feed error; a locked book, bid == ask, is kept).

Stray timestamps: a file is one recording. Rows whose timestamps form a small cluster
(at most 1 % of the file's rows) more than ``STRAY_GAP_MS`` away from a bulk of at least
``STRAY_MIN_BULK`` rows are
rejected like any bad value: one 2020 row in a 2024 file would otherwise stretch the
stored range by years (and, before data gaps were honoured, made ``features`` write
2.36 M invented minutes). Two large clusters (a file holding two real windows) are kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from at_core.ingest.csvread import Reject
from at_core.ingest.formats import KindRows
from at_core.storage.lake import conform
from at_core.storage.schema import ARROW_SCHEMAS

Rule = tuple[str, str, Callable[[dict[str, np.ndarray]], np.ndarray]]


def _num(cols: dict[str, np.ndarray], name: str) -> np.ndarray:
    return cols[name]


def _finite(field: str) -> Rule:
    return (field, "not a finite number", lambda c: ~np.isfinite(_num(c, field)))


def _positive(field: str, what: str) -> Rule:
    return (field, what, lambda c: np.isfinite(_num(c, field)) & (_num(c, field) <= 0))


RULES: dict[str, list[Rule]] = {
    "trades": [
        _finite("price"),
        _positive("price", "non-positive price"),
        _finite("size"),
        _positive("size", "negative or zero size"),
    ],
    "quotes": [
        _finite("bid_px"),
        _finite("ask_px"),
        _finite("bid_sz"),
        _finite("ask_sz"),
        _positive("bid_px", "non-positive price"),
        _positive("ask_px", "non-positive price"),
        _positive("bid_sz", "negative or zero size"),
        _positive("ask_sz", "negative or zero size"),
        ("bid_px", "crossed quote: bid > ask", lambda c: c["bid_px"] > c["ask_px"]),
    ],
}


#: Rows further than this from the file's bulk, in a cluster of at most ``STRAY_MAX_SHARE``
#: of its rows, are stray.
STRAY_GAP_MS = 6 * 3_600_000
STRAY_MAX_SHARE = 0.01
#: A file smaller than this has no "bulk" to be far from (a hand-made two-row file).
STRAY_MIN_BULK = 100


def stray_rows(ts: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Mask of stray rows among ``ok`` rows (see the module notes), and the bulk's
    (first ts, last ts, rows) for the message."""
    mask = np.zeros(len(ts), dtype=bool)
    idx = np.flatnonzero(ok)
    if len(idx) < 2:
        return mask, (0, 0, 0)
    order = idx[np.argsort(ts[idx], kind="stable")]
    s = ts[order]
    breaks = np.flatnonzero(np.diff(s) > STRAY_GAP_MS) + 1
    if not len(breaks):
        return mask, (int(s[0]), int(s[-1]), len(s))
    bounds = np.r_[0, breaks, len(s)]
    sizes = np.diff(bounds)
    bulk = int(sizes.argmax())
    a, b = bounds[bulk], bounds[bulk + 1]
    if b - a < STRAY_MIN_BULK:
        return mask, (int(s[a]), int(s[b - 1]), int(b - a))
    limit = max(1, int(STRAY_MAX_SHARE * len(s)))
    for k in range(len(sizes)):
        if k != bulk and sizes[k] <= limit:
            mask[order[bounds[k] : bounds[k + 1]]] = True
    return mask, (int(s[a]), int(s[b - 1]), int(b - a))


def _iso(ms: int) -> str:
    return (
        dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    )


def _stray_rejects(rows: KindRows, bad: np.ndarray, name: str) -> tuple[list[Reject], np.ndarray]:
    ts_col = rows.columns.get("ts_ms")
    if ts_col is None:
        return [], np.zeros(len(bad), dtype=bool)
    ts = _np(ts_col)
    if ts.dtype.kind not in "iu":
        return [], np.zeros(len(bad), dtype=bool)
    ts = ts.astype(np.int64, copy=False)
    hit, (lo, hi, n) = stray_rows(ts, ~bad)
    shown = rows.names.get("ts_ms", "ts_ms")
    rejects = []
    for i in np.flatnonzero(hit):
        t = int(ts[i])
        away = (lo - t) if t < lo else (t - hi)
        rejects.append(
            Reject(
                name,
                int(rows.lines[i]),
                shown,
                f"stray timestamp {_iso(t)}: {away / 86_400_000:,.2f} days "
                f"{'before' if t < lo else 'after'} the file's other {n:,} rows "
                f"({_iso(lo)} .. {_iso(hi)}); it would stretch the stored range",
            )
        )
    return rejects, hit


def _np(v: pa.Array | pa.ChunkedArray | np.ndarray) -> np.ndarray:
    if isinstance(v, np.ndarray):
        return v
    return v.to_numpy(zero_copy_only=False)


def _on_grid(field: str, tick: float) -> Rule:
    def off(c: dict[str, np.ndarray]) -> np.ndarray:
        k = _num(c, field) / tick
        return np.isfinite(k) & (np.abs(k - np.round(k)) > 1e-6)

    return (field, f"not on the {tick:g} tick grid", off)


def validate(
    kind: str, rows: KindRows, name: str, tick_size: float | None = None
) -> tuple[pa.Table, list[Reject], np.ndarray]:
    """Apply ``RULES[kind]`` (and, with ``tick_size``, the instrument's tick grid to every
    price); return (good rows in lake schema, rejects, bad-row mask)."""
    bad = rows.bad.copy()
    rejects: list[Reject] = []
    rules = list(RULES[kind])
    if tick_size is not None:
        prices = ("price",) if kind == "trades" else ("bid_px", "ask_px")
        rules.extend(_on_grid(f, tick_size) for f in prices)
    numeric = {
        f: _np(rows.columns[f]).astype(np.float64, copy=False) for f in {r[0] for r in rules}
    }
    for field, reason, test in rules:
        # a rule is checked wherever its own fields parsed, so a line with two bad fields
        # reports both; rows rejected as a whole (e.g. bad JSON) are not re-checked
        used = ("bid_px", "ask_px") if reason.startswith("crossed") else (field,)
        skip = rows.bad.copy() if not rows.field_bad else np.zeros(len(rows.bad), dtype=bool)
        for f in used:
            fb = rows.field_bad.get(rows.names.get(f, f))
            if fb is not None:
                skip |= fb
        with np.errstate(invalid="ignore"):
            hit = test(numeric) & ~skip
        shown = rows.names.get(field, field)
        for i in np.flatnonzero(hit):
            detail = _detail(field, reason, numeric, int(i))
            rejects.append(Reject(name, int(rows.lines[i]), shown, detail))
        bad |= hit
    stray, hit = _stray_rejects(rows, bad, name)
    rejects.extend(stray)
    bad |= hit
    table = _table(kind, rows)
    if bad.any():
        table = table.filter(pa.array(~bad))
    return table, rejects, bad


def _detail(field: str, reason: str, cols: dict[str, np.ndarray], i: int) -> str:
    if "tick grid" in reason:
        return (
            f"{field} {float(cols[field][i])!r} is {reason} (config tick_size: a finer-ticked "
            "venue or another instrument?)"
        )
    if reason.startswith("crossed"):
        return f"crossed quote: bid {float(cols['bid_px'][i])!r} > ask {float(cols['ask_px'][i])!r}"
    return f"{reason} ({float(cols[field][i])!r})"


def _table(kind: str, rows: KindRows) -> pa.Table:
    schema = ARROW_SCHEMAS[kind]
    arrays = {}
    for f in schema:
        if f.name in rows.columns:
            v = rows.columns[f.name]
            arr = pa.array(v) if isinstance(v, np.ndarray) else v
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            if pa.types.is_dictionary(arr.type):
                arr = arr.dictionary_decode()
            if arr.type != f.type:
                arr = arr.cast(f.type)
            arrays[f.name] = arr
    return conform(pa.table(arrays), schema)
