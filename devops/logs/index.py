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
from dataclasses import dataclass


@dataclass(frozen=True)
class IndexRecord:
    line: int      # 1-based number of the first line starting in the write
    offset: int    # byte offset of that line's first byte
    time: float    # unix time of the write

    def encode(self) -> bytes:
        return f"{self.line} {self.offset} {self.time:.6f}\n".encode()


def parse_index(data: bytes) -> list[IndexRecord]:
    """Records from sidecar bytes; a torn last record (writer mid-append) is ignored."""
    out = []
    for raw in data.split(b"\n"):
        parts = raw.split()
        if len(parts) != 3:
            continue
        try:
            out.append(IndexRecord(int(parts[0]), int(parts[1]), float(parts[2])))
        except ValueError:
            continue
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
