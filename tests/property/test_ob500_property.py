"""Property: for any ob500 stream and any chunking, the Rust decoder's L1 quotes equal a
brute-force rebuild of the whole book after every message, and every emitted quote is
uncrossed unless reported at its own line."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from at_core._core import Ob500Decoder
from at_core.ingest import bybit_files as bf

BASE = 4_200_000  # 0.01 ticks around 42000


def _px(t: int) -> str:
    return f"{t // 100}.{t % 100:02d}"


level = st.tuples(st.integers(0, 40), st.integers(0, 3000))  # (offset, lots; 0 deletes)


@st.composite
def streams(draw: st.DrawFn) -> list[str]:
    lines = []
    n = draw(st.integers(1, 60))
    u = draw(st.integers(2, 10_000))
    for i in range(n):
        snapshot = i == 0 or draw(st.integers(0, 30)) == 0
        bids = draw(st.lists(level, max_size=25 if snapshot else 5))
        asks = draw(st.lists(level, max_size=25 if snapshot else 5))
        # bids below BASE, asks at or above BASE + 1, except the odd crossing one
        cross = draw(st.integers(0, 20)) == 0
        b = [
            (_px(BASE - o + (45 if cross else 0)), f"{lots / 1000:.3f}" if lots else "0")
            for o, lots in bids
        ]
        a = [(_px(BASE + 1 + o), f"{lots / 1000:.3f}" if lots else "0") for o, lots in asks]
        if snapshot:
            b = [x for x in b if x[1] != "0"]
            a = [x for x in a if x[1] != "0"]
        u += 1
        lines.append(
            bf.ob_line("snapshot" if snapshot else "delta", u, 1_704_067_200_000 + 100 * i, b, a)
        )
    return lines


def oracle(lines: list[str]) -> list[tuple[int, float, float, float, float, int, int]]:
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    out = []
    last = None
    for ln, line in enumerate(lines, start=1):
        m = json.loads(line)
        if m["type"] == "snapshot":
            bids.clear()
            asks.clear()
        for book, key in ((bids, "b"), (asks, "a")):
            for p, s in m["data"][key]:
                if float(s) == 0:
                    book.pop(float(p), None)
                else:
                    book[float(p)] = float(s)
        if not bids or not asks:
            last = None
            continue
        top = (max(bids), bids[max(bids)], min(asks), asks[min(asks)])
        if top != last:
            last = top
            out.append((m["cts"], *top, m["data"]["u"], ln))
    return out


@settings(max_examples=150, deadline=None)
@given(streams(), st.integers(1, 400))
def test_decoder_equals_brute_force_for_any_chunking(lines: list[str], chunk: int) -> None:
    data = ("\n".join(lines) + "\n").encode()
    d = Ob500Decoder()
    for i in range(0, len(data), chunk):
        d.feed(data[i : i + chunk])
    d.finish()
    q = d.take_quotes()
    got = list(
        zip(
            q["ts_ms"].tolist(),
            q["bid_px"].tolist(),
            q["bid_sz"].tolist(),
            q["ask_px"].tolist(),
            q["ask_sz"].tolist(),
            q["seq"].tolist(),
            q["line"].tolist(),
            strict=True,
        )
    )
    assert got == oracle(lines)
    flagged = {line for line, kind, _f, _d in d.take_anomalies() if kind == "crossed"}
    for _ts, bp, _bs, ap, _as, _u, line in got:
        assert (bp >= ap) == (line in flagged)
