"""Read pipeline YAML into a node tree that keeps positions and literal text.

Rancher parsed pipeline files with gopkg.in/yaml.v2, a port of libyaml, into
Go structs: a plain scalar that lands in a string field keeps its literal text
(`db.tag: 10.20` is "10.20", `x: true` is "true"). So the tree built here
keeps every scalar's text, its quoting style and its 1-based line/column, and
leaves typing to the linter. PyYAML's libyaml event parser does the syntax
(same grammar as yaml.v2); the tree is built from the events by hand so that
hostile input is refused early:

- files over `MAX_BYTES`;
- nesting deeper than `MAX_DEPTH` (checked while parsing, before any recursion);
- more than `MAX_ALIASES` aliases, or a tree whose size *after* alias
  expansion exceeds `MAX_NODES` (a billion-laughs file stops at the first
  alias that would cross the limit, after reading a few hundred bytes);
- a recursive alias (`&a [*a]`) or an alias to an unknown anchor.

Merge keys (`<<: *defaults`) and repeated keys are applied as yaml.v2 decoded
them into Rancher's structs: key by key in file order, a later value replacing
an earlier one, so a key after `<<` overrides the merged value and a `<<`
after a key overrides that key; within `<<: [*a, *b]` the earlier source wins.
Repeated keys are recorded on the mapping (the linter warns about them with
the field path). `!!binary` scalars keep their tag; the linter decodes them.
Only one YAML document is allowed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from devops.pipeline.problems import ERROR, Problem

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 1000
MAX_NODES = 20_000  # real pipeline files have a few hundred

NULLS = frozenset({"", "~", "null", "Null", "NULL"})
TAG_PREFIX = "tag:yaml.org,2002:"


@dataclass(eq=False)
class Node:
    """One YAML node. `kind` is "scalar", "map" or "seq"; line/column are 1-based.

    Scalars: `value` is the text (literal for plain scalars), `style` is None
    for plain, else one of `'`, `"`, `|`, `>`. Maps: `items` holds (key, value)
    pairs in file order after merges; `duplicates` (later key, earlier key) for
    keys written twice; `overridden` (`<<` key, written key) for keys a later
    merge replaced. Seqs: `items` holds nodes. `weight` counts the nodes of the
    subtree with aliases expanded.
    """

    kind: str
    line: int
    column: int
    value: str = ""
    style: str | None = None
    tag: str | None = None
    items: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)
    overridden: list = field(default_factory=list)
    weight: int = 1
    closed: bool = False

    @property
    def is_null(self) -> bool:
        if self.kind != "scalar":
            return False
        if self.tag == TAG_PREFIX + "null":
            return True
        return self.style is None and self.tag is None and self.value in NULLS

    def describe(self) -> str:
        """A short name of what the node is, for messages ("a list", "text 'x'")."""
        if self.kind == "map":
            return "a mapping"
        if self.kind == "seq":
            return "a list"
        if self.is_null:
            return "nothing (null)"
        text = self.value if len(self.value) <= 40 else self.value[:37] + "..."
        return f"{text!r}"


class TreeError(Exception):
    def __init__(self, line: int, column: int, message: str):
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


def _mark(event) -> tuple[int, int]:
    m = event.start_mark
    return (m.line + 1, m.column + 1) if m is not None else (1, 1)


def decode(text: str | bytes) -> str:
    """Bytes -> str (UTF-8, or UTF-16 with a BOM); drop a leading BOM."""
    if isinstance(text, bytes):
        if text.startswith((b"\xff\xfe", b"\xfe\xff")):
            text = text.decode("utf-16")
        else:
            try:
                text = text.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                line = text[: exc.start].count(b"\n") + 1
                col = exc.start - (text.rfind(b"\n", 0, exc.start) + 1) + 1
                raise TreeError(
                    line, col, f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})"
                ) from None
    return text.removeprefix("\ufeff")


def compose(text: str | bytes) -> tuple[Node | None, list[Problem]]:
    """Parse one YAML document into a `Node` tree, or report why not.

    Returns (None, [problem]) on a syntax error or a limit; (None, []) for an
    empty document; otherwise (root, []).
    """
    size = len(text.encode("utf-8", "surrogatepass")) if isinstance(text, str) else len(text)
    if size > MAX_BYTES:
        return None, [_doc_error(1, 1, f"the file is {size} bytes; the limit is {MAX_BYTES} bytes (1 MiB)")]
    try:
        text = decode(text)
        return _build(text), []
    except TreeError as exc:
        return None, [_doc_error(exc.line, exc.column, exc.message)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        what = exc.problem or "syntax error"
        ctx = ""
        if exc.context:
            cm = exc.context_mark
            where = f" at line {cm.line + 1}" if cm is not None and cm.line + 1 != line else ""
            ctx = f" ({exc.context}{where})"
        hint = _dash_hint(text, line) if isinstance(text, str) else ""
        return None, [_doc_error(line, col, f"YAML syntax error: {what}{ctx}{hint}")]
    except yaml.reader.ReaderError as exc:  # control characters and the like
        before = text[: exc.position] if isinstance(text, str) else ""
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        return None, [_doc_error(line, col, f"character {char!r} is not allowed in YAML: {exc.reason}")]
    except yaml.YAMLError as exc:
        return None, [_doc_error(1, 1, f"YAML error: {exc}")]


_DASH_KEY = re.compile(r"^(\s*)-([^\s\-][^:#]*):(\s|$)")


def dash_without_space(line: str) -> str | None:
    """`-image: x` (a list item missing the space after `-`) -> "image", else None."""
    m = _DASH_KEY.match(line)
    return m.group(2).strip() if m else None


def _dash_hint(text: str, line: int) -> str:
    """A hint when the line of a syntax error, or one of the two before it, reads `-key: value`."""
    lines = text.splitlines()
    for n in range(min(line, len(lines)), max(0, line - 3), -1):
        key = dash_without_space(lines[n - 1])
        if key:
            return (f"; line {n} reads `-{key}:`: a list item needs a space after `-` "
                    f"(`- {key}:`)")
    return ""


def _doc_error(line: int, column: int, message: str) -> Problem:
    return Problem(path="", line=line, column=column, severity=ERROR, message=message)


def _build(text: str) -> Node | None:
    anchors: dict[str, Node] = {}
    stack: list[Node] = []
    pending_key: list[Node | None] = []  # per open mapping: the key waiting for its value
    root: Node | None = None
    documents = 0
    aliases = 0
    written = 0  # nodes written in the file; the rest of a tree's weight comes from aliases

    def attach(node: Node) -> None:
        nonlocal root
        if not stack:
            root = node
            return
        parent = stack[-1]
        parent.weight += node.weight
        if parent.weight > MAX_NODES:
            # Blame aliases only when the nodes written so far fit the limit:
            # then it is their expansion that crossed it.
            if aliases and written <= MAX_NODES:
                why = (f"the document expands to more than {MAX_NODES} nodes through {aliases} "
                       f"alias{'es' if aliases != 1 else ''} (an alias/anchor bomb?)")
            else:
                why = f"the document has more than {MAX_NODES} nodes (YAML values); real pipelines have a few hundred"
            raise TreeError(node.line, node.column, why)
        if parent.kind == "seq":
            parent.items.append(node)
        elif pending_key[-1] is None:
            if node.kind != "scalar":
                raise TreeError(node.line, node.column, "a mapping key must be a plain value, not a list or mapping")
            pending_key[-1] = node
        else:
            parent.items.append((pending_key[-1], node))
            pending_key[-1] = None

    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        line, col = _mark(event)
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise TreeError(line, col, "the file holds more than one YAML document (`---`); a pipeline file holds one")
        elif isinstance(event, yaml.ScalarEvent):
            tag = event.tag if event.tag not in (None, "!") else None
            if tag and tag.startswith("!!"):
                tag = TAG_PREFIX + tag[2:]
            node = Node("scalar", line, col, value=event.value, style=event.style or None, tag=tag, closed=True)
            written += 1
            _anchor(anchors, event, node)
            attach(node)
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(stack) >= MAX_DEPTH:
                raise TreeError(line, col, f"the document nests deeper than {MAX_DEPTH} levels")
            kind = "map" if isinstance(event, yaml.MappingStartEvent) else "seq"
            node = Node(kind, line, col)
            written += 1
            _anchor(anchors, event, node)
            stack.append(node)
            pending_key.append(None)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            node = stack.pop()
            pending_key.pop()
            if node.kind == "map":
                _merge(node)
            node.closed = True
            attach(node)
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise TreeError(line, col, f"more than {MAX_ALIASES} aliases; refusing the file (alias limit)")
            target = anchors.get(event.anchor)
            if target is None:
                raise TreeError(line, col, f"alias *{event.anchor} refers to an unknown anchor")
            if not target.closed:
                raise TreeError(line, col, f"alias *{event.anchor} refers to its own anchor (a recursive alias)")
            attach(target)
    return root


def _anchor(anchors: dict[str, Node], event, node: Node) -> None:
    if event.anchor:
        anchors[event.anchor] = node


def _merge(node: Node) -> None:
    """Apply `<<` merge keys and repeated keys the way yaml.v2 decoded a mapping.

    yaml.v2 sets fields key by key in file order, so the later of two values
    wins, whether it was written or merged; a `<<` list is applied from its
    last source to its first, so the first source wins among them. Keys
    written twice are recorded in `node.duplicates` (the later key node).
    """
    result: dict[str, tuple[Node, Node]] = {}
    written: dict[str, Node] = {}  # keys written in this mapping (not merged), by text
    for key, value in node.items:
        if key.value == "<<" and key.style is None and key.tag is None:
            sources = value.items if value.kind == "seq" else [value]
            for src in sources:
                if src.kind != "map":
                    raise TreeError(src.line, src.column, "a merge key `<<` needs a mapping or a list of mappings")
            for src in reversed(sources):
                for k, v in src.items:
                    mine = written.get(k.value)
                    if mine is not None and result.get(k.value, (None,))[0] is mine:
                        node.overridden.append((key, mine))
                    result.pop(k.value, None)  # re-insert: the value now comes from here
                    result[k.value] = (k, v)
            continue
        if key.value in written:
            node.duplicates.append((key, written[key.value]))
        written[key.value] = key
        result.pop(key.value, None)
        result[key.value] = (key, value)
    node.items = list(result.values())
