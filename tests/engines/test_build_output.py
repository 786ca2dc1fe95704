"""Build output is streamed to the step log, never kept: memory flat on 40 MiB of it.

`publish_image._run` is what runs `buildah bud` / `buildah push` for a
publishImageConfig step; here it runs a real process that prints like a
long build, and the peak of Python allocations (tracemalloc, every thread)
is compared for 4 MiB and 40 MiB of output.
"""
from __future__ import annotations

import os
import sys
import tracemalloc

from devops.engines.local.runtimes.host import HostRuntime
from devops.engines.local.steps.publish_image import _run
from tests.engines.test_runtimes import make_ctx

MiB = 1 << 20

# Prints `mib` MiB like buildah bud: STEP lines, cache hits, long noise, \r progress.
BUILD = r"""
import sys
mib = int(sys.argv[1])
out = sys.stdout.buffer
noise = b"x" * 1000 + b"\n"
steps = 0
while steps * len(noise) * 64 < mib * 1048576:
    steps += 1
    out.write(b"STEP %d/999: RUN make part-%d\n" % (steps, steps))
    out.write(b"--> Using cache 0123abcd\n" if steps % 2 else b"Copying blob 1\rCopying blob 2\r")
    out.write(noise * 63)
out.write(b"STEP 1000/1000: FROM scratch\n")
out.write(b"y" * (3 * 1048576))  # one huge last line without a newline
"""


class CountingLog:
    """A step log that counts what reaches it and keeps nothing."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)


def _build(tmp_path, mib: int):
    ctx = make_ctx(tmp_path / str(mib), HostRuntime())
    ctx.log = CountingLog()
    argv = [sys.executable, "-c", BUILD, str(mib)]
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        rc, out = _run(ctx, argv, {"PATH": os.environ["PATH"]})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rc == 0
    return peak, out, ctx.log.size


def test_build_output_reaches_the_log_and_only_counts_are_kept(tmp_path):
    peak4, _, size4 = _build(tmp_path, 4)
    peak40, out40, size40 = _build(tmp_path, 40)
    assert size40 > 42 * MiB and size4 > 6 * MiB  # every byte went to the log
    steps = -(-40 * MiB // (1001 * 64))
    assert (out40.steps, out40.cached) == (steps, (steps + 1) // 2)  # FROM not counted
    assert peak40 < 8 * MiB and peak40 < peak4 + MiB, (peak4, peak40)
