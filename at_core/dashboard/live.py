"""The dashboard's link to a running live graph (SPEC §14.3: real-time updates).

When a live graph runs on the data folder (its cluster file is there), the dashboard joins
its Ray cluster as a driver and reads through the owning actors: the supervisor's status
(mode, warm-up, activation, permission, position, P&L, heat, kill switch, feed per topic,
last alert) and the features actor's minute rows. It never opens ``features.duckdb`` or
``raw.duckdb`` then: the actors hold them for writing. Read-only: no command is sent.

Pitfall: the feed follows the features actor's ``last_minute`` (a cheap call, polled every
``POLL_S``) and fetches the rows after the last one it sent, so a slow browser or a skipped
poll never loses a minute, and a minute is never sent twice.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from at_core.errors import InputError

POLL_S = 0.05
STATUS_EVERY_S = 1.0
CALL_TIMEOUT_S = 10.0


class LiveLink:
    def __init__(self, db_dir: Path) -> None:
        self.db_dir = db_dir
        self._lock = threading.Lock()
        self._connected = False
        self._seen: tuple[float, bool] = (0.0, False)

    def available(self) -> bool:
        """A live graph was started on this data folder and its cluster runs (looked up
        at most every 2 s: finding the cluster's processes scans the process table)."""
        from at_core.live import cluster

        at, ok = self._seen
        if time.monotonic() - at < 2.0:
            return ok
        ok = cluster.read_info(self.db_dir) is not None and bool(cluster.processes(self.db_dir))
        self._seen = (time.monotonic(), ok)
        return ok

    def _connect(self) -> None:
        with self._lock:
            if not self._connected:
                from at_core.live import cluster

                cluster.connect(self.db_dir)
                self._connected = True

    def _actor(self, role: str) -> Any:
        import ray

        from at_core.live.config import ACTOR_NAMES, NAMESPACE

        self._connect()
        try:
            return ray.get_actor(ACTOR_NAMES[role], namespace=NAMESPACE)
        except ValueError:
            raise InputError(f"the live graph on {self.db_dir} has no {role} actor") from None

    def _call(self, role: str, method: str, *args: Any) -> Any:
        import ray

        return ray.get(getattr(self._actor(role), method).remote(*args), timeout=CALL_TIMEOUT_S)

    def status(self) -> dict[str, Any]:
        return dict(self._call("supervisor", "status"))

    def last_minute(self) -> int | None:
        v = self._call("features", "last_minute")
        return None if v is None else int(v)

    def minutes(self, start: int, end: int) -> dict[str, Any]:
        return dict(self._call("features", "minute_rows", start, end))

    def extent(self) -> dict[str, Any]:
        """The live features' range (the features actor's store)."""
        return dict(self._call("features", "extent"))


def banner(st: dict[str, Any]) -> dict[str, str]:
    """Health (normal / degraded / halted) and permission for the page's banner: halted
    when the graph or the kill switch stopped trading; degraded when a feed topic is stale
    or a worker does not answer."""
    workers = st.get("workers") or {}
    feed = st.get("feed") or {}
    stale = [k for k, v in feed.items() if isinstance(v, dict) and v.get("stale")]
    broken = [k for k, v in workers.items() if isinstance(v, dict) and "error" in v]
    kill = st.get("kill")
    if st.get("halted") or (isinstance(kill, dict) and kill.get("tripped")) or kill is True:
        health = "halted"
    elif stale or broken:
        health = "degraded"
    else:
        health = "normal"
    return {"health": health, "permission": str(st.get("permission") or "unknown")}


def now_ms() -> int:
    return int(time.time() * 1000)
