"""Typed reading of one YAML node at a time, collecting problems as it goes.

`Checker` turns nodes of a `yamltree` into plain Python values the way
yaml.v2 decoded them into Rancher's Go structs: text fields take the literal
text of any scalar (`10.20` stays "10.20"; `!!binary` is base64-decoded),
numbers are read as Go's strconv does (`0x1F`, `017` octal, `1.5` truncated),
booleans are YAML 1.1's (`yes`/`on`). Slipway is kinder than yaml.v2 in one
way: a quoted number or boolean (`timeout: "45"`, `privileged: "yes"`) is
accepted, with a warning that Rancher refuses such a file.
Every method returns a best-effort value even after reporting an error, so one
pass collects every problem of the file.
"""
from __future__ import annotations

import base64
import binascii
import posixpath
import re
from collections.abc import Iterable

from devops.pipeline.config import EVENTS, glob_problem
from devops.pipeline.problems import ERROR, WARNING, Problem
from devops.pipeline.yamltree import TAG_PREFIX, Node, dash_without_space
from devops.quantity import QuantityError, parse_bytes, parse_cpu

# yaml.v2 (YAML 1.1) booleans
TRUE = frozenset(["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"])
FALSE = frozenset(["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"])
TRUE_OR_FALSE = {**dict.fromkeys(TRUE, True), **dict.fromkeys(FALSE, False)}
# Go strconv.ParseInt(s, 0, 64) after yaml.v2 drops every `_`; then yaml.v2's float syntax
_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)\Z")
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
GO_MAX_INT = 2**63 - 1
RANCHER_REFUSES = "Rancher's parser (yaml.v2) refuses the file"
_WINDOWS_ABS = re.compile(r"[A-Za-z]:[\\/]")


def go_number(text: str) -> int | float | None:
    """A plain scalar as yaml.v2 resolved it into a number (int, or float), else None."""
    plain = text.replace("_", "")
    m = _GO_INT.match(plain)
    if m:
        sign, digits = m.groups()
        if digits[:2] in ("0x", "0X", "0o", "0O", "0b", "0B"):
            value = int(digits[2:], {"x": 16, "o": 8, "b": 2}[digits[1].lower()])
        elif digits.startswith("0") and len(digits) > 1:
            value = int(digits[1:], 8)
        else:
            value = int(digits)
        return -value if sign == "-" else value
    if _GO_FLOAT.match(plain):
        return float(plain)
    return None


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def workspace_path_problem(value: str, *, allow_absolute: bool = False) -> str | None:
    """Why a path from the file may not be used, or None.

    Paths are relative to the workspace and may not climb out of it with
    `..`. Absolute paths are refused unless `allow_absolute` (cache paths,
    which live inside the step's container or sandbox).
    """
    if value.startswith(("/", "\\")) or _WINDOWS_ABS.match(value):
        if allow_absolute:
            return None
        return f"{value!r} is an absolute path; use a path relative to the workspace"
    depth = 0
    for part in value.replace("\\", "/").split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return f"{value!r} leaves the workspace (`..`); use a path inside the repository"
        elif part not in ("", "."):
            depth += 1
    return None


def _whole_tree_problem(value: str) -> str | None:
    """A cache path that names the whole workspace or `/` (the engine cannot cache either)."""
    norm = posixpath.normpath(value.replace("\\", "/"))
    if norm == ".":
        return f"{value!r} is the whole workspace; name a directory inside it (e.g. node_modules)"
    if norm.strip("/") == "":
        return f"{value!r} is the root directory; name a directory (e.g. /root/.cache/pip)"
    return None


