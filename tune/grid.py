"""Grid search entry point: ``python tune/grid.py --config configs/grid/X.yaml``.

Runs on a local Ray when no cluster is running, or on an existing cluster with
``ray job submit --working-dir . -- python tune/grid.py --config ...``. All logic lives in
``at_core.grid``; see README "Grid search".
"""

import sys

from at_core.grid.main import main

if __name__ == "__main__":
    sys.exit(main())
