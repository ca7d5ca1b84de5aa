"""A WebSocket that stays up: pybit's ``WebSocket`` under a supervisor of our own.

pybit alone loses a stream for good on several failures (BYBIT.md): a callback that
raises, a failed auth or subscribe ack, an outage longer than its few immediate retries,
and it never notices a socket that stays open but sends nothing. So here:

- the callback never raises and only enqueues (bookkeeping of the last message per topic
  and the book's update id is all it does);
- a watchdog thread checks every topic that must speak (the depth-1 book is re-sent at
  least every 3 s, so ``stall_after_s`` of silence is a stall) and the socket itself (pybit
  exits when a protocol ping goes unanswered for ``ping_timeout``);
- on any failure the socket is dropped and a *fresh* ``WebSocket`` object is made, after an
  exponential backoff capped at 60 s (SPEC §10.3), reset once a connection has delivered;
- after every reconnect the owner resyncs over REST (``on_reconnect``), because private
  events sent during the gap are not replayed and the book may have moved.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from at_core.exchange.client import WebSocket

log = logging.getLogger("at_core.exchange.streams")

Emit = Callable[[str, dict[str, Any]], None]


class Stream:
    """One supervised connection (public or private) and its subscriptions."""

    def __init__(
        self,
        kind: str,
        ws_base: str | None,
        subscribe: Callable[[WebSocket], None],
        emit: Emit,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        watched: tuple[str, ...] = (),
        stall_after_s: float = 6.0,
        backoff_start_s: float = 0.5,
        backoff_cap_s: float = 60.0,
        ping_interval_s: int = 5,
        ping_timeout_s: int = 3,
        on_reconnect: Callable[[], None] | None = None,
        testnet: bool = False,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.kind = kind
        self.connect_timeout_s = connect_timeout_s
        self.ws_base = ws_base
        self._subscribe = subscribe
        self._emit = emit
        self.api_key, self.api_secret = api_key, api_secret
        self.watched = watched
        self.stall_after_s = stall_after_s
        self.backoff_start_s, self.backoff_cap_s = backoff_start_s, backoff_cap_s
        self.ping_interval_s, self.ping_timeout_s = ping_interval_s, ping_timeout_s
        self.on_reconnect = on_reconnect
        self.testnet = testnet
        self.last_msg: dict[str, float] = {}
        self.book_u: dict[str, int] = {}
        self.failed = threading.Event()
        self.ready = threading.Event()  # the current connection has a subscription acked
        self.failure = ""
        self.connects = 0
        self.callback_errors = 0
        self._stop = threading.Event()
        self._ws: WebSocket | None = None
        self._thread = threading.Thread(target=self._run, name=f"stream-{kind}", daemon=True)
        self.delivered = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.failed.set()
        self._thread.join(timeout=15)

    # ---- the callback: never raises, only records and enqueues ---------------------------
    def _on_message(self, msg: dict[str, Any]) -> None:
        try:
            now = time.monotonic()
            topic = msg.get("topic")
            op = msg.get("op")
            if topic:
                self.last_msg[topic] = now
                self.delivered = True
                if topic.startswith("orderbook."):
                    self._check_book(topic, msg)
                self._emit(self.kind, msg)
            elif op == "subscribe" and msg.get("success") is True:
                self.ready.set()  # this connection is subscribed: data will follow
            elif op in ("auth", "subscribe") and msg.get("success") is False:
                self._fail(f"{op} refused: {msg.get('ret_msg')}")
                self._emit(
                    "alert", {"what": f"{self.kind} {op} refused", "detail": msg.get("ret_msg", "")}
                )
        except Exception:  # a callback must never end the stream
            self.callback_errors += 1

    def _check_book(self, topic: str, msg: dict[str, Any]) -> None:
        u = int(msg.get("data", {}).get("u", 0))
        last = self.book_u.get(topic)
        self.book_u[topic] = u
        if msg.get("type") == "snapshot" and (last is None or u == 1 or u <= last):
            return  # a fresh or re-sent snapshot
        if last is not None and u > last + 1:
            self._emit("book_gap", {"topic": topic, "from_u": last, "to_u": u})

    def _fail(self, why: str) -> None:
        if not self.failed.is_set():
            self.failure = why
            self.failed.set()

    # ---- the supervisor ---------------------------------------------------------------------
    def _connect(self) -> WebSocket:
        kwargs: dict[str, Any] = {
            "channel_type": "private" if self.kind == "private" else "linear",
            "callback_function": self._on_message,
            # pybit raises after its last attempt even when that attempt connected, so 2 =
            # one attempt and one immediate retry; the backoff between tries is ours
            "retries": 2,
            "restart_on_error": False,
            "ping_interval": self.ping_interval_s,
            "ping_timeout": self.ping_timeout_s,
            "testnet": self.testnet,
        }
        if self.kind == "private":
            kwargs.update(api_key=self.api_key, api_secret=self.api_secret, private_auth_expire=10)
        # pybit connects in its constructor and, after a failed last attempt, waits in
        # exit() for its socket to clear, which can take forever; so the constructor runs
        # in a thread of its own and a connect that takes longer than connect_timeout_s
        # counts as failed (the stuck thread is a daemon and holds nothing of ours)
        out: list[Any] = []

        def make() -> None:
            try:
                out.append(WebSocket(self.ws_base, **kwargs))
            except Exception as exc:  # reported to the supervisor below
                out.append(exc)

        t = threading.Thread(target=make, name=f"connect-{self.kind}", daemon=True)
        t.start()
        t.join(self.connect_timeout_s)
        if not out:
            raise TimeoutError(f"connect took more than {self.connect_timeout_s} s")
        if isinstance(out[0], Exception):
            raise out[0]
        ws: WebSocket = out[0]
        return ws

    def _run(self) -> None:
        delay = self.backoff_start_s
        while not self._stop.is_set():
            self.failed.clear()
            self.ready.clear()
            self.failure = ""
            self.delivered = False
            try:
                ws = self._connect()
            except Exception as exc:  # any failure to connect is retried
                self._emit(
                    "disconnected",
                    {"stream": self.kind, "why": f"connect failed: {exc}", "retry_in_s": delay},
                )
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, self.backoff_cap_s)
                continue
            self._ws = ws
            self.connects += 1
            started = time.monotonic()
            for t in self.watched:
                self.last_msg[t] = started
            try:
                self._subscribe(ws)
            except Exception as exc:
                self._fail(f"subscribe failed: {exc}")
            if self.connects > 1:
                self._emit("reconnected", {"stream": self.kind, "connects": self.connects})
                if self.on_reconnect is not None:
                    try:
                        self.on_reconnect()
                    except Exception as exc:  # the next reconnect resyncs again
                        self._emit(
                            "alert", {"what": "resync after reconnect failed", "detail": str(exc)}
                        )
            self._watch(ws)
            why = self.failure or "stopped"
            self._drop(ws)
            if self._stop.is_set():
                break
            if self.delivered:
                delay = self.backoff_start_s  # it worked: start the backoff over
            self._emit("disconnected", {"stream": self.kind, "why": why, "retry_in_s": delay})
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self.backoff_cap_s)

    def _watch(self, ws: WebSocket) -> None:
        while not self.failed.wait(0.25):
            if not ws.is_connected() or ws.exited:
                self._fail("connection lost")
                break
            now = time.monotonic()
            for t in self.watched:
                silent = now - self.last_msg.get(t, now)
                if silent > self.stall_after_s:
                    self._emit(
                        "stall", {"stream": self.kind, "topic": t, "silent_s": round(silent, 2)}
                    )
                    self._fail(f"stall: {t} silent for {silent:.1f} s")
                    break

    def _drop(self, ws: WebSocket) -> None:
        self._ws = None
        done = threading.Event()

        def close() -> None:
            with contextlib.suppress(Exception):  # the socket is being discarded anyway
                ws.exit()
            done.set()

        # pybit's exit() waits for the socket to clear; never let it hold the supervisor
        threading.Thread(target=close, daemon=True).start()
        done.wait(3)
