"""Fast path of the hot CSV formats: clean files parsed in Rust on several threads.

``read`` hands the whole decompressed buffer to ``at_core._core.parse_csv_fast``
(rust/at-ingest/src/csv.rs), which cuts it at line boundaries and parses the pieces in
parallel straight into typed columns: exact epoch-ms timestamps (integer arithmetic on the
text), correctly rounded doubles (the very values Arrow's parser gives), sides as int8 and
text as Arrow string buffers (no Python objects).

It accepts only a *clean* file: one where the general path (``csvread.read_csv``) would
report nothing. Any irregular line (quotes, ``\\r``, blank line, wrong field count, empty or
unparsable field, a second symbol, a timestamp outside 1990-2100, an unknown side word)
makes it decline, and ``read`` returns ``None``: the caller then runs the general path, which
reports every bad field as ``file:line:field`` and honours stop/skip and the rejects file. A
bad file therefore costs one extra (fast) pass, and both paths can never disagree about
what a bad row is. ``ENABLED = False`` (or ``AT_IMPORT_FAST=0``) forces the general path, which
the equivalence tests use to check that both store the same lake.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa

from at_core.ingest.csvread import read_header, require_columns
from at_core.logging import get

log = get(__name__)

ENABLED = os.environ.get("AT_IMPORT_FAST", "1") != "0"
KINDS = frozenset({"ts_s", "ts_ms", "f64", "i64", "str", "side", "maker", "same"})


@dataclass
class FastCsv:
    """Typed columns of a clean CSV; row ``i`` is physical line ``i + 2``."""

    rows: int
    columns: dict[str, Any]  # np.ndarray, pa.StringArray, or bytes for "same" columns

    @cached_property
    def lines(self) -> np.ndarray:
        return np.arange(2, self.rows + 2, dtype=np.int64)


def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def read(data: pa.Buffer, name: str, fields: dict[str, str]) -> FastCsv | None:
    """``fields``: header name -> kind (ts_s, ts_ms, f64, i64, str, side, maker, same).

    Returns ``None`` when the fast path is off, unavailable (old compiled core) or declines
    the file; raises the same ``InputError`` as the general path for a missing column.
    """
    if not ENABLED:
        return None
    from at_core import _core

    parse = getattr(_core, "parse_csv_fast", None)
    if parse is None:
        return None
    header = read_header(data, name)
    require_columns(header, list(fields), name)
    header = [h if h else f"_col{i}" for i, h in enumerate(header)]
    if len(set(header)) != len(header):
        return None  # duplicate names: leave the column choice to the general path
    raw = np.frombuffer(data, dtype=np.uint8)
    nl = raw[: 1 << 16].tobytes().find(b"\n")
    if nl < 0:
        return None
    index = {h: i for i, h in enumerate(header)}
    spec = [(index[c], k) for c, k in fields.items()]
    out = parse(raw, nl + 1, 2, len(header), spec, _threads())
    if isinstance(out, str):
        log.debug("csv fast path declined", file=name, why=out)
        return None
    rows, cols = out
    if rows == 0:
        return None
    columns: dict[str, Any] = {}
    for (c, kind), v in zip(fields.items(), cols, strict=True):
        if kind == "str":
            offsets, text = v
            columns[c] = pa.StringArray.from_buffers(
                rows, pa.py_buffer(offsets), pa.py_buffer(text)
            )
        else:
            columns[c] = v
    return FastCsv(rows, columns)
