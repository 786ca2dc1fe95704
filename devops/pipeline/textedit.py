"""Edits spliced into the YAML text at the positions of its nodes (the lossless editor engine).

ruamel.yaml's round trip re-renders a document: flow spacing (`[ push ]`),
a leading blank line, sequence indentation and folded scalars come out in
its own style. Here nothing is re-rendered: the text is parsed once into a
tree of nodes that know their character spans, and each change is a splice
of the few characters or lines it concerns:

- a scalar set replaces the scalar's characters only (its line's comment,
  the key, the indentation stay), in the old quoting style when the new value
  can be written in it;
- a mapping or list set is applied as the difference of old and new: only
  the entries that differ are touched (lists aligned with a diff);
- deleting an entry or list item removes its *block*: the comment lines
  directly above it (no blank line between, indented no deeper than the item)
  and its own lines down to its last line, with the end-of-line comment and
  deeper-indented comment lines that directly follow it;
- inserting writes the new item in the list's own indentation; moving cuts
  the block (comments included) and pastes it, re-indented, at the target.

Anything this engine does not handle (anchors, aliases, tags, `- - x`
nesting) raises `Unsupported`; callers then fall back to the ruamel round
trip. Callers check that the result reads back as the intended data.
"""
from __future__ import annotations

import bisect
import difflib
import json
import math
import re
from dataclasses import dataclass, field

import yaml


class Unsupported(Exception):
    """The text engine cannot make this change losslessly; use the round trip instead."""


@dataclass(eq=False)
class N:
    kind: str  # "scalar" | "map" | "seq"
    start: int
    end: int  # scalars: end of the text; collections: the end event's start (flow: after the bracket)
    col: int
    flow: bool = False
    style: str | None = None
    value: str = ""
    items: list = field(default_factory=list)  # map: [(key N, value N)], seq: [N]

    @property
    def empty_null(self) -> bool:
        return self.kind == "scalar" and self.style is None and self.value == ""


