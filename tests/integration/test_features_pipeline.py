"""Lake → feature pipeline → features.duckdb / stage1 store, and the ``features`` command."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
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
    # the 240-minute warm-up (SPEC §16.1): valid from the 240th minute of data on
    assert rep.minutes == 360 and rep.valid_va_minutes == 360 - 239
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


def test_raw_trades_carry_the_inferred_side_and_matched_quote(lake_dir: Path) -> None:
    """SPEC §3.3 raw_trades.inferred_side / quote_* after a features run, across midnight.

    Oracles independent of the engine: the matched quote is DuckDB's ASOF join to the latest
    quote strictly before the trade (the default tie rule), and a trade at or through that
    quote's ask (bid) is a buy (sell) by the quote rule of §5.7."""
    from at_core.storage.query import open_query_connection

    run_features(lake_dir, load_settings(), progress=False)
    con = open_query_connection(lake_dir)
    n_lake = Lake(lake_dir).read_day("trades", dt.date(2024, 4, 4)).num_rows
    n_lake += Lake(lake_dir).read_day("trades", dt.date(2024, 4, 5)).num_rows
    n, n_side = con.execute("SELECT count(*), count(inferred_side) FROM raw_trades").fetchone()
    assert n == n_lake == 360 * 40 and n_side == n  # no trade lost or doubled by the join
    bad = con.execute(
        """
        WITH m AS (
            SELECT t.ts_ms, t.seq, t.price, t.inferred_side, t.quote_bid_px, t.quote_ask_px,
                   t.quote_staleness_ms, q.bid_px, q.ask_px, t.ts_ms - q.ts_ms AS stale
            FROM raw_trades t ASOF LEFT JOIN raw_quotes q ON t.ts_ms > q.ts_ms
        )
        SELECT
            count(*) FILTER (WHERE bid_px IS NULL AND quote_bid_px IS NOT NULL),
            count(*) FILTER (WHERE bid_px IS NOT NULL AND (quote_bid_px IS DISTINCT FROM bid_px
                OR quote_ask_px IS DISTINCT FROM ask_px OR quote_staleness_ms != stale)),
            count(*) FILTER (WHERE price >= ask_px AND inferred_side != 1),
            count(*) FILTER (WHERE price <= bid_px AND inferred_side != -1),
            count(*) FILTER (WHERE bid_px IS NOT NULL)
        FROM m
        """
    ).fetchone()
    assert bad[:4] == (0, 0, 0, 0) and bad[4] > 0.99 * n, bad


def test_trade_sides_with_colliding_keys_are_not_joined(tmp_path: Path) -> None:
    """Two trades with the same (ts_ms, seq) on a day: no sidecar (a join would double
    rows), the day's columns stay NULL; other days are stored."""
    from at_core.features.trade_sides import TradeSidesWriter
    from at_core.storage.lake import sides_dir

    w = TradeSidesWriter(tmp_path)
    d1, d2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)
    w.add_day(d1, np.array([5, 5, 7]), np.array([1, 1, 2]))
    w.add_day(d2, np.array([9, 10]), np.array([1, 2]))
    sides = {
        "trade_sign": np.array([1, -1, 0, 1, 1], np.int8),
        "trade_quote_sign": np.array([1, -1, 0, 1, 1], np.int8),
        "trade_bid_px": np.array([1.0, 1.0, np.nan, 2.0, 2.0]),
        "trade_ask_px": np.array([1.1, 1.1, np.nan, 2.1, 2.1]),
        "trade_staleness_ms": np.array([3, 3, -1, 4, 5]),
    }
    w.add_sides({k: v[:2] for k, v in sides.items()})  # the engine's output lags its input
    w.add_sides({k: v[2:] for k, v in sides.items()})
    w.finish()
    assert not sides_dir(tmp_path).exists(), "staged until the run's features are stored"
    w.commit()
    assert w.skipped_days == [d1]
    assert not (sides_dir(tmp_path) / "date=2024-01-01").exists()
    got = pq.read_table(sides_dir(tmp_path) / "date=2024-01-02" / "sides.parquet").to_pydict()
    assert got["ts_ms"] == [9, 10] and got["inferred_side"] == [1, 1]
    assert got["quote_staleness_ms"] == [4, 5]
