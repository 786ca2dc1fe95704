"""Whole-log search on the server (devops.logs.search): exact counts, next/previous, bounded memory."""
from __future__ import annotations

import tracemalloc

import pytest

from devops.logs.base import LogKey
from devops.logs.search import search_log

MiB = 1 << 20


def _write(store, key, pieces):
    w = store.writer(key)
    for p in pieces:
        w.write(p)
    w.close()


def _reference(data: bytes, query: bytes, case: bool = False) -> list[int]:
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    q = query if case else query.lower()
    return [i + 1 for i, ln in enumerate(lines) if q in (ln if case else ln.lower())]


@pytest.mark.parametrize("block", [3, 7, 64, 1 << 20])
def test_counts_and_next_prev_match_a_reference_whatever_the_piece_size(file_store, monkeypatch, block):
    import devops.logs.search as search

    monkeypatch.setattr(search, "BLOCK", block)
    data = b"alpha\nERROR one\nbeta error error\n\nerrors\nno\nlast ERROR"
    key = LogKey("e-1", 1, 0)
    _write(file_store, key, [data[:5], data[5:23], data[23:]])
    hits = _reference(data, b"error")
    assert hits == [2, 3, 5, 7]
    r = search_log(file_store, key, "Error")
    assert (r.count, r.line, r.ordinal, r.lines) == (4, 2, 1, 7)
    assert search_log(file_store, key, "error", around=3).line == 5
    assert search_log(file_store, key, "error", around=3, direction="prev").line == 2
    assert search_log(file_store, key, "error", around=7).line == 2          # wraps to the first
    prev = search_log(file_store, key, "error", around=2, direction="prev")
    assert (prev.line, prev.ordinal) == (7, 4)                              # wraps to the last
    assert search_log(file_store, key, "ERROR", case_sensitive=True).count == 2
    assert search_log(file_store, key, "nothing").line is None


def test_a_match_across_two_pieces_is_found_once(file_store, monkeypatch):
    import devops.logs.search as search

    monkeypatch.setattr(search, "BLOCK", 4)
    key = LogKey("e-1", 1, 0)
    _write(file_store, key, [b"xxneedlexx needle\nneedle\n"])
    r = search_log(file_store, key, "needle")
    assert (r.count, r.line) == (2, 1)
    assert [search_log(file_store, key, "needle", around=n).line for n in (1, 2)] == [2, 1]


def test_a_line_deep_in_a_40_mib_log_is_found_in_bounded_memory(file_store):
    """Memory does not grow with the log (4 vs 40 MiB): a piece plus the query."""
    filler = b"".join(b"line %07d of filler text, \x1b[32mgreen\x1b[0m\n" % i for i in range(20_000))
    peaks = {}
    for size in (4, 40):
        key = LogKey("e-1", size, 0)
        w = file_store.writer(key)
        written = 0
        while written < size * MiB:
            w.write(filler)
            written += len(filler)
        w.write(b"the <script>needle</script> at the end\n")
        w.close()
        total = written // len(filler) * 20_000 + 1
        tracemalloc.start()
        try:
            r = search_log(file_store, key, "<script>needle")
            peaks[size] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert (r.count, r.line, r.lines) == (1, total, total)
    assert peaks[40] < 8 * MiB, peaks  # as tests/logs/test_memory.py's BOUND
    assert peaks[40] < peaks[4] + MiB, peaks


def test_the_query_is_bounded():
    with pytest.raises(ValueError):
        search_log(None, LogKey("e", 1, 0), "")
