"""Run every benchmark module (``benches/bench_*.py``) and append JSON lines.

Each module exposes ``run() -> list[dict]``; a record has ``name``, ``value``, ``unit`` and,
where there is one, ``baseline`` and ``ratio`` (measured in the same run, because these
machines are noisy and only ratios compare across runs) and a ``note``. This runner adds the
timestamp and the git revision and writes one object per line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import subprocess
import sys
import traceback
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
            spec = importlib.util.spec_from_file_location(path.stem, path)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            print(f"== {path.stem}", file=sys.stderr, flush=True)
            try:
                spec.loader.exec_module(module)
                records = module.run()
            except Exception:
                traceback.print_exc()
                failed += 1
                continue
            for rec in records:
                rec = {"ts": now, "rev": rev, "module": path.stem, **rec}
                line = json.dumps(rec)
                out.write(line + "\n")
                print(line, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
