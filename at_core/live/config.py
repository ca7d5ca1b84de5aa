"""What one deployment of the live graph runs with (mode, stores, exchange, thresholds).

Strategy and feature settings are the ordinary ``Settings`` (``configs/default.yaml`` plus
``--set`` overrides), so live trades with exactly the parameters a backtest used. The
secrets (API key and secret, alert webhook) come only from the environment or ``.env``
(SPEC §17.2), are passed to the actors in memory and are never logged, written into a
snapshot, or shown by ``status``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from at_core.config import Settings, load_secrets

MODES = ("dry_run", "paper", "shadow", "live")
SECRETS_FILE = "secrets.env"
#: the config's secret fields and the environment names they come from
SECRET_ENV = {
    "api_key": "BYBIT_API_KEY",
    "api_secret": "BYBIT_API_SECRET",
    "webhook_url": "ALERT_WEBHOOK_URL",
}
NAMESPACE = "auction-trader"
ACTOR_NAMES = {
    "supervisor": "at-supervisor",
    "collector": "at-collector",
    "features": "at-features",
    "signals": "at-signals",
    "execution": "at-execution",
}


@dataclass
class LiveConfig:
    mode: str
    db_dir: str
    settings: dict[str, Any]
    rest_url: str | None = None  # None: Bybit's hosts
    ws_url: str | None = None
    #: seconds without a message on a topic before the feed is called stale (SPEC §15.2)
    stale_feed_s: float = 10.0
    #: reorder window of the collector (ms); 0 = release a row once a later one is seen
    reorder_ms: int = 0
    #: release everything held after this long without a message (wall seconds)
    idle_flush_s: float = 0.25
    #: periodic snapshot period in wall seconds (default: state_snapshot_interval_minutes)
    snapshot_every_s: float | None = None
    raw_keep_hours: float = 48.0
    #: ambiguous_trade_frac_1m above this raises `high_ambiguous` (default: the setting)
    ambiguous_alert: float | None = None
    api_key: str | None = field(default=None, repr=False)
    api_secret: str | None = field(default=None, repr=False)
    webhook_url: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode `{self.mode}` is not one of {', '.join(MODES)}")

    @property
    def live_dir(self) -> Path:
        return Path(self.db_dir) / "live"

    @property
    def alert_log(self) -> Path:
        return self.live_dir / "alerts.jsonl"

    def strategy(self) -> Settings:
        return Settings(**self.settings)

    def snapshot_period_s(self) -> float:
        if self.snapshot_every_s is not None:
            return self.snapshot_every_s
        return 60.0 * float(self.settings.get("state_snapshot_interval_minutes", 5))

    def public(self) -> dict[str, Any]:
        """Everything but the secrets (for status and logs)."""
        d = asdict(self)
        for k in ("api_key", "api_secret", "webhook_url"):
            d[k] = "set" if d[k] else None
        d.pop("settings")
        return d

    def current_mode(self) -> str:
        """The mode the supervisor last recorded (an actor that Ray restarts runs its
        constructor with the config it was created with; the operator may have switched
        the mode since)."""
        import json
        import sqlite3

        path = self.live_dir / "supervisor.db"
        if not path.exists():
            return self.mode
        con = sqlite3.connect(str(path), timeout=30)
        try:
            row = con.execute("SELECT v FROM supervisor_state WHERE k = 'mode'").fetchone()
        except sqlite3.OperationalError:
            row = None
        finally:
            con.close()
        return str(json.loads(row[0])) if row else self.mode

    # ---- secrets ----------------------------------------------------------------------------
    def keep_secrets(self) -> LiveConfig:
        """Write this config's secrets to ``<db_dir>/live/secrets.env`` (mode 0600) and
        return a copy without them. The copy is what goes to Ray: an actor's constructor
        arguments stay in Ray's control store (it re-runs the constructor on a restart), and
        no secret should live there; each actor reads them back (``secret``)."""
        self.live_dir.mkdir(parents=True, exist_ok=True)
        lines = [f"{env}={getattr(self, k)}\n" for k, env in SECRET_ENV.items() if getattr(self, k)]
        path = self.live_dir / SECRETS_FILE
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.writelines(lines)
        os.replace(tmp, path)
        return replace(self, api_key=None, api_secret=None, webhook_url=None)

    def secret(self, name: str) -> str | None:
        """``api_key``, ``api_secret`` or ``webhook_url``: this config's own value, else the
        file written at start (``keep_secrets``), else the environment / ``.env``."""
        own = getattr(self, name)
        if own:
            return str(own)
        path = self.live_dir / SECRETS_FILE
        if path.exists():
            got = dotenv_values(path).get(SECRET_ENV[name])
            if got:
                return got
        sec = load_secrets()
        return {"api_key": sec.bybit_api_key, "api_secret": sec.bybit_api_secret,
                "webhook_url": sec.alert_webhook_url}[name]  # fmt: skip

    @staticmethod
    def build(mode: str, db_dir: str | Path, settings: Settings, **kw: Any) -> LiveConfig:
        sec = load_secrets()
        kw.setdefault("api_key", sec.bybit_api_key)
        kw.setdefault("api_secret", sec.bybit_api_secret)
        kw.setdefault("webhook_url", sec.alert_webhook_url)
        return LiveConfig(mode=mode, db_dir=str(db_dir), settings=settings.model_dump(), **kw)


class Peers:
    """Handles of the other graph actors, looked up by role when first needed: ``get``
    is None while that actor does not exist (the graph is starting), and is asked again
    next time; ``need`` raises then."""

    def __init__(self) -> None:
        self._handles: dict[str, Any] = {}

    def get(self, role: str) -> Any:
        h = self._handles.get(role)
        if h is None:
            import ray

            try:
                h = ray.get_actor(ACTOR_NAMES[role], namespace=NAMESPACE)
            except ValueError:
                return None
            self._handles[role] = h
        return h

    def need(self, role: str) -> Any:
        h = self.get(role)
        if h is None:
            raise RuntimeError(f"the {role} actor is not running")
        return h


def favour_latency() -> None:
    """Shorten this process's GIL switch interval (5 ms by default) to 0.5 ms.

    A worker has more than one Python thread (the collector's WebSocket reader and pump,
    the execution actor's private stream, Ray's own); a thread returning from a call that
    released the GIL (DuckDB, SQLite, a socket) waits for the running one to yield it, up
    to a whole interval each time. On the minute-close path that wait, not the work,
    dominated the latency."""
    sys.setswitchinterval(0.0005)
