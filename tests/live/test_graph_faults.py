"""Every fault the simulator can inject, against the running graph in live mode (real
orders through the unmodified pybit client to the loopback exchange, alerts to a loopback
webhook receiver).

Request faults are armed before the market moves and fire on the graph's next orders
(a lost response, a late acknowledgement, an internal-error retCode); private-stream faults
(every message twice, batches reversed) and a book update-id jump fire on the streams;
then, while it trades, the public socket is closed, the private one reset, the public one
stalled (no data, socket open) and every connection refused for a few seconds.

The evidence is the simulator's own record (``check_live``): every execution journaled and
reported once, each booked trade the sum of its executions, the position the exchange's,
each order on the exchange one the system recorded before sending, at most one entry
order per entry decision (no duplicate order), no halt. And from the graph: each outage
a recorded gap, the stall detected and recorded within 10 s, the refusal alerted, every
alert delivered to the webhook.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from at_core.live.soak import SoakReport, check_live, sim_get, start_args
from tests.live.conftest import T0, TRADY, M, cli, sim_control, status, wait_drained
from tests.live.webhook import Receiver

pytestmark = pytest.mark.timeout(900)

ARMED = [  # fire on the graph's next matching request or message
    ("lose_response", {"n": 1, "path": "order/create"}),
    ("delay_ack", {"n": 2, "ms": 1500, "path": "order/create"}),
    ("ret_code", {"code": 10016, "n": 1, "path": "order/create"}),
    ("duplicate_private", {"n": 20}),
    ("reorder_private", {"n": 5}),
    ("book_gap", {"jump": 1000}),
]
WHILE_TRADING = [  # fire at once
    ("ws_close", {"scope": "public"}),
    ("ws_abort", {"scope": "private"}),
    ("ws_stall", {"scope": "public", "seconds": 12}),
    ("refuse", {"seconds": 3}),
]


def test_every_fault_against_the_live_graph(lake: Path, graph_dir: Path) -> None:
    feed_from, feed_to = T0 + 240 * M, T0 + 300 * M
    args = start_args(graph_dir, lake, feed_from, feed_to, TRADY, mode="live")
    rx = Receiver()
    try:
        cli(*args, "--stale-feed-s", "3", env={"ALERT_WEBHOOK_URL": rx.url})
        cli("live", "activate", "--live", "--db-dir", str(graph_dir))
        for kind, params in ARMED:
            sim_control(graph_dir, "fault", kind=kind, **params)
        sim_control(graph_dir, "clock", action="resume", speed=20)
        stall_at = None
        for kind, params in WHILE_TRADING:
            time.sleep(6)
            if kind == "ws_stall":
                stall_at = time.time()
            sim_control(graph_dir, "fault", kind=kind, **params)
        time.sleep(8)
        sim_control(graph_dir, "clock", action="resume", speed=60)
        wait_drained(graph_dir, feed_to, 600)
        time.sleep(4)  # the last executions' reports and position updates
        st = status(graph_dir)
        sim = sim_get(graph_dir, "state")
        fired = {e["fault"] for e in sim_get(graph_dir, "log")["entries"] if e["event"] == "fired"}
    finally:
        cli("live", "stop", "--db-dir", str(graph_dir), check=False)
        rx.close()
    # ---- every fault fired (the graph traded through all of them)
    wanted = {k for k, _ in ARMED + WHILE_TRADING}
    assert wanted <= fired, f"never fired: {wanted - fired}"
    # ---- the exchange's record: nothing lost, nothing twice, the same position, no halt
    rep = SoakReport(kills=3)  # three public outages: closed, stalled, refused
    check_live(graph_dir, rep, st, sim)
    assert rep.ok, rep.problems
    assert rep.trades >= 1
    # ---- the stall seen within 10 s; outages recorded and alerted; the refusal alerted
    assert stall_at is not None
    # the adapter's watchdog declares the stall (3 s here), replaces the socket, and the
    # collector records the hole as a gap, alerted with the first rows after it
    stall_gaps = [
        a["ts_ms"] / 1000 - stall_at
        for a in rx.received
        if a["type"] == "feed_gap"
        and str(a["details"].get("reason", "")).startswith("stall")
        and a["ts_ms"] / 1000 >= stall_at
    ]
    assert stall_gaps and min(stall_gaps) <= 10.0, (stall_gaps, rx.received)
    types = {a["type"] for a in rx.received}
    assert {"feed_gap", "exchange"} <= types, types
    assert "position_mismatch" not in types and "halted" not in types, types
