"""ANSI SGR escape codes -> escaped HTML spans, for the browser's log viewer.

Django-free. The contract that matters: every character of the log reaches
the HTML escaped (`html.escape`, quotes too); the only markup in the output
is `<span class="..." style="...">` / `</span>` that this module writes, and
their attribute values are built from integers and fixed class names, never
from log text. A log line `<script>alert(1)</script>` is text.

What is rendered: SGR (`ESC [ ... m`) foreground/background in the 16
colours (classes `a-f1`..`a-f15`, `a-b0`..), the 256-colour palette and
24-bit truecolour (inline `color:#rrggbb`), bold, faint, italic,
underline, inverse is ignored. Every other escape sequence (cursor moves,
`ESC [0K` erase, OSC titles and links) is dropped; a carriage return keeps
what the terminal would show last (the text after the last `\\r`).

State carries across lines and pages: `render_line(text, state)` returns the
state after the line, and `SgrState.encode()` / `decode()` turn it into a
short token the browser hands back when it asks for the next page.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace
from functools import lru_cache

# CSI (ESC [ params final), OSC (ESC ] ... BEL or ESC \), two-byte escapes, stray ESC.
_ESCAPE = re.compile(r"\x1b\[([0-9;:?<=>]*)[ -/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?")


def _hex(r: int, g: int, b: int) -> str:
    return f"#{max(0, min(r, 255)):02x}{max(0, min(g, 255)):02x}{max(0, min(b, 255)):02x}"


def _palette(n: int) -> str:
    """The xterm 256-colour palette entry n (16..255) as #rrggbb."""
    if n < 232:
        n -= 16
        steps = (0, 95, 135, 175, 215, 255)
        return _hex(steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + 10 * (n - 232)
    return _hex(v, v, v)


Colour = int | str | None  # 0..15 = a class, "#rrggbb" = inline, None = default


@dataclass(frozen=True)
class SgrState:
    fg: Colour = None
    bg: Colour = None
    bold: bool = False
    faint: bool = False
    italic: bool = False
    underline: bool = False

    @property
    def plain(self) -> bool:
        return self == PLAIN

    def encode(self) -> str:
        """A URL-safe token ("" for the default state)."""
        if self.plain:
            return ""
        flags = "".join(c for c, on in zip("bfiu", (self.bold, self.faint, self.italic, self.underline),
                                           strict=True) if on)
        def col(c: Colour) -> str:
            return "" if c is None else str(c) if isinstance(c, int) else c[1:]
        return f"{col(self.fg)}.{col(self.bg)}.{flags}"

    @classmethod
    def decode(cls, token: str | None) -> SgrState:
        """The state `encode()` gave; anything malformed is the default state."""
        m = re.fullmatch(r"(\d{1,2}|[0-9a-f]{6})?\.(\d{1,2}|[0-9a-f]{6})?\.([bfiu]*)", token or "")
        if not m:
            return PLAIN

        def col(s: str | None) -> Colour:
            if not s:
                return None
            if len(s) == 6:
                return "#" + s
            return int(s) if int(s) < 16 else None
        f = m.group(3)
        return cls(col(m.group(1)), col(m.group(2)), "b" in f, "f" in f, "i" in f, "u" in f)

    def open_tag(self) -> str:
        classes, styles = [], []
        for prefix, c, prop in (("f", self.fg, "color"), ("b", self.bg, "background-color")):
            if isinstance(c, int):
                classes.append(f"a-{prefix}{c}")
            elif c is not None:
                styles.append(f"{prop}:{c}")
        classes += [name for name, on in (("a-bold", self.bold), ("a-faint", self.faint),
                                          ("a-italic", self.italic), ("a-ul", self.underline)) if on]
        attrs = f' class="{" ".join(classes)}"' if classes else ""
        if styles:
            attrs += f' style="{";".join(styles)}"'
        return f"<span{attrs}>"


PLAIN = SgrState()


def _extended(params: list[int], i: int) -> tuple[Colour, int]:
    """`38;5;N` / `38;2;R;G;B` starting at params[i] (the 5 or 2): (colour, next index)."""
    if i < len(params) and params[i] == 5 and i + 1 < len(params):
        n = params[i + 1]
        return (n if n < 16 else _palette(min(n, 255))), i + 2
    if i < len(params) and params[i] == 2 and i + 3 < len(params):
        return _hex(*params[i + 1:i + 4]), i + 4
    return None, len(params)


@lru_cache(maxsize=4096)  # logs repeat a handful of codes: most lines hit the cache
def apply_sgr(state: SgrState, raw: str) -> SgrState:
    """The state after `ESC [ raw m`."""
    try:
        params = [int(p) if p else 0 for p in raw.replace(":", ";").split(";")] if raw else [0]
    except ValueError:
        return state
    i = 0
    while i < len(params):
        p = params[i]
        i += 1
        if p == 0:
            state = PLAIN
        elif p == 1:
            state = replace(state, bold=True)
        elif p == 2:
            state = replace(state, faint=True)
        elif p == 3:
            state = replace(state, italic=True)
        elif p == 4:
            state = replace(state, underline=True)
        elif p == 22:
            state = replace(state, bold=False, faint=False)
        elif p == 23:
            state = replace(state, italic=False)
        elif p == 24:
            state = replace(state, underline=False)
        elif 30 <= p <= 37:
            state = replace(state, fg=p - 30)
        elif 90 <= p <= 97:
            state = replace(state, fg=p - 90 + 8)
        elif 40 <= p <= 47:
            state = replace(state, bg=p - 40)
        elif 100 <= p <= 107:
            state = replace(state, bg=p - 100 + 8)
        elif p == 39:
            state = replace(state, fg=None)
        elif p == 49:
            state = replace(state, bg=None)
        elif p in (38, 48):
            colour, i = _extended(params, i)
            state = replace(state, **{"fg" if p == 38 else "bg": colour})
    return state


def _overstrike(text: str) -> str:
    """What a terminal shows for a line with carriage returns: the last rewrite."""
    body = text.rstrip("\r")
    return body[body.rfind("\r") + 1:] if "\r" in body else body


def render_line(text: str, state: SgrState = PLAIN) -> tuple[str, SgrState]:
    """(escaped HTML of one line, the SGR state after it)."""
    text = _overstrike(text)
    out: list[str] = []
    open_ = False
    if not state.plain:
        out.append(state.open_tag())
        open_ = True
    pos = 0
    for m in _ESCAPE.finditer(text):
        if m.start() > pos:
            out.append(html.escape(text[pos:m.start()]))
        pos = m.end()
        if m.group(2) != "m" or m.group(1) is None or "?" in m.group(1):
            continue  # not SGR: dropped
        new = apply_sgr(state, m.group(1))
        if new != state:
            if open_:
                out.append("</span>")
                open_ = False
            state = new
            if not state.plain:
                out.append(state.open_tag())
                open_ = True
    if pos < len(text):
        out.append(html.escape(text[pos:]))
    if open_:
        out.append("</span>")
    return "".join(out), state


def strip(text: str) -> str:
    """The visible text of a line: escapes dropped, carriage returns applied."""
    return _ESCAPE.sub("", _overstrike(text))
