"""Instrument facts of the BTCUSDT linear perpetual and the decimal strings Bybit speaks.

Prices and quantities cross the wire as decimal strings. pybit turns a float into
``str(float)``, so ``0.1 + 0.2`` would go out as ``"0.30000000000000004"`` and be refused
by the exchange (or, worse, rounded differently there). Everything here works in integer
*ticks* and *qty steps*: a price is parsed once into ticks, checked to lie on the tick grid,
and formatted back from ticks, so a value never drifts through binary floating point.

The facts themselves change at the venue (tick size, minimum notional, fees): the adapter
loads them from ``/v5/market/instruments-info`` at start-up; the simulator serves the values
below unless told otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from at_core.errors import InputError


@dataclass(frozen=True)
class Instrument:
    """What the venue says about one contract (Bybit field names in the comments)."""

    symbol: str = "BTCUSDT"
    tick_size: Decimal = Decimal("0.10")  # priceFilter.tickSize
    qty_step: Decimal = Decimal("0.001")  # lotSizeFilter.qtyStep
    min_qty: Decimal = Decimal("0.001")  # lotSizeFilter.minOrderQty
    max_qty: Decimal = Decimal("1190.000")  # lotSizeFilter.maxOrderQty
    max_mkt_qty: Decimal = Decimal("119.000")  # lotSizeFilter.maxMktOrderQty
    min_notional: Decimal = Decimal("5")  # lotSizeFilter.minNotionalValue
    max_leverage: Decimal = Decimal("100")  # leverageFilter.maxLeverage
    funding_interval_min: int = 480  # fundingInterval

    # ---- ticks and steps ----------------------------------------------------------------
    def price_ticks(self, text: str, field: str = "price") -> int:
        """Parse a decimal price string into whole ticks; off-grid or non-positive refused."""
        return _to_units(text, self.tick_size, field)

    def qty_steps(self, text: str, field: str = "qty") -> int:
        """Parse a decimal quantity string into whole qty steps; off-grid refused."""
        return _to_units(text, self.qty_step, field)

    def ticks_of(self, price: float) -> int:
        """Nearest tick of a market price read from data (already on the grid)."""
        return round(price / float(self.tick_size))

    def steps_of(self, qty: float) -> int:
        """Nearest qty step of a market size read from data."""
        return round(qty / float(self.qty_step))

    def price_str(self, ticks: int) -> str:
        return str((self.tick_size * ticks).quantize(self.tick_size))

    def qty_str(self, steps: int) -> str:
        return str((self.qty_step * steps).quantize(self.qty_step))

    def price_float(self, ticks: int) -> float:
        return float(self.tick_size * ticks)

    def qty_float(self, steps: int) -> float:
        return float(self.qty_step * steps)

    def quantise_price(self, price: float, side: int = 0) -> str:
        """A float price as a tick-grid string: rounded to the nearest tick, or for an
        order's own limit towards the passive side (``side`` +1 buy rounds down, -1 sell
        rounds up) so that quantising never makes an order more aggressive than asked."""
        units = Decimal(repr(price)) / self.tick_size
        if side > 0:
            n = int(units.to_integral_value(rounding="ROUND_FLOOR"))
        elif side < 0:
            n = int(units.to_integral_value(rounding="ROUND_CEILING"))
        else:
            n = int(units.to_integral_value(rounding="ROUND_HALF_EVEN"))
        return self.price_str(n)

    def quantise_qty(self, qty: float) -> str:
        """A float quantity as a qty-step string, rounded down (never more than asked)."""
        units = Decimal(repr(qty)) / self.qty_step
        return self.qty_str(int(units.to_integral_value(rounding="ROUND_FLOOR")))


def _to_units(text: str, unit: Decimal, field: str) -> int:
    try:
        value = Decimal(str(text))
    except (InvalidOperation, ValueError):
        raise InputError(f"{field}: {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise InputError(f"{field}: {text!r} is not a finite number")
    units = value / unit
    if units != units.to_integral_value():
        raise InputError(f"{field}: {text} is not a multiple of {unit}")
    return int(units)


def fmt_amount(x: float, places: int = 8) -> str:
    """A money amount (fees, P&L, balances) as Bybit prints it: fixed point, no trailing
    zeros, never scientific notation."""
    s = f"{x:.{places}f}".rstrip("0").rstrip(".")
    return "0" if s in ("", "-0") else s
