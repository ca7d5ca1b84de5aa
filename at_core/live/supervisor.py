"""The Supervisor actor: starts the graph, watches it, and owns the operator's commands.

Named and detached (``at-supervisor`` in namespace ``auction-trader``), so it outlives the
command that started it and every later command finds it with ``ray.get_actor``. It
creates the four workers (also named and detached, ``max_restarts=-1`` so Ray re-runs a
crashed one's constructor, which restores its state before it takes work, and
``max_task_retries=0`` so no call, least of all an order, is ever run twice), pings them,
re-creates one that Ray could not restart, and reports a restart as an alert.

Operator rules (SPEC §11, §16.1):
* the graph starts in observation (signals computed and logged, entries not permitted);
* ``activate`` is refused before ``warmup_minutes`` of decided minutes, in ``dry_run``,
  while halted, and in ``live`` unless the operator confirms live trading explicitly;
  with ``require_manual_activation: false`` a paper or shadow graph activates itself once
  warm (a live one never does);
* ``mode`` switches only when flat (no position, no working order);
* a halt (a reconciliation mismatch, an unexplained report) blocks entries until the
  operator resolves it and runs ``resume``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any

from at_core import logging as at_logging
from at_core.live.alerts import Alerter, read_alerts
from at_core.live.config import ACTOR_NAMES, MODES, NAMESPACE, LiveConfig
from at_core.storage.stores import connect_sqlite

log = at_logging.get(__name__)
ROLES = ("collector", "features", "signals", "execution")
STATE_DDL = "CREATE TABLE IF NOT EXISTS supervisor_state (k TEXT PRIMARY KEY, v TEXT NOT NULL)"


class Refused(Exception):
    """An operator command the rules refuse (the message says why)."""


def _cls(role: str) -> Any:
    if role == "collector":
        from at_core.live.collector import Collector

        return Collector
    if role == "features":
        from at_core.live.features_actor import Features

        return Features
    if role == "signals":
        from at_core.live.signals_actor import Signals

        return Signals
    from at_core.live.execution_actor import Execution

    return Execution


def graph_actor(cls: type, role: str, max_concurrency: int = 1) -> Any:
    """``cls`` as one of the graph's named, detached actors. Ray restarts it forever
    (``max_restarts=-1``) and never retries a call it was running when it died
    (``max_task_retries=0``: an order-placing call runs at most once); each restores its
    own state in its constructor before it takes work."""
    import ray

    return ray.remote(cls).options(
        name=ACTOR_NAMES[role],
        namespace=NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        max_task_retries=0,
        num_cpus=0,
        max_concurrency=max_concurrency,
    )


def create_worker(role: str, cfg: LiveConfig) -> Any:
    return graph_actor(_cls(role), role, 4 if role == "collector" else 1).remote(cfg)


class Supervisor:
    def __init__(self, cfg: LiveConfig) -> None:
        self.cfg = cfg
        cfg.live_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = cfg.live_dir / "supervisor.db"
        saved = self._load()
        # the mode and the operator's decisions survive a restart; activation is kept, but
        # entries stay blocked until the workers have restored and (live) reconciled
        self.cfg.mode = saved.get("mode", cfg.mode)
        self.activated: bool = bool(saved.get("activated", False))
        self.halted: str | None = saved.get("halted")
        self.started_ms = int(time.time() * 1000)
        self.alerts = Alerter(cfg.alert_log, cfg.secret("webhook_url"), "supervisor")
        self.workers: dict[str, Any] = {}
        self.health: dict[str, dict[str, Any]] = {}
        self.restarts: dict[str, int] = dict.fromkeys(ROLES, 0)
        self.known_start: dict[str, Any] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        for role in ROLES:
            self.workers[role] = create_worker(role, self.cfg)
        self._wait_ready()
        if self.cfg.mode == "live":
            # fail closed: trading unlocks only once the account matches the system
            import ray

            issue = ray.get(self.workers["execution"].reconciled.remote(), timeout=120)
            if issue:
                self.halted = issue
        self._save()
        self._apply_permission()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    # ---- persistence ---------------------------------------------------------------------------
    # (a connection per use: commands run on several threads of this actor)
    def _load(self) -> dict[str, Any]:
        con = connect_sqlite(self.db_path)
        try:
            with con:
                con.execute(STATE_DDL)
            rows = con.execute("SELECT k, v FROM supervisor_state").fetchall()
        finally:
            con.close()
        return {k: json.loads(v) for k, v in rows}

    def _save(self) -> None:
        con = connect_sqlite(self.db_path)
        try:
            with con:
                for k, v in (
                    ("mode", self.cfg.mode),
                    ("activated", self.activated),
                    ("halted", self.halted),
                ):
                    con.execute(
                        "INSERT OR REPLACE INTO supervisor_state VALUES (?, ?)", [k, json.dumps(v)]
                    )
        finally:
            con.close()

    # ---- health -------------------------------------------------------------------------------
    def _wait_ready(self, timeout: float = 120.0) -> None:
        import ray

        refs = {role: w.ping.remote() for role, w in self.workers.items()}
        ray.get(list(refs.values()), timeout=timeout)

    def _watch(self) -> None:
        import ray

        while not self._stop.wait(2.0):
            for role in ROLES:
                w = self.workers[role]
                try:
                    st = ray.get(w.status.remote(), timeout=10)
                    # a new process start (Ray re-ran the constructor): reported whatever
                    # the checks in between saw (a dead or a slow actor)
                    seen = self.known_start.get(role)
                    if seen is not None and st.get("started_at") != seen:
                        self.restarts[role] += 1
                        self.alerts.emit(
                            "actor_restarted",
                            f"{role} restarted ({st.get('restored_from')})",
                            role=role,
                        )
                    self.known_start[role] = st.get("started_at")
                    self.health[role] = {**st, "ok": True, "checked_ms": int(time.time() * 1000)}
                except ray.exceptions.ActorDiedError as exc:
                    # dead for good (Ray restarts a crashed one by itself: that is
                    # ActorUnavailableError, waited out below)
                    self.health[role] = {"ok": False, "error": str(exc)[:300]}
                    self._recreate(role)
                except Exception as exc:  # a slow answer: report, check again next round
                    self.health[role] = {"ok": False, "error": repr(exc)[:300]}
            if not self.activated and self._auto_activation_due():
                with contextlib.suppress(Refused):
                    self.activate(confirm_live=False, auto=True)

    def _recreate(self, role: str) -> None:
        import ray

        with self._lock:
            with contextlib.suppress(Exception):
                ray.kill(self.workers[role], no_restart=True)
            self.workers[role] = create_worker(role, self.cfg)
            self.restarts[role] += 1
        self.alerts.emit(
            "actor_restarted", f"{role} re-created by the supervisor", key=role, role=role
        )

    # ---- commands ---------------------------------------------------------------------------
    def _signals_state(self) -> dict[str, Any]:
        import ray

        return dict(ray.get(self.workers["signals"].state.remote(), timeout=30))

    def _warm(self) -> tuple[int, int]:
        st = self._signals_state()
        return int(st.get("warm_minutes") or 0), int(self.cfg.settings.get("warmup_minutes", 240))

    def _auto_activation_due(self) -> bool:
        if self.cfg.mode not in ("paper", "shadow") or self.halted:
            return False
        if self.cfg.settings.get("require_manual_activation", True):
            return False
        have, need = self._warm()
        return have >= need

    def _apply_permission(self) -> None:
        import ray

        if self.halted:
            p = "blocked"
        elif self.activated and self.cfg.mode != "dry_run":
            p = "allowed"
        else:
            p = "close_only"
        ray.get(self.workers["signals"].set_permission.remote(p), timeout=60)

    def activate(self, confirm_live: bool = False, auto: bool = False) -> dict[str, Any]:
        if self.halted:
            raise Refused(f"halted ({self.halted}): resolve it, then `auction-trader live resume`")
        if self.cfg.mode == "dry_run":
            raise Refused("dry_run never trades: switch the mode first (`live mode paper`)")
        have, need = self._warm()
        if have < need:
            raise Refused(f"warm-up not complete: {have} of {need} minutes")
        if self.cfg.mode == "live" and (auto or not confirm_live):
            raise Refused(
                "live trading needs the operator's explicit confirmation "
                "(`auction-trader live activate --live`)"
            )
        self.activated = True
        self._save()
        self._apply_permission()
        log.info("activated", mode=self.cfg.mode, auto=auto)
        return self.status()

    def deactivate(self) -> dict[str, Any]:
        self.activated = False
        self._save()
        self._apply_permission()
        return self.status()

    def halt(self, reason: str) -> dict[str, Any]:
        self.halted = reason
        self._save()
        self._apply_permission()
        self.alerts.emit("halted", f"trading halted: {reason}", reason=reason)
        return self.status()

    def resume(self) -> dict[str, Any]:
        self.halted = None
        self._save()
        self._apply_permission()
        return self.status()

    def set_mode(self, mode: str) -> dict[str, Any]:
        import ray

        if mode not in MODES:
            raise Refused(f"mode `{mode}` is not one of {', '.join(MODES)}")
        st = self._signals_state()
        if st.get("position") is not None or st.get("working") is not None:
            raise Refused("a mode switch needs a flat book: no position and no working order")
        if (mode == "live") != (self.cfg.mode == "live"):
            raise Refused(
                "switching between live and simulated fills needs a restart: "
                "`live stop`, then `live start --mode ...`"
            )
        self.cfg.mode = mode
        self.activated = False
        self._save()
        for role in ROLES:
            ray.get(self.workers[role].ping.remote())
        ray.get(self.workers["signals"].set_mode.remote(mode))
        ray.get(self.workers["execution"].set_mode.remote(mode))
        self._apply_permission()
        return self.status()

    def status(self) -> dict[str, Any]:
        import ray

        out: dict[str, Any] = {
            "mode": self.cfg.mode,
            "activated": self.activated,
            "halted": self.halted,
            "started_ms": self.started_ms,
            "config": self.cfg.public(),
            "restarts": self.restarts,
        }
        parts = {}
        for role in ROLES:
            try:
                parts[role] = ray.get(self.workers[role].status.remote(), timeout=10)
            except Exception as exc:
                parts[role] = {"error": repr(exc)[:300]}
        out["workers"] = parts
        sig = parts.get("signals", {})
        ex = parts.get("execution", {})
        need = int(self.cfg.settings.get("warmup_minutes", 240))
        have = int(sig.get("warm_minutes") or 0)
        out["warmup"] = {"minutes": have, "needed": need, "done": have >= need}
        out["permission"] = ex.get("permission")
        for k in ("position", "working", "equity", "day_pnl", "heat", "kill", "trades", "orders"):
            out[k] = ex.get(k)
        col = parts.get("collector", {})
        out["feed"] = col.get("topics")
        out["feed_state"] = col.get("feed_state")
        last = read_alerts(Path(self.cfg.alert_log), last=1)
        out["last_alert"] = last[0] if last else None
        return out

    def ping(self) -> bool:
        return True

    def stop(self) -> dict[str, Any]:
        """Stop the workers cleanly (final snapshots), then this actor's watch loop."""
        import ray

        self._stop.set()
        done = {}
        for role in ROLES:  # upstream first: nothing new arrives while the rest stops
            try:
                ray.get(self.workers[role].stop.remote(), timeout=30)
                done[role] = "stopped"
            except Exception as exc:
                done[role] = repr(exc)[:200]
            with contextlib.suppress(Exception):
                ray.kill(self.workers[role], no_restart=True)
        self.alerts.close(timeout=2)
        return done
