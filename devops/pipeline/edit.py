"""Round-trip edits of a pipeline file (the visual editor and the API edit path).

`apply_edit(original_text, new_data)` changes the YAML document so that it
reads as `new_data`, touching only what differs: unchanged keys keep their
comments, order, quoting and anchors; changed scalars are replaced in place;
new keys are inserted after the key that precedes them in `new_data`; list
items are aligned with a diff, so inserting a stage leaves the comments of
the others where they were. The file's indentation, line endings (CRLF, or
each line's own in a mixed file) and BOM are kept. The original text is first read through yamltree's limits, so
a hostile file is refused before ruamel.yaml sees it.
"""
from __future__ import annotations

import copy
import difflib
import io
import itertools
import json

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from devops.pipeline import textedit
from devops.pipeline.problems import EditError
from devops.pipeline.yamltree import compose, decode


def normalise(original_text: str | bytes):
    """(LF text ending in a newline, restore function) for `original_text`, after yamltree's limits.

    `restore` puts back the BOM, CRLF line endings and a missing final newline.
    """
    _, problems = compose(original_text)
    if problems:
        p = problems[0]
        raise EditError(f"line {p.line}: {p.message}")
    text = decode(original_text)
    bom = original_text.startswith("\ufeff") if isinstance(original_text, str) else False
    as_read = text
    text = text.replace("\r\n", "\n")
    final_newline = text.endswith("\n") or not text
    if not final_newline:
        text += "\n"

    def restore(result: str, *, keep_final_newline: bool = False) -> str:
        if not final_newline and result.endswith("\n") and not keep_final_newline:
            result = result[:-1]
        # each line keeps its own ending (a mixed LF/CRLF file stays mixed)
        return ("\ufeff" if bom else "") + textedit.with_endings(as_read, result)

    return text, restore


def safe_load(text: str):
    """The plain data of `text` as YAML 1.1 reads it ({} for an empty document)."""
    data = yaml.load(text, Loader=yaml.CSafeLoader) if text.strip() else None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise EditError("the original document is not a mapping")
    return data


def reads_as(text: str, data) -> bool:
    """Whether `text` parses to exactly `data` (1 and True, 1 and 1.0 told apart)."""
    from devops.pipeline.textedit import same

    try:
        return same(yaml.load(text, Loader=yaml.CSafeLoader) or {}, data)
    except yaml.YAMLError:
        return False


def apply_edit(original_text: str, new_data: dict) -> str:
    """Return `original_text` changed to equal `new_data`, keeping what did not change.

    The text engine (textedit) splices only the changed values, entries and
    items into the text; when it cannot (anchors, tags, a whole-document
    change) or its result would not read as `new_data`, the ruamel round trip
    (`round_trip`) does the edit.
    """
    from devops.pipeline import textedit

    try:
        return apply_edit_lossless(original_text, new_data)
    except textedit.Unsupported:
        return round_trip(original_text, new_data)


def apply_edit_lossless(original_text: str, new_data: dict) -> str:
    """apply_edit through the text engine only: raises textedit.Unsupported where it cannot."""
    from devops.pipeline import textedit

    if not isinstance(new_data, dict):
        raise EditError("new_data must be a mapping")
    text, restore = normalise(original_text)
    old = safe_load(text)
    if textedit.same(old, new_data):
        return original_text if isinstance(original_text, str) else restore(text)
    try:
        editor = textedit.Editor(text, textedit.detect_style(text))
        root = editor.doc.root
        if root is None or root.kind != "map" or not root.items:
            raise textedit.Unsupported("an empty document")
        editor.assign(None, None, root, old, new_data)
        result = editor.apply()
    except (KeyError, IndexError, yaml.YAMLError) as e:
        raise textedit.Unsupported(str(e)) from e
    return restore_checked(restore, result, new_data)


