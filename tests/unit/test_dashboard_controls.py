"""Operator controls and the alert log of the dashboard, without a live graph: who may send
a command (token from the environment, constant-time compare, 401 / 403), what a command
body may hold (every key checked), and the alert log read back with nothing dropped
silently. The commands reaching a running graph are tested in tests/live."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from at_core.dashboard import controls
from at_core.errors import InputError

TOKEN = "s3cret-token-for-tests-0123"


def _client(db: Path, token: str | None) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from fastapi.testclient import TestClient
    from at_core.dashboard.app import create_app

    return TestClient(create_app(db, control_token=token))


def test_without_a_token_the_dashboard_is_read_only(tmp_path: Path) -> None:
    c = _client(tmp_path, None)
    assert c.get("/api/live/controls").json()["enabled"] is False
    for action in ("activate", "halt", "mode", "nonsense"):
        r = c.post(f"/api/live/control/{action}", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 403, r.text
        assert controls.TOKEN_ENV in r.json()["detail"]


@pytest.mark.parametrize(
    "header",
    [None, "", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, "Bearer "],
)
def test_a_wrong_or_missing_token_is_401_and_never_echoed(
    tmp_path: Path, header: str | None
) -> None:
    c = _client(tmp_path, TOKEN)
    h = {} if header is None else {"Authorization": header}
    r = c.post("/api/live/control/activate", headers=h, json={})
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in r.text


def test_the_right_token_reaches_the_checks_and_then_the_graph(tmp_path: Path) -> None:
    c = _client(tmp_path, TOKEN)
    h = {"Authorization": f"Bearer {TOKEN}"}
    assert c.get("/api/live/controls").json() == {
        "enabled": True,
        "actions": ["activate", "deactivate", "halt", "resume", "mode"],
        "token_env": controls.TOKEN_ENV,
    }
    cases = [
        ("stop", {}, 400, "unknown action"),
        ("activate", {"confirm_lve": True}, 400, "confirm_lve"),
        ("activate", {"confirm_live": "yes"}, 400, "true or false"),
        ("mode", {}, 400, "new mode"),
        ("halt", {"reason": ""}, 400, "reason"),
        ("deactivate", {"x": 1}, 400, "unknown field"),
        ("activate", {}, 404, "no live graph"),
        ("mode", {"mode": "paper"}, 404, "no live graph"),
    ]
    for action, body, code, words in cases:
        r = c.post(f"/api/live/control/{action}", headers=h, json=body)
        assert r.status_code == code, (action, body, r.text)
        assert words in r.json()["detail"], (action, r.text)
    r = c.post("/api/live/control/activate", headers=h, content=b"{not json")
    assert r.status_code == 400 and "not JSON" in r.json()["detail"]
    r = c.post("/api/live/control/activate", headers=h, content=b"[1]")
    assert r.status_code == 400 and "JSON object" in r.json()["detail"]
    # nothing reached a graph, so nothing was recorded as done
    assert not (tmp_path / "live" / "operator.jsonl").exists()


@pytest.mark.parametrize("bad", ["short", " " + TOKEN, TOKEN + "\n"])
def test_a_weak_token_is_refused_at_start_up(bad: str) -> None:
    with pytest.raises(InputError, match="at least 16 characters"):
        controls.token_from_env({controls.TOKEN_ENV: bad})
    assert controls.token_from_env({}) is None
    assert controls.token_from_env({controls.TOKEN_ENV: TOKEN}) == TOKEN


def test_the_command_line_refuses_a_weak_token(tmp_path: Path) -> None:
    import os

    env = {**os.environ, controls.TOKEN_ENV: "short"}
    r = subprocess.run(
        [sys.executable, "-m", "at_core.cli", "dashboard", "--db-dir", str(tmp_path), "--port", "1"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode != 0
    assert controls.TOKEN_ENV in r.stderr and "16 characters" in r.stderr


def test_the_alert_log_is_read_newest_first_and_bad_lines_are_named(tmp_path: Path) -> None:
    log = tmp_path / "live" / "alerts.jsonl"
    log.parent.mkdir()
    good = [
        {"id": str(i), "type": "stale_feed", "message": f"m{i}", "ts_ms": 1000 * i}
        for i in range(5)
    ]
    lines = [json.dumps(a) for a in good[:2]] + ["{broken", "[1, 2]"]
    lines += [json.dumps(a) for a in good[2:]]
    # the last line is still being written (no newline yet): left for the next read
    log.write_text("\n".join(lines) + "\n" + '{"id": "partial", "ty')
    c = _client(tmp_path, None)
    got = c.get("/api/live/alerts").json()
    assert [a["id"] for a in got["alerts"]] == ["4", "3", "2", "1", "0"]
    assert [b["line"] for b in got["unreadable"]] == [3, 4]
    assert got["total"] == 5
    got = c.get("/api/live/alerts", params={"limit": 2, "since": 2000}).json()
    assert [a["id"] for a in got["alerts"]] == ["4", "3"] and got["total"] == 3
    for bad in ({"limit": 0}, {"limit": 10**6}, {"since": -1}):
        assert c.get("/api/live/alerts", params=bad).status_code == 422
    assert _client(tmp_path / "none", None).get("/api/live/alerts").json()["alerts"] == []

    # the log grows (the half-written line is finished, more follow): the next read sees
    # them with the right line numbers; a log replaced (rotated) is read from its start
    with log.open("a") as f:
        f.write('pe": "x", "ts_ms": 9000}\n' + json.dumps({**good[0], "id": "6", "ts_ms": 9500})
                + "\n{bad\n")  # fmt: skip
    got = c.get("/api/live/alerts").json()
    assert [a["id"] for a in got["alerts"]] == ["6", "partial", "4", "3", "2", "1", "0"]
    assert [b["line"] for b in got["unreadable"]] == [3, 4, 10] and got["total"] == 7
    log.unlink()
    log.write_text(json.dumps(good[1]) + "\n")
    got = c.get("/api/live/alerts").json()
    assert [a["id"] for a in got["alerts"]] == ["1"] and got["unreadable"] == []
