"""The collector's release journal: a release is synced to the journal before it is sent
and committed to ``raw.duckdb`` after; a collector killed in between stores it when it
starts again, once. The evidence is the DuckDB file read back after a real SIGKILL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from at_core.errors import StorageError
from at_core.live.journal import Journal
from at_core.live.raw_store import RawStore
from at_core.live.ticks import Released, TickBuffer
from at_core.storage.stores import init_stores
from tests.live.test_live_parts import book_msg, trade_msg


def _release(first: int, n: int = 10) -> Released:
    b = TickBuffer(next_trade_seq=first, next_quote_seq=first)
    for i in range(n):
        ts = 1_000 + 10 * (first + i)
        b.on_message(book_msg(ts, first + i))
        b.on_message(trade_msg(ts + 1))
    return b.release(idle=True)


def test_records_round_trip_a_torn_tail_is_dropped_damage_is_an_error(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j")
    a, b = _release(1), _release(11)
    j.write(a)
    j.write(b)
    got = j.pending()
    assert [r.rows for r in got] == [a.rows, b.rows]
    assert got[1].trades is not None and list(got[1].trades["seq"]) == list(range(11, 21))
    j.close()
    data = (tmp_path / "j").read_bytes()
    (tmp_path / "j").write_bytes(data[:-7])  # the process died while writing the second
    assert [r.rows for r in Journal(tmp_path / "j").pending()] == [a.rows]
    bad = bytearray(data)
    bad[30] ^= 0xFF  # inside the first record's body
    (tmp_path / "j").write_bytes(bytes(bad))
    with pytest.raises(StorageError, match="byte 0 fails its checksum"):
        Journal(tmp_path / "j").pending()


def test_a_collector_killed_after_sending_stores_the_release_when_it_starts(
    tmp_path: Path,
) -> None:
    paths = init_stores(tmp_path)
    rs = RawStore(paths.raw)
    rs.append(_release(1))
    rs.close()
    # a real process: journals the next release, "sends" it, dies before the commit
    code = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from at_core.live.raw_store import RawStore
        from tests.live.test_journal import _release
        rs = RawStore(Path({str(paths.raw)!r}))
        with rs.storing(_release(11)):
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2], timeout=120)
    assert r.returncode == -9
    assert (Path(str(paths.raw) + ".journal")).stat().st_size > 0
    rs = RawStore(paths.raw)
    assert rs.recovered == 20
    t, q = rs.ticks_after(0, 0)
    assert t is not None and q is not None
    assert list(t["seq"]) == list(range(1, 21)) and list(q["seq"]) == list(range(1, 21))
    rs.close()
    # the journal is cleared: opening again stores nothing twice
    rs = RawStore(paths.raw)
    assert rs.recovered == 0 and rs.counts()["raw_trades"] == 20
    rs.close()


def test_a_release_committed_but_not_cleared_is_not_stored_twice(tmp_path: Path) -> None:
    paths = init_stores(tmp_path)
    rs = RawStore(paths.raw)
    rel = _release(1)
    rs.journal.write(rel)  # died after the commit, before the journal was cleared
    rs.append(rel)
    rs.close()
    rs = RawStore(paths.raw)
    assert rs.recovered == 0
    assert rs.counts()["raw_trades"] == 10 and rs.counts()["raw_quotes"] == 10
    rs.close()


def test_a_failed_commit_is_stored_before_the_next_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The release was sent, its DuckDB commit failed: it stays in the journal, and the
    next release's store puts it in first (a later journal clear must not drop it)."""
    paths = init_stores(tmp_path)
    rs = RawStore(paths.raw)
    real = RawStore._append
    calls = [0]

    def failing_once(self: RawStore, rel: Released) -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise OSError("disk full (injected)")
        real(self, rel)

    monkeypatch.setattr(RawStore, "_append", failing_once)
    sent = []
    with pytest.raises(OSError, match="injected"), rs.storing(_release(1)):
        sent.append(1)
    assert sent == [1] and rs.counts()["raw_trades"] == 0
    with rs.storing(_release(11)):
        sent.append(2)
    t, _ = rs.ticks_after(0, 0)
    assert t is not None and list(t["seq"]) == list(range(1, 21))
    rs.close()