def restore_checked(restore, result: str, data) -> str:
    """`restore(result)`, checked to read as `data`; keeps the final newline when dropping it
    would change the last value (a `|` block scalar at the end of the file)."""
    from devops.pipeline import textedit

    for keep in (False, True):
        out = restore(result, keep_final_newline=keep)
        if reads_as(out.lstrip("\ufeff"), data):
            return out
    raise textedit.Unsupported("the result would not read as the intended data")


def round_trip(original_text: str, new_data: dict) -> str:
    """apply_edit through ruamel.yaml's round trip (comments kept, some layout re-rendered)."""
    if not isinstance(new_data, dict):
        raise EditError("new_data must be a mapping")
    text, restore = normalise(original_text)
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 4096  # never re-fold long lines the user wrote
    mapping, offset = _indents(text)
    rt.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    doc = _load(rt, text)
    before = _render(rt, copy.deepcopy(doc))
    _update_map(doc, new_data)
    after = _render(rt, doc)
    # ruamel re-renders some things the user wrote (flow spacing, folded
    # scalars, trailing blanks, mixed indentation). Apply only the lines that
    # changed between its two renderings to the original text; if that does
    # not read back as new_data, use ruamel's whole rendering.
    result = _patch(text, before, after)
    if result is None or not _same_data(result, after):
        result = after
        if text.lstrip().startswith("---") and not result.startswith("---"):
            result = "---\n" + result
    return restore(result)  # a missing final newline stays missing, BOM and line endings as read


def _load(rt: YAML, text: str) -> CommentedMap:
    doc = rt.load(text) if text.strip() else None
    if doc is None:
        return CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise EditError("the original document is not a mapping")
    return doc


def _render(rt: YAML, doc: CommentedMap) -> str:
    out = io.StringIO()
    rt.dump(doc, out)
    return out.getvalue()


def _same_data(patched: str, rendered: str) -> bool:
    try:
        return yaml.load(patched, Loader=yaml.CSafeLoader) == yaml.load(rendered, Loader=yaml.CSafeLoader)
    except Exception:
        return False


def _patch(original: str, before: str, after: str) -> str | None:
    """Apply the line changes before -> after onto `original`, where it matches `before`.

    None when a changed line of `before` has no counterpart in `original`.
    """
    o, b, a = (t.splitlines(keepends=True) for t in (original, before, after))
    b_to_o: dict[int, int] = {}
    for tag, i1, i2, j1, _ in difflib.SequenceMatcher(None, b, o, autojunk=False).get_opcodes():
        if tag == "equal":
            b_to_o.update({i1 + k: j1 + k for k in range(i2 - i1)})
    out: list[str] = []
    pos = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, b, a, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if i2 > i1:
            idx = [b_to_o.get(k) for k in range(i1, i2)]
            if None in idx or idx != list(range(idx[0], idx[0] + len(idx))):
                return None
            start, end = idx[0], idx[-1] + 1
        elif i1 > 0 and (i1 - 1) in b_to_o:
            start = end = b_to_o[i1 - 1] + 1
        elif i1 < len(b) and i1 in b_to_o:
            start = end = b_to_o[i1]
        elif i1 == 0 and not b:
            start = end = len(o)
        else:
            return None
        if start < pos:
            return None
        out.extend(o[pos:start])
        out.extend(a[j1:j2])
        pos = end
    out.extend(o[pos:])
    return "".join(out)


