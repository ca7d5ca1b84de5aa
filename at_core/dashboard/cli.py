"""``auction-trader dashboard``: serve the dashboard (API + front end) on this machine."""

from __future__ import annotations

import argparse
from typing import Any

from at_core import logging as at_logging
from at_core.config import db_dir_from_args, settings_from_args

log = at_logging.get(__name__)


def cmd_dashboard(args: argparse.Namespace) -> int:
    import uvicorn

    from at_core.dashboard.app import create_app
    from at_core.dashboard.controls import TOKEN_ENV, token_from_env

    db = db_dir_from_args(args)
    token = token_from_env()
    app = create_app(db, settings_from_args(args), control_token=token)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        # SPEC §14.1 assumes a private network / VPN: the read API has no authentication.
        log.warning("dashboard.public_bind", host=args.host,
                    note="no authentication on the read API: bind to a private network only")  # fmt: skip
    print(f"dashboard on http://{args.host}:{args.port}/  (data: {db}; Ctrl-C stops it)")
    print(
        f"operator controls: {'ON (token from ' + TOKEN_ENV + ')' if token else 'off (read-only)'}"
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "dashboard",
        parents=[common],
        help="serve the web dashboard (read-only unless a control token is set; 127.0.0.1)",
        description="Serve the dashboard: market data with the value area, footprint and "
        "order flow, backtests and grid sweeps with their statistics. Bound to 127.0.0.1 "
        "unless --host says otherwise (the read API has no authentication). Operator controls "
        "(activate, deactivate, halt, resume, mode) are on only when the environment holds "
        "AUCTION_TRADER_DASHBOARD_TOKEN (16+ characters); each control request must carry "
        "it as `Authorization: Bearer <token>`.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    p.set_defaults(func=cmd_dashboard)
