"""Crash recovery of the live graph: ``kill -9`` of every process of its Ray cluster at a
random moment while it trades, then the same ``live start`` again.

After each crash the graph restores from its snapshots, reads back the ticks it stored
after them, records the outage as a gap and goes on. The evidence: at the end, the
decisions and the trades in the stores equal a replay of the stored ticks through the
same driver (no lost or duplicated trade, no lost fill), the outage is in ``feed_gaps``
and its minutes are flagged, and the trade log has no duplicate.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from at_core.live.soak import run_soak
from tests.live.conftest import T0, TRADY, M

pytestmark = pytest.mark.timeout(900)


def test_kill_9_of_the_whole_graph_loses_nothing(lake: Path, graph_dir: Path) -> None:
    rep = run_soak(graph_dir, lake, 5, T0 + 240 * M, T0 + 330 * M, TRADY)
    assert rep.ok, rep.problems
    assert rep.kills == 5 and all(n >= 5 for n in rep.processes_killed), rep
    assert rep.trades >= 1 and rep.gaps >= 5 and rep.flagged_minutes >= 5


def test_kill_9_in_live_mode_sends_nothing_twice_and_loses_no_fill(
    lake: Path, graph_dir: Path
) -> None:
    """Live mode: real orders to the simulator, whose market moves on while the graph is
    down (exchange-held stops and targets fire unseen). After each restart the missed
    executions are reported, the write-ahead intents keep every order single; at the end
    the simulator's executions, orders and position are the evidence (``check_live``)."""
    rep = run_soak(graph_dir, lake, 3, T0 + 240 * M, T0 + 300 * M, TRADY, mode="live", seed=7)
    assert rep.ok, rep.problems
    assert rep.kills == 3 and rep.trades >= 1 and rep.gaps >= 3, rep
