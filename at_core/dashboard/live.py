"""The dashboard's link to a running live graph (SPEC §14.3: real-time updates).

When a live graph runs on the data folder (its cluster file is there), the dashboard joins
its Ray cluster through a driver in a child process of its own (``live_driver``: a Ray
driver dies with its cluster, and stopping the graph must not stop the dashboard) and
reads through the owning actors: the supervisor's status
(mode, warm-up, activation, permission, position, P&L, heat, kill switch, feed per topic,
last alert) and the features actor's minute rows. It never opens ``features.duckdb`` or
``raw.duckdb`` then: the actors hold them for writing. Commands (``command``) go to the
supervisor only when the dashboard's controls are on (see ``controls``).

Pitfall: the feed follows the features actor's ``last_minute`` (a cheap call, polled every
``POLL_S``) and fetches the rows after the last one it sent, so a slow browser or a skipped
poll never loses a minute, and a minute is never sent twice.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from at_core.errors import InputError, StorageError

POLL_S = 0.05
STATUS_EVERY_S = 1.0
#: how long the dashboard waits for the driver's answer (its own Ray timeouts are shorter)
ANSWER_TIMEOUT_S = {"call": 30.0, "command": 150.0}
#: a spawned driver imports Ray and joins the cluster: give its first answer time
FIRST_ANSWER_S = 90.0


class Refused(Exception):
    """The live graph refused an operator command (its reason is the message)."""


class LiveGone(StorageError):
    """The live graph stopped (or its driver ended) while a request was under way."""


class _Driver:
    """One driver child process, its pipe and the requests waiting for its answers: when
    it ends, exactly those fail (a request to its successor is not touched)."""

    def __init__(self, proc: Any, conn: Any, address: str) -> None:
        self.proc = proc
        self.conn = conn
        self.address = address
        self.pending: dict[int, Future[Any]] = {}


class LiveLink:
    """The dashboard's side of the live graph: ``available`` from the folder's cluster
    file and processes, every actor call through the driver child (``live_driver``)."""

    def __init__(self, db_dir: Path) -> None:
        self.db_dir = db_dir
        self._lock = threading.Lock()
        self._seen: tuple[float, bool] = (0.0, False)
        self._drv: _Driver | None = None
        self._next_id = 0
        self._answered = False

    def available(self) -> bool:
        """A live graph was started on this data folder and its cluster runs (looked up
        at most every 2 s: finding the cluster's processes scans the process table)."""
        from at_core.live import cluster

        at, ok = self._seen
        if time.monotonic() - at < 2.0:
            return ok
        info = cluster.read_info(self.db_dir)
        ok = info is not None and bool(cluster.processes(self.db_dir))
        self._seen = (time.monotonic(), ok)
        drv = self._drv
        if not ok or (info is not None and drv is not None and info.address != drv.address):
            self._stop_driver()  # a stopped or restarted graph: a new driver next time
        return ok

    # ---- the driver child -------------------------------------------------------------
    def _driver(self) -> _Driver:
        """The running driver, or a new one (call with ``_lock`` held)."""
        if self._drv is not None and self._drv.proc.is_alive():
            return self._drv
        self._stop_driver_locked()
        import multiprocessing as mp

        from at_core.dashboard.live_driver import serve
        from at_core.live import cluster

        info = cluster.read_info(self.db_dir)
        if info is None:
            raise LookupError(f"no live graph runs on {self.db_dir}")
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=serve, args=(child, str(self.db_dir)), name="at-dashboard-driver",
            daemon=True,
        )  # fmt: skip
        proc.start()
        child.close()
        drv = self._drv = _Driver(proc, parent, info.address)
        self._answered = False
        threading.Thread(
            target=self._read, args=(drv,), name="live-driver-reader", daemon=True
        ).start()
        return drv

    def _read(self, drv: _Driver) -> None:
        """Answers from one driver to its waiting requests; when it ends, every request
        still waiting for it fails with ``LiveGone``."""
        while True:
            try:
                req_id, status, *rest = drv.conn.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                fut = drv.pending.pop(req_id, None)
            if fut is None:
                continue
            if status == "ok":
                fut.set_result(rest[0])
            else:
                fut.set_exception(_error(rest[0], rest[1], self.db_dir))
        with self._lock:
            gone, drv.pending = drv.pending, {}
            if self._drv is drv:
                self._drv = None
        for fut in gone.values():
            fut.set_exception(
                LiveGone(f"the live graph on {self.db_dir} stopped (its driver ended)")
            )

    def _stop_driver(self) -> None:
        with self._lock:
            self._stop_driver_locked()

    def _stop_driver_locked(self) -> None:
        drv, self._drv = self._drv, None
        if drv is not None:
            with contextlib.suppress(OSError):
                drv.conn.close()  # its reader then fails the requests still waiting
            drv.proc.join(timeout=0.5)
            if drv.proc.is_alive():
                drv.proc.terminate()

    def _request(self, op: str, *args: Any, **kw: Any) -> Any:
        fut: Future[Any] = Future()
        with self._lock:
            drv = self._driver()
            self._next_id += 1
            req_id = self._next_id
            drv.pending[req_id] = fut
            try:
                drv.conn.send((req_id, op, args, kw))
            except (OSError, ValueError) as exc:
                drv.pending.pop(req_id, None)
                raise LiveGone(f"the live graph's driver is gone: {exc}") from None
        timeout = ANSWER_TIMEOUT_S[op] + (0.0 if self._answered else FIRST_ANSWER_S)
        try:
            out = fut.result(timeout=timeout)
        except FutureTimeout:
            with self._lock:
                drv.pending.pop(req_id, None)
            raise LiveGone(f"the live graph did not answer within {timeout:.0f} s") from None
        self._answered = True
        return out

    # ---- what the dashboard asks --------------------------------------------------------
    def _call(self, role: str, method: str, *args: Any) -> Any:
        return self._request("call", role, method, *args)

    def status(self) -> dict[str, Any]:
        return dict(json_safe(dict(self._call("supervisor", "status"))))

    def command(self, method: str, *args: Any, **kw: Any) -> dict[str, Any]:
        """One supervisor command; its refusal (warm-up, a position open, ...) comes back
        as ``Refused`` with the supervisor's reason."""
        return dict(json_safe(dict(self._request("command", method, *args, **kw))))

    def last_minute(self) -> int | None:
        v = self._call("features", "last_minute")
        return None if v is None else int(v)

    def minutes(self, start: int, end: int) -> dict[str, Any]:
        return dict(json_safe(dict(self._call("features", "minute_rows", start, end))))

    def window(self, lo_ms: int, hi_ms: int, quotes_from_ms: int | None) -> tuple[Any, int | None]:
        """Trades of a window from the collector, with their sides when ``quotes_from_ms``
        is given (``Collector.window``)."""
        t, first = self._call("collector", "window", lo_ms, hi_ms, quotes_from_ms)
        return t, first

    def footprint_bins(self, lo: int, hi: int, bin_ticks: int) -> dict[str, Any]:
        """Footprint cells of a window in bins, and the minutes they cover (the features
        actor's ``footprint_bins``)."""
        return dict(self._call("features", "footprint_bins", lo, hi, bin_ticks))

    def extent(self) -> dict[str, Any]:
        """The live features' range (the features actor's store)."""
        return dict(self._call("features", "extent"))


