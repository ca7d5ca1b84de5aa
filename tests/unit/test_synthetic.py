"""The synthetic market: determinism (arrays and Parquet bytes), invariants, lake behaviour."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from at_core import _core
from at_core.cli import main as cli_main
from at_core.errors import CoreConfigError, CoreError, InputError, StorageError
from at_core.ingest.synthetic import (
    check_accept_prob,
    generate_market,
    generate_range,
    source_id,
)
from at_core.storage.lake import Lake, day_start_ms

START = dt.date(2024, 1, 1)
T0 = day_start_ms(START)
MIN = 60_000


def _equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def test_same_seed_same_arrays_however_chunked() -> None:
    end = T0 + 15 * MIN
    whole = generate_range(3, T0, end)
    g = _core.SynthGenerator(3, T0)
    edges = [T0 + 1, T0 + 7_777, T0 + 7_777, T0 + 2 * MIN, T0 + 9 * MIN + 1, end]
    chunked = _concat([g.generate(e) for e in edges])
    assert _equal(whole, chunked)
    assert g.now_ms == end
    assert len(whole["trade_ts_ms"]) > 1_000


def test_different_seed_different_market() -> None:
    a = generate_range(1, T0, T0 + 5 * MIN)
    b = generate_range(2, T0, T0 + 5 * MIN)
    assert not np.array_equal(a["trade_price"][:100], b["trade_price"][:100])


def test_invariants_of_the_ticks() -> None:
    d = generate_range(11, T0, T0 + 20 * MIN)
    # prices on the 0.10 grid, sizes on the 0.001 grid, positive
    for k in ("trade_price", "bid_px", "ask_px"):
        t = d[k] * 10
        assert np.all(np.abs(t - np.rint(t)) < 1e-6), k
    for k in ("trade_size", "bid_sz", "ask_sz"):
        lots = d[k] * 1000
        assert np.all(np.abs(lots - np.rint(lots)) < 1e-6) and np.all(d[k] >= 0.001), k
    assert np.all(np.rint(d["bid_px"] * 10) < np.rint(d["ask_px"] * 10))
    assert set(np.unique(d["trade_side"]).tolist()) == {-1, 1}
    # time monotone inside the range, seq unique and increasing along time
    for ts in (d["trade_ts_ms"], d["quote_ts_ms"]):
        assert np.all(np.diff(ts) >= 0) and ts.min() >= T0 and ts.max() < T0 + 20 * MIN
    seq = np.concatenate([d["trade_seq"], d["quote_seq"]])
    ts = np.concatenate([d["trade_ts_ms"], d["quote_ts_ms"]])
    assert len(np.unique(seq)) == len(seq)
    order = np.argsort(seq)
    assert np.all(np.diff(ts[order]) >= 0)
    # the first event is a quote: no trade without a book
    assert d["quote_seq"][0] < d["trade_seq"][0]


def test_a_trade_and_the_quote_it_causes_share_the_millisecond() -> None:
    d = generate_range(5, T0, T0 + 20 * MIN)
    # the quote right after each order (by seq) carries the order's ms
    qseq, qts = d["quote_seq"], d["quote_ts_ms"]
    last_of_order = np.ones(len(d["trade_seq"]), dtype=bool)
    last_of_order[:-1] = d["trade_seq"][1:] != d["trade_seq"][:-1] + 1
    after = np.searchsorted(qseq, d["trade_seq"][last_of_order])
    ok = after < len(qseq)
    same_ms = qts[after[ok]] == d["trade_ts_ms"][last_of_order][ok]
    assert same_ms.mean() > 0.85


def test_bad_arguments_are_refused(db_dir: Path) -> None:
    with pytest.raises(InputError, match="--days"):
        generate_market(db_dir, 0, 1)
    with pytest.raises(InputError, match="--seed"):
        generate_market(db_dir, 1, -1)
    g = _core.SynthGenerator(1, T0)
    g.generate(T0 + 5_000)
    with pytest.raises(CoreError, match="already generated"):
        g.generate(T0 + 1_000)


def _digest(lake: Lake, sid: str) -> dict[str, str]:
    out = {}
    for p in sorted(lake.root.glob(f"*/date=*/part-{sid}.parquet")):
        out[str(p.relative_to(lake.root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.mark.slow
def test_cli_writes_reproducible_bytes_and_reruns_replace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    rc = cli_main(["generate", "--db-dir", str(a), "--days", "1", "--seed", "9", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    sid = source_id(9, START)
    assert summary["source_id"] == sid and summary["days"] == 1
    assert summary["trades"] > 100_000 and summary["quotes"] > summary["trades"]
    assert 30_000 < summary["price_min"] < summary["price_max"] < 70_000
    lake_a = Lake(a)
    first = _digest(lake_a, sid)
    assert len(first) == 2
    # same command again: same bytes, no duplicate rows
    assert cli_main(["generate", "--db-dir", str(a), "--days", "1", "--seed", "9"]) == 0
    assert _digest(lake_a, sid) == first
    rec = lake_a.imported(sid)
    assert rec is not None and rec["trades"] == summary["trades"]
    # a 2-day run writes the identical first day (state carried, not restarted per day)
    generate_market(b, 2, 9, START)
    second = _digest(Lake(b), sid)
    assert {k: v for k, v in second.items() if "2024-01-01" in k} == first
    assert len(second) == 4
    t = Lake(b).read_day("trades", START)
    assert t["exchange_side"].null_count == 0 and t["seq"].null_count == 0


@pytest.mark.slow
def test_other_sources_refused_unless_forced(db_dir: Path) -> None:
    lake = Lake(db_dir)
    foreign = pa.table(
        {
            "ts_ms": pa.array([T0 + 5, T0 + 4 * 86_400_000 + 5], pa.int64()),
            "price": [42000.0, 42000.1],
            "size": [0.5, 0.5],
            "seq": pa.array([1, 2], pa.int64()),
        }
    )
    lake.write("trades", foreign, "import-x")
    lake.sources.record("import-x", "/somewhere/x.csv", "csv", 2, 0, 0)
    with pytest.raises(StorageError, match="import-x"):
        generate_market(db_dir, 1, 4, START)
    assert len(lake.parts("trades", START)) == 1  # nothing written, nothing removed
    summary = generate_market(db_dir, 1, 4, START, force=True)
    sid = source_id(4, START)
    assert [p.name for p in lake.parts("trades", START)] == [f"part-{sid}.parquet"]
    assert summary["removed_parts"] == [
        {"source_id": "import-x", "kind": "trades", "day": "2024-01-01", "rows": 1}
    ]
    # the foreign source's other day is untouched and its manifest row says what remains
    assert len(lake.parts("trades", START + dt.timedelta(days=4))) == 1
    rec = lake.imported("import-x")
    assert rec is not None and rec["trades"] == 1


# ---- activity: a busier market -------------------------------------------------------


def test_activity_one_is_the_default_market_and_more_activity_more_events() -> None:
    end = T0 + 10 * MIN
    default = generate_range(6, T0, end)
    assert _equal(default, dict(_core.SynthGenerator(6, T0, activity=1.0).generate(end)))
    assert _core.SynthGenerator(6, T0, activity=2.5).activity == 2.5
    busy = generate_range(6, T0, end, activity=4.0)
    # the activity path differs between runs, so only "clearly more" over ten minutes
    for k in ("trade_ts_ms", "quote_ts_ms"):
        assert len(busy[k]) > 2 * len(default[k]), k


def test_source_id_names_the_activity_only_when_not_one() -> None:
    base = source_id(9, START)
    assert (
        source_id(9, START, 1.0) == base == f"synth-v{_core.synth_generator_version()}-s9-20240101"
    )
    assert source_id(9, START, 3.3) == f"{base}-a3.3"
    assert source_id(9, START, 2.0) == f"{base}-a2"
    assert source_id(9, START, 0.05) == f"{base}-a0.05"
    assert len({source_id(9, START, a) for a in (0.5, 0.50001, 1.0, 2.0, 20.0)}) == 5


def test_generate_market_with_activity_is_another_source(db_dir: Path) -> None:
    # a quiet market (activity 0.05: ~1/20 of a day's events) keeps this fast
    s = generate_market(db_dir, 1, 9, START, activity=0.05, progress=False)
    sid = source_id(9, START, 0.05)
    assert s["source_id"] == sid and sid.endswith("-a0.05") and s["activity"] == 0.05
    lake = Lake(db_dir)
    assert [p.name for p in lake.parts("trades", START)] == [f"part-{sid}.parquet"]
    rec = lake.imported(sid)
    assert rec is not None and rec["trades"] == s["trades"] and "activity=0.05" in str(rec["path"])
    first = _digest(lake, sid)
    # re-generation is idempotent: same bytes, no duplicates
    again = generate_market(db_dir, 1, 9, START, activity=0.05, progress=False)
    assert _digest(lake, sid) == first and again["trades"] == s["trades"]
    # the same seed at another activity is another market: refused on the same day
    with pytest.raises(StorageError, match=sid):
        generate_market(db_dir, 1, 9, START, activity=0.1, progress=False)
    assert 2_000 < s["trades"] < 200_000 and s["quotes"] > s["trades"]


@pytest.mark.parametrize("bad", [0.0, -1.0, 20.5, float("nan"), float("inf")])
def test_bad_activity_is_refused(db_dir: Path, bad: float) -> None:
    with pytest.raises(InputError, match="--activity"):
        generate_market(db_dir, 1, 1, activity=bad)
    with pytest.raises(InputError, match="--activity"):
        generate_range(1, T0, T0 + MIN, activity=bad)
    with pytest.raises(CoreError, match="activity"):
        _core.SynthGenerator(1, T0, activity=bad)
    assert not Lake(db_dir).days("trades")


@pytest.mark.parametrize("bad", ["0", "-2", "21", "nan", "inf"])
def test_cli_validates_activity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    rc = cli_main(["generate", "--db-dir", str(tmp_path / "db"), "--activity", bad])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--activity" in err and "(0, 20]" in err
    assert not (tmp_path / "db" / "lake").exists() or not Lake(tmp_path / "db").days("trades")


def test_cli_activity_not_a_number_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(["generate", "--activity", "busy"])
    assert exc.value.code == 2
    assert "--activity" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["generate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--activity K" in help_text and "~150 M trades and quotes" in help_text


def test_cli_generates_a_busier_market(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "db"
    rc = cli_main(["generate", "--db-dir", str(db), "--activity", "0.05", "--seed", "3", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["source_id"] == source_id(3, START, 0.05) and summary["activity"] == 0.05


# ---- accept_prob: a market with a planted continuation edge ----------------------------


def test_accept_prob_is_another_market_and_its_own_source() -> None:
    end = T0 + 30 * MIN
    default = generate_range(6, T0, end)
    same = dict(_core.SynthGenerator(6, T0, accept_prob=0.55).generate(end))
    assert _equal(default, same)  # the calibrated value is the default market, bit for bit
    assert _core.SynthGenerator(6, T0).accept_prob == 0.55
    base = source_id(9, START)
    assert source_id(9, START, 1.0, 0.97) == f"{base}-p0.97"
    assert source_id(9, START, 2.0, 0.9) == f"{base}-a2-p0.9"
    assert check_accept_prob(0.55) is None and check_accept_prob(0.97) == 0.97  # one market, one id
    for bad in (1.5, -0.1, float("nan"), "0.9", True):
        with pytest.raises(InputError, match="accept-prob"):
            check_accept_prob(bad)  # type: ignore[arg-type]
    with pytest.raises(CoreConfigError, match="accept_prob"):
        _core.SynthGenerator(6, T0, accept_prob=1.5)
