"""``auction-trader live start|status|activate|deactivate|mode|resume|stop``: the operator's
commands for the live graph (SPEC §11, §16). ``live/deploy.py`` is ``live start``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import time
from typing import Any

from at_core.config import db_dir_from_args, settings_from_args
from at_core.features.cli import parse_time
from at_core.live import deploy
from at_core.live.config import MODES


def _fmt_ts(ms: Any) -> str:
    if ms is None or (isinstance(ms, float) and ms != ms):
        return "-"
    return dt.datetime.fromtimestamp(int(ms) / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


def _num(v: Any, nd: int = 2) -> str:
    if v is None:
        return "-"
    try:
        return f"{float(v):,.{nd}f}"
    except (TypeError, ValueError):
        return str(v)


def render_status(st: dict[str, Any]) -> str:
    """The status as a table a person reads at a glance."""
    w = st.get("warmup") or {}
    pos = st.get("position")
    work = st.get("working")
    rows = [
        ("mode", st.get("mode")),
        ("activated", "yes" if st.get("activated") else "no (observation)"),
        ("permission", st.get("permission") or "-"),
        ("halted", st.get("halted") or "no"),
        ("warm-up", f"{w.get('minutes', 0)} / {w.get('needed', '-')} min" + (" (done)" if w.get("done") else "")),
        ("position", "flat" if not pos else
            f"{pos.get('side')} {pos.get('qty')} @ {_num(pos.get('entry_price'), 1)}  stop {_num(pos.get('stop'), 1)}"),
        ("open orders", "none" if not work else
            f"entry {work.get('side')} {work.get('qty')} @ {_num(work.get('limit_price'), 1)}"),
        ("equity", _num(st.get("equity"))),
        ("P&L today", _num(st.get("day_pnl"))),
        ("heat", _num(st.get("heat"), 4)),
        ("kill switch", "ON" if st.get("kill") else "off"),
        ("trades", st.get("trades")),
        ("feed", st.get("feed_state")),
    ]  # fmt: skip
    for topic, h in (st.get("feed") or {}).items():
        ago = h.get("last_msg_s_ago")
        rows.append(
            (
                f"  {topic}",
                ("STALE " if h.get("stale") else "ok ")
                + ("-" if ago is None else f"{ago:.1f} s ago"),
            )
        )
    last = st.get("last_alert")
    rows.append(
        (
            "last alert",
            "none"
            if not last
            else f"{_fmt_ts(last.get('ts_ms'))} {last.get('type')}: {last.get('message')}",
        )
    )
    for role, r in (st.get("workers") or {}).items():
        if "error" in r:
            rows.append((f"  {role}", f"ERROR {r['error']}"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _start(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    sim = shlex.split(args.simulator_args) if args.simulator else None
    st = deploy.start(
        args.mode,
        db_dir_from_args(args),
        settings,
        address=args.address,
        simulator=sim,
        rest_url=args.rest_url,
        ws_url=args.ws_url,
        stale_feed_s=args.stale_feed_s,
        warm_from=args.warm_from_lake,
        warm_until=None
        if args.warm_until is None
        else parse_time(args.warm_until, end=False, flag="--warm-until"),
    )
    print(json.dumps(st, indent=2, default=str) if args.json else render_status(st))
    return 0


def _status(args: argparse.Namespace) -> int:
    st = deploy.call(db_dir_from_args(args), "status")
    print(json.dumps(st, indent=2, default=str) if args.json else render_status(st))
    return 0


def _simple(method: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        kw: dict[str, Any] = {}
        pos: list[Any] = []
        if method == "activate":
            kw["confirm_live"] = bool(args.live)
        if method == "set_mode":
            pos.append(args.new_mode)
        st = deploy.call(db_dir_from_args(args), method, *pos, **kw)
        print(json.dumps(st, indent=2, default=str) if args.json else render_status(st))
        return 0

    return run


def _demo(args: argparse.Namespace) -> int:
    from at_core.live.demo import run

    return run(args)


def _soak(args: argparse.Namespace) -> int:
    """A fresh graph on a generated market under ``<db_dir>/live-soak``; the report as JSON,
    exit 1 on any problem."""
    import dataclasses
    import shutil

    from at_core.ingest.synthetic import generate_market
    from at_core.live.demo import DEMO_SETTINGS, T0
    from at_core.live.soak import M, run_soak

    root = db_dir_from_args(args)
    db, lake = root / "live-soak", root / "live-soak-lake"
    shutil.rmtree(db, ignore_errors=True)
    if not (lake / "lake").exists():
        generate_market(lake, days=1, seed=1, progress=False)
    sets = [f"{k}={v}" for k, v in DEMO_SETTINGS.items()]
    # ~2-6 market minutes per kill at 120x (live: 2-3 more while down, the market moving at
    # 10x): the feed must outlast every kill, or the last restarts have no outage to record
    per_kill = 10 if args.mode == "live" else 6
    feed_to = min(T0 + (300 + per_kill * args.kills) * M, T0 + 1440 * M)
    t = time.monotonic()
    rep = run_soak(db, lake, args.kills, T0 + 240 * M, feed_to, sets, seed=args.seed,
                   log=lambda s: print(s, flush=True), mode=args.mode)  # fmt: skip
    out = {**dataclasses.asdict(rep), "ok": rep.ok, "wall_s": round(time.monotonic() - t, 1)}
    print(json.dumps(out, indent=2))
    return 0 if rep.ok else 1


def _divergence(args: argparse.Namespace) -> int:
    """The shadow comparison's differences, read from signals.db (no graph needed)."""
    import sqlite3

    from at_core.live.shadow import report

    path = db_dir_from_args(args) / "signals.db"
    rows = report(sqlite3.connect(path), last=args.last) if path.exists() else []
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    elif not rows:
        print("no divergence recorded")
    else:
        for r in rows:
            print(f"{_fmt_ts(r['ts_ms'])}  {r['kind']:<8} minute {_fmt_ts(r['ts_min'])}  "
                  f"live {r['live']}  backtest {r['backtest']}")  # fmt: skip
    return 0


