"""Reading logs by line (the paged JSON API) and by byte range (raw downloads)."""
from __future__ import annotations

import re
from datetime import UTC, datetime

from devops.logs.base import LogKey, LogStore

BLOCK = 256 << 10
MAX_LINE = 64 << 10  # bytes of one line the lines API returns; the raw download has them all


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _utf8_head(data: bytes) -> bytes:
    """`data` without a UTF-8 sequence its cut left incomplete (at most 3 bytes)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # ASCII or a lead byte: how long is its sequence?
            need = 1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
            return data[:-back] if need > back else data
    return data


class _Scanner:
    """Reads a log forward in BLOCK pieces; holds one piece plus one line's head."""

    def __init__(self, store: LogStore, key: LogKey, pos: int, size: int) -> None:
        self.store, self.key, self.size = store, key, size
        self.pos = pos       # next byte to read from the store
        self.buf = b""       # bytes read and not yet consumed
        self.bp = 0

    def _fill(self) -> bool:
        if self.pos >= self.size:
            return False
        piece = self.store.read(self.key, self.pos, min(BLOCK, self.size - self.pos))
        if not piece:
            return False
        self.buf, self.bp = piece, 0
        self.pos += len(piece)
        return True

    def line(self, keep: int) -> tuple[bytes, int, bool]:
        """The next line: (its first `keep` bytes, its length without the newline,
        whether a newline ended it). Only `keep` bytes of it are ever held."""
        head = bytearray()
        length = 0
        while True:
            nl = self.buf.find(b"\n", self.bp)
            stop = len(self.buf) if nl == -1 else nl
            if len(head) < keep:
                head += self.buf[self.bp:min(stop, self.bp + keep - len(head))]
            length += stop - self.bp
            if nl != -1:
                self.bp = nl + 1
                return bytes(head), length, True
            self.bp = len(self.buf)
            if not self._fill():
                return bytes(head), length, False

    def has_line(self) -> bool:
        """A newline among the bytes already read (no store read)."""
        return self.buf.find(b"\n", self.bp) != -1


def read_lines(store: LogStore, key: LogKey, start: int = 1, limit: int = 100) -> dict:
    """Lines `start`..`start+limit-1` (1-based) with byte offsets and timestamps.

    A last line without its newline is returned only once the log is complete
    (while the step runs it may still grow); `next` is the line to ask for
    next, `more` says whether more bytes are already stored after it. The
    scan starts at the nearest index record, so a page costs a lookup in the
    index (`LogStore.index_window`: a bisection of the sidecar file) plus the
    bytes of the lines it returns (and those since the record).

    A line longer than MAX_LINE bytes is cut (at a character boundary): its
    `text` ends with a marker `[slipway: N bytes of this line cut; the raw log
    has them]` and `cut` says N (0 for whole lines). Memory stays one BLOCK
    plus MAX_LINE per line returned, however long the lines are.
    """
    start = max(1, start)
    complete = store.is_complete(key)   # before size: if complete, size is final
    size = store.size(key)
    records = store.index_window(key, start, start + limit - 1)
    ri = 0 if records and records[0].line <= start else -1
    line, off = (records[ri].line, records[ri].offset) if ri >= 0 else (1, 0)
    scan = _Scanner(store, key, off, size)
    out: list[dict] = []
    while len(out) < limit and off < size:
        head, length, ended = scan.line(MAX_LINE if line >= start else 0)
        if not ended and not complete:
            break  # the last line may still grow
        if line >= start:
            while ri + 1 < len(records) and records[ri + 1].line <= line:
                ri += 1
            t = records[ri].time if ri >= 0 else None
            shown = head if length <= MAX_LINE else _utf8_head(head)
            cut = length - len(shown)
            text = shown.decode("utf-8", "replace")
            if cut:
                text += f" [slipway: {cut} bytes of this line cut; the raw log has them]"
            out.append({"number": line, "offset": off, "time": _iso(t), "text": text, "cut": cut})
        off += length + (1 if ended else 0)
        line += 1
    more = off < size and (complete or scan.has_line() or scan.pos < size)
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
