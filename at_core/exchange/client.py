"""The unmodified pybit client pointed at a base URL of our choice.

pybit has no base-URL argument (BYBIT.md): HTTP reads the instance attribute ``endpoint``
at call time, so it is set after construction; the WebSocket builds its URL from module
constants and connects in its constructor, so a subclass replaces scheme and host in
``_connect`` and keeps the path (pybit validates topics against ``/v5/public/linear`` and
``/v5/private``). Nothing else of pybit is changed. With the real Bybit hosts the base URL
is simply not given.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pybit.unified_trading import HTTP
from pybit.unified_trading import WebSocket as _PybitWebSocket


def http_session(
    base_url: str | None,
    api_key: str | None = None,
    api_secret: str | None = None,
    **kwargs: Any,
) -> HTTP:
    """A pybit ``HTTP`` session; ``base_url`` such as ``http://127.0.0.1:PORT`` (None: Bybit).

    ``force_retry`` stays off: a timed-out order must be looked up by its ``orderLinkId``,
    never sent again blindly (the adapter does that)."""
    kwargs.setdefault("max_retries", 3)
    kwargs.setdefault("retry_delay", 0.2)
    session = HTTP(api_key=api_key, api_secret=api_secret, **kwargs)
    if base_url:
        session.endpoint = base_url.rstrip("/")
    return session


class WebSocket(_PybitWebSocket):
    """pybit's ``WebSocket`` whose connections go to ``ws_base`` (``ws://127.0.0.1:PORT``)."""

    def __init__(self, ws_base: str | None = None, **kwargs: Any) -> None:
        self._ws_base = ws_base.rstrip("/") if ws_base else None
        kwargs.setdefault("testnet", False)
        super().__init__(**kwargs)

    def _connect(self, url: str) -> None:
        if self._ws_base:
            base = urlsplit(self._ws_base)
            path = urlsplit(url.format(SUBDOMAIN="x", DOMAIN="x", TLD="x")).path
            url = urlunsplit((base.scheme, base.netloc, path, "", ""))
        super()._connect(url)
