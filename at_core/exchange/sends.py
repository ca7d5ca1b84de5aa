"""Classifying a request that may or may not have reached the exchange.

An order request ends in one of three ways, and the difference decides whether a fill can
be lost or an order sent twice:

- **sent**: the exchange answered retCode 0 (or, after an ambiguous send, the order was
  found by its ``orderLinkId``);
- **not sent**: the request provably did not create an order: the exchange answered a
  refusal (a non-zero retCode other than an internal error), pybit gave up after the
  exchange refused every try (10002, 10006), or the TCP connection was never established;
- **ambiguous**: the request may have been executed and its answer lost: a reset or timeout
  after the request was written, an HTTP status other than 200, an internal error (10016),
  an unreadable answer. It is resolved by querying the ``orderLinkId``, never by sending
  again: a client that resends after a lost answer trades twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

SENT = "sent"
NOT_SENT = "not_sent"
AMBIGUOUS = "ambiguous"
# retCodes after which the request may still have been executed
AMBIGUOUS_CODES = {10016}


@dataclass
class SendResult:
    outcome: str  # SENT | NOT_SENT | AMBIGUOUS
    link_id: str = ""
    order_id: str = ""
    ret_code: int | None = None
    message: str = ""
    resolved_by_query: bool = False
    result: Any = None

    @property
    def ok(self) -> bool:
        return self.outcome == SENT


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | ConnectTimeoutError | ConnectionRefusedError)


def classify(exc: BaseException) -> tuple[str, int | None, str]:
    """(outcome, retCode, message) of a request that raised ``exc``."""
    if isinstance(exc, InvalidRequestError):
        code = int(exc.status_code)
        outcome = AMBIGUOUS if code in AMBIGUOUS_CODES else NOT_SENT
        return outcome, code, str(exc.message)
    if isinstance(exc, FailedRequestError):
        # pybit's "retries exceeded" (status 400) follows refusals on every try; any other
        # HTTP status came from a server that may have executed the request
        code = int(exc.status_code)
        outcome = NOT_SENT if code == 400 and "Retries exceeded" in str(exc.message) else AMBIGUOUS
        return outcome, code, str(exc.message)
    if isinstance(exc, requests.exceptions.ConnectionError) and _never_connected(exc):
        return NOT_SENT, None, f"connection not established: {exc}"
    if isinstance(exc, requests.exceptions.RequestException | OSError | ValueError):
        return AMBIGUOUS, None, f"{type(exc).__name__}: {exc}"
    raise exc
