"""Reading logs by line (the paged JSON API) and by byte range (raw downloads)."""
from __future__ import annotations

import bisect
import re
from datetime import UTC, datetime

from devops.logs.base import LogKey, LogStore

BLOCK = 256 << 10


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def read_lines(store: LogStore, key: LogKey, start: int = 1, limit: int = 100) -> dict:
    """Lines `start`..`start+limit-1` (1-based) with byte offsets and timestamps.

    A last line without its newline is returned only once the log is complete
    (while the step runs it may still grow); `next` is the line to ask for
    next, `more` says whether more bytes are already stored after it. The
    scan starts at the nearest index record, so a page costs one index read
    plus the bytes of the lines it returns (and those since the record).
    """
    start = max(1, start)
    complete = store.is_complete(key)   # before size: if complete, size is final
    size = store.size(key)
    records = store.index(key)
    ri = bisect.bisect_right([r.line for r in records], start) - 1
    line, off = (records[ri].line, records[ri].offset) if ri >= 0 else (1, 0)
    out: list[dict] = []
    pos = off          # next byte to read from the store
    buf = b""          # bytes read, from `off - bp`
    bp = 0             # where the next line starts in buf
    while len(out) < limit:
        nl = buf.find(b"\n", bp)
        if nl == -1:
            if pos < size:
                piece = store.read(key, pos, min(BLOCK, size - pos))
                if piece:
                    buf, bp = buf[bp:] + piece, 0
                    pos += len(piece)
                    continue
            if bp < len(buf) and complete:
                nl = len(buf)  # the last line, without a newline
            else:
                break
        if line >= start:
            while ri + 1 < len(records) and records[ri + 1].line <= line:
                ri += 1
            t = records[ri].time if ri >= 0 else None
            out.append({"number": line, "offset": off, "time": _iso(t),
                        "text": buf[bp:nl].decode("utf-8", "replace")})
        consumed = min(nl + 1, len(buf)) - bp
        bp += consumed
        off += consumed
        line += 1
    more = off < size and (complete or b"\n" in buf[bp:] or pos < size)
    return {"from": start, "next": max(line, start), "more": bool(more), "complete": complete,
            "size": size, "lines": out}


UNSATISFIABLE = "unsatisfiable"


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """An HTTP `Range: bytes=...` header -> (first, last) inclusive, UNSATISFIABLE, or None
    (absent, malformed or several ranges: serve the whole log, as RFC 9110 allows)."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header or "")
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None
    first, last = m.group(1), m.group(2)
    if first == "":
        n = int(last)
        if n == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - n), size - 1
    a = int(first)
    b = int(last) if last else size - 1
    if last and b < a:
        return None
    if a >= size:
        return UNSATISFIABLE
    return a, min(b, size - 1)
