"""Search a whole stored step log for a string, in bounded memory (the viewer's search).

Django-free. One forward scan of the raw bytes in BLOCK pieces: memory is a
piece plus `len(query)` bytes, whatever the log's size or its longest line,
and the lines need not be rendered (or even fit the lines API's 64 KiB cut).
A match is counted once per line. Matching is on the raw bytes (so a word
split by an ANSI colour code is not found), ASCII case-insensitive unless
asked otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

from devops.logs.base import LogKey, LogStore

BLOCK = 1 << 20
MAX_QUERY = 1024


@dataclass(frozen=True)
class SearchResult:
    count: int            # lines that match
    line: int | None      # the match asked for (next after / previous before `around`, wrapping)
    ordinal: int | None   # its 1-based position among the matches ("3 of 17")
    lines: int            # lines in the log (a last line without newline counts)
    size: int             # bytes scanned


def search_log(store: LogStore, key: LogKey, query: str, around: int = 0, direction: str = "next",
               case_sensitive: bool = False) -> SearchResult:
    """Count the lines matching `query`; find the first match after line `around`
    (`direction="next"`) or the last before it (`"prev"`), wrapping at the ends.
    `around=0` with "next" gives the first match."""
    needle = query.encode()
    if not needle or len(needle) > MAX_QUERY:
        raise ValueError(f"the query must be 1..{MAX_QUERY} bytes")
    if not case_sensitive:
        needle = needle.lower()
    keep = len(needle) - 1
    size = store.size(key)
    count = 0
    first = last = before = after = None
    after_ord = before_ord = None
    last_matched = 0          # the line of the last match (one count per line)
    carry = b""               # the last `keep` bytes of the previous piece
    carry_line = 1            # the line number at carry[0]
    last_byte = b""
    for piece in store.iter_bytes(key, 0, size, BLOCK):
        last_byte = piece[-1:]
        buf = carry + (piece if case_sensitive else piece.lower())
        line, lpos, pos = carry_line, 0, 0
        while (i := buf.find(needle, pos)) != -1:
            line += buf.count(b"\n", lpos, i)
            lpos = i
            if line != last_matched:
                last_matched = line
                count += 1
                first = first or line
                last = line
                if line < around:
                    before, before_ord = line, count
                elif line > around and after is None:
                    after, after_ord = line, count
            nl = buf.find(b"\n", i)
            pos = nl + 1 if nl != -1 else len(buf)
        cut = max(len(buf) - keep, 0)
        carry_line = line + buf.count(b"\n", lpos, cut)
        carry = buf[cut:]
    newlines = carry_line - 1 + carry.count(b"\n")
    lines = newlines + (1 if last_byte not in (b"", b"\n") else 0)
    if count == 0:
        return SearchResult(0, None, None, lines, size)
    if direction == "prev":
        hit, ordinal = (before, before_ord) if before is not None else (last, count)
    else:
        hit, ordinal = (after, after_ord) if after is not None else (first, 1)
    return SearchResult(count, hit, ordinal, lines, size)
