"""A real multi-node Ray cluster on this machine, for tests (two ``ray start`` processes).

Every node binds to this machine only. Token authentication is set explicitly through the
environment (``RAY_AUTH_MODE=token`` with a per-test token), so the tests never depend on a
token file in HOME. ``ray stop`` at the end takes the cluster down.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    gcs_address: str
    dashboard_url: str
    env: dict[str, str]


@contextmanager
def two_node_cluster() -> Iterator[Cluster]:
    port, dash = free_port(), free_port()
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths are length-limited
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        "RAY_USAGE_STATS_ENABLED": "0",
        # a job's entrypoint `python` must be the venv's (where at_core is installed)
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("RAY_ADDRESS", None)
    head = [
        RAY,
        "start",
        "--head",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dash}",
        "--num-cpus=1",
        f"--temp-dir={temp}",
        "--disable-usage-stats",
    ]
    worker = [
        RAY,
        "start",
        f"--address=127.0.0.1:{port}",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=1",
        '--resources={"node2": 1}',
        "--disable-usage-stats",
    ]
    try:
        subprocess.run(head, env=env, check=True, capture_output=True, timeout=120)
        subprocess.run(worker, env=env, check=True, capture_output=True, timeout=120)
        deadline = time.time() + 60
        while time.time() < deadline:
            out = subprocess.run(
                [RAY, "status", f"--address=127.0.0.1:{port}"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if out.stdout.count("node_") >= 2:
                break
            time.sleep(1)
        else:
            raise RuntimeError(f"second Ray node did not join: {out.stdout}{out.stderr}")
        yield Cluster(
            gcs_address=f"127.0.0.1:{port}", dashboard_url=f"http://127.0.0.1:{dash}", env=env
        )
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
