"""Progress of long work, on a terminal and off it.

On a terminal a tqdm bar; anywhere else (a pipe, a log file, CI, a Ray job) a structured
``progress`` log line at every tenth of the work and at least every 30 s, with done,
total, elapsed and an estimate of the time left, once the work has run for
``QUIET_S`` seconds (short work stays quiet): a job run unattended still says where it
is, instead of nothing until it ends.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm import tqdm

from at_core import logging as at_logging

T = TypeVar("T")
QUIET_S = 5.0
log = at_logging.get("progress")


class Progress:
    def __init__(self, total: int, desc: str, unit: str = "it", show: bool | None = None) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.tty = sys.stderr.isatty() if show is None else show
        self.bar: Any = (
            tqdm(total=total, desc=desc, unit=unit, file=sys.stderr) if self.tty else None
        )
        self.done = 0
        self.t0 = self.last_t = time.perf_counter()
        self.next_step = max(1, total // 10)

    def update(self, n: int = 1, **postfix: Any) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(**postfix)
            return
        now = time.perf_counter()
        if now - self.t0 < QUIET_S:
            return
        if self.done >= self.next_step or now - self.last_t >= 30 or self.done == self.total:
            while self.next_step <= self.done:
                self.next_step += max(1, self.total // 10)
            self.last_t = now
            el = now - self.t0
            left = el / self.done * (self.total - self.done) if self.done else None
            log.info(
                "progress",
                work=self.desc,
                done=self.done,
                total=self.total,
                unit=self.unit,
                elapsed_s=round(el, 1),
                left_s=None if left is None else round(left, 1),
                **postfix,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(items: Iterable[T], total: int, desc: str, unit: str, show: bool | None) -> Iterator[T]:
    """Iterate ``items`` reporting progress (``show``: None = a bar on a terminal only)."""
    with Progress(total, desc, unit, show) as p:
        for x in items:
            yield x
            p.update(1)