class Doc:
    """The text, its node tree and token positions (dashes and colons)."""

    def __init__(self, text: str):
        self.text = text
        self.line_starts = [0, *(m.end() for m in re.finditer("\n", text))]
        self.root = self._build()
        self._tokens: tuple[dict[int, list[int]], list[int]] | None = None

    def _scan(self) -> tuple[dict[int, list[int]], list[int]]:
        """Where every `-` of a block list and every `:` is (scanned once, when first needed)."""
        if self._tokens is None:
            dashes: dict[int, list[int]] = {}
            colons: list[int] = []
            for tok in yaml.scan(self.text, Loader=yaml.CSafeLoader):
                if isinstance(tok, yaml.BlockEntryToken):
                    dashes.setdefault(tok.start_mark.column, []).append(tok.start_mark.index)
                elif isinstance(tok, yaml.ValueToken):
                    colons.append(tok.start_mark.index)
            self._tokens = (dashes, colons)
        return self._tokens

    @property
    def dashes(self) -> dict[int, list[int]]:
        return self._scan()[0]

    @property
    def colons(self) -> list[int]:
        return self._scan()[1]

    def _build(self) -> N | None:
        stack: list[N] = []
        pending: list = []
        root = None
        for ev in yaml.parse(self.text, Loader=yaml.CSafeLoader):
            if isinstance(ev, yaml.AliasEvent) or getattr(ev, "anchor", None):
                raise Unsupported("anchors and aliases")
            if isinstance(ev, (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if getattr(ev, "tag", None) not in (None, "!"):
                    raise Unsupported("tags")
            if isinstance(ev, yaml.ScalarEvent):
                node = N("scalar", ev.start_mark.index, ev.end_mark.index, ev.start_mark.column,
                         style=ev.style or None, value=ev.value)
            elif isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                kind = "map" if isinstance(ev, yaml.MappingStartEvent) else "seq"
                stack.append(N(kind, ev.start_mark.index, -1, ev.start_mark.column, flow=bool(ev.flow_style)))
                pending.append(None)
                continue
            elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                node = stack.pop()
                pending.pop()
                node.end = ev.end_mark.index if node.flow else ev.start_mark.index
            else:
                continue
            if not stack:
                root = node
            elif stack[-1].kind == "seq":
                stack[-1].items.append(node)
            elif pending[-1] is None:
                if node.kind != "scalar":
                    raise Unsupported("complex keys")
                pending[-1] = node
            else:
                stack[-1].items.append((pending[-1], node))
                pending[-1] = None
        return root

    # --- lines -------------------------------------------------------------
    def line_of(self, index: int) -> int:
        return bisect.bisect_right(self.line_starts, index) - 1

    def line_start(self, line: int) -> int:
        return self.line_starts[line] if line < len(self.line_starts) else len(self.text)

    def line_text(self, line: int) -> str:
        return self.text[self.line_start(line):self.line_start(line + 1)].rstrip("\n")

    def nlines(self) -> int:
        return len(self.line_starts) - (1 if self.text.endswith("\n") else 0)

    def blank(self, line: int) -> bool:
        return 0 <= line < self.nlines() and not self.line_text(line).strip()

    def comment(self, line: int) -> bool:
        return 0 <= line < self.nlines() and self.line_text(line).lstrip().startswith("#")

    def indent(self, line: int) -> int:
        t = self.line_text(line)
        return len(t) - len(t.lstrip(" "))

    # --- positions ----------------------------------------------------------
    def content_end(self, node: N) -> int:
        """Index just after the last character the node's text needs."""
        if node.kind == "scalar":
            if node.style in ("|", ">"):
                return node.start + len(self.text[node.start:node.end].rstrip())
            return node.end
        if node.flow or not node.items:
            return node.end
        last = node.items[-1]
        if node.kind == "map":
            key, value = last
            return self.colon(key) + 1 if value.empty_null else self.content_end(value)
        return self.dash(node, len(node.items) - 1) + 1 if last.empty_null else self.content_end(last)

    def colon(self, key: N) -> int:
        i = bisect.bisect_left(self.colons, key.end)
        if i == len(self.colons):
            raise Unsupported("no `:` after a key")
        return self.colons[i]

    def dash(self, seq: N, k: int) -> int:
        marks = self.dashes.get(seq.col, [])
        lo = bisect.bisect_left(marks, seq.start)
        hi = bisect.bisect_left(marks, seq.end)
        if hi - lo != len(seq.items):
            raise Unsupported("cannot find the `-` of each list item")
        return marks[lo + k]

    def value_span(self, holder: N, key, node: N) -> tuple[int, int]:
        """Characters of `node`'s value text (empty nulls: just after their `:` or `-`)."""
        if node.empty_null:
            at = self.colon(key) + 1 if holder.kind == "map" else self.dash(holder, key) + 1
            return at, at
        return node.start, self.content_end(node)

    def block(self, holder: N, i: int) -> tuple[int, int, bool]:
        """(start, end) character range of entry/item `i` with its comments; and whether it starts mid-line."""
        if holder.kind == "map":
            key, value = holder.items[i]
            first = key.start
            end = self.colon(key) + 1 if value.empty_null else self.content_end(value)
        else:
            first = self.dash(holder, i)
            value = holder.items[i]
            end = first + 1 if value.empty_null else self.content_end(value)
        line = self.line_of(first)
        col = first - self.line_start(line)
        inline = bool(self.text[self.line_start(line):first].strip())
        if inline and holder.kind == "seq":
            raise Unsupported("a list item that starts mid-line (`- - x`)")
        top = line
        if not inline:
            while self.comment(top - 1) and self.indent(top - 1) <= col:
                top -= 1
        last = self.line_of(max(end - 1, first))
        while self.comment(last + 1) and self.indent(last + 1) > col:
            last += 1
        start = first if inline else self.line_start(top)
        return start, self.line_start(last + 1), inline


# --- rendering -----------------------------------------------------------------

_BIG = 2**30
_BREAKS = ("\x85", "\u2028", "\u2029", "\r")


def _dump_scalar(value, *, flow: bool = False, style=None) -> str:
    if flow:
        out = yaml.safe_dump([value], default_flow_style=True, width=_BIG, allow_unicode=True, default_style=style)
        return out.strip()[1:-1]
    out = yaml.safe_dump(value, width=_BIG, allow_unicode=True, default_style=style)
    if out.endswith("\n...\n"):
        out = out[: -len("\n...\n")]
    return out.rstrip("\n")


def _double(value: str) -> str:
    out = json.dumps(value, ensure_ascii=False)
    for c in ("\x85", "\u2028", "\u2029", "\ufeff"):
        out = out.replace(c, f"\\u{ord(c):04x}")
    return out


def _single(value: str) -> str | None:
    if any(c in value for c in ("\n", *_BREAKS)) or not value.isprintable():
        return None
    return "'" + value.replace("'", "''") + "'"


def _literal(value: str, indent: str) -> str | None:
    """`|`-style block text for a multi-line string, content at `indent`; None when it cannot hold it."""
    if any(c in value for c in _BREAKS) or "\t" in value.split("\n", 1)[0][:1]:
        return None
    lines = value.split("\n")
    first = next((ln for ln in lines if ln.strip()), None)
    if first is None or first[0] == " " or any(not (ln.isprintable() or ln == "") for ln in lines):
        return None
    if value.endswith("\n\n") or (value.endswith("\n") and not value.rstrip("\n")):
        return None
    chomp = "" if value.endswith("\n") else "-"
    body = value[:-1] if value.endswith("\n") else value
    return f"|{chomp}\n" + "\n".join((indent + ln) if ln else "" for ln in body.split("\n"))


def render_scalar(value, *, indent: str, flow: bool = False, like: N | None = None) -> str:
    """A scalar's text for a value position; `like` is the old scalar whose quoting to keep."""
    if isinstance(value, float) and not math.isfinite(value):
        return _dump_scalar(value)
    if not isinstance(value, str):
        return _dump_scalar(value, flow=flow)
    old = like.style if like is not None else None
    if old == '"':
        return _double(value)
    if old == "'" and _single(value) is not None:
        return _single(value)
    if old in ("|", ">") and not flow:
        block = _literal(value, indent)
        if block is not None:
            return block
    if "\n" in value or any(c in value for c in _BREAKS):
        if not flow:
            block = _literal(value, indent)
            if block is not None:
                return block
        return _double(value)
    out = _dump_scalar(value, flow=flow)
    return out if "\n" not in out else _double(value)


class Style:
    """The file's indentation: mapping indent, and where `-` sits under its key."""

    def __init__(self, mapping: int = 2, offset: int = 0):
        self.mapping, self.offset = mapping, offset


def _is_collection(value) -> bool:
    return isinstance(value, (dict, list)) and bool(value)


def render_map(value: dict, col: int, st: Style) -> list[str]:
    lines: list[str] = []
    pad = " " * col
    for k, v in value.items():
        key = render_scalar(k, indent="", like=None) if isinstance(k, str) else _dump_scalar(k)
        if "\n" in key:
            raise Unsupported("a multi-line key")
        if isinstance(v, dict) and v:
            lines.append(f"{pad}{key}:")
            lines.extend(render_map(v, col + st.mapping, st))
        elif isinstance(v, list) and v:
            lines.append(f"{pad}{key}:")
            lines.extend(render_seq(v, col + st.offset, st))
        else:
            lines.append(f"{pad}{key}: {_inline(v, col + st.mapping)}")
    return lines


def render_seq(value: list, col: int, st: Style) -> list[str]:
    lines: list[str] = []
    pad = " " * col
    for v in value:
        lines.extend(render_item(v, col, st, pad))
    return lines


def render_item(v, col: int, st: Style, pad: str | None = None) -> list[str]:
    pad = " " * col if pad is None else pad
    if _is_collection(v):
        inner = render_map(v, col + 2, st) if isinstance(v, dict) else render_seq(v, col + 2, st)
        return [f"{pad}- {inner[0][col + 2:]}", *inner[1:]]
    return [f"{pad}- {_inline(v, col + 2)}"]


def _inline(v, content_col: int) -> str:
    if isinstance(v, dict):
        return "{}"
    if isinstance(v, list):
        return "[]"
    return render_scalar(v, indent=" " * content_col)


def render_flow(value, like_text: str = "", *, nested: bool = True) -> str | None:
    """`value` in flow style, in the spacing of `like_text` (`[ a, b ]` or `[a, b]`).

    None when `nested` is False and the value holds a list or mapping.
    """
    pad = " " if len(like_text) > 2 and like_text[1] == " " else ""
    if not isinstance(value, (dict, list)):
        return render_scalar(value, indent="", flow=True)
    inner = value.values() if isinstance(value, dict) else value
    if not nested and any(isinstance(v, (dict, list)) for v in inner):
        return None
    if isinstance(value, list):
        body = ", ".join(render_flow(v) for v in value)
        return f"[{pad}{body}{pad}]" if body else "[]"
    body = ", ".join(f"{render_scalar(k, indent='', flow=True)}: {render_flow(v)}" for k, v in value.items())
    return f"{{{pad}{body}{pad}}}" if body else "{}"


# --- the editor ------------------------------------------------------------------


def same(a, b) -> bool:
    """Equality that tells 1 from True and 1 from 1.0 (YAML writes them differently)."""
    if a is b:
        return True
    if type(a) is not type(b) and not (isinstance(a, str) and isinstance(b, str)):
        return False
    if isinstance(a, dict):  # key order is not data (a mapping's keys stay where the file has them)
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


class Editor:
    """Collects splices against one parse of the text; `apply()` returns the new text."""

    def __init__(self, text: str, style: Style):
        self.doc = Doc(text)
        self.style = style
        self.splices: list[tuple[int, int, int, str]] = []

    def splice(self, start: int, end: int, new: str) -> None:
        self.splices.append((start, end, len(self.splices), new))

    def apply(self) -> str:
        text = self.doc.text
        spans = sorted(self.splices, key=lambda s: (s[0], s[2]), reverse=True)
        limit = len(text) + 1
        for start, end, _, new in spans:
            if end > limit:
                raise Unsupported("overlapping changes")
            text = text[:start] + new + text[end:]
            limit = start
        return text

    # --- navigation ---
    def find(self, parts: list) -> tuple[N | None, object, N]:
        """(holder, key-or-index, node) for `parts` (holder None for the root)."""
        holder, key, node = None, None, self.doc.root
        for part in parts:
            if node is None or node.kind == "scalar":
                raise Unsupported("path through a scalar")
            if node.kind == "map":
                index = next((i for i, (k, _) in enumerate(node.items) if k.value == str(part)), None)
                if index is None:
                    raise KeyError(part)
                holder, key, node = node, index, node.items[index][1]
            else:
                if not isinstance(part, int) or part >= len(node.items):
                    raise KeyError(part)
                holder, key, node = node, part, node.items[part]
        return holder, key, node

    def holder_key(self, holder: N, i: int):
        return holder.items[i][0] if holder.kind == "map" else i

    # --- changes ---
    def assign(self, holder: N | None, i, node: N, old, new) -> None:
        """Make `node` (the value held at `holder[i]`, plain value `old`) read as `new`."""
        if same(old, new):
            return
        if node.kind == "map" and not node.flow and isinstance(new, dict) and new:
            self._assign_map(holder, i, node, old, new)
            return
        if node.kind == "seq" and not node.flow and isinstance(new, list) and new:
            self._assign_seq(node, old, new)
            return
        if node.flow and node.kind == "map" and isinstance(new, dict) and isinstance(old, dict) \
                and list(old) == list(new) and len(node.items) == len(old):
            for k, (_, vnode) in enumerate(node.items):  # same keys: change the values in place
                key = list(old)[k]
                self.assign(node, k, vnode, old[key], new[key])
            return
        if node.flow and node.kind == "seq" and isinstance(new, list) and isinstance(old, list) \
                and len(old) == len(new) == len(node.items):
            for k, vnode in enumerate(node.items):
                self.assign(node, k, vnode, old[k], new[k])
            return
        if holder is None:
            if node.flow:
                self.splice(node.start, node.end, render_flow(new, self.doc.text[node.start:node.end]))
                return
            raise Unsupported("replacing the whole document")
        self.replace(holder, i, node, new)

    def replace(self, holder: N, i, node: N, new) -> None:
        """Write `new` in place of the value `node` (an entry's value or a list item)."""
        d = self.doc
        key = self.holder_key(holder, i)
        if holder.flow:
            if node.empty_null:
                raise Unsupported("an empty value in a flow collection")
            # Inside a flow collection everything is written in flow style.
            like = d.text[node.start:node.end] if node.kind != "scalar" else ""
            self.splice(node.start, d.content_end(node), render_flow(new, like) if isinstance(new, (dict, list))
                        else render_scalar(new, indent="", flow=True, like=node if node.kind == "scalar" else None))
            return
        start, end = d.value_span(holder, key, node)
        if holder.kind == "map":
            knode = holder.items[i][0]
            base = d.line_start(d.line_of(knode.start))
            col = knode.start - base
            child = col + self.style.mapping
            seq_col = col + self.style.offset
        else:
            dash = d.dash(holder, i)
            col = dash - d.line_start(d.line_of(dash))
            child = seq_col = col + 2
        if node.kind != "scalar" and node.flow and (isinstance(new, (dict, list))):
            flow = render_flow(new, d.text[node.start:node.end], nested=False)
            if flow is not None and type(new) is (dict if node.kind == "map" else list):
                self.splice(start, end, flow)
                return
        if node.kind == "scalar" and node.style in ("|", ">"):
            # Keep a block scalar's content indentation.
            body = d.text[node.start:node.end].split("\n")[1:]
            first = next((ln for ln in body if ln.strip()), None)
            if first is not None:
                child = len(first) - len(first.lstrip(" "))
        if not _is_collection(new):
            like = node if node.kind == "scalar" else None
            text = _inline(new, child) if isinstance(new, (dict, list)) else render_scalar(new, indent=" " * child, like=like)
            if holder.kind == "map" and node.kind != "scalar" and not node.flow:
                # A block collection becomes an inline value on its key's line.
                colon = d.colon(holder.items[i][0])
                rest = d.text[colon + 1:d.line_start(d.line_of(colon) + 1)].strip()
                self.splice(colon + 1, end, " " + text + (" " + rest if rest.startswith("#") else ""))
                return
            self.splice(start, end, text if not node.empty_null else " " + text)
            return
        if holder.kind == "map":
            lines = render_map(new, child, self.style) if isinstance(new, dict) else render_seq(new, seq_col, self.style)
            colon = d.colon(holder.items[i][0])
            # Keep the key line's own comment: it stays after the `:`.
            rest = d.text[colon + 1:d.line_start(d.line_of(colon) + 1)].rstrip("\n")
            comment = rest if rest.strip().startswith("#") and end > d.line_start(d.line_of(colon) + 1) else ""
            self.splice(colon + 1, end, comment + "\n" + "\n".join(lines))
        else:
            lines = render_item(new, col, self.style)
            first = lines[0][col + 2:]
            self.splice(start if not node.empty_null else start + 1, end, "\n".join([first, *lines[1:]]))

    def _assign_map(self, holder: N | None, i, node: N, old: dict, new: dict) -> None:
        keys = [k.value for k, _ in node.items]
        if len(set(keys)) != len(keys) or "<<" in keys or len(keys) != len(old):
            raise Unsupported("repeated or merge keys")
        kept = [k for k in keys if k in new]
        first_inline = self.doc.block(node, 0)[2]
        if not kept or (first_inline and keys[0] not in new):
            # Nothing to keep (a step that changes type), or the first key of a
            # `- key:` item goes: write the new value whole.
            if holder is None:
                raise Unsupported("replacing the whole document")
            self.replace(holder, i, node, new)
            return
        for k, key in enumerate(keys):
            if key not in new:
                self.delete(node, k)
        for k, (knode, vnode) in enumerate(node.items):
            if knode.value in new:
                self.assign(node, k, vnode, old[knode.value], new[knode.value])
        # New keys go after the key that precedes them in `new` (at the end when none does).
        index = {key: k for k, key in enumerate(keys)}
        previous = None
        for key, value in new.items():
            if key in index:
                previous = key
                continue
            at = self.doc.block(node, index[previous])[1] if previous is not None else None
            self.add_entries(node, {key: value}, at=at)

    def _assign_seq(self, node: N, old: list, new: list) -> None:
        import difflib

        a = [json.dumps(v, sort_keys=True, default=str) for v in old]
        b = [json.dumps(v, sort_keys=True, default=str) for v in new]
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
            if tag == "equal":
                continue
            pairs = min(i2 - i1, j2 - j1) if tag == "replace" else 0
            for k in range(pairs):
                self.assign(node, i1 + k, node.items[i1 + k], old[i1 + k], new[j1 + k])
            for k in range(i1 + pairs, i2):
                self.delete(node, k)
            extra = new[j1 + pairs:j2]
            if extra:
                self.insert_items(node, i1 + pairs if i1 + pairs < len(node.items) else len(node.items), extra)

    def delete(self, holder: N, i: int) -> None:
        """Remove entry/item `i` of a block collection with its comments (not its last one)."""
        d = self.doc
        start, end, inline = d.block(holder, i)
        if inline:
            if i + 1 >= len(holder.items):
                raise Unsupported("deleting the only key of a list item")
            nstart, _, _ = d.block(holder, i + 1)
            nline = d.line_of(nstart)
            self.splice(start, nstart + d.indent(nline), "")
            return
        first, last = d.line_of(start), d.line_of(end - 1) if end > start else d.line_of(start)
        if (first == 0 or d.blank(first - 1) or i == 0) and d.blank(last + 1):
            nxt = last + 1
            while d.blank(nxt):
                nxt += 1
            if i == 0 and not d.blank(first - 1):
                end = d.line_start(nxt)
            elif d.blank(first - 1):
                end = d.line_start(nxt)
        self.splice(start, end, "")

    def gap_blank(self, holder: N, i: int) -> bool:
        """Whether a blank line separates item/entry `i` from the one before it."""
        d = self.doc
        start, _, inline = d.block(holder, i)
        return not inline and d.blank(d.line_of(start) - 1)

    def separated(self, holder: N, index: int | None = None) -> bool:
        """Whether items of `holder` are separated by blank lines: near `index` (an insertion
        point), else anywhere."""
        n = len(holder.items)
        if n < 2:
            return False
        if index is not None:
            return self.gap_blank(holder, min(max(index, 1), n - 1))
        return any(self.gap_blank(holder, i) for i in range(1, n))

    def _after_last(self, holder: N) -> int:
        return self.doc.block(holder, len(holder.items) - 1)[1]

    def add_entries(self, node: N, entries: dict, at: int | None = None) -> None:
        """Write `entries` into block mapping `node`: at `at` (a line start), else after its last entry."""
        d = self.doc
        col = node.items[0][0].start - d.line_start(d.line_of(node.items[0][0].start))
        if at is None:
            at = self._after_last(node)
        text = "\n".join(render_map(entries, col, self.style)) + "\n"
        self.splice(at, at, self._newline_before(at) + text)

    def _newline_before(self, at: int) -> str:
        return "" if at == 0 or self.doc.text[at - 1] == "\n" else "\n"

    def insert_items(self, seq: N, index: int, values: list) -> None:
        d = self.doc
        dash = d.dash(seq, 0)
        col = dash - d.line_start(d.line_of(dash))
        blocks = ["\n".join(render_item(v, col, self.style)) + "\n" for v in values]
        self.insert_blocks(seq, index, blocks)

    def insert_blocks(self, seq: N, index: int, blocks: list[str], separated: bool = False) -> None:
        sep = "\n" if (separated if len(seq.items) < 2 else self.separated(seq, index)) else ""
        if index < len(seq.items):
            at = self.doc.block(seq, index)[0]
            self.splice(at, at, "".join(b + sep for b in blocks))
        else:
            at = self._after_last(seq)
            self.splice(at, at, self._newline_before(at) + "".join(sep + b for b in blocks))

    def cut_item(self, seq: N, index: int) -> tuple[str, int]:
        """Item `index`'s block text (comments included) and the column of its `-`."""
        d = self.doc
        start, end, _ = d.block(seq, index)
        dash = d.dash(seq, index)
        text = d.text[start:end]
        return (text if text.endswith("\n") else text + "\n"), dash - d.line_start(d.line_of(dash))

    def seq_col(self, seq: N) -> int:
        d = self.doc
        dash = d.dash(seq, 0)
        return dash - d.line_start(d.line_of(dash))


def reindent(block: str, shift: int) -> str:
    """Shift every line of `block` right (or left) by `shift` columns."""
    lines = block.split("\n")
    if shift > 0:
        lines = [(" " * shift + ln) if ln.strip() else ln for ln in lines]
    elif shift < 0:
        if any(ln.strip() and len(ln) - len(ln.lstrip(" ")) < -shift for ln in lines):
            raise Unsupported("cannot re-indent the moved item")
        lines = [ln[-shift:] if ln.strip() else ln for ln in lines]
    return "\n".join(lines)


def detect_style(text: str) -> Style:
    from devops.pipeline.edit import _indents

    mapping, offset = _indents(text)
    return Style(mapping, offset)


# --- line endings ------------------------------------------------------------------


def with_endings(original: str, result: str) -> str:
    """`result` (LF line endings) written back with the line endings of `original`, line by line.

    A file with mixed LF / CRLF lines (an editor on Windows touched part of it)
    must not come back all CRLF: every line the edit left alone keeps the
    ending it had, a changed line takes the ending of the line it replaces,
    and a new line the file's majority ending (ties: the first line's).
    `original` is the decoded text as read; only the line breaks `\\n` and
    `\\r\\n` are considered (a lone `\\r` is content here, as YAML's reader sees
    lines through the same split).
    """
    if "\r\n" not in original:
        return result
    old = original.split("\n")
    old_ends = ["\r\n" if part.endswith("\r") else "\n" for part in old[:-1]]
    if "\n" not in old_ends:  # all CRLF: the common case, no diff needed
        return result.replace("\n", "\r\n")
    old_lines = [part[:-1] if part.endswith("\r") else part for part in old[:-1]]
    new = result.split("\n")
    new_lines, tail = new[:-1], new[-1]
    crlf = old_ends.count("\r\n")
    majority = "\r\n" if crlf * 2 > len(old_ends) or (crlf * 2 == len(old_ends) and old_ends[0] == "\r\n") else "\n"
    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        for k in range(j1, j2):
            if op == "equal":
                end = old_ends[i1 + k - j1]
            elif op == "replace":
                end = old_ends[i1 + min(k - j1, i2 - i1 - 1)]
            else:  # insert
                end = majority
            out.append(new_lines[k] + end)
    return "".join(out) + tail
