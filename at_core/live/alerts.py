"""Alerts (SPEC §15): one generic webhook with a JSON payload, and a local alert log.

Every alert is first appended to ``<db_dir>/live/alerts.jsonl`` (one JSON object per line,
flushed and fsynced: the log is the record even when the webhook is down), then queued for
the webhook, which a background thread posts with exponential backoff. Sending never blocks
the caller: trading must not wait on Slack. The webhook URL is a secret (Slack and Discord
URLs carry their token) and is never logged or written anywhere.

The seven alert types of §15.2 are ``TYPES``; the graph also reports a few operational
events with the same channel (``EXTRA_TYPES``). A repeated condition (a feed that stays
stale) is sent once per ``cooldown_s`` per key, not once per check.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from at_core import logging as at_logging

log = at_logging.get(__name__)

TYPES = (
    "kill_switch",  # daily loss limit breached
    "stale_feed",  # no quotes (or trades) for more than stale_feed_s
    "va_invalid",  # fewer than min_va_bins bins in the histogram
    "high_ambiguous",  # ambiguous_trade_frac_1m above ambiguous_trade_frac_max
    "position_mismatch",  # exchange vs system state differ (trading halted)
    "shadow_divergence",  # paper vs live (backtest) decisions or fills differ
    "leverage_cap",  # position reduced by the leverage cap
)
EXTRA_TYPES = (
    "feed_gap",
    "late_ticks",
    "actor_restarted",
    "halted",
    "exchange",
    "footprint_mismatch",  # the dashboard's footprint cells could not be kept (see the log)
)


class Alerter:
    """Log + webhook for one process (each actor has its own; the log file is shared and
    appended with O_APPEND, one write per line)."""

    def __init__(
        self,
        log_path: Path,
        webhook_url: str | None,
        source: str,
        cooldown_s: float = 60.0,
        max_attempts: int = 8,
        backoff_start_s: float = 0.25,
        backoff_cap_s: float = 30.0,
    ) -> None:
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._url = webhook_url
        self.source = source
        self.cooldown_s = cooldown_s
        self.max_attempts = max_attempts
        self.backoff_start_s, self.backoff_cap_s = backoff_start_s, backoff_cap_s
        self._last: dict[tuple[str, str], float] = {}
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=10_000)
        self.sent = 0
        self.failed = 0
        self.last: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None
        if webhook_url:
            self._thread = threading.Thread(target=self._run, name="alert-webhook", daemon=True)
            self._thread.start()

    def emit(self, kind: str, message: str, key: str = "", **details: Any) -> dict[str, Any] | None:
        """Record and send one alert; returns it (None when suppressed by the cooldown)."""
        if kind not in TYPES and kind not in EXTRA_TYPES:
            raise ValueError(
                f"unknown alert type `{kind}` (known: {', '.join(TYPES + EXTRA_TYPES)})"
            )
        now = time.monotonic()
        k = (kind, key)
        if key and now - self._last.get(k, -1e18) < self.cooldown_s:
            return None
        self._last[k] = now
        alert = {
            "id": uuid.uuid4().hex,
            "type": kind,
            "message": message,
            "ts_ms": int(time.time() * 1000),
            "source": self.source,
            "details": details,
        }
        self._append(alert)
        self.last = alert
        log.warning("alert", type=kind, message=message, source=self.source)
        if self._url:
            try:
                self._q.put_nowait(alert)
            except queue.Full:
                self.failed += 1
        return alert

    def _append(self, alert: dict[str, Any]) -> None:
        line = (json.dumps(alert, default=str) + "\n").encode()
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _run(self) -> None:
        while True:
            alert = self._q.get()
            if alert is None:
                return
            self._deliver(alert)

    def _deliver(self, alert: dict[str, Any]) -> None:
        wait = self.backoff_start_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                r = requests.post(str(self._url), json=alert, timeout=5)
                if r.status_code < 300:
                    self.sent += 1
                    return
                why = f"HTTP {r.status_code}"
            except requests.RequestException as exc:
                why = type(exc).__name__
            log.warning("alert webhook failed", attempt=attempt, why=why, alert=alert["id"])
            time.sleep(wait)
            wait = min(wait * 2, self.backoff_cap_s)
        self.failed += 1

    def close(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(timeout)


def read_alerts(log_path: Path, last: int | None = None) -> list[dict[str, Any]]:
    """The alert log (oldest first; ``last``: only the newest N). A torn last line (a
    crash mid-write) is skipped."""
    if not log_path.exists():
        return []
    out = []
    for line in log_path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out[-last:] if last else out
