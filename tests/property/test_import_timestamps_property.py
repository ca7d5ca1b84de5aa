"""Property: text timestamps of any unit and precision convert to the exact floor in ms."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from at_core.ingest import timestamps as ts

# 1990-01-01 .. 2099-12-31 in ms
MS = st.integers(min_value=631_152_000_000, max_value=4_102_444_799_999)
EXTRA = st.text(alphabet="0123456789", min_size=0, max_size=9)  # sub-ms digits


def _text(ms: int, unit: str, extra: str) -> str:
    if unit == "s":
        return f"{ms // 1000}.{ms % 1000:03d}{extra}"
    if unit == "ms":
        return f"{ms}.{extra}" if extra else str(ms)
    if unit == "us":
        sub = (extra + "000")[:3]
        return f"{ms}{sub}"
    sub = (extra + "000000")[:6]
    return f"{ms}{sub}"


@settings(max_examples=150, deadline=None)
@given(
    ms=st.lists(MS, min_size=1, max_size=20),
    extra=EXTRA,
    unit=st.sampled_from(["s", "ms", "us", "ns"]),
)
def test_text_to_ms_is_exact_floor(ms: list[int], extra: str, unit: str) -> None:
    texts = [_text(v, unit, extra) for v in ms]
    assert ts.detect_unit(pa.array(texts)).unit == unit
    conv = ts.strings_to_ms(pa.array(texts), unit)
    assert not conv.bad.any(), conv.reasons
    assert conv.ts_ms.tolist() == ms


@settings(max_examples=60, deadline=None)
@given(ms=MS)
def test_iso_roundtrip(ms: int) -> None:
    import datetime as dt

    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).replace(microsecond=(ms % 1000) * 1000)
    for text in (
        t.isoformat(),
        t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        t.strftime("%Y-%m-%d %H:%M:%S.%f"),
    ):
        conv = ts.strings_to_ms(pa.array([text]), "iso")
        assert not conv.bad.any(), (text, conv.reasons)
        assert int(conv.ts_ms[0]) == ms, text
