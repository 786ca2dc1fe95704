"""Run the benchmarks: `./slipway bench [NAME ...]` (NAME = bench_NAME.py in this folder).

Each `bench_*.py` module has `main() -> None`, which measures a baseline and
the subject in the same run and prints figures as ratios against it. They are
not part of the test suite (pytest does not collect this folder).
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "devops.settings")
    here = Path(__file__).parent
    names = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    wanted = argv or names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names)}", file=sys.stderr)
        return 2
    for name in wanted:
        print(f"\n=== bench {name}", flush=True)
        t0 = time.monotonic()
        importlib.import_module(f"tests.bench.bench_{name}").main()
        print(f"=== bench {name} took {time.monotonic() - t0:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