def _stop(args: argparse.Namespace) -> int:
    out = deploy.stop(db_dir_from_args(args))
    print(json.dumps(out, indent=2, default=str))
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "live",
        help="run and operate the live trading graph (dry_run | paper | shadow | live)",
        description="The live Ray actor graph: collector → features → signals → execution under a supervisor.",
    )
    lsub = p.add_subparsers(dest="live_command", metavar="ACTION")
    lsub.required = True
    s = lsub.add_parser(
        "start", parents=[common], help="start the graph (observation until activated)"
    )
    s.add_argument("--mode", choices=MODES, default="paper")
    s.add_argument(
        "--address",
        default=None,
        help="an existing Ray cluster (default: a local one, token auth on)",
    )
    s.add_argument(
        "--simulator",
        action="store_true",
        help="start the loopback Bybit simulator and trade on it",
    )
    s.add_argument(
        "--simulator-args",
        default="--seed 7 --speed 60",
        help="arguments of `auction-trader simulate` (default: '--seed 7 --speed 60')",
    )
    s.add_argument("--rest-url", default=None, help="exchange REST base URL (default: Bybit)")
    s.add_argument("--ws-url", default=None, help="exchange WebSocket base URL (default: Bybit)")
    s.add_argument(
        "--stale-feed-s",
        type=float,
        default=10.0,
        help="seconds of silence before a stale-feed alert",
    )
    s.add_argument(
        "--warm-from-lake",
        metavar="DB_DIR",
        default=None,
        help="load the warm-up minutes before --warm-until from this lake into raw.duckdb",
    )
    s.add_argument(
        "--warm-until",
        metavar="T",
        default=None,
        help="where the live feed starts (epoch ms or ISO)",
    )
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_start)
    for name, method, helptext in (
        (
            "status",
            None,
            "mode, warm-up, activation, position, orders, P&L, heat, kill switch, feed, last alert",
        ),
        ("activate", "activate", "allow entries (after the warm-up; live needs --live)"),
        ("deactivate", "deactivate", "back to observation: no new entries"),
        ("resume", "resume", "lift a halt once the operator resolved its cause"),
        ("mode", "set_mode", "switch mode (only when flat)"),
    ):
        c = lsub.add_parser(name, parents=[common], help=helptext)
        c.add_argument("--json", action="store_true")
        if name == "activate":
            c.add_argument("--live", action="store_true", help="confirm activation of real trading")
        if name == "mode":
            c.add_argument("new_mode", choices=MODES)
        c.set_defaults(func=_status if method is None else _simple(method))
    st = lsub.add_parser(
        "stop", parents=[common], help="stop the graph, its local cluster and simulator"
    )
    st.set_defaults(func=_stop)
    dv = lsub.add_parser(
        "divergence", parents=[common], help="shadow mode: live vs the backtest of the stored ticks"
    )
    dv.add_argument("--last", type=int, default=100)
    dv.add_argument("--json", action="store_true")
    dv.set_defaults(func=_divergence)
    d = lsub.add_parser(
        "demo", parents=[common], help="paper trading on the loopback simulator (make live-demo)"
    )
    d.add_argument(
        "--speed", type=float, default=120.0, help="market seconds per wall second (default 120)"
    )
    d.add_argument(
        "--minutes", type=float, default=10.0, help="stop after this many wall minutes (default 10)"
    )
    d.add_argument(
        "--every", type=float, default=5.0, help="seconds between status tables (default 5)"
    )
    d.set_defaults(func=_demo)
    k = lsub.add_parser(
        "soak", parents=[common], help="kill -9 the whole graph N times while it trades, then check"
    )
    k.add_argument("--kills", type=int, default=50)
    k.add_argument("--seed", type=int, default=20261204)
    k.add_argument(
        "--mode",
        choices=("paper", "live"),
        default="paper",
        help="paper: checked against a replay of the stored ticks; live: real orders to the "
        "simulator (its market moves on while the graph is down), checked against its "
        "orders, executions and position",
    )
    k.set_defaults(func=_soak)
