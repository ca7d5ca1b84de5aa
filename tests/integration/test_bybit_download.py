"""``download bybit`` / ``download bybit-funding`` against a loopback server serving files in
Bybit's exact archive formats: success, resume, missing day, corrupt file, funding paging,
and download -> import -> side agreement (-> features)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from bybit_loopback import ArchiveServer, brute_force_l1, day_ms, funding_rows, make_day

from at_core.cli import main as cli_main
from at_core.errors import StorageError
from at_core.ingest import bybit_files as bf
from at_core.ingest.download import (
    Fetcher,
    download_bybit,
    download_funding,
    funding_rates,
    side_agreement,
)
from at_core.storage.lake import Lake

D1 = dt.date(2024, 1, 1)
D2 = dt.date(2024, 1, 2)
D3 = dt.date(2024, 1, 3)


@pytest.fixture(scope="module")
def days() -> dict[dt.date, object]:
    return {
        D1: make_day(D1, rpi=True, seed=3),
        D2: make_day(D2, rpi=False, newest_first=True, seed=4),  # old-style file
    }


@pytest.fixture
def server(days: dict) -> Iterator[ArchiveServer]:
    s = ArchiveServer()
    for d in days.values():
        s.add_day(d)
    s.start()
    yield s
    s.stop()


def fetcher() -> Fetcher:
    return Fetcher(retries=3, backoff_s=0.0, timeout_s=10.0, progress=False, sleep=lambda _s: None)


def _table(db: Path, kind: str) -> pa.Table:
    lake = Lake(db)
    return pa.concat_tables([lake.read_day(kind, d) for d in lake.days(kind)])  # type: ignore[arg-type]


def _download(db: Path, server: ArchiveServer, first: dt.date, last: dt.date, **kw: Any) -> list:
    return download_bybit(
        db,
        "BTCUSDT",
        first,
        last,
        archive_url=server.url,
        orderbook_url=server.url,
        fetcher=fetcher(),
        **kw,
    )


def test_two_days_download_import_and_side_agreement(
    tmp_path: Path, server: ArchiveServer, days: dict
) -> None:
    db = tmp_path / "db"
    reps = _download(db, server, D1, D2)
    assert [r.status for r in reps] == ["imported", "imported"], [r.summary() for r in reps]
    for r in reps:
        d = days[r.day]
        assert r.trades == len(d.trades)
        assert r.quotes == len(brute_force_l1(d.ob_lines))
    # files are removed after import; nothing partial is left behind
    assert not [p for p in (db / "downloads").rglob("*") if p.is_file()]
    t = _table(db, "trades")
    # the newest-first day is stored in event order, sides are the archive's taker sides
    assert np.all(np.diff(t["ts_ms"].to_numpy()) >= 0)
    buys = sum(1 for d in days.values() for s in d.sides if s == 1)
    assert int((t["exchange_side"].to_numpy() == 1).sum()) == buys
    # quote rule vs Bybit's taker side: every fixture trade was printed at the touch
    sa = side_agreement(db, day_ms(D1), day_ms(D2) + 86_400_000)
    assert sa.trades == sa.matched == sa.decided == t.num_rows
    assert sa.agree == sa.decided and sa.fraction == 1.0
    # a second run skips both days without any request
    n = len(server.requests)
    again = _download(db, server, D1, D2)
    assert [r.status for r in again] == ["skipped", "skipped"]
    assert len(server.requests) == n


def test_resume_after_interrupted_transfer(
    tmp_path: Path, server: ArchiveServer, days: dict
) -> None:
    path = bf.ob_path("BTCUSDT", D1)
    server.cut[path] = 3000  # the first response stops after 3000 bytes
    db = tmp_path / "db"
    (rep,) = _download(db, server, D1, D1)
    assert rep.status == "imported", rep.summary()
    ranges = [r for p, r in server.requests if p == path]
    assert ranges == [None, "bytes=3000-"]
    assert rep.quotes == len(brute_force_l1(days[D1].ob_lines))


def test_resume_of_a_partial_file_left_by_an_earlier_run(
    tmp_path: Path, server: ArchiveServer, days: dict
) -> None:
    db = tmp_path / "db"
    rel = bf.trade_path("BTCUSDT", D1).lstrip("/")
    part = db / "downloads" / "bybit" / (rel + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(days[D1].trades_gz[:100])
    (rep,) = _download(db, server, D1, D1, keep_files=True)
    assert rep.status == "imported"
    assert ("/" + rel, "bytes=100-") in server.requests
    assert (db / "downloads" / "bybit" / rel).read_bytes() == days[D1].trades_gz
    assert [f.status for f in rep.files] == ["resumed", "downloaded"]


def test_missing_day_is_reported_and_other_days_import(
    tmp_path: Path, server: ArchiveServer
) -> None:
    db = tmp_path / "db"
    reps = _download(db, server, D2, D3)
    assert [r.status for r in reps] == ["imported", "missing"]
    assert "HTTP 404" in reps[1].message and "not published" in reps[1].message
    assert Lake(db).days("trades") == [D2]


def test_corrupt_file_is_rejected_and_nothing_imported(
    tmp_path: Path, server: ArchiveServer, days: dict
) -> None:
    raw = bytearray(days[D1].ob_zip)
    mid = len(raw) // 2
    raw[mid : mid + 200] = bytes(200)
    server.files[bf.ob_path("BTCUSDT", D1)] = bytes(raw)
    db = tmp_path / "db"
    (rep,) = _download(db, server, D1, D1)
    assert rep.status == "failed" and "corrupt" in rep.message and "nothing imported" in rep.message
    assert not Lake(db).has_data("trades") and not Lake(db).has_data("quotes")
    assert not list((db / "downloads").rglob("*.part"))  # a corrupt download is deleted
    gz = bytearray(days[D2].trades_gz)
    gz[-8:-4] = b"\0\0\0\0"  # gzip CRC trailer
    server.files[bf.trade_path("BTCUSDT", D2)] = bytes(gz)
    (rep2,) = _download(db, server, D2, D2)
    assert rep2.status == "failed" and "gzip" in rep2.message
    assert not Lake(db).has_data("trades")


def test_orderbook_gap_fails_the_day_in_stop_mode_and_skip_imports(
    tmp_path: Path, server: ArchiveServer, days: dict
) -> None:
    lines = list(days[D1].ob_lines)
    del lines[500]  # one delta lost: u gap at the next line
    from bybit_loopback import zip_lines

    server.files[bf.ob_path("BTCUSDT", D1)] = zip_lines(lines)
    db = tmp_path / "db"
    (rep,) = _download(db, server, D1, D1)
    assert rep.status == "failed" and ":501:data.u: u gap" in rep.message
    assert not Lake(db).has_data("quotes")
    (rep,) = _download(db, server, D1, D1, on_error="skip")
    assert rep.status == "imported" and rep.quotes > 0


def test_funding_history_pages_and_rates(tmp_path: Path, server: ArchiveServer) -> None:
    server.funding = funding_rows(dt.date(2023, 10, 1), 450)  # 150 days at 8 h: 3 pages
    db = tmp_path / "db"
    with pytest.raises(StorageError, match="download bybit-funding"):
        funding_rates(db, 0, 1)
    got, total = download_funding(
        db,
        "BTCUSDT",
        dt.date(2023, 10, 1),
        dt.date(2024, 2, 27),
        rest_url=server.url,
        fetcher=fetcher(),
    )
    assert got == total == 450
    calls = [p for p, _r in server.requests if p == "/v5/market/funding/history"]
    assert len(calls) == 3
    lo, hi = day_ms(dt.date(2024, 1, 1)), day_ms(dt.date(2024, 1, 2))
    ts, rate = funding_rates(db, lo, hi)
    assert ts.tolist() == [lo, lo + 8 * 3_600_000, lo + 16 * 3_600_000]
    # record i has rate 0.0001 + 0.00001 * ((i % 7) - 3); 2024-01-01 00:00 is record 276
    assert rate.tolist() == [
        pytest.approx(0.0001 + 0.00001 * (((276 + k) % 7) - 3)) for k in range(3)
    ]
    # downloading an overlapping range again does not duplicate instants
    _got, total2 = download_funding(
        db,
        "BTCUSDT",
        dt.date(2024, 1, 1),
        dt.date(2024, 1, 1),
        rest_url=server.url,
        fetcher=fetcher(),
    )
    assert total2 == 450


def test_cli_download_and_features(
    tmp_path: Path, server: ArchiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db"
    sets = [
        "--set",
        f"bybit_archive_base_url={server.url}",
        "--set",
        f"bybit_orderbook_base_url={server.url}",
        "--set",
        f"bybit_rest_base_url={server.url}",
    ]
    from at_core import cli

    if "at_core.ingest.cli_download" not in cli.COMMAND_MODULES:
        cli.COMMAND_MODULES.append("at_core.ingest.cli_download")
    rc = cli_main(
        [
            "download",
            "bybit",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-03",
            "--db-dir",
            str(db),
            *sets,
        ]
    )
    out = capsys.readouterr()
    assert rc == 1  # 2024-01-03 does not exist
    assert "2024-01-01: imported" in out.out and "2024-01-03: missing" in out.out
    assert "side agreement (quote rule vs Bybit taker side): 100.00 %" in out.out
    server.funding = funding_rows(dt.date(2024, 1, 1), 6)
    rc = cli_main(
        [
            "download",
            "bybit-funding",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-02",
            "--db-dir",
            str(db),
            *sets,
        ]
    )
    assert rc == 0 and "6 rate(s) fetched" in capsys.readouterr().out
    # features from the downloaded days, when the feature pipeline is available
    pipeline = pytest.importorskip("at_core.features.pipeline")
    from at_core.config import load_settings

    rep = pipeline.run_features(db, load_settings(None, []), progress=False)
    agreement = rep.side_agreement
    # the feature engine's quote rule (strictly before) signs all 300 fixture trades right
    assert agreement["quote_rule_compared"] == 300 and agreement["quote_rule_rate"] == 1.0, (
        agreement
    )
    # ... and the backtest leg on the same downloaded data, with the downloaded funding
    # history. The fixture days hold only minutes of book, far less than the 240-minute
    # warm-up, so the contract here is a clean run with no trade, never a crash.
    capsys.readouterr()
    rc = cli_main(
        ["backtest", "--db-dir", str(db), "--json", "--set", "funding_source=history", *sets]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    import json as _json

    res = _json.loads(out.out.strip().splitlines()[-1])
    assert res["metrics"]["n_trades"] == 0 and res["trades"] == []
