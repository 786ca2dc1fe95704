"""Lossless editing over the real Rancher files (issue 11 point 5).

Properties, over every file of ../shared/fixtures/rancher-pipelines that is
YAML at all:

- open -> save unchanged is byte-identical (apply_edit with the same data,
  apply_ops with no op, a set of a value to what it already is);
- one scalar set whose value fits one line changes exactly that one line;
- a random sequence of visual operations (set an image or a script, add,
  delete, rename, move a stage; add, delete, move a step) reads back as
  exactly the data the ops describe (the plain-data model `apply_ops_data`),
  parses (devops.pipeline.load) to the config that data describes, removes no
  comment unless it deletes the item the comment belongs to, and a move
  carries the item's comments with it.
"""
from __future__ import annotations

import collections
import difflib
import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devops.pipeline import apply_edit, apply_ops, load
from devops.pipeline.edit import apply_edit_lossless, round_trip
from devops.pipeline.operations import apply_ops_data, apply_ops_lossless
from tests.conftest import FIXTURES

DIR = FIXTURES / "rancher-pipelines"


def _read(path) -> str:
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def _plain(text: str):
    return yaml.load(text.lstrip("\ufeff"), Loader=yaml.CSafeLoader)


def _yaml_files() -> dict[str, str]:
    out = {}
    for path in sorted(DIR.glob("*.yml")) if DIR.is_dir() else []:
        text = _read(path)
        try:
            data = _plain(text)
        except yaml.YAMLError:
            continue  # not YAML (tabs): the editor refuses it with the lint error
        if isinstance(data, dict):
            out[path.name] = text
    return out


FILES = _yaml_files()


def _editable(data) -> bool:
    stages = data.get("stages")
    return isinstance(stages, list) and bool(stages) and all(
        isinstance(s, dict) and isinstance(s.get("steps"), list) and s["steps"] and all(isinstance(x, dict) for x in s["steps"])
        for s in stages
    )


EDITABLE = sorted(name for name, text in FILES.items() if _editable(_plain(text)))


def test_the_fixtures_are_there():
    assert len(FILES) >= 50 and len(EDITABLE) >= 45


@pytest.mark.parametrize("name", sorted(FILES))
def test_save_unchanged_is_byte_identical(name):
    text = FILES[name]
    assert apply_ops(text, []) == text
    assert apply_edit(text, _plain(text)) == text
    data = _plain(text)
    if _editable(data):
        # A set to the value it already has writes nothing either.
        assert apply_ops(text, [{"op": "set", "path": "stages[0].name", "value": data["stages"][0].get("name")}]) == text
        assert apply_ops(text, [{"op": "set", "path": "stages", "value": data["stages"]}]) == text


def _changed_lines(a: str, b: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.unified_diff(a.splitlines(True), b.splitlines(True), n=0):
        if line.startswith("---") or line.startswith("+++") or line.startswith("@@"):
            continue
        (removed if line.startswith("-") else added).append(line[1:])
    return removed, added


ONE_LINE = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=40)


def _single_line_fields(data) -> list[str]:
    """Paths of the single-line text fields of the file's steps: the ones a form edits."""
    out = []
    for i, stage in enumerate(data["stages"]):
        if isinstance(stage.get("name"), str):
            out.append(f"stages[{i}].name")
        for j, step in enumerate(stage["steps"]):
            for kind, field in (("runScriptConfig", "image"), ("publishImageConfig", "tag"), ("applyYamlConfig", "path")):
                block = step.get(kind)
                if isinstance(block, dict) and isinstance(block.get(field), str) and "\n" not in block[field]:
                    out.append(f"stages[{i}].steps[{j}].{kind}.{field}")
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_scalar_set_changes_exactly_one_line(data):
    name = data.draw(st.sampled_from(EDITABLE), label="file")
    text = FILES[name]
    plain = _plain(text)
    fields = _single_line_fields(plain)
    if not fields:
        return
    path = data.draw(st.sampled_from(fields), label="path")
    value = data.draw(ONE_LINE, label="value")
    ops = [{"op": "set", "path": path, "value": value}]
    out = apply_ops_lossless(text, ops)
    assert _plain(out) == apply_ops_data(plain, ops)
    assert apply_edit_lossless(text, apply_ops_data(plain, ops)) == out  # the form path: same text
    removed, added = _changed_lines(text, out)
    if removed or added:
        assert len(removed) == 1 and len(added) == 1, (removed, added)
        # The line keeps its indentation, key and end-of-line comment.
        old, new = removed[0], added[0]
        assert new[: len(old) - len(old.lstrip())] == old[: len(old) - len(old.lstrip())]
        if " #" in old and "#" not in value:
            assert old[old.index(" #"):].strip() in new


