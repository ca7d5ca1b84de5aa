"""Starting, finding and stopping a live deployment (``live/deploy.py`` and
``auction-trader live ...`` call these).

A deployment is identified by its store directory: ``<db_dir>/live/`` holds the cluster's
address and token, the simulator it started (if any), the supervisor's state and the alert
log. ``start`` refuses to start a second graph on the same stores while one answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from at_core import logging as at_logging
from at_core.config import Settings
from at_core.errors import InputError
from at_core.live import cluster
from at_core.live.backfill import warm_from_lake
from at_core.live.config import ACTOR_NAMES, NAMESPACE, SECRETS_FILE, LiveConfig

log = at_logging.get(__name__)


def start_simulator(
    db_dir: str | Path, sim_args: list[str], timeout: float = 120.0
) -> dict[str, Any]:
    """``auction-trader simulate`` as a detached process (it outlives this command; ``live
    stop`` ends it). Returns its URLs and keys (kept in memory, never printed)."""
    d = cluster.live_dir(db_dir)
    ready = d / "simulator.json"
    ready.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    out = (d / "simulator.log").open("ab")
    cmd = [sys.executable, "-m", "at_core.cli", "--log-level", "WARNING", "simulate", *sim_args,
           "--ready-file", str(ready), "--log-file", str(d / "simulator-faults.jsonl")]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None:
            raise InputError(
                f"the simulator exited with {proc.returncode}: see {d / 'simulator.log'}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise InputError(
                f"the simulator was not ready after {timeout} s: see {d / 'simulator.log'}"
            )
        time.sleep(0.05)
    info = dict(json.loads(ready.read_text()))
    info["pid"] = proc.pid
    return info


def running_simulator(db_dir: str | Path) -> dict[str, Any] | None:
    """The simulator an earlier ``start`` of these stores launched, if it still runs (a
    restart after a crash trades on with it instead of starting a second one)."""
    import psutil

    info = cluster.read_info(db_dir)
    ready = cluster.live_dir(db_dir) / "simulator.json"
    if info is None or not info.simulator_pid or not ready.exists():
        return None
    try:
        p = psutil.Process(info.simulator_pid)
        if not p.is_running() or p.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    sim = dict(json.loads(ready.read_text()))
    sim["pid"] = info.simulator_pid
    return sim


def supervisor_handle() -> Any:
    import ray

    return ray.get_actor(ACTOR_NAMES["supervisor"], namespace=NAMESPACE)


def running(db_dir: str | Path) -> bool:
    """True when a graph for these stores answers."""
    if cluster.read_info(db_dir) is None:
        return False
    if not cluster.processes(db_dir):
        return False
    try:
        cluster.connect(db_dir)
        import ray

        return bool(ray.get(supervisor_handle().ping.remote(), timeout=10))
    except Exception:
        return False


def start(
    mode: str,
    db_dir: str | Path,
    settings: Settings,
    address: str | None = None,
    simulator: list[str] | None = None,
    rest_url: str | None = None,
    ws_url: str | None = None,
    warm_from: str | Path | None = None,
    warm_until: int | None = None,
    **cfg_kw: Any,
) -> dict[str, Any]:
    """Start the graph: cluster (local with token auth unless ``address``), simulator if
    asked, then the supervisor, which starts and restores the workers."""
    import ray

    if settings.funding_source != "fixed":
        raise InputError(
            "funding_source: history needs the funding history in advance; live uses the "
            "exchange's funding (set funding_source: fixed)"
        )
    db_dir = Path(db_dir)
    if running(db_dir):
        raise InputError(f"a live graph already runs on {db_dir}: `auction-trader live status`")
    if ray.is_initialized():
        ray.shutdown()
    if warm_from is not None:
        if warm_until is None:
            raise InputError("--warm-from-lake needs --warm-until (the instant the feed starts)")
        rep = warm_from_lake(db_dir, warm_from, warm_until, settings.warmup_minutes)
        log.info("warm start", **{k: v for k, v in rep.items() if k != "why"})
    sim: dict[str, Any] | None = None
    if simulator is not None:
        sim = running_simulator(db_dir) or start_simulator(db_dir, simulator)
        rest_url, ws_url = sim["rest"], sim["rest"].replace("http://", "ws://")
        cfg_kw.setdefault("api_key", sim["api_key"])
        cfg_kw.setdefault("api_secret", sim["api_secret"])
    cfg = LiveConfig.build(
        mode, db_dir, settings, rest_url=rest_url, ws_url=ws_url, **cfg_kw
    ).keep_secrets()
    if address:
        info = cluster.connect(db_dir, address)
    else:
        info = cluster.start_local(db_dir)
        cluster.connect(db_dir)
    if sim is not None:
        info.simulator_pid = int(sim["pid"])
        info.simulator = {k: sim[k] for k in ("rest", "port", "control_token") if k in sim}
    cluster.write_info(db_dir, info)
    from at_core.live.supervisor import Supervisor, graph_actor

    sup: Any = graph_actor(Supervisor, "supervisor", max_concurrency=8).remote(cfg)
    try:
        ray.get(sup.ping.remote(), timeout=300)
    except ray.exceptions.RayError as exc:
        # a worker's constructor failed (a store held by another process, the exchange
        # unreachable...): say which and why in one line, and leave nothing running
        why = [ln for ln in str(exc).splitlines() if "Error" in ln or "error" in ln]
        stop(db_dir)
        raise InputError(
            f"the live graph did not start: {why[-1].strip() if why else exc}"
        ) from None
    return dict(ray.get(sup.status.remote(), timeout=60))


def call(db_dir: str | Path, method: str, *args: Any, timeout: float = 120.0, **kw: Any) -> Any:
    """Run one supervisor command; a refusal comes back as ``InputError`` with its reason."""
    import ray

    cluster.connect(db_dir)
    try:
        sup = supervisor_handle()
    except ValueError:
        raise InputError(f"no live graph runs on {db_dir}: `auction-trader live start`") from None
    try:
        return ray.get(getattr(sup, method).remote(*args, **kw), timeout=timeout)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if hasattr(exc, "cause") else exc
        raise InputError(str(cause).splitlines()[-1] if str(cause) else repr(cause)) from None


def stop(db_dir: str | Path) -> dict[str, Any]:
    """Stop the graph (final snapshots), the cluster if we started it, and the simulator."""
    import ray

    info = cluster.read_info(db_dir)
    out: dict[str, Any] = {}
    if info is not None and cluster.processes(db_dir):
        try:
            out["workers"] = call(db_dir, "stop", timeout=120)
            ray.kill(supervisor_handle(), no_restart=True)
        except Exception as exc:
            out["error"] = repr(exc)[:300]
    if ray.is_initialized():
        ray.shutdown()
    if info is not None and info.started_here:
        out["processes_stopped"] = cluster.stop_local(db_dir)
    if info is not None and info.simulator_pid:
        _stop_pid(info.simulator_pid)
        out["simulator"] = "stopped"
    (cluster.live_dir(db_dir) / SECRETS_FILE).unlink(missing_ok=True)  # no actor needs them
    return out


def _stop_pid(pid: int) -> None:
    import psutil

    try:
        p = psutil.Process(pid)
        p.terminate()
        p.wait(10)
    except psutil.TimeoutExpired:
        p.kill()
    except psutil.Error:
        pass
