"""``auction-trader live demo`` (``make live-demo``): the live graph in paper mode on the
loopback simulator, with nothing to set up.

A generated market (seed 1, one day) is written to a lake beside the stores; the
simulator replays it from 04:00 at ``--speed`` market seconds per wall second; the four
hours before are loaded into ``raw.duckdb`` (a fast-forwarded warm-up), so the graph is
warm at once and is activated; the status table is printed every few seconds while it
trades. Ctrl-C (or ``--minutes`` of wall time, or the end of the market) stops the graph,
its cluster and the simulator cleanly.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path
from typing import Any

from at_core.config import db_dir_from_args, load_settings
from at_core.ingest.synthetic import generate_market
from at_core.live import deploy
from at_core.live.cli import render_status

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
M = 60_000
#: livelier than the defaults so that an hour of the demo market trades several times
DEMO_SETTINGS = {
    "accept_outside_k": 2,
    "of_entry_min_norm": 0.0,
    "qimb_entry_min": 0.0,
    "cooldown_minutes": 1,
    "max_hold_minutes": 15,
}


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def run(args: argparse.Namespace) -> int:
    db = Path(db_dir_from_args(args)) / "live-demo"
    lake = db.parent / "live-demo-lake"
    if not (lake / "lake").exists():
        print(f"generating the demo market into {lake} ...", flush=True)
        generate_market(lake, days=1, seed=1, progress=False)
    settings = load_settings(getattr(args, "config", None), {**DEMO_SETTINGS, **_sets(args)})
    feed_from, feed_to = T0 + 240 * M, T0 + 1440 * M - 1
    print(f"starting the graph (paper) on {db}; simulator at {args.speed}x ...", flush=True)
    deploy.start(
        "paper",
        db,
        settings,
        simulator=["--db-dir", str(lake), "--from", _iso(feed_from), "--to", _iso(feed_to),
                   "--speed", str(args.speed)],
        warm_from=lake,
        warm_until=feed_from,
    )  # fmt: skip
    try:
        deploy.call(db, "activate")
        print("activated after the fast-forwarded warm-up; Ctrl-C stops\n", flush=True)
        end = time.monotonic() + args.minutes * 60
        while time.monotonic() < end:
            st = deploy.call(db, "status")
            print(render_status(st), "\n", flush=True)
            if st["workers"]["collector"].get("last_ts", 0) >= feed_to - 2_000:
                print("the demo market ended", flush=True)
                break
            time.sleep(args.every)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    finally:
        out = deploy.stop(db)
        print(
            f"stopped: {out.get('workers')}; {out.get('processes_stopped', 0)} processes",
            flush=True,
        )
    return 0


def _sets(args: argparse.Namespace) -> dict[str, Any]:
    from at_core.config import parse_override

    return dict(parse_override(s) for s in getattr(args, "set", []) or [])
