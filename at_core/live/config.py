"""What one deployment of the live graph runs with (mode, stores, exchange, thresholds).

Strategy and feature settings are the ordinary ``Settings`` (``configs/default.yaml`` plus
``--set`` overrides), so live trades with exactly the parameters a backtest used. The
secrets (API key and secret, alert webhook) come only from the environment or ``.env``
(SPEC §17.2), are passed to the actors in memory and are never logged, written into a
snapshot, or shown by ``status``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from at_core.config import Settings, load_secrets

MODES = ("dry_run", "paper", "shadow", "live")
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

    @staticmethod
    def build(mode: str, db_dir: str | Path, settings: Settings, **kw: Any) -> LiveConfig:
        sec = load_secrets()
        kw.setdefault("api_key", sec.bybit_api_key)
        kw.setdefault("api_secret", sec.bybit_api_secret)
        kw.setdefault("webhook_url", sec.alert_webhook_url)
        return LiveConfig(mode=mode, db_dir=str(db_dir), settings=settings.model_dump(), **kw)
