"""Per-line timestamps, kept beside the raw log (never inside it).

The sidecar index is text, one record per write that starts at least one
line: `LINE OFFSET TIME\n` — the 1-based number of the first line starting
in that write, the byte offset where it starts, and the unix time of the
write. Every line starting in the same write has the same time, so a line's
time is the time of the last record at or before it. A step writing 100 MiB
in 64 KiB pieces needs ~1600 records; a chatty step one record per line.
"""
from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from pathlib import Path

SEARCH_BLOCK = 4096  # below this many bytes of sidecar, scan instead of bisecting


@dataclass(frozen=True)
class IndexRecord:
    line: int      # 1-based number of the first line starting in the write
    offset: int    # byte offset of that line's first byte
    time: float    # unix time of the write

    def encode(self) -> bytes:
        return f"{self.line} {self.offset} {self.time:.6f}\n".encode()


def _parse_record(raw: bytes) -> IndexRecord | None:
    parts = raw.split()
    if len(parts) != 3:
        return None
    try:
        return IndexRecord(int(parts[0]), int(parts[1]), float(parts[2]))
    except ValueError:
        return None


def parse_index(data: bytes) -> list[IndexRecord]:
    """Records from sidecar bytes; a torn last record (writer mid-append) is ignored."""
    return [r for raw in data.split(b"\n") if (r := _parse_record(raw)) is not None]


def window(records: list[IndexRecord], first: int, last: int) -> list[IndexRecord]:
    """What a page of lines `first`..`last` needs: the last record at or before
    `first` (if any), then every record up to `last`."""
    lines = [r.line for r in records]
    return records[max(0, bisect.bisect_right(lines, first) - 1):bisect.bisect_right(lines, last)]


def window_in_file(path: Path, first: int, last: int) -> list[IndexRecord]:
    """`window()` of the sidecar file at `path`, by bisecting the file itself.

    A chatty step has one record per line (millions in a long log); this
    reads O(log n) small pieces plus the records of the page, never the
    whole sidecar. Records are in line order, one per text line.
    """
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return []
    with f:
        lo, hi = 0, os.fstat(f.fileno()).st_size
        # Invariant: lo is 0 or the first record after lo has line <= first;
        # the first record after hi (if any) has line > first.
        while hi - lo > SEARCH_BLOCK:
            mid = (lo + hi) // 2
            f.seek(mid)
            f.readline()  # the rest of the record mid fell into
            rec = _parse_record(f.readline())
            if rec is not None and rec.line <= first:
                lo = mid
            else:
                hi = mid
        f.seek(lo)
        if lo:
            f.readline()
        out: list[IndexRecord] = []
        for raw in f:
            rec = _parse_record(raw)
            if rec is None:
                continue
            if rec.line <= first:
                out = [rec]
            elif rec.line <= last:
                out.append(rec)
            else:
                break
        return out


class LineIndexer:
    """Turns successive writes into index records. Not thread-safe (one writer)."""

    def __init__(self) -> None:
        self.offset = 0          # bytes seen so far
        self.next_line = 1       # number the next starting line gets
        self.at_line_start = True

    def resume(self, size: int, newlines: int, ends_with_newline: bool) -> None:
        """Continue after `size` bytes already stored (a writer reopened on a log)."""
        self.offset = size
        self.next_line = newlines + (1 if ends_with_newline or size == 0 else 2)
        self.at_line_start = ends_with_newline or size == 0

    def feed(self, data: bytes, now: float) -> IndexRecord | None:
        if not data:
            return None
        record = None
        if self.at_line_start:
            record = IndexRecord(self.next_line, self.offset, now)
        else:
            nl = data.find(b"\n")
            if nl != -1 and nl + 1 < len(data):
                record = IndexRecord(self.next_line, self.offset + nl + 1, now)
        started = (1 if self.at_line_start else 0) + data.count(b"\n") - (1 if data.endswith(b"\n") else 0)
        self.next_line += started
        self.at_line_start = data.endswith(b"\n")
        self.offset += len(data)
        return record


def record_at(records: list[IndexRecord], line: int) -> IndexRecord | None:
    """The last record whose line is <= `line` (records are in line order)."""
    i = bisect.bisect_right([r.line for r in records], line) - 1
    return records[i] if i >= 0 else None
