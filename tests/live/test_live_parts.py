"""The live graph's parts without Ray: the reorder buffer, the consumer cursor, the alert
channel (a real loopback webhook), the snapshot store, the raw store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from at_core.live.alerts import TYPES, Alerter, read_alerts
from at_core.live.cursor import Cursor, make_batch, plan
from at_core.live.raw_store import RawStore
from at_core.live.snapshots import SnapshotStore
from at_core.live.ticks import TickBuffer
from at_core.storage.stores import init_stores
from tests.live.webhook import Receiver


def trade_msg(ts: int, price: str = "50000.0", size: str = "0.010", side: str = "Buy") -> dict:
    return {
        "topic": "publicTrade.BTCUSDT",
        "data": [{"T": ts, "p": price, "v": size, "S": side, "i": f"t{ts}"}],
    }


def book_msg(
    ts: int, u: int, bid: str = "49999.9", ask: str = "50000.0", kind: str = "snapshot"
) -> dict:
    return {
        "topic": "orderbook.1.BTCUSDT",
        "type": kind,
        "ts": ts,
        "cts": ts,
        "data": {"b": [[bid, "1.5"]], "a": [[ask, "2.0"]], "u": u},
    }


def test_release_is_time_ordered_with_quotes_first_and_seq_in_time_order() -> None:
    b = TickBuffer()
    b.on_message(trade_msg(1_005))
    b.on_message(book_msg(1_003, 1))
    b.on_message(book_msg(1_005, 2))  # same ms as the trade: a quote sorts first
    b.on_message(trade_msg(1_004))  # arrives late but before release: reordered
    r = b.release()
    # nothing at the newest millisecond (1_005) is released: a same-ms row may still come
    assert r.trades is not None and list(r.trades["ts_ms"]) == [1_004]
    assert r.quotes is not None and list(r.quotes["ts_ms"]) == [1_003]
    b.on_message(trade_msg(1_010))
    r2 = b.release()
    assert list(r2.quotes["ts_ms"]) == [1_005] and list(r2.trades["ts_ms"]) == [1_005]
    assert list(r.trades["seq"]) + list(r2.trades["seq"]) == [1, 2]
    assert list(r.quotes["seq"]) + list(r2.quotes["seq"]) == [1, 2]


def test_late_rows_are_kept_aside_never_fed() -> None:
    b = TickBuffer()
    b.on_message(trade_msg(2_000))
    b.on_message(trade_msg(2_010))
    b.release()  # releases 2_000
    assert b.on_message(trade_msg(1_999)) == 0
    assert b.late_count == 1 and b.late[0]["ts_ms"] == 1_999
    r = b.release(idle=True)
    assert list(r.trades["ts_ms"]) == [2_010]


def test_resent_book_is_not_a_new_quote_but_a_restart_snapshot_is() -> None:
    b = TickBuffer()
    b.on_message(book_msg(1_000, 5))
    assert b.on_message(book_msg(4_000, 5)) == 0  # Bybit's 3-s re-send, same u
    assert b.skipped_book_resends == 1
    assert b.on_message(book_msg(5_000, 1)) == 1  # u reset by a service restart


def test_close_through_names_only_complete_minutes() -> None:
    b = TickBuffer()
    b.on_message(trade_msg(59_000))
    b.on_message(trade_msg(60_000))  # first row of minute 60_000, held
    r = b.release()
    assert list(r.trades["ts_ms"]) == [59_000]
    assert r.close_through == 0  # minute 0 is complete: every later row is >= 60_000
    b2 = TickBuffer(reorder_ms=5_000)
    b2.on_message(trade_msg(59_000))
    b2.on_message(trade_msg(61_000))
    r2 = b2.release()
    # with a 5 s reorder window a row of minute 0 may still arrive: not complete
    assert r2.rows == 0 or r2.close_through < 0


def test_cursor_plan() -> None:
    c = Cursor(10, 20)
    assert plan(c, make_batch(None, None, Cursor(10, 20), Cursor(12, 25), None)) == "feed"
    assert plan(c, make_batch(None, None, Cursor(8, 18), Cursor(10, 20), None)) == "skip"
    assert plan(c, make_batch(None, None, Cursor(11, 20), Cursor(15, 22), None)) == "catch_up"


def test_alert_reaches_the_webhook_after_retries_and_the_log(tmp_path: Path) -> None:
    rx = Receiver(fail_first=2)
    try:
        a = Alerter(tmp_path / "alerts.jsonl", rx.url, "test", backoff_start_s=0.05)
        for kind in TYPES:
            a.emit(kind, f"{kind} happened", key=kind, value=1)
        got = rx.wait_for(lambda x: x["type"] == TYPES[-1])
        assert got, f"webhook got {rx.received}"
        deadline_types = {x["type"] for x in rx.wait_for(lambda x: True)}
        assert set(TYPES) <= deadline_types | {x["type"] for x in rx.received}
        assert rx.attempts >= len(TYPES) + 2  # two refused, retried
        logged = read_alerts(tmp_path / "alerts.jsonl")
        assert [x["type"] for x in logged] == list(TYPES)
        # cooldown: the same condition again is not re-sent
        assert a.emit("stale_feed", "again", key="stale_feed") is None
        with pytest.raises(ValueError, match="unknown alert type"):
            a.emit("nonsense", "x")
        a.close()
    finally:
        rx.close()
    assert rx.url not in (tmp_path / "alerts.jsonl").read_text()  # the secret URL is never logged


def test_snapshots_are_numbered_and_latest_wins(tmp_path: Path) -> None:
    s = SnapshotStore(tmp_path / "x.db", "signals", keep=3)
    seqs = [s.save("periodic", {"n": i}, bytes([i])) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    seq, state, blob = s.latest()  # type: ignore[misc]
    assert (seq, state, blob) == (5, {"n": 4}, bytes([4]))
    assert s.count() == 3
    # another actor's snapshots are separate
    o = SnapshotStore(tmp_path / "x.db", "execution")
    assert o.latest() is None and o.save("x", {}) == 1


def test_raw_store_round_trip_and_catch_up(tmp_path: Path) -> None:
    paths = init_stores(tmp_path)
    rs = RawStore(paths.raw)
    b = TickBuffer()
    for i in range(10):
        b.on_message(book_msg(1_000 + 10 * i, i + 1))
        b.on_message(trade_msg(1_001 + 10 * i))
    r = b.release(idle=True)
    rs.append(r)
    t, q = rs.ticks_after(3, 4)
    assert t is not None and q is not None
    assert list(t["seq"]) == list(range(4, 11)) and list(q["seq"]) == list(range(5, 11))
    assert t["exchange_side"].dtype == np.int8
    t2, q2 = rs.ticks_after(0, 0, 2, 2)
    assert list(t2["seq"]) == [1, 2] and list(q2["seq"]) == [1, 2]
    assert rs.last()["trade_seq"] == 10
    rs.record_gap(1_000, 5_000, "stall")
    assert rs.gaps()[0]["reason"] == "stall"
    rs.record_late([{"kind": "trade", "ts_ms": 5, "price": "1"}])
    assert rs.counts()["late_ticks"] == 1
    assert json.loads(json.dumps(rs.counts()))["raw_trades"] == 10
    rs.close()


def test_secrets_stay_out_of_what_ray_keeps(tmp_path: Path, monkeypatch: Any) -> None:
    """The config handed to Ray (pickled into its control store for actor restarts) holds
    no secret; the actors read them back from a 0600 file in the live dir."""
    import pickle
    import stat

    from at_core.config import load_settings
    from at_core.live.config import SECRETS_FILE, LiveConfig

    for env in ("BYBIT_API_KEY", "BYBIT_API_SECRET", "ALERT_WEBHOOK_URL"):
        monkeypatch.delenv(env, raising=False)
    full = LiveConfig.build(
        "live", tmp_path, load_settings(), api_key="K3Y", api_secret="S3CR3T",
        webhook_url="http://127.0.0.1:9/hook",
    )  # fmt: skip
    sent = full.keep_secrets()
    blob = pickle.dumps(sent)
    assert b"K3Y" not in blob and b"S3CR3T" not in blob and b"127.0.0.1:9" not in blob
    assert sent.secret("api_key") == "K3Y" and sent.secret("api_secret") == "S3CR3T"
    assert sent.secret("webhook_url") == "http://127.0.0.1:9/hook"
    path = tmp_path / "live" / SECRETS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "S3CR3T" not in repr(sent) and "S3CR3T" not in str(sent.public())
