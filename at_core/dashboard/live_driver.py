"""The dashboard's Ray driver, in a child process of its own.

A Ray driver lives and dies with the cluster it joined: when the operator stops the live
graph (``auction-trader live stop``) its raylet goes, and Ray ends every process attached
to it. Were the dashboard itself the driver, stopping the graph would take the dashboard
down with it. So the calls to the actors run here, in a spawned child; the dashboard
(``LiveLink``) sends requests over a pipe and, when this process ends, reports the graph
as gone and starts a new child for the next graph.

Requests are ``(id, op, args, kwargs)``; each runs on a thread of a small pool (the
WebSocket's 50 ms poll must not wait behind a footprint's tick read) and is answered
``(id, "ok", result)`` or ``(id, "err", kind, message)``, ``kind`` one of ``ERRORS``.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

CALL_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 120.0
#: error kinds sent back (the dashboard raises the matching class)
ERRORS = ("refused", "input", "timeout", "other")


class _Graph:
    def __init__(self, db_dir: Path) -> None:
        self.db_dir = db_dir
        self._lock = threading.Lock()
        self._connected = False

    def _actor(self, role: str) -> Any:
        import ray

        from at_core.errors import InputError
        from at_core.live import cluster
        from at_core.live.config import ACTOR_NAMES, NAMESPACE

        with self._lock:
            if not self._connected:
                cluster.connect(self.db_dir)
                self._connected = True
        try:
            return ray.get_actor(ACTOR_NAMES[role], namespace=NAMESPACE)
        except ValueError:
            raise InputError(f"the live graph on {self.db_dir} has no {role} actor") from None

    def call(self, role: str, method: str, *args: Any) -> Any:
        import ray

        return ray.get(getattr(self._actor(role), method).remote(*args), timeout=CALL_TIMEOUT_S)

    def command(self, method: str, *args: Any, **kw: Any) -> Any:
        import ray

        ref = getattr(self._actor("supervisor"), method).remote(*args, **kw)
        try:
            return ray.get(ref, timeout=COMMAND_TIMEOUT_S)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None) or exc
            text = str(cause).strip().splitlines()
            raise _Refused(text[-1] if text else repr(cause)) from None


class _Refused(Exception):
    pass


def _kind(exc: BaseException) -> str:
    from at_core.errors import InputError

    if isinstance(exc, _Refused):
        return "refused"
    if isinstance(exc, InputError):
        return "input"
    if isinstance(exc, TimeoutError) or type(exc).__name__ == "GetTimeoutError":
        return "timeout"
    return "other"


def serve(conn: Connection, db_dir: str) -> None:
    """The child's main loop: answer requests until the pipe closes (the dashboard went)."""
    graph = _Graph(Path(db_dir))
    send_lock = threading.Lock()

    def run(req_id: int, op: str, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        try:
            if op == "call":
                out: Any = ("ok", graph.call(*args))
            elif op == "command":
                out = ("ok", graph.command(*args, **kw))
            else:
                out = ("err", "other", f"unknown request {op}")
        except BaseException as exc:  # every failure goes back to the caller
            out = ("err", _kind(exc), f"{type(exc).__name__}: {exc}"[:2000])
        with send_lock:
            conn.send((req_id, *out))

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="live-driver") as pool:
        while True:
            try:
                req_id, op, args, kw = conn.recv()
            except (EOFError, OSError):
                return
            pool.submit(run, req_id, op, args, kw)
