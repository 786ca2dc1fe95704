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
that has no pipeline file.
"""
from __future__ import annotations

import copy
import json
import re

from devops.pipeline.problems import EditError

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


def _plain_value(value, where: str):
    """Refuse values that are not JSON-able data (the editor sends JSON)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise EditError(f"{where}: mapping keys must be strings, got {k!r}")
            _plain_value(v, where)
    elif isinstance(value, list):
        for v in value:
            _plain_value(v, where)
    elif not (value is None or isinstance(value, (str, bool, int, float))):
        raise EditError(f"{where}: {type(value).__name__} is not a YAML value the editor can write")
    return value


def apply_ops_data(data: dict, ops: list[dict]) -> dict:
    """Apply `ops` to plain data (a copy): the config the ops describe. Raises EditError."""
    data = copy.deepcopy(data) if data is not None else {}
    if not isinstance(data, dict):
        raise EditError("the document is not a mapping")
    if not isinstance(ops, list):
        raise EditError("ops must be a list")
    for n, op in enumerate(ops):
        _op_fields(op, n, "op")
        kind = op["op"]
        if kind == "set":
            path, value = _op_fields(op, n, "path", "value")
            parent, key = _walk(data, parse_path(path), path, create=True)
            if isinstance(parent, list) and key == len(parent):
                raise EditError(f"op {n} (set): {path}: index {key} is out of range; use insert to add an item")
            parent[key] = copy.deepcopy(_plain_value(value, f"op {n} (set) {path}"))
        elif kind == "delete":
            (path,) = _op_fields(op, n, "path")
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
            parent, key = _walk(data, parts, path, create=True)
            parent.insert(key, copy.deepcopy(_plain_value(value, f"op {n} (insert) {path}")))
        elif kind == "move":
            src, dst = _op_fields(op, n, "from", "to")
            sparts, dparts = parse_path(src), parse_path(dst)
            if not isinstance(sparts[-1], int) or not isinstance(dparts[-1], int):
                raise EditError(f"op {n} (move): `from` and `to` must both end with a list index")
            if dparts[: len(sparts)] == sparts and len(dparts) > len(sparts):
                raise EditError(f"op {n} (move): cannot move {src} into itself")
            sparent, skey = _walk(data, sparts, src)
            if skey >= len(sparent):
                raise EditError(f"op {n} (move): {src}: index {skey} is out of range")
            item = sparent.pop(skey)
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


def apply_ops(text: str, ops: list[dict]) -> str:
    """Apply visual operations to the YAML `text`, rewriting only what they change."""
    from ruamel.yaml import YAML

    from devops.pipeline.edit import apply_edit
    from devops.pipeline.yamltree import compose, decode

    if not ops:
        return text
    _, problems = compose(text)
    if problems:
        p = problems[0]
        raise EditError(f"line {p.line}: {p.message}")
    data = YAML(typ="safe", pure=True).load(decode(text)) or {}
    return apply_edit(text, apply_ops_data(data, ops))


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