class Checker:
    """Collects problems; helpers convert nodes and report what is wrong."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.notifiers: set[str] | None = None  # the project's notifier names, when known (rules.check)

    # -- reporting -------------------------------------------------------
    def error(self, node: Node, path: str, message: str) -> None:
        self.problems.append(Problem(path, node.line, node.column, ERROR, message))

    def warn(self, node: Node, path: str, message: str) -> None:
        self.problems.append(Problem(path, node.line, node.column, WARNING, message))

    def result(self) -> tuple[Problem, ...]:
        """Problems in file order, each reported once (aliases can visit a node twice)."""
        seen: dict[tuple, Problem] = {}
        for p in self.problems:
            seen.setdefault((p.path, p.line, p.column, p.severity, p.message), p)
        return tuple(sorted(seen.values(), key=lambda p: (p.line, p.column, p.severity != ERROR)))

    # -- structure -------------------------------------------------------
    def mapping(self, node: Node, path: str, what: str) -> dict[str, tuple[Node, Node]] | None:
        """The (key, value) pairs of a mapping by key text; {} for null; None (and an error) otherwise."""
        if node.is_null:
            return {}
        if node.kind != "map":
            self.error(node, path, f"{what} must be a mapping (`key: value` lines), not {node.describe()}")
            return None
        for later, earlier in node.duplicates:
            self.warn(later, join(path, later.value),
                      f"duplicate key `{later.value}` (first at line {earlier.line}): this later value replaces "
                      "the earlier one, as in Rancher")
        for merge, written in node.overridden:
            self.warn(written, join(path, written.value),
                      f"the merge key `<<` at line {merge.line} comes after `{written.value}` and replaces it "
                      "(yaml.v2 applies keys in file order, as Rancher did); put the key after `<<` to keep it")
        return {k.value: (k, v) for k, v in node.items}

    def sequence(self, node: Node, path: str, what: str) -> list[Node] | None:
        if node.is_null:
            return []
        if node.kind != "seq":
            hint = ""
            if node.kind == "map" and any(k.value.startswith("-") for k, _ in node.items):
                hint = "; a list item needs a space after `-` (`- name: x`, not `-name: x`)"
            self.error(node, path, f"{what} must be a list (`- item` lines), not {node.describe()}{hint}")
            return None
        return list(node.items)

    def unknown_keys(
        self,
        items: dict[str, tuple[Node, Node]],
        path: str,
        known: Iterable[str],
        where: str,
        hints: dict[str, str] | None = None,
    ) -> None:
        """Warn about keys Rancher ignored; `hints` says where a misplaced key belongs."""
        known = set(known)
        for name, (key, _) in items.items():
            if name in known:
                continue
            hint = (hints or {}).get(name)
            if hint is None and dash_without_space(f"{name}:"):
                hint = (f"it starts with `-` and no space: a list item is `- {name[1:]}:`, "
                        f"a key is `{name[1:]}:`")
            why = f"; {hint}" if hint else ""
            self.warn(key, join(path, name), f"unknown key `{name}` in {where} is ignored{why}")

    # -- scalars ---------------------------------------------------------
    def text(self, node: Node, path: str, what: str) -> str:
        """Any scalar as its literal text (yaml.v2 into a Go string); null is ""."""
        if node.kind != "scalar":
            self.error(node, path, f"{what} must be text, not {node.describe()}")
            return ""
        if node.is_null:
            return ""
        if node.tag == TAG_PREFIX + "binary":
            # yaml.v2 decodes !!binary (Go's StdEncoding, which skips line breaks) into the string
            try:
                data = base64.b64decode(node.value.replace("\r", "").replace("\n", ""), validate=True)
            except (binascii.Error, ValueError):
                self.error(node, path, f"{what}: the `!!binary` value is not valid base64; {RANCHER_REFUSES}")
                return node.value  # one error for it, not a second "missing" one
            return data.decode("utf-8", errors="replace")
        return node.value

    def _quoted(self, node: Node) -> bool:
        """Text for yaml.v2 (quoted, a block, or tagged !!str): it will not go into a Go bool or int."""
        return node.style is not None or node.tag == TAG_PREFIX + "str"

    def boolean(self, node: Node, path: str, what: str, default: bool | None = False,
                rancher: bool = True) -> bool | None:
        """A YAML 1.1 boolean. `rancher`: the field is Rancher's, so a quoted form gets a warning."""
        if node.is_null:
            return default
        if node.kind == "scalar" and node.tag in (None, TAG_PREFIX + "bool", TAG_PREFIX + "str"):
            value = TRUE_OR_FALSE.get(node.value)
            if value is not None:
                if rancher and self._quoted(node):
                    self.warn(node, path, f"{what} is the text {node.value!r}, not a boolean; Slipway reads it as "
                                          f"{str(value).lower()}, but {RANCHER_REFUSES} (write it unquoted)")
                return value
        self.error(node, path, f"{what} must be true or false, not {node.describe()}")
        return default

    def integer(self, node: Node, path: str, what: str) -> int | None:
        """A Go int as yaml.v2 read it (floats truncated); quoted numbers accepted with a warning."""
        if node.is_null:
            return None
        if node.kind == "scalar" and node.tag in (None, TAG_PREFIX + "int", TAG_PREFIX + "float",
                                                   TAG_PREFIX + "str"):
            number = go_number(node.value.strip() if self._quoted(node) else node.value)
            if number is not None:
                if self._quoted(node):
                    self.warn(node, path, f"{what} is the text {node.value!r}, not a number; Slipway reads it, "
                                          f"but {RANCHER_REFUSES} (write it unquoted)")
                if isinstance(number, float):
                    if number != number or abs(number) > GO_MAX_INT:  # NaN or out of range
                        self.error(node, path, f"{what} {node.value!r} does not fit a Go int; {RANCHER_REFUSES}")
                        return None
                    if number != int(number):
                        self.warn(node, path, f"{what} {node.value!r} is read as {int(number)}: "
                                              "Rancher drops the fraction")
                    number = int(number)
                if abs(number) > GO_MAX_INT:
                    self.error(node, path, f"{what} {node.value!r} does not fit a Go int; {RANCHER_REFUSES}")
                    return None
                return number
        self.error(node, path, f"{what} must be a whole number, not {node.describe()}")
        return None

    def text_list(self, node: Node, path: str, what: str) -> list[tuple[Node, str]]:
        """A scalar (one item) or a list of scalars."""
        if node.is_null:
            return []
        if node.kind == "scalar":
            return [(node, node.value)]
        items = self.sequence(node, path, what)
        out = []
        for i, item in enumerate(items or ()):
            value = self.text(item, join(path, i), f"each item of {what}")
            if item.kind == "scalar" and not item.is_null:
                out.append((item, value))
        return out

    def text_map(self, node: Node, path: str, what: str) -> list[tuple[str, str]]:
        """`env` / `answers`: map[string]string; values keep their literal text."""
        items = self.mapping(node, path, what)
        out = []
        for name, (_key, value) in (items or {}).items():
            out.append((name, self.text(value, join(path, name), f"the value of `{name}`")))
        return out

    def path_text(self, node: Node, path: str, what: str, *, allow_absolute: bool = False) -> str:
        value = self.text(node, path, what)
        problem = workspace_path_problem(value, allow_absolute=allow_absolute) if value else None
        if problem:
            self.error(node, path, f"{what}: {problem}")
        return value

    def quantity(self, node: Node, path: str, what: str, *, cpu: bool) -> str:
        """A CPU amount or a byte size, checked by the parser the engine applies it with
        (devops.quantity); 0 is allowed ("no limit", as in Kubernetes)."""
        value = self.text(node, path, what).strip()
        if value:
            try:
                (parse_cpu if cpu else parse_bytes)(value, zero_ok=True)
            except QuantityError as exc:
                self.error(node, path, f"{what}: {exc}")
        return value

    # -- constraints -----------------------------------------------------
    def constraint(self, node: Node, path: str, *, events: bool) -> dict | None:
        """A scalar, a list (= include) or {include, exclude}; None when it constrains nothing."""
        what = "`event`" if events else "`branch`"
        include: list[tuple[Node, str, str]] = []
        exclude: list[tuple[Node, str, str]] = []
        if node.kind == "map":
            items = self.mapping(node, path, what) or {}
            self.unknown_keys(items, path, ("include", "exclude"), what)
            for name, bucket in (("include", include), ("exclude", exclude)):
                if name in items:
                    sub = join(path, name)
                    for i, (item, v) in enumerate(self.text_list(items[name][1], sub, f"{what} {name}")):
                        bucket.append((item, v, join(sub, i) if items[name][1].kind == "seq" else sub))
        elif node.kind == "seq":
            for i, (item, v) in enumerate(self.text_list(node, path, what)):
                include.append((item, v, join(path, i)))
        elif not node.is_null:
            include.append((node, self.text(node, path, what), path))
        owner = "step" if ".steps[" in path else "stage"
        known_include = [v for _, v, _ in include if v in EVENTS]
        for item, value, ipath in include + exclude:
            if events:
                if value not in EVENTS:
                    # Rancher compares the text and never matches it; the file still runs
                    effect = ""
                    if (item, value, ipath) in exclude:
                        effect = "; excluding it changes nothing"
                    elif not known_include:
                        effect = f"; the {owner} will always be skipped"
                    self.warn(item, ipath, f"unknown event {value!r} never matches (events are push, "
                                           f"pull_request and tag){effect}")
            elif value == "":
                self.error(item, ipath, "empty branch pattern")
            else:
                bad = glob_problem(value)
                if bad:
                    self.error(item, ipath, f"bad branch pattern {value!r}: {bad}")
        if not include and not exclude:
            return None
        return {"include": [v for _, v, _ in include], "exclude": [v for _, v, _ in exclude]}

    def when(self, node: Node, path: str) -> dict | None:
        items = self.mapping(node, path, "`when`")
        if not items:
            return None
        self.unknown_keys(items, path, ("branch", "event"), "`when`")
        out = {}
        for name in ("branch", "event"):
            if name in items:
                c = self.constraint(items[name][1], join(path, name), events=name == "event")
                if c is not None:
                    out[name] = c
        return out or None

    def cache(self, node: Node, path: str) -> dict | None:
        """Slipway's `cache:`: `true`/`false`, a list of paths, or {enabled, paths}; null/{} = not set."""
        if node.kind == "scalar" and not node.is_null:
            # `cache` is Slipway's own (Rancher ignored it): a quoted boolean needs no warning
            enabled = self.boolean(node, path, "`cache` (true, false, a list of paths or {enabled, paths})",
                                   rancher=False)
            return {"enabled": enabled}
        if node.kind == "seq":
            return {"paths": self._cache_paths(node, path)}
        items = self.mapping(node, path, "`cache`")
        if not items:
            return None
        self.unknown_keys(items, path, ("enabled", "paths"), "`cache`")
        out: dict = {}
        if "enabled" in items:
            enabled = self.boolean(items["enabled"][1], join(path, "enabled"), "`cache.enabled`", default=None,
                                   rancher=False)
            if enabled is not None:
                out["enabled"] = enabled
        if "paths" in items:
            out["paths"] = self._cache_paths(items["paths"][1], join(path, "paths"))
        return out or None

    def _cache_paths(self, node: Node, path: str) -> list[str]:
        out = []
        for i, (item, value) in enumerate(self.text_list(node, path, "cache `paths`")):
            ipath = join(path, i) if node.kind == "seq" else path
            if not value.strip():
                self.error(item, ipath, "empty cache path")
                continue
            problem = workspace_path_problem(value, allow_absolute=True) or _whole_tree_problem(value)
            if problem:
                self.error(item, ipath, f"cache path: {problem}")
            out.append(value)
        return out
