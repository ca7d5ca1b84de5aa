"""Lake → feature pipeline → features.duckdb / stage1 store, and the ``features`` command."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

import at_core._core as core
from at_core import logging as at_logging
from at_core.cli import main
from at_core.config import load_settings
from at_core.errors import InputError
from at_core.features.engine import engine_config, stage2
from at_core.features.pipeline import load_stage1, run_features
from at_core.storage.lake import Lake

MINUTE = 60_000
T0 = 1_712_188_800_000 + 21 * 3_600_000  # 2024-04-04 21:00 UTC; 6 h crosses midnight


def ticks(seed: int = 3, minutes: int = 360) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    nq = minutes * 120
    qts = np.sort(T0 + rng.integers(0, minutes * MINUTE, nq))
    bid = 600_000 + np.cumsum(rng.integers(-1, 2, nq))
    ntr = minutes * 40
    at = np.sort(rng.integers(1, nq, ntr))
    buy = rng.random(ntr) < 0.5
    px = np.where(buy, bid[at - 1] + 1, bid[at - 1])
    trades = pa.table(
        {
            "ts_ms": qts[at],
            "price": px / 10,
            "size": rng.integers(1, 3000, ntr) / 1000,
            "exchange_side": np.where(buy, 1, -1).astype(np.int8),
            "trade_id": [f"t{i}" for i in range(ntr)],
            "seq": np.arange(ntr),
        }
    )
    quotes = pa.table(
        {
            "ts_ms": qts,
            "bid_px": bid / 10,
            "bid_sz": rng.random(nq) * 4,
            "ask_px": (bid + 1) / 10,
            "ask_sz": rng.random(nq) * 4,
            "seq": np.arange(nq),
        }
    )
    return trades, quotes


@pytest.fixture
def lake_dir(db_dir: Path) -> Path:
    t, q = ticks()
    lake = Lake(db_dir)
    lake.write("trades", t, "gen-t")
    lake.write("quotes", q, "gen-q")
    assert len(lake.days("trades")) == 2
    return db_dir


def _rows(db: Path, table: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db / "features.duckdb"), read_only=True)
    try:
        return con.execute(f"SELECT * FROM {table} ORDER BY ts_min").fetchall()
    finally:
        con.close()


def test_pipeline_writes_what_the_engine_computes_across_days(lake_dir: Path) -> None:
    s = load_settings()
    rep = run_features(lake_dir, s, progress=False)
    assert rep.minutes == 360 and rep.valid_va_minutes > 300
    # the day-by-day pipeline equals one batch over all ticks (state carried over midnight)
    t, q = ticks()
    ref = core.features_batch(
        {
            "ts_ms": t["ts_ms"].to_numpy(),
            "seq": t["seq"].to_numpy(),
            "price": t["price"].to_numpy(),
            "size": t["size"].to_numpy(),
            "exchange_side": t["exchange_side"].to_numpy(),
        },
        {k: q[k].to_numpy() for k in ("ts_ms", "seq", "bid_px", "bid_sz", "ask_px", "ask_sz")},
        engine_config(s),
    )
    feats = _rows(lake_dir, "features_1m")
    assert [r[0] for r in feats] == list(ref["ts_min"])
    for row in feats[::37]:
        i = int(np.flatnonzero(ref["ts_min"] == row[0])[0])
        for name, v in zip(
            ("mid_close", "sigma_240", "bin_width", "poc", "vah", "val", "va_coverage"),
            row[1:8],
            strict=True,
        ):
            want = ref[name][i]
            assert (v is None and np.isnan(want)) or v == want, name
    bars = _rows(lake_dir, "bars_1m")
    assert len(bars) == 360 and sum(b[7] for b in bars) == t.num_rows
    # generated trades sit at the touch of the previous quote (a few share its millisecond)
    assert rep.side_agreement["quote_rule_rate"] > 0.999
    assert rep.last_value_area is not None and rep.last_value_area["va_valid"]
    # stage 2 from the stored stage-1 summaries equals what was written
    s1 = load_stage1(lake_dir)
    f2 = stage2(s1, s)
    assert np.array_equal(f2["poc"], ref["poc"], equal_nan=True)
    meta = json.loads((lake_dir / "stage1" / "meta.json").read_text())
    assert meta["stage1_config"]["quote_match"] == "strictly_before"


def test_rerun_is_idempotent_and_range_replaces_only_its_rows(lake_dir: Path) -> None:
    s = load_settings()
    run_features(lake_dir, s, progress=False)
    before = _rows(lake_dir, "features_1m")
    run_features(lake_dir, s, progress=False)
    assert _rows(lake_dir, "features_1m") == before
    # recompute one hour with another alpha: only that hour changes
    lo, hi = T0 + 120 * MINUTE, T0 + 179 * MINUTE
    run_features(
        lake_dir, load_settings(overrides={"alpha_bin": 0.9}), from_ms=lo, to_ms=hi, progress=False
    )
    after = _rows(lake_dir, "features_1m")
    assert len(after) == len(before)
    changed = {a[0] for a, b in zip(after, before, strict=True) if a != b}
    assert changed and all(lo <= ts <= hi for ts in changed)  # type: ignore[operator]
    assert len(_rows(lake_dir, "features_1m_ext")) == len(after)


def test_range_rows_equal_full_run_rows(lake_dir: Path, tmp_path: Path) -> None:
    s = load_settings()
    run_features(lake_dir, s, from_ms=T0 + 300 * MINUTE, to_ms=T0 + 330 * MINUTE, progress=False)
    part = _rows(lake_dir, "features_1m")
    assert len(part) == 31
    run_features(lake_dir, s, progress=False)
    full = {r[0]: r for r in _rows(lake_dir, "features_1m")}
    assert all(full[r[0]] == r for r in part)


def test_empty_lake_is_a_clear_error(db_dir: Path) -> None:
    with pytest.raises(InputError, match="no ticks"):
        run_features(db_dir, load_settings(), progress=False)


def test_cli_summary_json(lake_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        rc = main(["features", "--db-dir", str(lake_dir), "--from", "2024-04-05", "--summary-json"])
        assert rc == 0
        out = json.loads(capsys.readouterr().out)
        assert out["minutes"] == 180 and out["first_minute"] == "2024-04-05T00:00Z"
        assert set(out["ambiguous"]) >= {"mean", "p50", "p95", "max"}
        assert out["side_agreement"]["quote_rule_compared"] > 0
        rc = main(["features", "--db-dir", str(lake_dir), "--from", "yesterday"])
        assert rc == 2
        assert "--from" in capsys.readouterr().err
    finally:
        # main() configures structlog with the stream that is sys.stderr *now* (capsys's);
        # re-bind the real one so later tests do not log into a closed capture file
        with capsys.disabled():
            at_logging.configure("INFO")


def test_fill_reference_is_the_first_quote_after_the_close(lake_dir: Path) -> None:
    run_features(lake_dir, load_settings(), progress=False)
    con = duckdb.connect(str(lake_dir / "features.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT ts_min, fill_ts, fill_bid_px, fill_ask_px FROM features_1m_ext ORDER BY ts_min"
    ).fetchall()
    con.close()
    _, q = ticks()
    qts = q["ts_ms"].to_numpy()
    for ts_min, fill_ts, bid, ask in rows[::23]:
        j = np.searchsorted(qts, ts_min + MINUTE, side="left")  # first quote at/after close + 1 ms
        if j == len(qts):
            assert fill_ts is None
            continue
        assert fill_ts == qts[j] and fill_ts > ts_min + MINUTE - 1
        assert (bid, ask) == (q["bid_px"][j].as_py(), q["ask_px"][j].as_py())
