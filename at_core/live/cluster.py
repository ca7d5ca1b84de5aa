"""The Ray cluster the live graph runs on: a local one we start (token auth always on), or
an existing one given by address.

``start_local`` runs ``ray start --head`` bound to this machine with a fresh random token
(``RAY_AUTH_MODE=token``), a short private temp dir (Ray's socket paths are length
limited) and its own ports; the token goes to ``<db_dir>/live/ray_token`` (mode 0600) and
the address to ``<db_dir>/live/cluster.json``, so the next ``auction-trader live ...``
command finds and authenticates to the same cluster. The token is a secret: never logged,
never printed.

``processes`` finds every process of the cluster by the token in its environment (each
one Ray starts inherits it; worker processes rename themselves, so command lines are not
enough), which is how ``stop_local`` and the crash soak (``kill -9`` of the whole graph)
reach exactly this cluster and no other Ray on the machine.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from at_core import logging as at_logging
from at_core.errors import InputError
from at_core.live.config import NAMESPACE

log = at_logging.get(__name__)
RAY = str(Path(sys.executable).parent / "ray")
#: ``ray.init`` attempts against a cluster that does not answer at once (linear backoff)
CONNECT_ATTEMPTS, CONNECT_BACKOFF_S = 3, 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ClusterInfo:
    address: str
    temp_dir: str | None
    started_here: bool
    simulator_pid: int | None = None
    simulator: dict[str, Any] | None = None


def live_dir(db_dir: str | Path) -> Path:
    d = Path(db_dir) / "live"
    d.mkdir(parents=True, exist_ok=True)
    return d


def token_path(db_dir: str | Path) -> Path:
    return live_dir(db_dir) / "ray_token"


def info_path(db_dir: str | Path) -> Path:
    return live_dir(db_dir) / "cluster.json"


def read_info(db_dir: str | Path) -> ClusterInfo | None:
    p = info_path(db_dir)
    if not p.exists():
        return None
    return ClusterInfo(**json.loads(p.read_text()))


def write_info(db_dir: str | Path, info: ClusterInfo) -> None:
    p = info_path(db_dir)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2))
    os.replace(tmp, p)


def ray_env(db_dir: str | Path) -> dict[str, str]:
    """The environment a Ray client of this deployment needs (token auth)."""
    env = dict(os.environ)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    tp = token_path(db_dir)
    if tp.exists():
        env["RAY_AUTH_MODE"] = "token"
        env["RAY_AUTH_TOKEN"] = tp.read_text().strip()
    return env


def start_local(db_dir: str | Path, num_cpus: int = 2) -> ClusterInfo:
    """A one-node cluster on 127.0.0.1 with token auth."""
    token = secrets.token_hex(24)
    tp = token_path(db_dir)
    fd = os.open(tp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="atl", dir="/tmp")
    env = ray_env(db_dir)
    env.pop("RAY_ADDRESS", None)
    cmd = [
        RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={_free_port()}",
        f"--ray-client-server-port={_free_port()}",
        f"--num-cpus={num_cpus}", f"--temp-dir={temp}", "--disable-usage-stats",
    ]  # fmt: skip
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    if r.returncode != 0:
        raise InputError(f"`ray start` failed ({r.returncode}): {r.stderr[-2000:]}")
    info = ClusterInfo(address=f"127.0.0.1:{port}", temp_dir=temp, started_here=True)
    write_info(db_dir, info)
    return info


def connect(db_dir: str | Path, address: str | None = None) -> ClusterInfo:
    """``ray.init`` against the deployment's cluster (or ``address``)."""
    import ray

    info = read_info(db_dir)
    addr = address or (info.address if info else None)
    if addr is None:
        raise InputError(
            f"no live graph found for {db_dir} (no {info_path(db_dir)}): start one with "
            "`auction-trader live start`"
        )
    use_token(db_dir)
    for attempt in range(CONNECT_ATTEMPTS):
        if ray.is_initialized():
            break
        try:
            ray.init(address=addr, namespace=NAMESPACE, logging_level=40, log_to_driver=False)
        except ConnectionError as exc:
            # the GCS answers late when the box is saturated (a sweep, a second cluster):
            # a status or a stop must not fail on one slow answer; a dead cluster still does
            if attempt + 1 == CONNECT_ATTEMPTS:
                raise InputError(
                    f"could not connect to the live graph's Ray cluster at {addr} "
                    f"({CONNECT_ATTEMPTS} attempts): {exc}"
                ) from exc
            log.warning("ray connect failed; retrying", address=addr, attempt=attempt + 1)
            time.sleep(CONNECT_BACKOFF_S * (attempt + 1))
    return info or ClusterInfo(address=addr, temp_dir=None, started_here=False)


def use_token(db_dir: str | Path) -> None:
    """Authenticate this process to the deployment's cluster.

    Ray reads ``RAY_AUTH_MODE`` / ``RAY_AUTH_TOKEN`` into its config once, when it is first
    loaded; a process that imported Ray before (a test session, a notebook) keeps auth
    disabled and is refused with ``InvalidAuthToken``. After setting the variables the
    config and the token cache are re-read (Ray's own test helpers do the same)."""
    env = ray_env(db_dir)
    changed = False
    for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_USAGE_STATS_ENABLED"):
        if k in env and os.environ.get(k) != env[k]:
            os.environ[k] = env[k]
            changed = True
    if changed and "ray" in sys.modules:
        try:
            from ray._raylet import (  # type: ignore[attr-defined]
                AuthenticationTokenLoader,
                Config,
            )

            Config.initialize("")
            AuthenticationTokenLoader.instance().reset_cache()
        except ImportError:  # another Ray version: a fresh process reads the variables
            pass


def processes(db_dir: str | Path) -> list[psutil.Process]:
    """Every process of the cluster this deployment started (by its token)."""
    tp = token_path(db_dir)
    if not tp.exists():
        return []
    token = tp.read_text().strip()
    found = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get("RAY_AUTH_TOKEN") == token and p.pid != os.getpid():
                found.append(p)
        except (psutil.Error, OSError):
            continue
    return found


def kill_all(db_dir: str | Path, sig_kill: bool = True, timeout: float = 10.0) -> int:
    """Kill every process of the cluster (``kill -9`` by default); returns how many."""
    procs = processes(db_dir)
    for p in procs:
        try:
            p.kill() if sig_kill else p.terminate()
        except psutil.Error:
            continue
    psutil.wait_procs(procs, timeout=timeout)
    return len(procs)


def stop_local(db_dir: str | Path) -> int:
    """Stop the cluster this deployment started (only it) and forget it."""
    info = read_info(db_dir)
    n = kill_all(db_dir, sig_kill=False, timeout=10)
    time.sleep(0.2)
    n += kill_all(db_dir, sig_kill=True, timeout=5)
    if info is not None and info.temp_dir:
        import shutil

        shutil.rmtree(info.temp_dir, ignore_errors=True)
    info_path(db_dir).unlink(missing_ok=True)
    return n
