"""Visual operations on a pipeline file: the editor's one way to change the YAML text.

Contract (`apply_ops(text, ops) -> str`):

- `ops` is a list of JSON-able dicts, applied in order; each names its target
  by a field path written exactly as lint writes it
  (`stages[1].steps[0].runScriptConfig.shellScript`). A key that contains a
  dot or a bracket may be written `env["slave.replicas"]` (a JSON string in
  brackets); the plain dotted form also resolves when the document already
  has such a key.

      {"op": "set", "path": P, "value": V}      set or replace a value; missing
                                                mapping keys on the way are created
      {"op": "delete", "path": P}               delete a key or a list item
      {"op": "insert", "path": "stages[2]", "value": {...}}
                                                insert a list item at that index
                                                (index == len appends; a missing
                                                list at the parent key is created)
      {"op": "move", "from": "stages[0].steps[1]", "to": "stages[2].steps[0]"}
                                                move a list item, to another list
                                                too; `to` is read in the document
                                                after the item was removed

  Renaming a stage is `set stages[i].name`.
- A bad op or path raises `EditError` naming the op (by its index) and the path.
- The result reads as the plain data the ops describe (`apply_ops_data`), and
  only the lines the ops change are rewritten (see README, "Pipeline editor:
  what lossless guarantees").

`starter_pipeline()` is the commented `.devops.yml` offered for a branch
that has no pipeline file. `read_document(text)` is the plain data the ops
work on (for the forms); `apply_ops_data(data, ops)` applies ops to such
data (the model the text edits are checked against). Stage indices are the
file's: the implicit Clone stage is not in the file and not in the paths.
"""
from __future__ import annotations

import copy
import json
import re

import yaml

from devops.pipeline import textedit
from devops.pipeline.problems import EditError
from devops.pipeline.yamltree import MAX_DEPTH

_TOKEN = re.compile(r"""\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]|\.?([^.\[\]]+)""")


def parse_path(path: str) -> list[str | int]:
    """`stages[1].steps[0].env["a.b"]` -> ["stages", 1, "steps", 0, "env", "a.b"]."""
    if not isinstance(path, str) or not path:
        raise EditError(f"bad path {path!r}: a path is a non-empty string like stages[0].name")
    parts: list[str | int] = []
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m or (pos == 0 and path.startswith(".")) or (pos > 0 and m.group(3) and path[pos] != "."):
            raise EditError(f"bad path {path!r} at character {pos + 1}")
        index, quoted, key = m.groups()
        if index is not None:
            parts.append(int(index))
        elif quoted is not None:
            parts.append(json.loads(quoted))
        else:
            parts.append(key)
        pos = m.end()
    if len(parts) > MAX_DEPTH:
        raise EditError(f"bad path {path[:80]!r}...: more than {MAX_DEPTH} parts")
    return parts


def _resolve_keys(container, parts: list, i: int) -> tuple[str | int, int]:
    """The key at parts[i] in `container`, joining dotted segments when the document has such a key.

    Returns (key, number of parts consumed).
    """
    part = parts[i]
    if isinstance(container, dict) and isinstance(part, str) and part not in container:
        for j in range(len(parts), i + 1, -1):
            segment = parts[i:j]
            if all(isinstance(p, str) for p in segment) and ".".join(segment) in container:
                return ".".join(segment), j - i
    return part, 1


def _walk(data, parts: list, path: str, *, create: bool = False):
    """(parent container, last key) of `parts` in `data`; creates missing mappings when `create`."""
    node = data
    i = 0
    while True:
        key, used = _resolve_keys(node, parts, i)
        last = i + used >= len(parts)
        if last:
            _check_key(node, key, path, allow_end=True)
            return node, key
        _check_key(node, key, path)
        if isinstance(node, dict) and key not in node:
            if not create:
                raise EditError(f"{path}: no key {key!r}")
            node[key] = [] if isinstance(parts[i + used], int) else {}
        elif isinstance(node, dict) and node[key] is None and create:
            node[key] = [] if isinstance(parts[i + used], int) else {}
        node = node[key]
        i += used


