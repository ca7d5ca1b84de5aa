"""Simulator processes for the exchange tests: real servers on 127.0.0.1, the generator's
market (seed 7, 2024-01-01 00:00-02:00 UTC), paused so each test sets the market clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pybit.unified_trading import HTTP

from at_core.exchange.client import http_session
from at_core.exchange.testing import SimProcess

T0 = 1_704_067_200_000
MARKET = ("--seed", "7", "--from", "2024-01-01T00:00", "--to", "2024-01-01T02:00")


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with SimProcess(*MARKET, "--paused", "--balance", "100000") as s:
        s.advance(T0 + 5 * 60_000)
        yield s


@pytest.fixture(scope="module")
def http(sim: SimProcess) -> HTTP:
    return http_session(sim.rest, sim.api_key, sim.api_secret)
