"""Faults on command: what a test or the operator can make the simulated exchange do to
its clients, and the log of every fault armed and fired.

A fault is armed through the control endpoint (``POST /_sim/fault`` with the control
token) and fires on the next matching request, message or connection; each arming and each
firing is one line of the simulator's log (``GET /_sim/log``, and the ``--log-file``).

| fault | parameters | what the client sees |
|---|---|---|
| ``ws_close`` | scope public/private/all, code | a close frame |
| ``ws_abort`` | scope | the TCP connection reset, no close frame |
| ``ws_stall`` | scope, seconds, pings | the socket stays open, no data; pings answered or not |
| ``refuse`` | seconds | every socket dropped, connections refused, then back |
| ``lose_response`` | n, path | the request is executed, its response never arrives |
| ``delay_ack`` | n, ms, path | the response after ``ms``; private events go first |
| ``ret_code`` | code, n, path | that retCode instead of the answer (10006 with the reset header) |
| ``duplicate_private`` | n | the next n private messages sent twice |
| ``reorder_private`` | n | the next n batches of private messages in reverse order |
| ``book_gap`` | jump | the next orderbook message's update id jumps |
| ``position_drift`` | qty (signed), notify | the position changed behind the client's back |
| ``funding`` | rate | a funding settlement now |
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from at_core.errors import InputError

SCOPES = ("public", "private", "all")
RET_CODES = {
    10002: "invalid request, please check your server timestamp or recv_window param",
    10006: "Too many visits. Exceeded the API Rate Limit.",
    10016: "Internal system error.",
    110007: "ab not enough for new order",
    110017: "Reduce-only rule not satisfied",
}
KINDS = (
    "ws_close",
    "ws_abort",
    "ws_stall",
    "refuse",
    "lose_response",
    "delay_ack",
    "ret_code",
    "duplicate_private",
    "reorder_private",
    "book_gap",
    "position_drift",
    "funding",
)


@dataclass
class Armed:
    """A request-level fault waiting for its requests."""

    kind: str
    remaining: int
    path: str = ""  # "" = any private request; else a path suffix such as order/create
    params: dict[str, Any] = field(default_factory=dict)

    def matches(self, path: str) -> bool:
        return self.remaining > 0 and (not self.path or path.endswith(self.path))


class FaultLog:
    """Every fault armed and fired, in memory and (optionally) as JSON lines in a file."""

    def __init__(self, path: Path | None) -> None:
        self.entries: list[dict[str, Any]] = []
        self.path = path

    def add(self, event: str, kind: str, market_ms: int, **detail: Any) -> None:
        row = {"wall_ms": int(time.time() * 1000), "market_ms": market_ms, "event": event}
        row["fault"] = kind
        row.update(detail)
        self.entries.append(row)
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")


def check_fault(kind: str, params: dict[str, Any]) -> None:
    """Refuse an unknown fault or a bad parameter with what and where."""
    if kind not in KINDS:
        raise InputError(f"fault {kind!r}: unknown (one of {', '.join(KINDS)})")
    scope = params.get("scope", "all")
    if scope not in SCOPES:
        raise InputError(f"fault {kind}: scope {scope!r} is not one of {', '.join(SCOPES)}")
    if kind == "ret_code" and int(params.get("code", 0)) not in RET_CODES:
        codes = ", ".join(str(c) for c in RET_CODES)
        raise InputError(f"fault ret_code: code {params.get('code')!r} is not one of {codes}")
    for key in ("n", "seconds", "ms", "jump"):
        if key in params and float(params[key]) < 0:
            raise InputError(f"fault {kind}: {key} must be >= 0, got {params[key]!r}")