def _check_key(node, key, path: str, *, allow_end: bool = False) -> None:
    if isinstance(node, list):
        if not isinstance(key, int):
            raise EditError(f"{path}: {key!r} is a key, but this is a list (use [index])")
        if key > len(node) or (key == len(node) and not allow_end):
            raise EditError(f"{path}: index {key} is out of range (the list has {len(node)} items)")
    elif isinstance(node, dict):
        if isinstance(key, int):
            raise EditError(f"{path}: [{key}] is an index, but this is a mapping")
    else:
        raise EditError(f"{path}: cannot go into {type(node).__name__} value")


def _op_fields(op, n: int, *names: str) -> list:
    if not isinstance(op, dict):
        raise EditError(f"op {n}: an op is an object like {{\"op\": \"set\", \"path\": ..., \"value\": ...}}")
    missing = [name for name in names if name not in op]
    if missing:
        raise EditError(f"op {n} ({op.get('op')}): missing {', '.join(missing)}")
    return [op[name] for name in names]


def _plain_value(value, where: str, depth: int = 0):
    """Refuse values that are not JSON-able data (the editor sends JSON), or nest too deep."""
    if depth > MAX_DEPTH:
        raise EditError(f"{where}: the value nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise EditError(f"{where}: mapping keys must be strings, got {k!r}")
            _plain_value(v, where, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _plain_value(v, where, depth + 1)
    elif not (value is None or isinstance(value, (str, bool, int, float))):
        raise EditError(f"{where}: {type(value).__name__} is not a YAML value the editor can write")
    return value


def _cow(root, parts: list):
    """A shallow copy of `root` with every container on `parts`' way copied too (copy on write)."""
    root = copy.copy(root)
    node, i = root, 0
    while i < len(parts):
        key, used = _resolve_keys(node, parts, i)
        present = (isinstance(node, dict) and key in node) or (
            isinstance(node, list) and isinstance(key, int) and key < len(node))
        if not present or not isinstance(node[key], (dict, list)):
            break
        node[key] = copy.copy(node[key])
        node, i = node[key], i + used
    return root


def apply_ops_data(data: dict, ops: list[dict], *, share: bool = False) -> dict:
    """Apply `ops` to plain data (a copy): the config the ops describe. Raises EditError.

    `share`: the result shares the parts no op touched with `data` (neither is
    changed in place; cheaper than a deep copy for one op on a big file).
    """
    data = ({} if data is None else data) if share else (copy.deepcopy(data) if data is not None else {})
    if not isinstance(data, dict):
        raise EditError("the document is not a mapping")
    if not isinstance(ops, list):
        raise EditError("ops must be a list")
    for n, op in enumerate(ops):
        _op_fields(op, n, "op")
        kind = op["op"]
        cow = (lambda d, p: _cow(d, parse_path(p))) if share else (lambda d, p: d)
        if kind == "set":
            path, value = _op_fields(op, n, "path", "value")
            data = cow(data, path)
            parent, key = _walk(data, parse_path(path), path, create=True)
            if isinstance(parent, list) and key == len(parent):
                raise EditError(f"op {n} (set): {path}: index {key} is out of range; use insert to add an item")
            parent[key] = copy.deepcopy(_plain_value(value, f"op {n} (set) {path}"))
        elif kind == "delete":
            (path,) = _op_fields(op, n, "path")
            data = cow(data, path)
            parent, key = _walk(data, parse_path(path), path)
            if isinstance(parent, dict) and key not in parent:
                raise EditError(f"op {n} (delete): {path}: no key {key!r}")
            if isinstance(parent, list) and key >= len(parent):
                raise EditError(f"op {n} (delete): {path}: index {key} is out of range")
            del parent[key]
        elif kind == "insert":
            path, value = _op_fields(op, n, "path", "value")
            parts = parse_path(path)
            if not isinstance(parts[-1], int):
                raise EditError(f"op {n} (insert): {path}: insert takes a list index as its last part")
            data = cow(data, path)
            parent, key = _walk(data, parts, path, create=True)
            parent.insert(key, copy.deepcopy(_plain_value(value, f"op {n} (insert) {path}")))
        elif kind == "move":
            src, dst = _op_fields(op, n, "from", "to")
            sparts, dparts = parse_path(src), parse_path(dst)
            if not isinstance(sparts[-1], int) or not isinstance(dparts[-1], int):
                raise EditError(f"op {n} (move): `from` and `to` must both end with a list index")
            if dparts[: len(sparts)] == sparts and len(dparts) > len(sparts):
                raise EditError(f"op {n} (move): cannot move {src} into itself")
            data = cow(data, src)
            sparent, skey = _walk(data, sparts, src)
            if skey >= len(sparent):
                raise EditError(f"op {n} (move): {src}: index {skey} is out of range")
            item = sparent.pop(skey)
            data = cow(data, dst)
            try:
                dparent, dkey = _walk(data, dparts, dst)
            except EditError:
                sparent.insert(skey, item)
                raise
            if not isinstance(dparent, list):
                sparent.insert(skey, item)
                raise EditError(f"op {n} (move): {dst}: not a list")
            dparent.insert(dkey, item)
        else:
            raise EditError(f"op {n}: unknown op {kind!r} (set, delete, insert, move)")
    return data


def read_document(text: str) -> dict:
    """The plain data of `text` that ops work on (YAML 1.1 types: what `apply_ops_data` takes).

    Raises EditError when the text is not a YAML mapping within lint's limits;
    {} for an empty text. For the visual view's forms.
    """
    from devops.pipeline import edit

    body, _ = edit.normalise(text)
    return edit.safe_load(body)


def apply_ops(text: str, ops: list[dict]) -> str:
    """Apply visual operations to the YAML `text`, rewriting only what they change.

    Raises EditError for a bad op or path, or a text that is not a YAML
    mapping within yamltree's limits. When the text engine cannot make the
    change (anchors, aliases, tags), the ruamel round trip makes it instead.
    """
    if not ops:
        return text
    try:
        return apply_ops_lossless(text, ops)
    except textedit.Unsupported:
        from devops.pipeline import edit

        body, _ = edit.normalise(text)
        return edit.round_trip(text, apply_ops_data(edit.safe_load(body), ops))


def apply_ops_lossless(text: str, ops: list[dict]) -> str:
    """apply_ops through the text engine only: raises textedit.Unsupported where it cannot."""
    from devops.pipeline import edit

    if not ops:
        return text
    body, restore = edit.normalise(text)
    data = edit.safe_load(body)
    expected = apply_ops_data(data, ops, share=True)  # validates every op first: EditError before any change
    try:
        current = body
        for op in ops:
            current, data = _apply_one(current, data, op)
    except (KeyError, IndexError, yaml.YAMLError) as e:
        raise textedit.Unsupported(str(e)) from e
    return edit.restore_checked(restore, current, expected)


def _real_parts(data, parts: list) -> tuple[list, int]:
    """`parts` with dotted keys joined as the document has them, and how many of them exist in `data`."""
    out: list = []
    node, i, found = data, 0, 0
    while i < len(parts):
        key, used = _resolve_keys(node, parts, i) if node is not None else (parts[i], 1)
        out.append(key)
        i += used
        if node is not None and (
            (isinstance(node, dict) and key in node) or (isinstance(node, list) and isinstance(key, int) and key < len(node))
        ):
            node = node[key]
            found += 1
        else:
            node = None
    return out, found


def _get(data, parts: list):
    for p in parts:
        data = data[p]
    return data


def _assign_at(ed: textedit.Editor, before, after, parts: list) -> None:
    """Make the node at `parts` (which exists in `before`) read as its value in `after`."""
    holder, i, node = ed.find(parts)
    ed.assign(holder, i, node, _get(before, parts), _get(after, parts))


def _apply_one(text: str, data: dict, op: dict) -> tuple[str, dict]:
    """(new text, new data) after `op`."""
    after = apply_ops_data(data, [op], share=True)
    return _edit_one(text, data, after, op), after


def _edit_one(text: str, data: dict, after: dict, op: dict) -> str:
    if textedit.same(data, after):
        return text  # a set to the same value, a move to where the item is: nothing to write
    style = textedit.detect_style(text)
    kind = op["op"]
    if kind == "move":
        return _move(text, data, after, op, style)
    ed = textedit.Editor(text, style)
    parts, found = _real_parts(data, parse_path(op["path"]))
    if kind == "delete":
        holder, i, _ = ed.find(parts)
        if holder is not None and not holder.flow and len(holder.items) > 1:
            ed.delete(holder, i)
        else:
            _assign_at(ed, data, after, parts[:-1])
    elif kind == "insert" and found >= len(parts) - 1:
        holder, _, seq = ed.find(parts[:-1])
        if seq.kind == "seq" and not seq.flow and seq.items:
            ed.insert_items(seq, parts[-1], [_get(after, parts)])
        else:
            _assign_at(ed, data, after, parts[:-1])
    else:
        _assign_at(ed, data, after, parts[:found] if found < len(parts) else parts)
    return ed.apply()


def _move_in_one_pass(ed: textedit.Editor, holder, i: int, src: list, dst: list, block: str,
                      from_col: int) -> str | None:
    """The move as two splices of one parse (cut here, paste there); None when it needs two."""
    target = list(dst[:-1])
    # `to` names the list after the removal: in the original, a later item of the source list
    # (on the way to the target list, or in it) sits one index further.
    n = len(src) - 1
    if target[:n] == src[:-1] and len(target) > n:
        if target[n] == src[-1]:
            return None  # into the moved item itself
        if isinstance(target[n], int) and target[n] > src[-1]:
            target[n] += 1
    index = dst[-1]
    if target == src[:-1] and index >= i:
        index += 1
    try:
        _, _, seq = ed.find(target)
        if seq.kind != "seq" or seq.flow or not seq.items:
            return None
        separated = ed.separated(seq) if seq is not holder else ed.separated(holder)
        ed.delete(holder, i)
        ed.insert_blocks(seq, index, [textedit.reindent(block, ed.seq_col(seq) - from_col)], separated)
        return ed.apply()
    except (textedit.Unsupported, KeyError, IndexError):
        return None


def _move(text: str, data: dict, after: dict, op: dict, style) -> str:
    src, _ = _real_parts(data, parse_path(op["from"]))
    ed = textedit.Editor(text, style)
    holder, i, _ = ed.find(src)
    if holder.flow or holder.kind != "seq":
        _assign_at(ed, data, after, [])
        return ed.apply()
    block, from_col = ed.cut_item(holder, i)
    separated = ed.separated(holder)
    removed = _cow(data, src)
    _get(removed, src[:-1]).pop(src[-1])
    dst, _ = _real_parts(removed, parse_path(op["to"]))
    if len(holder.items) > 1:
        one_pass = _move_in_one_pass(ed, holder, i, src, dst, block, from_col)
        if one_pass is not None:
            return one_pass
        ed = textedit.Editor(text, style)
        ed.delete(holder, i)
    else:
        _assign_at(ed, data, removed, src[:-1])
    middle = ed.apply()
    ed = textedit.Editor(middle, style)
    _, _, seq = ed.find(dst[:-1])
    if seq.kind == "seq" and not seq.flow and seq.items:
        same_list = src[:-1] == dst[:-1]
        ed.insert_blocks(seq, dst[-1], [textedit.reindent(block, ed.seq_col(seq) - from_col)], separated and same_list)
    else:
        _assign_at(ed, removed, after, dst[:-1])
    return ed.apply()


STARTER = """\
# Slipway pipeline (.devops.yml). Stages run one after another; the steps of
# a stage run in parallel. The repository is cloned first (the implicit Clone
# stage), so every step starts in the checked-out workspace.
stages:
- name: Build
  steps:
  # Run a script in a container image.
  - runScriptConfig:
      image: alpine:3.20
      shellScript: |-
        echo "building ${CICD_GIT_BRANCH} at ${CICD_GIT_COMMIT}"
# Stop a run that takes longer than this many minutes.
timeout: 60
"""


def starter_pipeline() -> str:
    """A commented starter `.devops.yml` for a branch that has no pipeline file."""
    return STARTER
