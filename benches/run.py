"""Run every benchmark module (``benches/bench_*.py``) and append JSON lines.

Each module exposes ``run() -> list[dict]`` and runs in a fresh interpreter; a record has ``name``, ``value``, ``unit`` and,
where there is one, ``baseline`` and ``ratio`` (measured in the same run, because these
machines are noisy and only ratios compare across runs) and a ``note``. This runner adds the
timestamp and the git revision and writes one object per line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _git_rev() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=HERE,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# Runs one module in a fresh interpreter and prints its records after a marker line, so a
# module's own output cannot be mistaken for records.
CHILD = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location(sys.argv[1], sys.argv[2])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
records = module.run()
print("@@records@@")
print(json.dumps(records))
"""


def _wait_for_ray_exit(timeout_s: float = 60.0) -> None:
    """Let a previous module's Ray processes finish exiting: their teardown competes for
    the two cores and would be charged to the next module's measurement."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        busy = subprocess.run(
            ["pgrep", "-f", "raylet|gcs_server|ray::"], capture_output=True, text=True
        ).stdout.strip()
        if not busy:
            return
        time.sleep(0.5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench-results.jsonl")
    ap.add_argument("--only", default=None, help="substring of the module names to run")
    args = ap.parse_args()
    rev = _git_rev()
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    failed = 0
    with open(args.out, "a") as out:
        for path in sorted(HERE.glob("bench_*.py")):
            if args.only and args.only not in path.stem:
                continue
            _wait_for_ray_exit()
            print(f"== {path.stem}", file=sys.stderr, flush=True)
            # a fresh process per module: no module inherits another's heap, threads or
            # page-cache-warm allocations, and peak-memory figures stay the module's own
            proc = subprocess.run(
                [sys.executable, "-c", CHILD, path.stem, str(path)],
                stdout=subprocess.PIPE,
                text=True,
                cwd=HERE.parent,
            )
            lines = proc.stdout.splitlines()
            if proc.returncode != 0 or "@@records@@" not in lines:
                print(f"{path.stem} failed (exit {proc.returncode})", file=sys.stderr)
                failed += 1
                continue
            records = json.loads(lines[lines.index("@@records@@") + 1])
            for rec in records:
                rec = {"ts": now, "rev": rev, "module": path.stem, **rec}
                line = json.dumps(rec)
                out.write(line + "\n")
                print(line, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
