"""Start the live actor graph in one mode: ``python live/deploy.py --mode paper [--simulator]
[--db-dir D] [--address A]``. The same as ``auction-trader live start``; see
``at_core/live/``."""

from __future__ import annotations

import sys

from at_core.cli import main

if __name__ == "__main__":
    sys.exit(main(["live", "start", *sys.argv[1:]]))
