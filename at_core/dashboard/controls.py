"""Operator controls of a running live graph from the dashboard, and the alert log.

The dashboard is read-only unless it was started with a control token in the environment
(``AUCTION_TRADER_DASHBOARD_TOKEN``, at least ``MIN_TOKEN_CHARS`` characters): then a
request that carries ``Authorization: Bearer <token>`` may activate, deactivate, halt
("stop trading"), resume or switch the mode: the same supervisor commands as
``auction-trader live ...``, with the same refusals (warm-up incomplete, a mode switch
with a position open, live activation without the explicit confirmation). Stopping the
whole graph stays a command-line act (``auction-trader live stop``): a web page must not be
able to end the process that reconciles the exchange.

Pitfalls:

* The token is compared in constant time (``hmac.compare_digest``) and never logged or
  echoed; a wrong or missing token is 401, controls that are off are 403, so a caller can
  tell "not allowed here" from "wrong key".
* Every accepted command is written to the alert log's neighbour ``live/operator.jsonl``
  (who: the client address; what; the outcome), so the record of who switched a live graph
  to live trading does not depend on the dashboard's console.
* A token in a URL ends up in logs and browser history: only the header is read.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from at_core.errors import InputError

TOKEN_ENV = "AUCTION_TRADER_DASHBOARD_TOKEN"
MIN_TOKEN_CHARS = 16
#: the supervisor method each control calls (``auction-trader live <name>``)
ACTIONS = {
    "activate": "activate",
    "deactivate": "deactivate",
    "halt": "halt",
    "resume": "resume",
    "mode": "set_mode",
}
#: the most alert lines one request returns
MAX_ALERTS = 2000


class ControlsOff(PermissionError):
    """The dashboard was started without a control token: it is read-only."""


class BadToken(PermissionError):
    """The request's token is missing or wrong."""


def token_from_env(env: dict[str, str] | None = None) -> str | None:
    """The control token, or None (read-only). A token set but too short is refused at
    start-up rather than accepted: a guessable key on a trading control is worse than none."""
    tok = (env if env is not None else dict(os.environ)).get(TOKEN_ENV)
    if tok is None or tok == "":
        return None
    if len(tok) < MIN_TOKEN_CHARS or tok.strip() != tok:
        raise InputError(
            f"{TOKEN_ENV}: the control token must be at least {MIN_TOKEN_CHARS} characters "
            "without surrounding spaces (e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe(24))'`)"
        )
    return tok


def check_token(expected: str | None, authorization: str | None) -> None:
    if expected is None:
        raise ControlsOff(
            f"controls are off: this dashboard is read-only (start it with {TOKEN_ENV} set)"
        )
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.encode()):
        raise BadToken("a control needs `Authorization: Bearer <token>` with the dashboard's token")


def command_args(action: str, body: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The supervisor call's arguments from the request body, every key checked: an
    unknown key is an error (a misspelt ``confirm_live`` must not pass silently)."""
    allowed = {"activate": {"confirm_live"}, "halt": {"reason"}, "mode": {"mode"}}
    extra = set(body) - allowed.get(action, set())
    if extra:
        raise InputError(f"control {action}: unknown field(s) {', '.join(sorted(extra))}")
    if action == "activate":
        confirm = body.get("confirm_live", False)
        if not isinstance(confirm, bool):
            raise InputError("control activate: confirm_live must be true or false")
        return [], {"confirm_live": confirm}
    if action == "halt":
        reason = body.get("reason", "operator (dashboard)")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 200:
            raise InputError("control halt: reason must be a text of 1 .. 200 characters")
        return [reason.strip()], {}
    if action == "mode":
        mode = body.get("mode")
        if not isinstance(mode, str):
            raise InputError('control mode: give the new mode as {"mode": "paper"}')
        return [mode], {}
    return [], {}


def audit(db_dir: Path, record: dict[str, Any]) -> None:
    """Append one operator command to ``live/operator.jsonl`` (fsynced)."""
    path = db_dir / "live" / "operator.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps({"ts_ms": int(time.time() * 1000), **record}, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


class _AlertTail:
    """What has been read of one alert log: the byte offset of the first line not read
    yet, its line number, every alert's time, the newest ``MAX_ALERTS`` alerts and the
    lines that did not parse. An overnight run grows the log; each poll (every 5 s per
    open page) reads only what was appended since."""

    def __init__(self, ident: tuple[int, int]) -> None:
        self.ident = ident
        self.offset = 0
        self.lines = 0
        self.times: list[int] = []
        self.recent: deque[dict[str, Any]] = deque(maxlen=MAX_ALERTS)
        self.bad: list[dict[str, Any]] = []

    def read(self, path: Path) -> None:
        with path.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a last line still being written waits
        self.offset += len(complete)
        for line in complete.decode("utf-8", errors="replace").splitlines():
            self.lines += 1
            if not line.strip():
                continue
            try:
                a = json.loads(line)
                if not isinstance(a, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                self.bad.append({"line": self.lines, "error": str(exc)[:200]})
                continue
            self.times.append(int(a.get("ts_ms") or 0))
            self.recent.append(a)


_TAILS: dict[Path, _AlertTail] = {}
_TAILS_LOCK = threading.Lock()


def alerts(db_dir: Path, limit: int = 100, since_ms: int = 0) -> dict[str, Any]:
    """The live graph's alert log (``live/alerts.jsonl``), newest first. A line that does
    not parse is listed in ``unreadable`` with its line number, never skipped silently;
    only a last line still being written (no newline yet) is left for the next read. The
    log is read incrementally (``_AlertTail``); a log replaced or truncated is read anew."""
    if not 1 <= limit <= MAX_ALERTS:
        raise InputError(f"alerts limit: 1 .. {MAX_ALERTS}, got {limit}")
    path = db_dir / "live" / "alerts.jsonl"
    try:
        st = path.stat()
    except FileNotFoundError:
        return {"alerts": [], "unreadable": [], "total": 0}
    ident = (st.st_dev, st.st_ino)
    with _TAILS_LOCK:
        tail = _TAILS.get(path)
        if tail is None or tail.ident != ident or st.st_size < tail.offset:
            tail = _TAILS[path] = _AlertTail(ident)
        tail.read(path)
        out = [a for a in reversed(tail.recent) if int(a.get("ts_ms") or 0) >= since_ms]
        total = sum(1 for t in tail.times if t >= since_ms)
        return {"alerts": out[:limit], "unreadable": list(tail.bad), "total": total}
