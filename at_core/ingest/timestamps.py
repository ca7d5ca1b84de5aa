"""Timestamp unit detection and exact conversion to epoch milliseconds (SPEC §3.2).

Pitfalls this module exists for:

* Fractional epoch seconds (Bybit's ``1704067200.0283``) must not go through a float:
  ``1704067200.029`` is ``1704067200.0289998...`` as a double, and ``floor(x * 1000)``
  then lands one millisecond early. Every conversion here is decimal/integer arithmetic
  on the text: decimals are parsed into Arrow ``decimal128`` (exact, and the parse
  refuses a value it would have to round) and scaled with integer division.
* Units are told apart by the number of integer digits, which for any date between 1990
  and 2100 is unambiguous: seconds 9-10 digits, ms 12-13, µs 15-16, ns 18-19. A column
  whose rows fall into different classes (some seconds, some milliseconds) is refused
  instead of guessed: one guess would silently shift half of the rows by 1000x.
* Sub-millisecond digits are floored, never rounded, so a trade stays in the millisecond
  (and the minute) in which it happened.
* ISO 8601 strings without a zone are taken as UTC; with a zone (``Z``, ``+02:00``) they
  are converted to UTC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from at_core.errors import InputError

UNITS = ("s", "ms", "us", "ns", "iso")
UNIT_NAMES = {
    "s": "epoch seconds",
    "ms": "epoch milliseconds",
    "us": "epoch microseconds",
    "ns": "epoch nanoseconds",
    "iso": "ISO 8601",
}
# Integer-digit counts of each unit for dates in [1990, 2100).
_DIGITS = {"s": (9, 10), "ms": (12, 13), "us": (15, 16), "ns": (18, 19)}
# Plausible range of the result in ms: 1990-01-01 .. 2100-01-01.
MIN_MS = 631_152_000_000
MAX_MS = 4_102_444_800_000
# Decimal scale used to parse each numeric unit so that value * 10**scale fits in int64
# and ``scaled // 10**6`` is the floor in milliseconds.
_SCALE = {"s": 9, "ms": 6, "us": 3, "ns": 0}

_NUMERIC_RE = r"^[0-9]+(\.[0-9]*)?$"
_ISO_RE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?)?"
    r"(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
)
_ZONE_RE = r"(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)$"


@dataclass
class Detection:
    """The unit chosen for a timestamp column and why (printed in the import summary)."""

    unit: str
    how: str  # "detected" | "given" | "format"
    detail: str = ""

    def describe(self) -> str:
        text = f"{UNIT_NAMES[self.unit]} ({self.how})"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass
class Converted:
    """Result of a conversion: ms values (0 where bad) and the reason for each bad row."""

    ts_ms: np.ndarray  # int64
    bad: np.ndarray  # bool
    reasons: dict[int, str]  # row index -> reason, for bad rows


def _strings(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        arr = pc.cast(arr, pa.string())
    return pc.utf8_trim_whitespace(arr)


def _int_digits(s: pa.Array) -> np.ndarray:
    """Number of digits before the decimal point of each numeric string."""
    length = pc.utf8_length(s).to_numpy(zero_copy_only=False)
    dot = pc.find_substring(s, ".").to_numpy(zero_copy_only=False)
    return np.where(dot >= 0, dot, length).astype(np.int64)


def detect_unit(values: pa.Array | pa.ChunkedArray, *, column: str = "ts") -> Detection:
    """Decide the unit of a timestamp column from all its non-empty values.

    Raises ``InputError`` when the column mixes units, mixes numbers with ISO strings, or
    holds no value that is a plausible epoch time of any unit; the message says what was
    seen and that ``--ts-unit`` resolves it.
    """
    s = _strings(values)
    present = pc.and_(pc.is_valid(s), pc.not_equal(s, ""))
    s = s.filter(present)
    n = len(s)
    if n == 0:
        raise InputError(f"column {column!r} has no values to detect a timestamp unit from")
    numeric = pc.match_substring_regex(s, _NUMERIC_RE).to_numpy(zero_copy_only=False)
    iso = pc.match_substring_regex(s, _ISO_RE).to_numpy(zero_copy_only=False)
    n_num, n_iso = int(numeric.sum()), int(iso.sum())
    if n_num and n_iso:
        ex_n = s[int(np.flatnonzero(numeric)[0])].as_py()
        ex_i = s[int(np.flatnonzero(iso)[0])].as_py()
        raise InputError(
            f"column {column!r} mixes epoch numbers ({n_num} values, e.g. {ex_n!r}) and ISO 8601 "
            f"times ({n_iso}, e.g. {ex_i!r}); refusing to guess: fix the file or pass --ts-unit"
        )
    if n_iso:
        return Detection("iso", "detected", f"{n_iso} of {n} values are ISO 8601")
    if not n_num:
        raise InputError(
            f"column {column!r}: values like {s[0].as_py()!r} are neither epoch numbers nor "
            "ISO 8601 times; pass --ts-unit or fix the --map"
        )
    digits = _int_digits(s.filter(pa.array(numeric)))
    counts = {
        unit: int(((digits >= lo) & (digits <= hi)).sum()) for unit, (lo, hi) in _DIGITS.items()
    }
    seen = {u: c for u, c in counts.items() if c}
    if not seen:
        example = s.filter(pa.array(numeric))[0].as_py()
        raise InputError(
            f"column {column!r}: cannot tell the timestamp unit: values like {example!r} are not "
            "epoch seconds, ms, µs or ns of a date in 1990-2100 (ambiguous); pass --ts-unit"
        )
    if len(seen) > 1:
        parts = ", ".join(f"{c} look like {UNIT_NAMES[u]}" for u, c in seen.items())
        raise InputError(
            f"column {column!r} is ambiguous: its values mix units ({parts}); refusing to "
            "guess: fix the file or pass --ts-unit"
        )
    unit = next(iter(seen))
    lo, hi = _DIGITS[unit]
    return Detection(unit, "detected", f"{seen[unit]} of {n} values have {lo}-{hi} integer digits")


def decimal_to_ms(arr: pa.Array | pa.ChunkedArray, unit: str) -> np.ndarray:
    """Floor a decimal128 column parsed with ``decimal_type(unit)`` to epoch ms (exact)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    scale = arr.type.scale
    if scale != _SCALE[unit]:
        arr = pc.cast(arr, pa.decimal128(38, _SCALE[unit]))
    # decimal128 is stored as little-endian 128-bit integers value * 10**scale; every
    # value in range fits the low 64 bits (checked by the range test of the caller).
    words = np.frombuffer(arr.buffers()[1], dtype=np.int64)
    lo = words[2 * arr.offset : 2 * (arr.offset + len(arr)) : 2]
    hi = words[2 * arr.offset + 1 : 2 * (arr.offset + len(arr)) : 2]
    scaled = lo.copy()
    overflow = ~(((hi == 0) & (lo >= 0)) | ((hi == -1) & (lo < 0)))
    scaled[overflow] = -1  # forced out of range below
    return np.floor_divide(scaled, 1_000_000)


