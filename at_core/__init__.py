"""auction-trader: Auction Market Theory research and trading platform (Bybit BTCUSDT perp)."""

from __future__ import annotations

__version__ = "0.1.0"