@pytest.mark.parametrize("number", ["009", "018", "020", "025"])
def test_apply_edit_on_a_commented_file_changes_the_one_line(number, rancher_file):
    """The issue's case: flow lists (`[ push, pull_request ]`), the blank line after the header
    comments and the indented steps lists stay as written when one image changes."""
    text = rancher_file(number).decode("utf-8")
    data = _plain(text)
    path = next(p for p in _single_line_fields(data) if p.endswith(".image") or p.endswith(".tag"))
    new = apply_ops_data(data, [{"op": "set", "path": path, "value": "example.org/new:2"}])
    out = apply_edit(text, new)
    removed, added = _changed_lines(text, out)
    assert len(removed) == len(added) == 1 and "example.org/new:2" in added[0]
    assert _plain(out) == new


# --- random sequences of visual operations ------------------------------------------------

SCRIPT = st.lists(st.sampled_from(["make", "go test ./...", "echo done", "npm ci", ""]), min_size=1, max_size=4).map("\n".join)
IMAGE = st.sampled_from(["golang:1.22", "node:20-alpine", "busybox", "maven:3-jdk-11", "registry.example.com:5000/app:1"])
NAME = st.sampled_from(["Build", "Test", "Publish", "Deploy ${CICD_GIT_BRANCH}", "テスト", "lint: all"])


def _step(image: str, script: str) -> dict:
    return {"runScriptConfig": {"image": image, "shellScript": script}}


@st.composite
def _op(draw, data: dict) -> dict:
    stages = data["stages"]
    n = len(stages)
    kinds = ["image", "script", "add_stage", "rename", "add_step", "move_step", "move_stage",
             "env", "when", "privileged", "retype", "unset"]
    if n > 1:
        kinds.append("delete_stage")
    if any(len(s["steps"]) > 1 for s in stages):
        kinds.append("delete_step")
    kind = draw(st.sampled_from(kinds))
    i = draw(st.integers(0, n - 1))
    steps = stages[i]["steps"]
    j = draw(st.integers(0, len(steps) - 1))
    if kind == "image":
        return {"op": "set", "path": f"stages[{i}].steps[{j}].runScriptConfig.image", "value": draw(IMAGE)}
    if kind == "script":
        return {"op": "set", "path": f"stages[{i}].steps[{j}].runScriptConfig.shellScript", "value": draw(SCRIPT)}
    if kind == "add_stage":
        return {"op": "insert", "path": f"stages[{draw(st.integers(0, n))}]",
                "value": {"name": draw(NAME), "steps": [_step(draw(IMAGE), draw(SCRIPT))]}}
    if kind == "rename":
        return {"op": "set", "path": f"stages[{i}].name", "value": draw(NAME)}
    if kind == "add_step":
        return {"op": "insert", "path": f"stages[{i}].steps[{draw(st.integers(0, len(steps)))}]",
                "value": _step(draw(IMAGE), draw(SCRIPT))}
    if kind == "env":
        env = draw(st.dictionaries(st.sampled_from(["GOFLAGS", "CI", "A.B", "LEVEL"]), st.sampled_from(["1", "yes", "x y", ""]),
                                   min_size=1, max_size=3))
        return {"op": "set", "path": f"stages[{i}].steps[{j}].env", "value": env}
    if kind == "when":
        rule = {"branch": {"include": draw(st.lists(st.sampled_from(["master", "release/*", "dev"]), min_size=1,
                                                      max_size=2, unique=True))}}
        if draw(st.booleans()):
            rule["event"] = {"exclude": ["tag"]}
        where = f"stages[{i}]" if draw(st.booleans()) else f"stages[{i}].steps[{j}]"
        return {"op": "set", "path": f"{where}.when", "value": rule}
    if kind == "privileged":
        return {"op": "set", "path": f"stages[{i}].steps[{j}].privileged", "value": draw(st.booleans())}
    if kind == "retype":
        return {"op": "set", "path": f"stages[{i}].steps[{j}]",
                "value": {"publishImageConfig": {"dockerfilePath": "./Dockerfile", "buildContext": ".", "tag": draw(IMAGE)}}}
    if kind == "unset":
        present = [k for k in ("env", "when", "privileged", "envFrom") if k in steps[j]]
        if present:
            return {"op": "delete", "path": f"stages[{i}].steps[{j}].{draw(st.sampled_from(present))}"}
        return {"op": "set", "path": f"stages[{i}].steps[{j}].cpuLimit", "value": "500m"}
    if kind == "delete_stage":
        return {"op": "delete", "path": f"stages[{i}]"}
    if kind == "delete_step":
        i = draw(st.sampled_from([k for k, s in enumerate(stages) if len(s["steps"]) > 1]))
        return {"op": "delete", "path": f"stages[{i}].steps[{draw(st.integers(0, len(stages[i]['steps']) - 1))}]"}
    if kind == "move_stage":
        return {"op": "move", "from": f"stages[{i}]", "to": f"stages[{draw(st.integers(0, n - 1))}]"}
    # move_step: to any stage; a stage keeps at least one step
    if len(steps) == 1:
        targets = [i]
    else:
        targets = list(range(n))
    k = draw(st.sampled_from(targets))
    room = len(stages[k]["steps"]) - (1 if k == i else 0)
    return {"op": "move", "from": f"stages[{i}].steps[{j}]", "to": f"stages[{k}].steps[{draw(st.integers(0, room))}]"}


_COMMENT = re.compile(r"(?:^|\s)(#.*)$")