def decimal_type(unit: str) -> pa.Decimal128Type:
    return pa.decimal128(38, _SCALE[unit])


def int_to_ms(values: np.ndarray, unit: str) -> np.ndarray:
    """Integer epoch values of ``unit`` to ms, flooring (exact integer arithmetic)."""
    div = {"s": None, "ms": 1, "us": 1_000, "ns": 1_000_000}[unit]
    v = values.astype(np.int64, copy=False)
    if div is None:
        return v * 1000
    return v if div == 1 else np.floor_divide(v, div)


def in_range(ts_ms: np.ndarray) -> np.ndarray:
    return (ts_ms >= MIN_MS) & (ts_ms < MAX_MS)


def range_reason(unit: str) -> str:
    return f"timestamp out of range for {UNIT_NAMES[unit]} (expected a date in 1990-2100)"


def strings_to_ms(values: pa.Array | pa.ChunkedArray, unit: str) -> Converted:
    """Convert timestamp strings of ``unit`` to ms, flagging each row that cannot be.

    Empty strings are flagged as missing; malformed text and out-of-range values get
    their own reasons.
    """
    s = _strings(values)
    n = len(s)
    ts = np.zeros(n, dtype=np.int64)
    valid = pc.fill_null(pc.not_equal(s, ""), False).to_numpy(zero_copy_only=False)
    reasons: dict[int, str] = {}
    for i in np.flatnonzero(~valid):
        reasons[int(i)] = "missing timestamp"
    if unit == "iso":
        ok = valid & pc.fill_null(pc.match_substring_regex(s, _ISO_RE), False).to_numpy(
            zero_copy_only=False
        )
        for i in np.flatnonzero(valid & ~ok):
            reasons[int(i)] = f"unparsable ISO 8601 time {s[int(i)].as_py()!r}"
        idx = np.flatnonzero(ok)
        if len(idx):
            sub = s.take(pa.array(idx)).to_pylist()
            # normalise "," decimal separator; Arrow's ISO parser wants "."
            sub_arr = pc.replace_substring(pa.array(sub, pa.string()), ",", ".")
            zoned = pc.match_substring_regex(
                pc.utf8_slice_codeunits(sub_arr, 10), _ZONE_RE
            ).to_numpy(zero_copy_only=False)
            vals = np.zeros(len(idx), dtype=np.int64)
            good = np.ones(len(idx), dtype=bool)
            for mask, typ in ((zoned, pa.timestamp("ns", tz="UTC")), (~zoned, pa.timestamp("ns"))):
                pos = np.flatnonzero(mask)
                if not len(pos):
                    continue
                part = sub_arr.take(pa.array(pos))
                try:
                    cast = pc.cast(part, typ)
                    vals[pos] = np.floor_divide(
                        pc.cast(cast, pa.int64()).to_numpy(zero_copy_only=False), 1_000_000
                    )
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    # regex-valid but impossible (month 13 ...): find them one by one
                    for j, p in enumerate(pos):
                        try:
                            one = pc.cast(part.slice(j, 1), typ)
                            vals[p] = int(pc.cast(one, pa.int64())[0].as_py()) // 1_000_000
                        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                            good[p] = False
            ts[idx] = vals
            for p in np.flatnonzero(~good):
                reasons[int(idx[p])] = f"invalid ISO 8601 time {sub[p]!r}"
    else:
        ok = valid & pc.fill_null(pc.match_substring_regex(s, _NUMERIC_RE), False).to_numpy(
            zero_copy_only=False
        )
        for i in np.flatnonzero(valid & ~ok):
            reasons[int(i)] = f"unparsable timestamp {s[int(i)].as_py()!r}"
        idx = np.flatnonzero(ok)
        if len(idx):
            sub = s.take(pa.array(idx))
            digits = _int_digits(sub)
            fits = digits <= 19 - _SCALE[unit]
            for p in np.flatnonzero(~fits):
                reasons[int(idx[p])] = range_reason(unit)
            sub = sub.filter(pa.array(fits))
            idx = idx[fits]
            # Digits beyond the parse scale cannot change the floor: truncate them so the
            # exact decimal parse never has to round.
            keep = _SCALE[unit]
            sub = pc.replace_substring_regex(
                sub, r"^([0-9]*)(\.[0-9]{0," + str(keep) + r"})[0-9]*$", r"\1\2"
            )
            sub = pc.replace_substring_regex(sub, r"\.$", "")
            ts[idx] = decimal_to_ms(pc.cast(sub, decimal_type(unit)), unit)
    bad = np.zeros(n, dtype=bool)
    if reasons:
        bad[np.fromiter(reasons.keys(), dtype=np.int64)] = True
    out_of_range = ~bad & ~in_range(ts)
    for i in np.flatnonzero(out_of_range):
        reasons[int(i)] = range_reason(unit)
    bad |= out_of_range
    return Converted(ts, bad, reasons)
