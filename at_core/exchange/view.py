"""The adapter's view of the account: orders, executions, position and wallet, built from
private WebSocket events and REST resyncs, robust to what Bybit does not guarantee.

- Duplicates: an execution is kept once by ``execId``; a message id seen before is dropped.
- Order across topics and within one: an order row replaces the stored one only if it is
  not older (``updatedTime``, then filled quantity, then the status's rank: a terminal
  status is never replaced by an earlier live one).
- Position rows carry ``seq``; an older one is ignored. The WebSocket's ``entryPrice`` is
  stored as REST's ``avgPrice`` so that both sources compare.
- Funding arrives as an execution of type ``Funding``: booked as funding, never as a fill.

The ledger of fills: the position the fills we have seen imply (the size at the first
resync plus every trade execution since). When the exchange's position differs from it,
the difference was made behind our back (or a fill was lost): ``mismatch()`` reports it and
nothing here "fixes" either side (SPEC §10.4: alert and halt, a human resolves).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

TERMINAL = {"Filled": 3, "Cancelled": 3, "Rejected": 3, "Deactivated": 3}


def _rank(status: str) -> int:
    return TERMINAL.get(status, 2 if status == "PartiallyFilled" else 1)


def _key(row: dict[str, Any]) -> tuple[int, Decimal, int]:
    return (
        int(row.get("updatedTime") or 0),
        Decimal(row.get("cumExecQty") or "0"),
        _rank(row.get("orderStatus", "")),
    )


@dataclass
class AccountView:
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # by orderId
    executions: dict[str, dict[str, Any]] = field(default_factory=dict)  # by execId
    position: dict[str, Any] = field(default_factory=dict)
    wallet: dict[str, Any] = field(default_factory=dict)
    wallet_time: int = 0
    ledger_size: Decimal | None = None  # signed BTC implied by the fills seen
    funding_paid: Decimal = Decimal(0)
    seen_message_ids: set[str] = field(default_factory=set)
    last_exec_time: int = 0

    # ---- events ----------------------------------------------------------------------------
    def seen(self, message_id: str) -> bool:
        """True for a message delivered before (then drop it)."""
        if not message_id:
            return False
        if message_id in self.seen_message_ids:
            return True
        self.seen_message_ids.add(message_id)
        if len(self.seen_message_ids) > 100_000:
            self.seen_message_ids.clear()
        return False

    def apply_order(self, row: dict[str, Any]) -> bool:
        """Store an order row unless an equal or newer one is stored; True if stored."""
        oid = row.get("orderId", "")
        cur = self.orders.get(oid)
        if cur is not None and _key(row) < _key(cur):
            return False
        if (
            cur is not None
            and _rank(cur.get("orderStatus", "")) == 3
            and _rank(row.get("orderStatus", "")) < 3
        ):
            return False
        self.orders[oid] = row
        return True

    def apply_execution(self, row: dict[str, Any]) -> bool:
        """Record an execution once; True if it is new. Fills move the ledger; funding
        is booked as funding."""
        eid = row.get("execId", "")
        if not eid or eid in self.executions:
            return False
        self.executions[eid] = row
        self.last_exec_time = max(self.last_exec_time, int(row.get("execTime") or 0))
        if row.get("execType") == "Funding":
            self.funding_paid += Decimal(row.get("execFee") or "0")
        elif row.get("execType") == "Trade" and self.ledger_size is not None:
            qty = Decimal(row.get("execQty") or "0")
            self.ledger_size += qty if row.get("side") == "Buy" else -qty
        return True

    def apply_position(self, row: dict[str, Any]) -> bool:
        row = dict(row)
        if "entryPrice" in row and "avgPrice" not in row:
            row["avgPrice"] = row.pop("entryPrice")
        if self.position and int(row.get("seq") or 0) < int(self.position.get("seq") or 0):
            return False
        self.position = row
        return True

    def apply_wallet(self, row: dict[str, Any], at_ms: int) -> bool:
        if at_ms < self.wallet_time:
            return False
        self.wallet, self.wallet_time = row, at_ms
        return True

    # ---- what it says -------------------------------------------------------------------------
    def position_size(self) -> Decimal:
        """Signed size of the exchange's position as last seen."""
        p = self.position
        size = Decimal(p.get("size") or "0")
        return -size if p.get("side") == "Sell" else size

    def mismatch(self) -> dict[str, str] | None:
        """The exchange's position against the position our fills imply, if they differ."""
        if self.ledger_size is None:
            return None
        exch = self.position_size()
        if exch == self.ledger_size:
            return None
        return {
            "exchange": str(exch),
            "fills_imply": str(self.ledger_size),
            "difference": str(exch - self.ledger_size),
        }

    def open_orders(self) -> list[dict[str, Any]]:
        live = ("New", "PartiallyFilled", "Untriggered", "Triggered")
        return [o for o in self.orders.values() if o.get("orderStatus") in live]

    def balance(self) -> Decimal:
        return Decimal(self.wallet.get("totalWalletBalance") or "0")