def _indents(text: str) -> tuple[int, int]:
    """(mapping indent, offset of `-` under its key) of the first block nesting in the file."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    mapping = offset = None
    for line, nxt in itertools.pairwise(lines):
        body = line.lstrip(" -")
        if not body.rstrip().endswith(":"):
            continue
        step = (len(nxt) - len(nxt.lstrip())) - (len(line) - len(body))
        if nxt.lstrip().startswith("- "):
            offset = step if offset is None and step >= 0 else offset
        elif mapping is None and step > 0:
            mapping = step
        if mapping is not None and offset is not None:
            break
    return mapping or 2, offset or 0


def _last_entry(container, key):
    """The innermost last entry under `container[key]`: where ruamel keeps comments that follow it."""
    while True:
        value = container[key]
        if isinstance(value, CommentedMap) and len(value):
            container, key = value, list(value)[-1]
        elif isinstance(value, CommentedSeq) and len(value):
            container, key = value, len(value) - 1
        else:
            return container, key


def _keep_following_comments(container, key, previous) -> None:
    """Before deleting `container[key]`: move the comment lines that follow it to `previous`.

    ruamel.yaml attaches the full-line comments after an entry (often the
    comment that introduces the *next* stage) to that entry; deleting it would
    delete them. The end-of-line comment of the deleted line goes with it.
    """
    slot = 2 if isinstance(container, CommentedMap) else 0
    entry = container.ca.items.get(key)
    token = entry[slot] if entry and len(entry) > slot else None
    if token is None or previous is None:
        return
    _, _, following = token.value.partition("\n")
    if not following.strip():
        return
    target, tkey = _last_entry(container, previous)
    tslot = 2 if isinstance(target, CommentedMap) else 0
    tentry = target.ca.items.setdefault(tkey, [None, None, None, None])
    if tentry[tslot] is None:
        tentry[tslot] = CommentToken("\n" + following, CommentMark(0), None)
    else:
        tentry[tslot].value = tentry[tslot].value + following


def _plain(value):
    """ruamel objects -> plain JSON-able data, for comparing."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _same_scalar(old, new) -> bool:
    if isinstance(old, (dict, list)) or isinstance(new, (dict, list)):
        return False
    if isinstance(old, bool) != isinstance(new, bool):
        return False
    return type(_plain(old)) is type(_plain(new)) and _plain(old) == new


_BREAKS = ("\x85", "\u2028", "\u2029", "\r")


def _fresh(value):
    """A new value for ruamel: text with NEL/LS/PS/CR double-quoted (other styles fold them)."""
    if isinstance(value, str) and any(c in value for c in _BREAKS):
        return DoubleQuotedScalarString(value)
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    return value


def _merge_value(old, new):
    """The value to store: `old` updated in place when shapes match, else `new`."""
    if isinstance(old, CommentedMap) and isinstance(new, dict) and _unshared(old, new):
        _update_map(old, new)
        return old
    if isinstance(old, CommentedSeq) and isinstance(new, list) and _unshared(old, new):
        _update_seq(old, new)
        return old
    if _same_scalar(old, new):
        return old
    return _fresh(new)


def _unshared(old, new) -> bool:
    # A node with an anchor may be reached through aliases too: changing it in
    # place would change every alias. Replace it instead when it differs.
    anchor = getattr(old, "anchor", None)
    return anchor is None or anchor.value is None or _plain(old) == new


def _update_map(old: CommentedMap, new: dict) -> None:
    keys = list(old)
    for i, key in enumerate(keys):
        if key not in new:
            kept = [k for k in keys[:i] if k in new or k in old]
            _keep_following_comments(old, key, kept[-1] if kept else None)
            del old[key]
    previous = None
    for key, value in new.items():
        if key in old:
            merged = _merge_value(old[key], value)
            if merged is not old[key]:
                old[key] = merged
        else:
            position = 0 if previous is None else list(old).index(previous) + 1
            old.insert(position, key, _fresh(value))
        previous = key


def _update_seq(old: CommentedSeq, new: list) -> None:
    a = [json.dumps(_plain(v), sort_keys=True) for v in old]
    b = [json.dumps(v, sort_keys=True, default=str) for v in new]
    ops = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    # Apply from the end so earlier indices stay valid.
    for tag, i1, i2, j1, j2 in reversed(ops):
        if tag == "equal":
            continue
        pairs = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(pairs):  # changed items: update in place, keeping their comments
            merged = _merge_value(old[i1 + k], new[j1 + k])
            if merged is not old[i1 + k]:
                old[i1 + k] = merged
        for k in range(i2 - 1, i1 + pairs - 1, -1):  # removed items
            _keep_following_comments(old, k, k - 1 if k > 0 else None)
            del old[k]
        for k in range(j1 + pairs, j2):  # added items
            old.insert(i1 + (k - j1), _fresh(new[k]))
