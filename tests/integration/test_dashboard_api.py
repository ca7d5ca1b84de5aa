"""The dashboard's API over a data folder made as a trader makes one (generate, features,
backtest, grid run): every endpoint answers, and its numbers are checked against
independent evidence — the raw ticks and the stored tables read directly, not the
dashboard's own code. Bad parameters get a 4xx with a message, never a 500 (a property
test over every endpoint of the OpenAPI schema)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from at_core.storage.query import open_query_connection

pytestmark = pytest.mark.slow
MIN = 60_000


@pytest.fixture(scope="module")
def client(dashboard_db: dict[str, Any]) -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from fastapi.testclient import TestClient

    from at_core.dashboard.app import create_app

    return TestClient(create_app(dashboard_db["db"], dashboard_db["settings"]))  # type: ignore[arg-type]


def _con(db: Path) -> duckdb.DuckDBPyConnection:
    return open_query_connection(db)


def test_meta_and_minutes_are_the_stored_rows(client: Any, dashboard_db: dict[str, Any]) -> None:
    meta = client.get("/api/meta").json()
    ext = meta["extent"]
    assert ext["minutes"] == 5 * 1440
    assert (
        meta["thresholds"]["ambiguous_alert"] == dashboard_db["settings"].ambiguous_trade_frac_max
    )
    start = ext["first_ts_min"] + 600 * MIN
    r = client.get("/api/minutes", params={"start": start, "end": start + 120 * MIN})
    assert r.status_code == 200
    d = r.json()
    con = _con(dashboard_db["db"])
    rows = con.execute(
        "SELECT f.ts_min, b.close, f.poc, f.vah, f.val, f.of_1m, f.ambiguous_trade_frac_1m "
        "FROM features_1m f JOIN bars_1m b USING (ts_min) WHERE f.ts_min >= ? AND f.ts_min < ? "
        "ORDER BY 1",
        [start, start + 120 * MIN],
    ).fetchall()
    assert d["ts"] == [r[0] for r in rows]
    for i, row in enumerate(rows):
        for j, col in enumerate(("close", "poc", "vah", "val", "of_1m"), 1):
            assert d[col][i] == pytest.approx(row[j], nan_ok=True)
    last2 = client.get("/api/minutes", params={"days": 2}).json()
    assert last2["end"] == ext["last_ts_min"] + MIN and len(last2["ts"]) == 2 * 1440
    assert last2["ts"][0] == last2["start"] == ext["last_ts_min"] + MIN - 2 * 1440 * MIN
    for bad in ({"days": 2, "start": start}, {"start": start}, {"days": 0}, {}):
        r = client.get("/api/minutes", params=bad)
        assert r.status_code == 400 and r.json()["detail"], (bad, r.text)
    # the bars' volume is the ticks' volume (evidence: raw_trades, not bars_1m)
    vol = dict(
        con.execute(
            "SELECT (ts_ms // 60000) * 60000, sum(size) FROM raw_trades "
            "WHERE ts_ms >= ? AND ts_ms < ? GROUP BY 1",
            [start, start + 120 * MIN],
        ).fetchall()
    )
    for t, v in zip(d["ts"], d["volume"], strict=True):
        assert v == pytest.approx(vol.get(t, 0.0), rel=1e-9, abs=1e-9)


def test_footprint_cells_are_the_ticks_binned(client: Any, dashboard_db: dict[str, Any]) -> None:
    db = dashboard_db["db"]
    tick = dashboard_db["settings"].tick_size
    start = client.get("/api/meta").json()["extent"]["first_ts_min"] + 1000 * MIN
    fp = client.get(
        "/api/footprint", params={"start": start, "end": start + 240 * MIN, "bin_ticks": 50}
    ).json()
    t = (
        _con(db)
        .execute(
            "SELECT ts_ms, price, size, coalesce(inferred_side, exchange_side, 0) AS side "
            "FROM raw_trades WHERE ts_ms >= ? AND ts_ms < ?",
            [start, start + 240 * MIN],
        )
        .fetchnumpy()
    )
    minute = (t["ts_ms"] // MIN) * MIN
    k = np.floor(np.round(t["price"] / tick) / 50).astype(np.int64)
    want: dict[tuple[int, float], list[float]] = {}
    for m, kk, s, side in zip(minute, k, t["size"], t["side"], strict=True):
        cell = want.setdefault((int(m), round(int(kk) * 50 * tick, 6)), [0.0, 0.0, 0.0])
        cell[0 if side < 0 else 1 if side > 0 else 2] += float(s)
    got = {
        (fp["ts"][i], round(fp["price"][i], 6)): [fp["bid"][i], fp["ask"][i], fp["ambiguous"][i]]
        for i in range(len(fp["ts"]))
    }
    assert got.keys() == want.keys()
    for key, (b, a, n) in want.items():
        assert got[key] == pytest.approx([b, a, n], abs=1e-9)
    i = next(i for i, x in enumerate(fp["ask_imbalance"]) if x)
    below = got.get((fp["ts"][i], round(fp["price"][i] - 50 * tick, 6)))
    assert below is not None and fp["ask"][i] >= 3 * below[0] > 0


def test_profile_is_the_one_behind_the_stored_features(
    client: Any, dashboard_db: dict[str, Any]
) -> None:
    con = _con(dashboard_db["db"])
    first = client.get("/api/meta").json()["extent"]["first_ts_min"]
    for ts in (first + 300 * MIN, first + 2000 * MIN, first + 5000 * MIN + 17 * MIN):
        p = client.get("/api/profile", params={"ts_min": ts}).json()
        poc, vah, val, total, n = con.execute(
            "SELECT poc, vah, val, total_volume_4h, va_bin_count FROM features_1m WHERE ts_min = ?",
            [ts],
        ).fetchone()  # type: ignore[misc]
        assert (p["poc"], p["vah"], p["val"], p["va_bin_count"]) == (poc, vah, val, n)
        assert sum(p["volume"]) == pytest.approx(total, rel=1e-9)
        raw = con.execute(
            "SELECT sum(size) FROM raw_trades WHERE ts_ms >= ? AND ts_ms < ?",
            [ts - 239 * MIN, ts + MIN],
        ).fetchone()[0]  # type: ignore[index]
        assert p["total_volume"] == pytest.approx(raw, rel=1e-9)
    assert client.get("/api/profile", params={"ts_min": first + 1}).status_code == 400
    assert client.get("/api/profile", params={"ts_min": 0}).status_code == 400


def test_backtest_runs_trades_and_equity(client: Any, dashboard_db: dict[str, Any]) -> None:
    runs = client.get("/api/backtests").json()
    assert [r["run_id"] for r in runs] == [dashboard_db["backtest"]]
    bt = client.get(f"/api/backtests/{dashboard_db['backtest']}").json()
    assert len(bt["trades"]) == runs[0]["n_trades"] > 0
    init = dashboard_db["settings"].initial_equity
    net = sum(t["net_pnl"] for t in bt["trades"])
    assert bt["equity"]["equity"][-1] == pytest.approx(init + net, abs=1e-6)
    assert bt["metrics"]["net_pnl"] == pytest.approx(net, abs=1e-6)
    dd = np.asarray(bt["equity"]["drawdown"])
    assert -dd.min() == pytest.approx(bt["metrics"]["max_drawdown_pct"], rel=1e-9)
    assert client.get("/api/backtests/nope").status_code == 404


def test_sweep_table_sorts_filters_and_pages(client: Any, dashboard_db: dict[str, Any]) -> None:
    run = dashboard_db["sweep"]
    assert [r["run_id"] for r in client.get("/api/sweeps").json()] == [run]
    info = client.get(f"/api/sweeps/{run}").json()
    assert info["n_rows"] == 12 and set(info["swept"]) == {
        "alpha_bin",
        "accept_outside_k",
        "max_hold_minutes",
    }
    page = client.get(
        f"/api/sweeps/{run}/rows", params={"sort": "metric.n_trades", "order": "asc", "limit": 5}
    ).json()
    assert page["total"] == 12 and len(page["rows"]) == 5
    n = [r["metric.n_trades"] for r in page["rows"]]
    assert n == sorted(n)
    f = client.get(
        f"/api/sweeps/{run}/rows",
        params={"filter": ["param.accept_outside_k=2", "param.max_hold_minutes>=60"]},
    ).json()
    assert f["total"] == 2
    assert all(
        r["param.accept_outside_k"] == 2 and r["param.max_hold_minutes"] == 60 for r in f["rows"]
    )
    # default order: the sweep's ranking (net_pnl, best first)
    ranked = [r["metric.net_pnl"] for r in client.get(f"/api/sweeps/{run}/rows").json()["rows"]]
    assert ranked == sorted(ranked, reverse=True)
    for bad in ({"sort": "nope"}, {"order": "up"}, {"filter": "param.alpha_bin~1"},
                {"filter": "nope>1"}, {"limit": 0}, {"offset": -1}):  # fmt: skip
        r = client.get(f"/api/sweeps/{run}/rows", params=bad)
        assert 400 <= r.status_code < 500 and r.json()["detail"], (bad, r.text)
    assert client.get("/api/sweeps/nope/rows").status_code == 404


def test_sweep_equity_csv_sensitivity_and_validation(
    client: Any, dashboard_db: dict[str, Any]
) -> None:
    run = dashboard_db["sweep"]
    rows = client.get(f"/api/sweeps/{run}/rows", params={"limit": 12}).json()["rows"]
    best = rows[0]
    e = client.get(f"/api/sweeps/{run}/equity/{best['result_id']}").json()
    init = dashboard_db["settings"].initial_equity
    assert e["equity"][-1] == pytest.approx(init + best["metric.net_pnl"], rel=1e-9, abs=1e-6)
    assert len(e["day_ms"]) == 5
    assert client.get(f"/api/sweeps/{run}/equity/999999").status_code == 404

    text = client.get(f"/api/sweeps/{run}/export.csv").text
    got = list(csv.DictReader(io.StringIO(text)))
    assert len(got) == 12 and {"result_id", "param.alpha_bin", "metric.net_pnl", "stat.dsr"} <= set(
        got[0]
    )

    s1 = client.get(f"/api/sweeps/{run}/sensitivity", params={"keys": "accept_outside_k"}).json()
    assert [c["values"] for c in s1["cells"]] == [[1], [2], [3]]
    assert all(c["n"] == 4 for c in s1["cells"])
    by_k = {
        k: [r["metric.net_pnl"] for r in rows if r["param.accept_outside_k"] == k]
        for k in (1, 2, 3)
    }
    for c in s1["cells"]:
        assert c["mean"] == pytest.approx(sum(by_k[c["values"][0]]) / 4)
        assert c["best"] == pytest.approx(max(by_k[c["values"][0]]))
    s2 = client.get(
        f"/api/sweeps/{run}/sensitivity", params={"keys": "alpha_bin,max_hold_minutes"}
    ).json()
    assert len(s2["cells"]) == 4 and all(c["n"] == 3 for c in s2["cells"])
    for bad in ("", "nope", "alpha_bin,alpha_bin", "a,b,c"):
        assert client.get(f"/api/sweeps/{run}/sensitivity", params={"keys": bad}).status_code == 400

    v = client.get(f"/api/sweeps/{run}/validation").json()
    assert v["available"], v
    s = v["summary"]
    assert 1.0 <= s["n_eff"] <= 12 and 0.0 <= s["winner"]["dsr"] <= 1.0
    assert s["winner_flagged"] == (s["winner"]["dsr"] < s["dsr_min"])
    assert v["plots"], v
    png = client.get(f"/api/sweeps/{run}/plots/{v['plots'][0]}")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert client.get(f"/api/sweeps/{run}/plots/..%2Fx.png").status_code in (400, 404)


_TEXT = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["", "nan", "1e400", "-1", "0", "1704067200000", "metric.net_pnl", "a,b"]),
)


def _paths(client: Any) -> list[tuple[str, list[str]]]:
    spec = client.get("/openapi.json").json()
    out = []
    for path, ops in spec["paths"].items():
        if "get" in ops:
            params = [p["name"] for p in ops["get"].get("parameters", []) if p["in"] == "query"]
            out.append((path, params))
    return out


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_request_is_answered_with_a_server_error(
    client: Any, dashboard_db: dict[str, Any], data: st.DataObject
) -> None:
    """Any path parameter and any query value on every GET endpoint of the OpenAPI schema:
    a 2xx or a 4xx with a message, never a 5xx."""
    path, params = data.draw(st.sampled_from(_paths(client)))
    run = data.draw(
        st.sampled_from([dashboard_db["sweep"], dashboard_db["backtest"], "x", "%00", "..", "a b"])
    )

    def part(x: str) -> str:
        return quote(x, safe="") or "1"

    names = st.sampled_from(["x.png", "../../etc/passwd", "pbo.png", "a"])
    url = (
        path.replace("{run_id}", part(run))
        .replace("{result_id}", part(data.draw(_TEXT)))
        .replace("{name}", part(data.draw(names)))
    )
    q = {p: data.draw(_TEXT) for p in params if data.draw(st.booleans())}
    r = client.get(url, params=q)
    assert r.status_code < 500, (url, q, r.status_code, r.text[:500])
    if r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/json"):
        body = r.json()
        assert body.get("detail"), (url, q, body)


def test_without_a_live_graph_the_live_endpoints_say_so(client: Any) -> None:
    r = client.get("/api/live/status")
    assert r.status_code == 404 and "no live graph" in r.json()["detail"]
    assert client.get("/api/meta").json()["live"] is False
    with client.websocket_connect("/ws/live") as ws:
        msg = ws.receive_json()
    assert msg["type"] == "idle" and "no live graph" in msg["detail"]


def test_non_finite_live_numbers_travel_as_null_and_are_named() -> None:
    """The live heat is infinite when no margin is left; JSON has no Infinity (the browser
    refused the whole status message, and /api/live/status answered 500, before this)."""
    import json

    from at_core.dashboard.live import json_safe

    st = json_safe({"heat": float("inf"), "kill": False, "w": {"x": [1.0, float("nan")]}})
    assert st == {
        "heat": None,
        "kill": False,
        "w": {"x": [1.0, None]},
        "nonfinite": ["heat", "w.x[1]"],
    }
    json.dumps(st, allow_nan=False)
