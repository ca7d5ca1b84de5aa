"""Start a dashboard and a headless browser for tests and benchmarks (one place for both).

``serve`` runs ``auction-trader dashboard`` as its own process on a free loopback port and
waits until it answers; ``launch_chromium`` starts Debian's Chromium through Playwright
(never a downloaded browser) with the flags a sandboxed CI box needs; ``median_ms`` times
a request the way both dashboard benchmarks report it.

Pitfall: the dashboard process must not inherit ``RAY_*`` variables of a test that started
a cluster itself, or it would join that cluster rather than the live graph's.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not installed (`make browser` installs Debian's chromium)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(
    db_dir: Path, env: dict[str, str] | None = None, timeout_s: float = 60.0
) -> Iterator[str]:
    """``auction-trader dashboard --db-dir db_dir`` on a free port; yields its URL once
    ``/api/meta`` answers, stops it afterwards. Its output is kept for the error raised
    when it dies or does not answer."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    url = f"http://127.0.0.1:{port}"
    # output to a file, not a pipe: a full pipe nobody reads would block the server
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "at_core.cli", "dashboard", "--db-dir", str(db_dir),
             "--port", str(port)],
            env={**base, **(env or {})}, stdout=log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    urllib.request.urlopen(url + "/api/meta", timeout=5).read()
                    break
                except OSError:
                    if proc.poll() is not None:
                        log.seek(0)
                        raise RuntimeError(f"the dashboard exited: {log.read()[-3000:]}") from None
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"the dashboard did not answer within {timeout_s} s"
                        ) from None
                    time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless, through Playwright."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def median_ms(fn: Any, n: int = 7) -> float:
    """Median wall time of ``n`` calls of ``fn`` in ms, after one unmeasured warm-up call
    (the first pays for imports and connections the steady state does not)."""
    import statistics

    fn()
    xs = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t0) * 1000)
    return float(statistics.median(xs))