def _error(kind: str, message: str, db_dir: Path) -> Exception:
    if kind == "refused":
        return Refused(message.split(": ", 1)[-1])
    if kind == "input":
        return InputError(message.split(": ", 1)[-1])
    if kind == "timeout":
        return LiveGone(f"the live graph on {db_dir} did not answer in time: {message}")
    return LiveGone(f"the live graph on {db_dir} failed a request: {message}")


def json_safe(v: Any, path: str = "", bad: list[str] | None = None) -> Any:
    """The status with every non-finite number replaced by None and its key listed in
    ``nonfinite`` (JSON has no Infinity; the live heat is infinite when no margin is left,
    SPEC §9.5's formula), so the page can say "infinite" rather than break or show 0."""
    top = bad is None
    bad = [] if bad is None else bad
    if isinstance(v, float) and not math.isfinite(v):
        bad.append(path)
        out: Any = None
    elif isinstance(v, dict):
        out = {k: json_safe(x, f"{path}.{k}" if path else str(k), bad) for k, x in v.items()}
    elif isinstance(v, list | tuple):
        out = [json_safe(x, f"{path}[{i}]", bad) for i, x in enumerate(v)]
    else:
        out = v
    if top and isinstance(out, dict):
        out["nonfinite"] = bad
    return out


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
