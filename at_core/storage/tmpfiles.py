"""Temporary files of interrupted writers, and their cleanup.

Every writer of the project writes to a hidden temporary name carrying its process id
(``.<name>.tmp-<pid>``, a staging directory ``.<name>-staging-<pid>``) and renames it into
place when done, so a reader never sees half a file. A writer killed with ``kill -9`` (or a
power cut) leaves its temporary behind; readers ignore it, but it takes space and, before
this, stayed forever. ``sweep`` removes the temporaries whose process is gone; it runs when
a command that writes the store starts (import, generate, features). A temporary whose
process id is alive (a concurrent writer, or a recycled id) is left alone: the safe side.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from at_core import logging as at_logging

log = at_logging.get(__name__)

_TMP = re.compile(r"^\..+(?:\.tmp-|-staging-)(\d+)$")


def tmp_name(path: Path) -> Path:
    """The temporary name ``path`` is written under by this process."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def sweep(root: Path) -> list[Path]:
    """Remove the temporaries under ``root`` left by writers that no longer run; returns
    what was removed (logged)."""
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for p in sorted(root.rglob(".*")):
        m = _TMP.match(p.name)
        if m is None or _alive(int(m.group(1))):
            continue
        try:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
        except OSError:
            continue  # a read-only folder: nothing to do about it here
        removed.append(p)
    if removed:
        log.info("removed temporaries of interrupted writers", n=len(removed), root=str(root))
    return removed
