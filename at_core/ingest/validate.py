"""Value rules every imported row must pass, vectorised, reported per line and field.

One rule list per kind, applied after parsing whatever the format, so that a new format
cannot skip a check. A row failing any rule is rejected as a whole (a trade without a
valid size is no trade). Rules: finite numbers, price > 0, size > 0, and for quotes
bid <= ask (a crossed book is a feed error; a locked book, bid == ask, is kept).
"""

from __future__ import annotations

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


def _np(v: pa.Array | pa.ChunkedArray | np.ndarray) -> np.ndarray:
    if isinstance(v, np.ndarray):
        return v
    return v.to_numpy(zero_copy_only=False)


def validate(kind: str, rows: KindRows, name: str) -> tuple[pa.Table, list[Reject], np.ndarray]:
    """Apply ``RULES[kind]``; return (good rows in lake schema, rejects, bad-row mask)."""
    bad = rows.bad.copy()
    rejects: list[Reject] = []
    numeric = {
        f: _np(rows.columns[f]).astype(np.float64, copy=False) for f in {r[0] for r in RULES[kind]}
    }
    for field, reason, test in RULES[kind]:
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
    table = _table(kind, rows)
    if bad.any():
        table = table.filter(pa.array(~bad))
    return table, rejects, bad


def _detail(field: str, reason: str, cols: dict[str, np.ndarray], i: int) -> str:
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
