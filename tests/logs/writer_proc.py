"""A stand-in for the local engine's runner: writes stdin to a step log through
`open_step_writer`, one write per line, and prints "ready" / "closed".

Usage: python -m tests.logs.writer_proc STORE_URL EXECUTION STAGE STEP [--mask V] [--spool DIR]
       [--flush-interval S]
Live publishing follows REDIS_URL in the environment, as in a real runner.
"""
from __future__ import annotations

import argparse
import sys


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("execution")
    ap.add_argument("stage", type=int)
    ap.add_argument("step", type=int)
    ap.add_argument("--mask", action="append", default=[])
    ap.add_argument("--spool")
    ap.add_argument("--flush-interval", type=float)
    ap.add_argument("--cap", type=int)
    a = ap.parse_args()
    from devops.logs import LogKey, log_store_from_url, open_step_writer

    if a.url.startswith("s3://") and (a.spool or a.flush_interval):
        from devops.logs.s3store import S3LogStore

        store = S3LogStore.from_url(a.url, spool_root=a.spool, flush_interval=a.flush_interval or 1.0)
    else:
        store = log_store_from_url(a.url)
    w = open_step_writer(store, LogKey(a.execution, a.stage, a.step), mask=tuple(a.mask), cap=a.cap)
    print("ready", flush=True)
    for line in sys.stdin.buffer:
        w.write(line)
    w.close()
    print("closed", flush=True)


if __name__ == "__main__":
    main()