def _comments(text: str, within: range | None = None) -> collections.Counter:
    """The comments of the file (of lines `within`): full-line and end-of-line, outside block scalars."""
    lines = text.replace("\r\n", "\n").lstrip("\ufeff").split("\n")
    inside = set()
    for ev in yaml.parse(text.lstrip("\ufeff"), Loader=yaml.CSafeLoader):
        if isinstance(ev, yaml.ScalarEvent) and (ev.style in ("|", ">") or ev.start_mark.line != ev.end_mark.line):
            end = ev.end_mark.line + (1 if ev.end_mark.column else 0)  # a block scalar ends at the next line's start
            inside.update(range(ev.start_mark.line + 1, end))
    out = collections.Counter()
    for n, line in enumerate(lines):
        if n in inside or (within is not None and n not in within):
            continue
        m = _COMMENT.search(line)
        if m and not re.search(r"""['"].*#.*['"]""", line):
            out[m.group(1).rstrip()] += 1
    return out


def _item_comments(text: str, path: str) -> collections.Counter:
    """The comments a delete of `path` (a stage or step) may take with it: those inside its lines
    and the comment lines directly above it."""
    body = text.replace("\r\n", "\n").lstrip("\ufeff")
    node = yaml.compose(body, Loader=yaml.CSafeLoader)
    first = 0
    for part in re.findall(r"\w+|\[\d+\]", path):
        if part.startswith("["):
            node = node.value[int(part[1:-1])]
            first = node.start_mark.line
        else:
            key, node = next((k, v) for k, v in node.value if k.value == part)
            first = key.start_mark.line  # a key's comments sit above the key
    lines = body.split("\n")
    last = node.end_mark.line
    while first > 0 and lines[first - 1].lstrip().startswith("#"):
        first -= 1
    return _comments(body, range(first, last + 1))


def _exists(text: str, path: str) -> bool:
    node = _plain(text)
    for part in re.findall(r"\w+|\[\d+\]", path):
        key = int(part[1:-1]) if part.startswith("[") else part
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return False
    return True


def _config(text: str):
    return load(text).config


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_random_visual_edits_are_lossless(data):
    name = data.draw(st.sampled_from(EDITABLE), label="file")
    original = FILES[name]
    text, plain = original, _plain(original)
    for _ in range(data.draw(st.integers(1, 5), label="count")):
        op = data.draw(_op(plain), label="op")
        out = apply_ops_lossless(text, [op])  # the text engine itself, never the round trip
        want = apply_ops_data(plain, [op])
        # Reads back as exactly the data the op describes.
        assert _plain(out) == want, op
        # No comment is lost unless it belongs to the deleted item.
        before, after = _comments(text), _comments(out)
        lost = before - after
        if op["op"] == "delete" or (op["op"] == "set" and _exists(text, op["path"])):
            # A delete takes the item's comments; a set may drop those inside the value it replaces.
            lost -= _item_comments(text, op["path"])
        assert not lost, (op, lost)
        if op["op"] == "move":
            assert after == before, op
        # The same change as new data through apply_edit (the form path) reads the same.
        assert _plain(apply_edit_lossless(text, want)) == want
        text, plain = out, want
    # The whole sequence at once gives the same data, and the file parses to the
    # config that data describes (literal scalars compared as Slipway reads them).
    assert _plain(text) == plain
    if _config(round_trip(original, _plain(original))) == _config(original):
        assert _config(text) == _config(round_trip(original, plain))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_a_batch_of_ops_equals_the_ops_one_by_one(data):
    name = data.draw(st.sampled_from(EDITABLE), label="file")
    plain = _plain(FILES[name])
    ops = []
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(_op(plain))
        ops.append(op)
        plain = apply_ops_data(plain, [op])
    assert _plain(apply_ops_lossless(FILES[name], ops)) == plain


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, width=32) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
PATHS = st.lists(st.one_of(st.sampled_from(["stages", "steps", "name", "env", "when", "x.y", "timeout"]),
                           st.integers(0, 3)), min_size=1, max_size=5).map(
    lambda parts: "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(parts)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_any_ops_either_edit_exactly_or_raise_edit_error(data):
    """Arbitrary ops and values (valid or not): an EditError, or a text that reads as the ops' data."""
    from devops.pipeline import EditError

    name = data.draw(st.sampled_from(sorted(FILES)), label="file")
    ops = data.draw(st.lists(st.one_of(
        st.fixed_dictionaries({"op": st.just("set"), "path": PATHS, "value": JSON}),
        st.fixed_dictionaries({"op": st.just("delete"), "path": PATHS}),
        st.fixed_dictionaries({"op": st.just("insert"), "path": PATHS, "value": JSON}),
        st.fixed_dictionaries({"op": st.just("move"), "from": PATHS, "to": PATHS}),
    ), min_size=1, max_size=3), label="ops")
    text = FILES[name]
    try:
        out = apply_ops(text, ops)
    except EditError:
        return
    assert _plain(out) == apply_ops_data(_plain(text), ops) or (_plain(out) is None and not apply_ops_data(_plain(text), ops))
