"""The step writer: size cap (plain notices, flat memory), errors never reach the step."""
from __future__ import annotations

import tracemalloc

from devops.logs import LogKey, open_step_writer
from devops.logs.writer import DEFAULT_CAP
from devops.quantity import parse_bytes


def test_past_the_cap_the_log_says_it_was_truncated_and_how_much_was_dropped(file_store):
    key = LogKey("e-cap", 1, 0)
    w = open_step_writer(file_store, key, cap=100)
    w.write(b"x" * 60 + b"\n")
    assert b"truncated" not in file_store.read(key)
    w.write(b"y" * 70)           # 39 kept, 31 dropped
    w.write(b"z" * 1000)         # all dropped
    w.close()
    log = file_store.read(key)
    kept, _, notices = log.partition(b"\n[slipway] log truncated")
    assert kept == b"x" * 60 + b"\n" + b"y" * 39
    assert b"reached its cap of 100 bytes" in notices
    assert log.endswith(b"[slipway] log truncated: 1031 bytes (1 KiB) were dropped after the cap of 100 bytes\n")
    assert w.dropped == 1031 and w.size == len(log)


def test_no_cap_given_means_the_100_mib_default(file_store):
    w = open_step_writer(file_store, LogKey("e-cap", 1, 1))
    assert w.cap == DEFAULT_CAP == parse_bytes("100Mi")
    w.close()


def test_memory_stays_flat_while_a_capped_step_writes_a_lot(file_store):
    w = open_step_writer(file_store, LogKey("e-mem", 1, 0), mask=("a-secret-value",), cap=1 << 20)
    piece = (b"line of output with a-secret-value in it\n" * 1600)[:65536]
    tracemalloc.start()
    try:
        for _ in range(300):     # ~19 MiB through the writer
            w.write(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    w.close()
    assert peak < 1 << 20, f"peak {peak} bytes held while writing"
    assert file_store.size(LogKey("e-mem", 1, 0)) < (1 << 20) + 500


def test_storage_failure_never_raises_into_the_step(tmp_path, caplog):
    from devops.logs.filestore import FileLogStore

    (tmp_path / "not-a-dir").write_text("x")
    store = FileLogStore(tmp_path / "not-a-dir")       # mkdir below a file fails
    w = open_step_writer(store, LogKey("e-err", 1, 0))
    w.write(b"output\n")
    w.close()
    assert w.errors and w.errors[0].startswith("open:")
    assert "the step goes on" in caplog.text


def test_a_write_error_after_open_is_swallowed(file_store):
    import os

    w = open_step_writer(file_store, LogKey("e-err", 1, 1))
    w.write(b"first\n")
    os.close(w._inner._fd)                              # the disk goes away under the writer
    w.write(b"second\n")
    w.close()
    assert any(e.startswith("store:") for e in w.errors)


