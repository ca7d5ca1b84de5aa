"""The SQLite result store: atomic trials, resume bookkeeping, top-N and CSV export."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from at_core.cli import main as cli_main
from at_core.errors import StorageError
from at_core.grid.results import ResultStore


def _fill(store: ResultStore) -> None:
    store.start_run("r1", "t", "fp1", {"params": {"risk_pct": [0.01, 0.02]}}, 4)
    store.add_trial(
        "r1",
        "a",
        [
            ({"risk_pct": 0.01, "alpha_bin": 0.2}, {"net_pnl": 5.0, "n_trades": 3}),
            ({"risk_pct": 0.02, "alpha_bin": 0.2}, {"net_pnl": -1.0, "n_trades": 3}),
        ],
        node="n1",
    )
    store.add_trial(
        "r1",
        "b",
        [
            ({"risk_pct": 0.01, "alpha_bin": 0.3}, {"net_pnl": 9.5, "n_trades": 4}),
            ({"risk_pct": 0.02, "alpha_bin": 0.3}, {"net_pnl": 2.0, "n_trades": 4}),
        ],
        node="n2",
    )


def test_trial_is_written_once(db_dir: Path) -> None:
    store = ResultStore(db_dir)
    _fill(store)
    store.add_trial("r1", "a", [({"risk_pct": 9}, {"net_pnl": 0.0})])  # replay of a finished trial
    assert len(store.results("r1")) == 4
    assert store.finished_trials("r1") == {"a", "b"}


def test_resume_requires_same_fingerprint(db_dir: Path) -> None:
    store = ResultStore(db_dir)
    _fill(store)
    assert store.start_run("r1", "t", "fp1", {}, 4) is True
    with pytest.raises(StorageError, match="different grid"):
        store.start_run("r1", "t", "other", {}, 4)


def test_top_sorting_and_unknown_metric(db_dir: Path) -> None:
    store = ResultStore(db_dir)
    _fill(store)
    assert [m["net_pnl"] for _, m in store.top("r1", 2, "net_pnl", "max")] == [9.5, 5.0]
    assert [m["net_pnl"] for _, m in store.top("r1", 1, "net_pnl", "min")] == [-1.0]
    with pytest.raises(StorageError, match="unknown metric"):
        store.top("r1", 1, "nope")


def test_export_csv_round_trip(
    db_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(ResultStore(db_dir))
    out = tmp_path / "r1.csv"
    assert cli_main(["grid", "export", "r1", "--csv", str(out), "--db-dir", str(db_dir)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4
    assert [int(r["result_id"]) for r in rows] == ResultStore(db_dir).result_ids("r1")
    assert {(r["param.alpha_bin"], r["param.risk_pct"], r["metric.net_pnl"]) for r in rows} == {
        ("0.2", "0.01", "5.0"),
        ("0.2", "0.02", "-1.0"),
        ("0.3", "0.01", "9.5"),
        ("0.3", "0.02", "2.0"),
    }
    assert cli_main(["grid", "list", "--db-dir", str(db_dir)]) == 0
    assert "r1" in capsys.readouterr().out
    assert cli_main(["grid", "show", "r1", "--top", "1", "--db-dir", str(db_dir)]) == 0
    assert "risk_pct=0.01" in capsys.readouterr().out
    assert cli_main(["grid", "export", "nope", "--csv", str(out), "--db-dir", str(db_dir)]) == 2


def test_ties_are_broken_by_drawdown_then_stored_order_and_na_goes_last(db_dir: Path) -> None:
    store = ResultStore(db_dir)
    store.start_run("r2", "t", "fp", {"params": {"k": [1, 2, 3, 4]}}, 1)
    rows = [
        ({"k": 1}, {"net_pnl": 5.0, "max_drawdown": 9.0}),
        ({"k": 2}, {"net_pnl": 5.0, "max_drawdown": 3.0}),
        ({"k": 3}, {"net_pnl": None, "max_drawdown": 1.0}),  # n/a: never on top
        ({"k": 4}, {"net_pnl": 5.0, "max_drawdown": 3.0}),
    ]
    store.add_trial("r2", "a", rows)
    assert [p["k"] for p, _ in store.top("r2", 4, "net_pnl", "max")] == [2, 4, 1, 3]
    assert [p["k"] for p, _ in store.top("r2", 4, "net_pnl", "min")] == [2, 4, 1, 3]


def test_keys_that_changed_no_result_are_found_from_the_results() -> None:
    from at_core.grid.results import inert_keys

    rows = []
    for a in (1, 2):
        for b in (0.1, 0.2, 0.3):  # b changes nothing
            for c in (True, False):  # c matters only when a == 2
                m = {"net_pnl": float(a) + (0.5 if (c and a == 2) else 0.0), "sharpe": None}
                rows.append(({"a": a, "b": b, "c": c}, m))
    assert inert_keys(rows, ["a", "b", "c"]) == ["b"]
    assert inert_keys(rows[:1], ["a", "b", "c"]) == [], "one value swept: nothing to say"
