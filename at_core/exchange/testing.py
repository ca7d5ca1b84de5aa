"""A simulator in its own process, for tests, benchmarks and demos: started through the
real command line (``auction-trader simulate``), ready once it has written its URLs, and
driven through its control endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from at_core.exchange.client import WebSocket


class SimProcess:
    """``with SimProcess("--seed", "7", "--paused") as sim: sim.rest, sim.api_key, ...``"""

    def __init__(
        self, *args: str, timeout: float = 60.0, env: dict[str, str] | None = None
    ) -> None:
        self.args = list(args)
        self.timeout = timeout
        self.env = env
        self.info: dict[str, Any] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="at-sim-")
        self.log_file = Path(self._dir.name) / "faults.jsonl"

    def __enter__(self) -> SimProcess:
        ready = Path(self._dir.name) / "ready.json"
        cmd = [sys.executable, "-m", "at_core.cli", "--log-level", "WARNING", "simulate"]
        cmd += [*self.args, "--ready-file", str(ready), "--log-file", str(self.log_file)]
        out = Path(self._dir.name) / "stdout.txt"
        self._out = out.open("wb")
        self.proc = subprocess.Popen(
            cmd, stdout=self._out, stderr=subprocess.STDOUT, env={**os.environ, **(self.env or {})}
        )
        deadline = time.monotonic() + self.timeout
        while not ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"simulate exited with {self.proc.returncode}: {out.read_text()}"
                )
            if time.monotonic() > deadline:
                self.close()
                raise TimeoutError(f"simulate not ready after {self.timeout} s: {out.read_text()}")
            time.sleep(0.05)
        self.info = json.loads(ready.read_text())
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "_out"):
            self._out.close()
        self._dir.cleanup()

    # ---- facts -------------------------------------------------------------------------
    @property
    def rest(self) -> str:
        return str(self.info["rest"])

    @property
    def ws_base(self) -> str:
        return self.rest.replace("http://", "ws://")

    @property
    def api_key(self) -> str:
        return str(self.info["api_key"])

    @property
    def api_secret(self) -> str:
        return str(self.info["api_secret"])

    # ---- clients ------------------------------------------------------------------------
    def private_ws(self, callback: Callable[[dict[str, Any]], None]) -> WebSocket:
        """pybit's private WebSocket, authenticated, every message to ``callback``."""
        return WebSocket(
            self.ws_base,
            channel_type="private",
            api_key=self.api_key,
            api_secret=self.api_secret,
            private_auth_expire=10,
            callback_function=callback,
        )

    def public_ws(self, callback: Callable[[dict[str, Any]], None]) -> WebSocket:
        """pybit's public linear WebSocket, every message to ``callback``."""
        return WebSocket(self.ws_base, channel_type="linear", callback_function=callback)

    # ---- control -------------------------------------------------------------------------
    def _control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = requests.request(
            method,
            f"{self.rest}/_sim/{path}",
            json=body,
            headers={"X-Sim-Token": self.info["control_token"]},
            timeout=self.timeout,
        )
        if r.status_code != 200:
            raise RuntimeError(f"/_sim/{path}: {r.status_code} {r.text}")
        return r.json()

    def state(self) -> dict[str, Any]:
        return dict(self._control("GET", "state"))

    def advance(self, to_ms: int) -> dict[str, Any]:
        return dict(self._control("POST", "clock", {"action": "advance", "to": int(to_ms)}))

    def pause(self) -> dict[str, Any]:
        return dict(self._control("POST", "clock", {"action": "pause"}))

    def resume(self, speed: float | None = None) -> dict[str, Any]:
        return dict(self._control("POST", "clock", {"action": "resume", "speed": speed}))

    def fault(self, kind: str, **params: Any) -> dict[str, Any]:
        return dict(self._control("POST", "fault", {"kind": kind, **params}))

    def fault_log(self) -> list[dict[str, Any]]:
        return list(self._control("GET", "log")["entries"])
