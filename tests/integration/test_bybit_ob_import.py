"""``import --format bybit-ob``: ob500 archive -> L1 quotes, against a brute-force rebuild,
with resets, gaps, crossed books and bad lines reported at file:line."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from bybit_loopback import brute_force_l1, zip_lines

from at_core.config import load_settings
from at_core.ingest import bybit_files as bf
from at_core.ingest.importer import ImportStopped, import_files
from at_core.ingest.orderbook import source_id
from at_core.storage.lake import Lake

T0 = 1_704_067_200_000  # 2024-01-01 00:00:00 UTC


def _snap(u: int, cts: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> str:
    return bf.ob_line("snapshot", u, cts, bids, asks)


def _delta(
    u: int, cts: int, bids: Sequence[tuple[str, str]] = (), asks: Sequence[tuple[str, str]] = ()
) -> str:
    return bf.ob_line("delta", u, cts, bids, asks)


def handmade() -> list[str]:
    """Snapshot, deltas, a new snapshot (reset), a u == 1 restart, a gap, a crossed book."""
    return [
        _snap(
            100,
            T0 + 10,
            [("42000.10", "1.5"), ("42000.00", "2")],
            [("42000.20", "0.7"), ("42000.30", "3")],
        ),  # 1 q
        _delta(101, T0 + 110, [("41999.90", "4")]),  # 2: below the top, no quote
        _delta(102, T0 + 210, [("42000.10", "0")]),  # 3 q: top bid deleted -> 42000.00 x 2
        _delta(103, T0 + 310, [], [("42000.20", "0.25")]),  # 4 q: top ask size
        _delta(104, T0 + 410, [("42000.15", "0.5")], [("42000.30", "0")]),  # 5 q: new best bid
        _snap(500, T0 + 510, [("41990.00", "1")], [("41990.10", "1")]),  # 6 q: reset
        _delta(1, T0 + 610, [("41000.00", "9")], [("41000.10", "8")]),  # 7 q: u == 1 restart
        _delta(2, T0 + 710, [("41000.00", "10")]),  # 8 q
        _delta(5, T0 + 810, [], [("41000.10", "7")]),  # 9 q, gap (3, 4 missing)
        _delta(6, T0 + 910, [("41000.20", "1")]),  # 10 q, crossed
        _delta(7, T0 + 1010, [("41000.20", "0")]),  # 11 q: uncrossed again
    ]


def _quotes(db: Path) -> dict[str, list]:
    lake = Lake(db)
    days = lake.days("quotes")
    assert days
    import pyarrow as pa

    return pa.concat_tables([lake.read_day("quotes", d) for d in days]).to_pydict()


def test_handmade_book_matches_hand_values_and_oracle(tmp_path: Path) -> None:
    lines = handmade()
    # hand-derived expectations for the clean part (lines 1-8)
    exp_head = [
        (T0 + 10, 42000.1, 1.5, 42000.2, 0.7, 100),
        (T0 + 210, 42000.0, 2.0, 42000.2, 0.7, 102),
        (T0 + 310, 42000.0, 2.0, 42000.2, 0.25, 103),
        (T0 + 410, 42000.15, 0.5, 42000.2, 0.25, 104),
        (T0 + 510, 41990.0, 1.0, 41990.1, 1.0, 500),
        (T0 + 610, 41000.0, 9.0, 41000.1, 8.0, 1),
        (T0 + 710, 41000.0, 10.0, 41000.1, 8.0, 2),
    ]
    oracle = brute_force_l1(lines)
    assert [(c, b, bs, a, az, u) for _ln, c, b, bs, a, az, u in oracle[:7]] == exp_head
    path = tmp_path / "2024-01-01_BTCUSDT_ob500.data.zip"
    path.write_bytes(zip_lines(lines))
    db = tmp_path / "db"
    with pytest.raises(ImportStopped) as ei:
        import_files(db, "bybit-ob", [path])
    msg = str(ei.value)
    assert f"{path}:9:data.u: u gap: expected 3, got 5 (2 update(s) missing)" in msg
    assert f"{path}:10:data.b: crossed book: best bid 41000.2 >= best ask 41000.1" in msg
    # the hand-made book has a 0.05 level: off the instrument's 0.1 grid, named by its line
    assert f"{path}:5:data.b: bid_px 42000.15 is not on the 0.1 tick grid" in msg
    assert not Lake(db).has_data("quotes")  # stop mode: nothing written
    half = load_settings(overrides={"tick_size": 0.05})
    (rep,) = import_files(db, "bybit-ob", [path], on_error="skip", settings=half)
    assert rep.rejected_rows == 2
    assert rep.rejects_path and Path(rep.rejects_path).is_file()
    q = _quotes(db)
    got = list(
        zip(q["ts_ms"], q["bid_px"], q["bid_sz"], q["ask_px"], q["ask_sz"], q["seq"], strict=True)
    )
    kept = [(c, b, bs, a, az, u) for ln, c, b, bs, a, az, u in oracle if ln not in (9, 10)]
    assert got == kept
    assert rep.imported == {"quotes": 8}  # 10 top changes, lines 9 and 10 rejected


def test_delta_before_snapshot_and_bad_line_are_reported(tmp_path: Path) -> None:
    lines = [
        _delta(7, T0 + 5, [("1.0", "1")]),
        _snap(8, T0 + 10, [("100.0", "1")], [("100.1", "1")]),
        '{"topic":"orderbook.500.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[["100.0","x"]],"u":9},"cts":2}',
        "",
        '{"type":"delta", "data": {"b": [["100.0", "2"]], "u": 10}, "cts": ' + str(T0 + 20) + "}",
        "not json at all",
    ]
    path = tmp_path / "x.data"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportStopped) as ei:
        import_files(tmp_path / "db", "bybit-ob", [path])
    msg = str(ei.value)
    assert f"{path}:1:type: delta (u=7) before any snapshot" in msg
    assert f'{path}:3:data.b: not a non-negative decimal number: "x"' in msg
    assert f"{path}:6:message: expected '{{'" in msg
    # the unreadable line 3 was u=9: the next delta (u=10) is reported as a gap after it
    assert f"{path}:5:data.u: u gap: expected 9, got 10" in msg
    rep = ei.value.report
    assert rep.rejected_rows == 4 and rep.blank_lines == 1
    import_files(tmp_path / "db", "bybit-ob", [path], on_error="skip")
    assert _quotes(tmp_path / "db")["bid_sz"] == [1.0]  # the gap line's quote is not stored


def test_synthetic_day_equals_brute_force_and_reimport_is_idempotent(tmp_path: Path) -> None:
    lines = list(bf.synthetic_ob_lines(3000, start_ms=T0, seed=5, depth=200, snapshot_every=1000))
    oracle = brute_force_l1(lines)
    zpath = tmp_path / "2024-01-01_BTCUSDT_ob500.data.zip"
    bf.write_ob_zip(zpath, lines, "2024-01-01_BTCUSDT_ob500.data")
    db = tmp_path / "db"
    (rep,) = import_files(db, "bybit-ob", [zpath])
    assert rep.rejected_rows == 0 and rep.imported["quotes"] == len(oracle)
    assert any("snapshots 3" in n and "max depth 200" in n for n in rep.notes)
    q = _quotes(db)
    got = list(
        zip(q["ts_ms"], q["bid_px"], q["bid_sz"], q["ask_px"], q["ask_sz"], q["seq"], strict=True)
    )
    assert got == [(c, b, bs, a, az, u) for _ln, c, b, bs, a, az, u in oracle]
    # bid < ask everywhere, times non-decreasing
    assert np.all(np.array(q["bid_px"]) < np.array(q["ask_px"]))
    # the same content unzipped has the same source id: no duplicate rows
    plain = tmp_path / "2024-01-01_BTCUSDT_ob500.data"
    with zipfile.ZipFile(zpath) as zf:
        plain.write_bytes(zf.read(zf.namelist()[0]))
    assert source_id(plain) == source_id(zpath)
    (rep2,) = import_files(db, "bybit-ob", [plain])
    assert rep2.status == "skipped"
    (rep3,) = import_files(db, "bybit-ob", [plain], force=True)
    assert rep3.imported["quotes"] == len(oracle)
    assert len(_quotes(db)["ts_ms"]) == len(oracle)


def test_corrupt_zip_is_rejected_and_nothing_imported(tmp_path: Path) -> None:
    lines = list(bf.synthetic_ob_lines(500, start_ms=T0, seed=2, depth=50))
    raw = bytearray(zip_lines(lines))
    mid = len(raw) // 2
    raw[mid : mid + 64] = bytes(64)  # damage the deflate stream
    path = tmp_path / "bad.data.zip"
    path.write_bytes(bytes(raw))
    from at_core.errors import InputError

    with pytest.raises(InputError, match="corrupt"):
        import_files(tmp_path / "db", "bybit-ob", [path])
    assert not Lake(tmp_path / "db").has_data("quotes")


def test_chunk_boundaries_do_not_matter() -> None:
    from at_core._core import Ob500Decoder

    text = ("\n".join(handmade()) + "\n").encode()
    ref = None
    for size in (1, 7, 64, len(text)):
        d = Ob500Decoder()
        for i in range(0, len(text), size):
            d.feed(text[i : i + size])
        d.finish()
        q = {k: v.tolist() for k, v in d.take_quotes().items()}
        a = d.take_anomalies()
        if ref is None:
            ref = (q, a)
        assert (q, a) == ref
