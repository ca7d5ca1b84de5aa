"""The footprint of a data folder the live graph wrote cells into (``footprint_1m``), read
after the graph stopped: covered minutes come from the cells, the others from the stored
trades and sides, and the two agree wherever both exist — so a window half covered gives
exactly the answer of the trades alone. Tampering with one source moves only the minutes
served from it (the proof each part is read where it should be)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from at_core import _core
from at_core.config import load_settings
from at_core.dashboard import market as dash_market
from at_core.features.engine import engine_config, quotes_arrays, trades_arrays
from at_core.live.footprint_recorder import FootprintRecorder
from at_core.storage.query import open_query_connection
from at_core.storage.stores import StorePaths
from tests.market_fixtures import market

M = 60_000
SETTINGS = load_settings()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = tmp_path_factory.mktemp("fp-cells") / "db"
    market(db, 1, 4)
    con = open_query_connection(db)
    t = con.sql("SELECT * FROM raw_trades ORDER BY ts_ms, seq").to_arrow_table()
    q = con.sql("SELECT * FROM raw_quotes ORDER BY ts_ms, seq").to_arrow_table()
    first = con.execute("SELECT min(ts_min) FROM features_1m").fetchone()
    con.close()
    assert first is not None
    return {"db": db, "trades": trades_arrays(t), "quotes": quotes_arrays(q), "first": first[0]}


def _record_cells(db: Path, trades: dict[str, Any], quotes: dict[str, Any]) -> None:
    """What the live features actor leaves in ``features.duckdb``: the engine over the
    same ticks from the first, its sides summed into cells."""
    con = duckdb.connect(str(StorePaths(db).features))
    try:
        rec = FootprintRecorder(con, SETTINGS.tick_size)
        eng = _core.FeatureEngine(engine_config(SETTINGS), record_trades=True)
        closed = [np.asarray(eng.push(trades, quotes)["ts_min"])]
        closed.append(np.asarray(eng.finish()["ts_min"]))
        assert rec.add(trades, dict(eng.take_trade_sides()), eng.pending_trades)
        rec.close(np.concatenate(closed))
    finally:
        con.close()


def _cells(fp: dict[str, Any]) -> dict[tuple[int, float], list[float]]:
    return {
        (fp["ts"][i], fp["price"][i]): [fp["bid"][i], fp["ask"][i], fp["ambiguous"][i]]
        for i in range(len(fp["ts"]))
    }


def test_cells_and_trades_agree_and_each_serves_its_minutes(folder: dict[str, Any]) -> None:
    db = folder["db"]
    start = folder["first"] + 600 * M
    end = start + 120 * M
    from_trades = dash_market.footprint(db, SETTINGS, start, end, 20)
    _record_cells(db, folder["trades"], folder["quotes"])
    con = duckdb.connect(str(StorePaths(db).features))
    n_cover = con.execute("SELECT count(*) FROM footprint_cover").fetchone()
    # leave the first 40 minutes of the window to the trades
    con.execute(
        "DELETE FROM footprint_cover WHERE ts_min >= ? AND ts_min < ?", [start, start + 40 * M]
    )
    con.close()
    assert n_cover is not None and n_cover[0] >= 1400
    mixed = dash_market.footprint(db, SETTINGS, start, end, 20)
    want, got = _cells(from_trades), _cells(mixed)
    assert len(got) == len(mixed["ts"]), "a (minute, bin) served twice"
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-9), k
    assert mixed["ask_imbalance"] == from_trades["ask_imbalance"]

    # a covered minute is read from the cells, an uncovered one from the trades
    covered_m, uncovered_m = start + 60 * M, start + 10 * M
    con = duckdb.connect(str(StorePaths(db).features))
    con.execute("UPDATE footprint_1m SET ask = ask + 1000 WHERE ts_min IN (?, ?)",
                [covered_m, uncovered_m])  # fmt: skip
    con.close()
    moved = _cells(dash_market.footprint(db, SETTINGS, start, end, 20))
    changed = {k[0] for k in want if moved[k] != pytest.approx(want[k], abs=1e-9)}
    assert changed == {covered_m}
