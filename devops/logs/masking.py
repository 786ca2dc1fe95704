"""Masking of secret values in a byte stream (DESIGN §7, §10).

`Masker` replaces every occurrence of a secret value with `***` before a
byte is stored or sent. The result for any chunking of the stream equals
`mask_all(whole_stream)`: a match decided at position p depends only on the
bytes p..p+L-1 (L = longest value), so the masker holds back at most the
last L-1 bytes of each write — only those that could still be the start of
a secret — until enough bytes follow (or the stream closes) to decide them.
Memory is bounded by L.

Values shorter than `MIN_LENGTH` characters are not masked: masking "a" or
"on" would turn ordinary output into a field of `***` and reveal nothing
useful anyway. Multi-line values are masked line by line, so a PEM key is
hidden even when a tool re-wraps or prints only some of its lines.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

MASK = b"***"
MIN_LENGTH = 4


def mask_values(values: Iterable[str | bytes]) -> tuple[bytes, ...]:
    """The byte strings to mask for `values`: one per line, stripped, >= MIN_LENGTH chars.

    Longest first, so that at one position the longest secret wins.
    """
    out: set[bytes] = set()
    for value in values:
        text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
        for line in text.splitlines() or [text]:
            line = line.strip()
            if len(line) >= MIN_LENGTH:
                out.add(line.encode("utf-8", "surrogateescape"))
    return tuple(sorted(out, key=lambda b: (-len(b), b)))


def _pattern(secrets: tuple[bytes, ...]) -> re.Pattern[bytes] | None:
    if not secrets:
        return None
    # Alternation is leftmost-first in `re`: sorted longest first, the
    # longest value starting at a position wins.
    return re.compile(b"|".join(re.escape(s) for s in secrets))


def mask_all(data: bytes, values: Iterable[str | bytes]) -> bytes:
    """Mask a whole stream at once (the reference the streaming masker must equal)."""
    pattern = _pattern(mask_values(values))
    return pattern.sub(MASK, data) if pattern else data


class Masker:
    """Streaming masker: `feed()` returns the bytes that are final, `close()` the rest."""

    def __init__(self, values: Iterable[str | bytes]):
        self.secrets = mask_values(values)
        self._pattern = _pattern(self.secrets)
        self._hold = max((len(s) for s in self.secrets), default=1) - 1
        self._pending = b""

    @property
    def active(self) -> bool:
        return self._pattern is not None

    @property
    def held(self) -> int:
        """Bytes fed but not decided yet (the start of a possible secret): 0 after a write ending in a newline."""
        return len(self._pending)

    def feed(self, data: bytes) -> bytes:
        if self._pattern is None:
            return data
        buf = self._pending + data if self._pending else bytes(data)
        # Secrets hold no newline (values are split into lines), so no match
        # spans one: everything up to the last newline is masked in one C-speed
        # sub(), and only the partial line after it needs the careful scan.
        nl = buf.rfind(b"\n")
        if nl == -1:
            return self._scan(buf)
        return self._mask_lines(buf[: nl + 1]) + self._scan(buf[nl + 1:])

    def _mask_lines(self, region: bytes) -> bytes:
        """Mask whole lines. `in`/`replace` run at memory speed; the regex (whose
        alternation `re` scans far slower) only when several values occur."""
        present = [s for s in self.secrets if s in region]
        if not present:
            return region
        if len(present) == 1:
            return region.replace(present[0], MASK)   # == sub() for a single literal
        return self._pattern.sub(MASK, region)

    def _scan(self, buf: bytes) -> bytes:
        """Mask `buf`, the start of an unfinished line; keep the undecided tail pending."""
        # Positions < limit have their whole window (longest secret) inside
        # buf, so the match decision there is final.
        limit = len(buf) - self._hold
        out = bytearray()
        pos = 0
        search = self._pattern.search
        # `in` is far faster than the alternation's search: skip it when no value occurs.
        present = any(s in buf for s in self.secrets)
        while present:
            m = search(buf, pos)
            if m is None or m.start() >= limit:
                break
            out += buf[pos:m.start()]
            out += MASK
            pos = m.end()
        # The last < L bytes: a position is decided once no secret longer than
        # what follows it could still start there. Secrets hold no newline
        # (values are split into lines), so a write ending in "\n" is never
        # held back at all — which keeps live streaming immediate.
        i = max(pos, limit)
        out += buf[pos:i]
        match = self._pattern.match
        while i < len(buf):
            rest = buf[i:]
            if any(len(s) > len(rest) and s.startswith(rest) for s in self.secrets):
                break
            m = match(buf, i)
            if m:
                out += MASK
                i = m.end()
            else:
                out += buf[i:i + 1]
                i += 1
        self._pending = buf[i:]
        return bytes(out)

    def close(self) -> bytes:
        """The held-back tail, masked as the end of the stream."""
        if self._pattern is None or not self._pending:
            return b""
        rest, self._pending = self._pending, b""
        return self._pattern.sub(MASK, rest)
