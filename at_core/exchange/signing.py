"""Bybit v5 request signing, checked the way the exchange checks it: on the raw bytes.

REST: ``X-BAPI-SIGN`` = hex HMAC-SHA256(secret, timestamp + api_key + recv_window +
payload), the payload being the query string *as sent* for GET and the body *as sent* for
POST. Re-serialising a parsed body before checking would accept a signature over other
bytes (key order, spacing, number formatting), so the simulator never does.

WebSocket: ``{"op": "auth", "args": [api_key, expires_ms, hex HMAC(secret, "GET/realtime" +
expires)]}``, valid while ``expires`` is in the future.
"""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def rest_message(timestamp: str, api_key: str, recv_window: str, payload: bytes) -> bytes:
    return f"{timestamp}{api_key}{recv_window}".encode() + payload


def ws_auth_signature(secret: str, expires_ms: int) -> str:
    return sign(secret, f"GET/realtime{expires_ms}".encode())


def timestamp_ok(timestamp_ms: int, server_ms: int, recv_window_ms: int) -> bool:
    """Bybit's window: server − recv_window ≤ timestamp < server + 1000."""
    return server_ms - recv_window_ms <= timestamp_ms < server_ms + 1000


def matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected, given.lower())
