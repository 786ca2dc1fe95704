"""Pages of a step log as the browser's viewer shows them (Django-free).

`render_page()` reads a page of lines (devops.logs.lines.read_lines: the
index bisected, 64 KiB per line at most), classifies each line
(devops.logs.sections) and renders it to escaped HTML (devops.logs.ansi),
carrying the SGR state from the line before the page when the caller knows it
(the token the previous page ended with); a page opened in the middle (a
search hit, a line anchor) starts in the default colours.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from devops.logs import ansi
from devops.logs.base import LogKey, LogStore
from devops.logs.lines import read_lines
from devops.logs.sections import COMMAND, SLIPWAY, START, classify

PAGE = 500        # lines per page the viewer asks for
FIRST_PAGE = 100  # lines the page itself carries: three screenfuls of the pane, parsed and shown fast
MAX_PAGE = 2000


@dataclass(frozen=True)
class Row:
    number: int
    time: str | None      # ISO-8601 UTC
    epoch_ms: int | None
    html: str             # escaped, with SGR spans
    kind: str             # devops.logs.sections kinds
    fold: bool            # starts a fold (section or command group)
    cut: int


@dataclass(frozen=True)
class Page:
    start: int            # first line asked for
    next: int             # the line after the page
    more: bool            # more bytes are stored after it
    complete: bool        # the step's log is complete
    size: int             # bytes stored when read
    rows: list[Row]
    sgr: str              # the SGR state after the page (SgrState.encode)

    @property
    def first(self) -> int:
        return self.rows[0].number if self.rows else self.start

    @property
    def last(self) -> int:
        return self.rows[-1].number if self.rows else self.start - 1


def rows_html(rows: list[Row], stage: int, step: int) -> str:
    """The rows as the viewer's HTML (templates/web/log.html#rows includes it).

    Built here, not in a template loop: Django's template engine costs about
    half a millisecond a row, which is most of a 500-line page. Every value
    is ours: the line's HTML came escaped from devops.logs.ansi, the rest are
    integers, an ISO time and kinds from a fixed set."""
    anchor = f"s{int(stage)}.{int(step)}-L"
    out = []
    for r in rows:
        ident = f"{anchor}{r.number}"
        attrs = f' data-t="{r.epoch_ms}"' if r.epoch_ms is not None else ""
        if r.fold:
            attrs += f' data-fold="{r.kind}"'
        when = f' datetime="{r.time}"' if r.time else ""
        badge = '<span class="lw" title="Written by Slipway, not by the step">slipway</span>' \
            if r.kind == SLIPWAY else ""
        text = (f'<button type="button" class="lf" aria-expanded="true"><span class="lx">{r.html}</span></button>'
                if r.fold else f'<span class="lx">{r.html}</span>')
        out.append(f'<div class="ll k-{r.kind}" id="{ident}" data-n="{r.number}"{attrs}>'
                   f'<a class="ln" href="#{ident}" tabindex="-1">{r.number}</a><time class="lt"{when}></time>'
                   f"{badge}{text}</div>")
    return "".join(out)


def _epoch_ms(iso: str | None) -> int | None:
    if not iso:
        return None
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def render_page(store: LogStore, key: LogKey, start: int = 1, limit: int = PAGE, sgr: str = "") -> Page:
    limit = max(1, min(limit, MAX_PAGE))
    page = read_lines(store, key, start, limit)
    state = ansi.SgrState.decode(sgr)
    rows = []
    for line in page["lines"]:
        text = line["text"]
        kind = classify(text)
        shown = kind.title if kind.kind == START else text
        html, state = ansi.render_line(shown, state)
        rows.append(Row(line["number"], line["time"], _epoch_ms(line["time"]), html, kind.kind,
                        kind.kind in (START, COMMAND), line["cut"]))
    return Page(page["from"], page["next"], page["more"], page["complete"], page["size"], rows, state.encode())


def line_count(store: LogStore, key: LogKey) -> int:
    """Lines stored (a last line without its newline counts): the last index
    record's line plus the newlines after its offset — one read of the log's
    tail, not of the whole log (unless it was written in one piece)."""
    size = store.size(key)
    records = store.index_window(key, 1 << 62, 1 << 62)
    line, offset = (records[-1].line, records[-1].offset) if records else (1, 0)
    newlines, last = 0, b""
    for piece in store.iter_bytes(key, offset, size):
        newlines += piece.count(b"\n")
        last = piece[-1:]
    if size == 0:
        return 0
    return line - 1 + newlines + (0 if last == b"\n" else 1)


def tail_start(store: LogStore, key: LogKey, limit: int = PAGE) -> int:
    """The first line of the last page of `limit` lines."""
    return max(1, line_count(store, key) - limit + 1)
