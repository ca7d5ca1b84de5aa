"""The dashboard's HTTP API and static front end (SPEC §13.3, §14).

``create_app(db_dir, settings, control_token)`` serves JSON under ``/api`` and the built
front end under ``/``. It reads SQLite stores and the DuckDB stores through a short-lived
read-only connection, and writes nothing (validation plots go to a temporary folder) but
the operator log of a control command: controls exist only with a token (``controls``).

Errors are the caller's, with a message, never a 500: a bad parameter is 400 (or FastAPI's
422 for a wrong type), an unknown run 404, a store in the wrong state 409, a store held by
another writer 503; a control without the right token 401 (403 when controls are off), a
control the live graph refused 409 with its reason.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from at_core import logging as at_logging
from at_core.config import Settings
from at_core.dashboard import backtests, controls, live_tables, market
from at_core.dashboard.live import POLL_S, STATUS_EVERY_S, LiveGone, LiveLink, Refused, banner
from at_core.dashboard.sweeps import MAX_PAGE, Sweeps
from at_core.errors import AuctionTraderError, InputError, StorageError

log = at_logging.get(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "web" / "dist"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _error(status: int, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=status)


def create_app(
    db_dir: str | Path, settings: Settings | None = None, control_token: str | None = None
) -> FastAPI:
    """``control_token``: the operator's token (``controls.token_from_env``); None keeps the
    dashboard read-only."""
    db = Path(db_dir).resolve()
    cfg = settings or Settings()
    sweeps = Sweeps(db, cfg)
    live = LiveLink(db)
    app = FastAPI(
        title="auction-trader dashboard",
        version="1",
        description="Stored market data, features, backtests and grid sweeps (read-only).",
    )

    @app.exception_handler(InputError)
    async def _bad_input(_: Request, exc: InputError) -> JSONResponse:
        return _error(400, exc)

    @app.exception_handler(LookupError)
    async def _not_found(_: Request, exc: LookupError) -> JSONResponse:
        return _error(404, exc)

    @app.exception_handler(StorageError)
    async def _storage(_: Request, exc: StorageError) -> JSONResponse:
        return _error(503 if "held for writing" in str(exc) else 409, exc)

    @app.exception_handler(controls.ControlsOff)
    async def _controls_off(_: Request, exc: controls.ControlsOff) -> JSONResponse:
        return _error(403, exc)

    @app.exception_handler(controls.BadToken)
    async def _bad_token(_: Request, exc: controls.BadToken) -> JSONResponse:
        r = _error(401, exc)
        r.headers["WWW-Authenticate"] = "Bearer"
        return r

    @app.exception_handler(LiveGone)
    async def _live_gone(_: Request, exc: LiveGone) -> JSONResponse:
        return _error(503, exc)

    @app.exception_handler(Refused)
    async def _refused(_: Request, exc: Refused) -> JSONResponse:
        return _error(409, exc)

    @app.exception_handler(AuctionTraderError)
    async def _other(_: Request, exc: AuctionTraderError) -> JSONResponse:
        return _error(400, exc)

    # ---- market ------------------------------------------------------------------
    @app.get("/api/meta", summary="instrument, colour thresholds and the stored range")
    def meta() -> dict[str, Any]:
        return {
            "instrument": cfg.instrument,
            "tick_size": cfg.tick_size,
            "rolling_window_minutes": cfg.rolling_window_minutes,
            "min_va_bins": cfg.min_va_bins,
            "thresholds": {
                "ambiguous_warn": cfg.dashboard_ambiguous_warn,
                "ambiguous_alert": cfg.ambiguous_trade_frac_max,
                "heat_warn": cfg.dashboard_heat_warn,
                "heat_alert": cfg.dashboard_heat_alert,
            },
            "extent": live.extent() if live.available() else market.extent(db),
            "live": live.available(),
            "server_time_ms": int(time.time() * 1000),
        }

    @app.get("/api/minutes", summary="bars and features of [start, end), columnar")
    def minutes(
        start: Annotated[int | None, Query(description="epoch ms, whole minute")] = None,
        end: Annotated[int | None, Query(description="epoch ms, whole minute, exclusive")] = None,
        days: Annotated[int | None, Query(description="instead: the last N stored days")] = None,
    ) -> dict[str, Any]:
        on_live = live.available()
        if days is not None and start is None and end is None:
            last = live.last_minute() if on_live else None
            start, end = market.last_days(db, days, last)
        elif start is None or end is None or days is not None:
            raise InputError("minutes: give start and end, or days alone")
        if on_live:  # the features actor holds features.duckdb: read through it
            market.check_range(start, end)
            return {"start": start, "end": end, **live.minutes(start, end)}
        return {"start": start, "end": end, **market.minutes(db, start, end)}

    @app.get("/api/profile", summary="the volume profile behind one minute's features")
    def profile(ts_min: Annotated[int, Query(description="epoch ms of the minute")]) -> Any:
        return market.profile(db, cfg, ts_min, live if live.available() else None)

    @app.get("/api/footprint", summary="bid x ask volume per minute and price bin")
    def footprint(
        start: int,
        end: int,
        bin_ticks: Annotated[int, Query(ge=1, le=1_000_000)] = 10,
    ) -> dict[str, Any]:
        return market.footprint(db, cfg, start, end, bin_ticks, live if live.available() else None)

    # ---- live ---------------------------------------------------------------------
    @app.get("/api/live/status", summary="the running live graph's status (404 when none)")
    def live_status() -> dict[str, Any]:
        if not live.available():
            raise LookupError(f"no live graph runs on {db} (`auction-trader live start`)")
        st = live.status()
        return {**st, "banner": banner(st)}

    @app.get("/api/live/trades", summary="the live graph's trades (stored; while it runs too)")
    def live_trades() -> dict[str, Any]:
        return {"trades": live_tables.trades(db), "pnl": live_tables.pnl(db)}

    @app.get("/api/live/signals", summary="the live graph's decisions with reason codes")
    def live_signals(
        since: Annotated[int, Query(ge=0, lt=market.MAX_MS)] = 0,
        active_only: bool = True,
        limit: Annotated[int, Query(ge=1, le=live_tables.MAX_ROWS)] = 50,
    ) -> list[dict[str, Any]]:
        return live_tables.signals(db, since, active_only, limit)

    @app.get("/api/live/alerts", summary="the live graph's alert log, newest first")
    def live_alerts(
        limit: Annotated[int, Query(ge=1, le=controls.MAX_ALERTS)] = 100,
        since: Annotated[int, Query(ge=0, lt=market.MAX_MS)] = 0,
    ) -> dict[str, Any]:
        return controls.alerts(db, limit, since)

    @app.get("/api/live/controls", summary="whether operator controls are on, and which")
    def live_controls() -> dict[str, Any]:
        return {
            "enabled": control_token is not None,
            "actions": list(controls.ACTIONS),
            "token_env": controls.TOKEN_ENV,
        }

    @app.post(
        "/api/live/control/{action}",
        summary="an operator command to the live graph (needs the control token)",
    )
    async def live_control(action: str, request: Request) -> dict[str, Any]:
        import asyncio
        import json as _json

        controls.check_token(control_token, request.headers.get("authorization"))
        if action not in controls.ACTIONS:
            raise InputError(f"control: unknown action `{action}` ({', '.join(controls.ACTIONS)})")
        raw = await request.body()
        try:
            body = _json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise InputError(f"control {action}: the body is not JSON ({exc})") from None
        if not isinstance(body, dict):
            raise InputError(f"control {action}: the body must be a JSON object")
        args, kw = controls.command_args(action, body)
        if not await asyncio.to_thread(live.available):
            raise LookupError(f"no live graph runs on {db} (`auction-trader live start`)")
        who = request.client.host if request.client else "?"
        try:
            st = await asyncio.to_thread(live.command, controls.ACTIONS[action], *args, **kw)
        except Refused as exc:
            controls.audit(db, {"client": who, "action": action, "body": body,
                                "outcome": "refused", "reason": str(exc)})  # fmt: skip
            log.warning("dashboard.control_refused", action=action, client=who, reason=str(exc))
            raise
        controls.audit(db, {"client": who, "action": action, "body": body, "outcome": "done"})
        log.info("dashboard.control", action=action, client=who, mode=st.get("mode"),
                 activated=st.get("activated"), halted=st.get("halted"))  # fmt: skip
        return {**st, "banner": banner(st)}

    @app.websocket("/ws/live")
    async def live_feed(ws: WebSocket) -> None:
        """New minutes as the live features actor writes them ({"type": "minutes"}, the
        same columns as /api/minutes) and the status every second ({"type": "status"});
        {"type": "idle"} once when no live graph runs. Ends when the client goes."""
        import asyncio

        await ws.accept()
        try:
            if not await asyncio.to_thread(live.available):
                await ws.send_json({"type": "idle", "detail": f"no live graph runs on {db}"})
                await ws.close()
                return
            sent = await asyncio.to_thread(live.last_minute)
            next_status = 0.0
            while True:
                last = await asyncio.to_thread(live.last_minute)
                if last is not None and (sent is None or last > sent):
                    lo = last if sent is None else sent + 60_000
                    rows = await asyncio.to_thread(live.minutes, lo, last + 60_000)
                    await ws.send_json({"type": "minutes", "sent_ms": _now_ms(), **rows})
                    sent = last
                if time.monotonic() >= next_status:
                    st = await asyncio.to_thread(live.status)
                    await ws.send_json({"type": "status", "banner": banner(st), **st})
                    next_status = time.monotonic() + STATUS_EVERY_S
                await asyncio.sleep(POLL_S)
        except WebSocketDisconnect:
            return
        except LiveGone as exc:  # the graph stopped: say so; the page reconnects later
            await ws.send_json({"type": "idle", "detail": str(exc)})
            await ws.close()

    # ---- backtests ---------------------------------------------------------------
    @app.get("/api/backtests", summary="stored backtest runs, newest first")
    def backtest_runs() -> list[dict[str, Any]]:
        return backtests.runs(db)

    @app.get("/api/backtests/{run_id}", summary="a backtest's metrics, trades and equity")
    def backtest_detail(run_id: str) -> dict[str, Any]:
        return backtests.detail(db, run_id)

    # ---- sweeps ------------------------------------------------------------------
    @app.get("/api/sweeps", summary="grid runs with their headline statistics")
    def sweep_runs() -> list[dict[str, Any]]:
        return sweeps.runs()

    @app.get("/api/sweeps/{run_id}", summary="a grid run: grid, columns, MLflow link")
    def sweep_info(run_id: str) -> dict[str, Any]:
        return sweeps.info(run_id)

    @app.get("/api/sweeps/{run_id}/rows", summary="a page of the combinations table")
    def sweep_rows(
        run_id: str,
        sort: str | None = None,
        order: str = "desc",
        filter: Annotated[list[str] | None, Query(description="COLUMN OP VALUE")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        return sweeps.rows(run_id, sort, order, filter, limit, offset)

    @app.get("/api/sweeps/{run_id}/validation", summary="DSR, PBO, stability and plots")
    def sweep_validation(run_id: str) -> dict[str, Any]:
        return sweeps.validation(run_id)

    @app.get("/api/sweeps/{run_id}/plots/{name}", summary="one validation plot (PNG)")
    def sweep_plot(run_id: str, name: str) -> FileResponse:
        return FileResponse(sweeps.plot(run_id, name), media_type="image/png")

    @app.get("/api/sweeps/{run_id}/sensitivity", summary="the metric over one or two keys")
    def sweep_sensitivity(
        run_id: str,
        keys: Annotated[str, Query(description="KEY or KEY1,KEY2")],
        metric: str | None = None,
    ) -> dict[str, Any]:
        return sweeps.sensitivity(run_id, [k for k in keys.split(",") if k], metric)

    @app.get("/api/sweeps/{run_id}/equity/{result_id}", summary="a combination's equity")
    def sweep_equity(run_id: str, result_id: int) -> dict[str, Any]:
        return sweeps.equity(run_id, result_id)

    @app.get("/api/sweeps/{run_id}/export.csv", summary="every combination as CSV")
    def sweep_csv(run_id: str) -> Response:
        return PlainTextResponse(
            sweeps.csv(run_id),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="sweep-{run_id}.csv"'},
        )

    # ---- front end ---------------------------------------------------------------
    if (STATIC_DIR / "index.html").is_file():
        app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="web")
    else:

        @app.get("/", include_in_schema=False)
        def _unbuilt() -> PlainTextResponse:
            return PlainTextResponse(
                f"the front end is not built ({STATIC_DIR} is missing): run `make web`",
                status_code=503,
            )

    return app
