"""Lint a pipeline file: the structure of stages and steps (DESIGN §3).

`check(root)` walks a `yamltree` node tree and returns plain data in the
shape of `PipelineConfig` (Rancher's camelCase aliases, no Clone stage yet)
plus every problem found. Paths in problems are as written in the file
(`stages[1].steps[0].publishImageConfig.tag`). What each step type holds comes
from its record in kinds.py. The rule: a file Rancher v2.5 ran must run, what
Rancher refused or failed is reported before anything runs (README, *Pipeline
files*):

- errors: wrong types, a stage without name or steps, a step with zero or two
  step types, missing required fields, bad globs, paths escaping the
  workspace, envFrom entries without sourceName/sourceKey, resource values that
  are not Kubernetes quantities, bad image references, a remote push without a
  registry, env names Kubernetes refuses, a timeout overflowing a Go duration;
- warnings: unknown keys (Rancher ignored them), with a hint when the key
  belongs one level up or down; repeated keys; events that never match;
  quoted numbers/booleans (Rancher's parser refused them); `${CICD_GIT_TAG}`
  in a tag pushed on other events; no stages (Rancher ran the Clone stage alone);
- silently ignored: top-level keys starting with `.` or `x-` (anchor holders).
"""
from __future__ import annotations

from collections.abc import Collection

from devops.pipeline.config import Constraints, notifier_name
from devops.pipeline.fields import GO_MAX_INT, Checker, join
from devops.pipeline.kinds import BOOL, PATH, STEP_KINDS, STEP_TYPES, TEXT
from devops.pipeline.names import (
    env_name_problem,
    image_tag_problem,
    registry_problem,
    tag_registry,
)
from devops.pipeline.yamltree import Node

TOP_KEYS = ("stages", "timeout", "branch", "notification", "cache")
STAGE_KEYS = ("name", "steps", "when", "cache")
STEP_KEYS = (
    *STEP_TYPES, "env", "envFrom", "privileged", "cpuRequest", "cpuLimit",
    "memoryRequest", "memoryLimit", "when", "cache",
)
# Keys users write by mistake, and what they meant.
RENAMED = {"catalog": "catalogTemplate", "dockerFile": "dockerfilePath", "dockerfile": "dockerfilePath",
           "context": "buildContext", "script": "shellScript", "commands": "shellScript"}
CONDITIONS = ("Success", "Failed", "Changed", "Aborted")
RECIPIENT_KEYS = ("recipient", "notifier")
RESOURCES = ("cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit")
CLONE_ONLY = "Rancher runs only the Clone stage; add `stages:` with the steps to run"
MAX_TIMEOUT = GO_MAX_INT // (60 * 10**9)  # minutes that fit a Go time.Duration (ns in an int64)
UNTAGGED_EVENTS = ("push", "pull_request", "")  # "" is a manual run


def _hints(up: tuple[str, ...], up_name: str, down: tuple[str, ...] = (), down_name: str = "") -> dict:
    """Hints for keys that belong one level up (`up`) or down (`down`), and for renamed keys."""
    hints = {k: f"it belongs to the {up_name}; check its indentation" for k in up}
    hints.update({k: f"it belongs inside {down_name}; check its indentation" for k in down})
    hints.update({k: f"did you mean `{v}`?" for k, v in RENAMED.items()})
    return hints


def check(root: Node | None, *, notifiers: Collection[str] | None = None) -> tuple[dict | None, Checker]:
    """Structure-check a document; returns (data for PipelineConfig, checker with problems).

    `notifiers`: the names of the project's notifiers, when the caller knows
    them; a recipient naming another is then a warning at its `notifier`.
    """
    chk = Checker()
    chk.notifiers = set(notifiers) if notifiers is not None else None
    if root is None or root.is_null:
        chk.problems.append(_empty())
        return {"stages": []}, chk
    if root.kind != "map":
        chk.error(root, "", f"a pipeline file is a mapping with `stages:`; this file is {root.describe()}")
        return None, chk
    items = chk.mapping(root, "", "the pipeline") or {}
    visible = {k: v for k, v in items.items() if not k.startswith((".", "x-"))}
    hint = {k: "it belongs to a stage or step; check its indentation" for k in STAGE_KEYS + STEP_KEYS
            if k not in TOP_KEYS}
    hint["name"] = "Rancher 2.0 exports carried it; a pipeline is named after its repository"
    if {"apiVersion", "kind"} <= set(visible):
        hint.update({k: "this file looks like a Kubernetes manifest, not a pipeline" for k in ("apiVersion", "kind")})
    chk.unknown_keys(visible, "", TOP_KEYS, "the pipeline", hint)
    data: dict = {}
    # No stages is legal for Rancher: it runs the implicit Clone stage alone.
    if "stages" not in items:
        chk.warn(root, "stages", f"no `stages:`: {CLONE_ONLY}")
        stages = []
    else:
        key, node = items["stages"]
        stages = chk.sequence(node, "stages", "`stages`")
        if stages == []:
            chk.warn(node if not node.is_null else key, "stages", f"`stages` is empty: {CLONE_ONLY}")
    data["stages"] = [_stage(chk, s, join("stages", i)) for i, s in enumerate(stages or ())]
    if "timeout" in items:
        node = items["timeout"][1]
        minutes = chk.integer(node, "timeout", "`timeout` (minutes)")
        if minutes is not None and minutes > MAX_TIMEOUT:
            chk.error(node, "timeout", f"`timeout` {minutes} minutes overflows a Go time.Duration "
                                       f"(at most {MAX_TIMEOUT} minutes, about 292 years)")
        elif minutes is not None and minutes < 0:
            chk.warn(node, "timeout", f"`timeout` is {minutes}; Rancher runs a timeout below 1 as 60 minutes")
        elif minutes:
            data["timeout"] = minutes  # 0 means the default, 60, as in Rancher
    if "branch" in items:
        branch = chk.constraint(items["branch"][1], "branch", events=False)
        if branch is not None:
            data["branch"] = branch
    if "cache" in items:
        cache = chk.cache(items["cache"][1], "cache")
        if cache is not None:
            data["cache"] = cache
    if "notification" in items:
        note = _notification(chk, items["notification"][1], "notification")
        if note:
            data["notification"] = note
    return data, chk


def _empty():
    from devops.pipeline.problems import WARNING, Problem

    return Problem("stages", 1, 1, WARNING, f"the file is empty: {CLONE_ONLY}")


def _stage(chk: Checker, node: Node, path: str) -> dict:
    items = chk.mapping(node, path, "a stage")
    if items is None:
        return {}
    hints = _hints((), "pipeline", STEP_KEYS[:-2], "a step (under `steps:`)")
    hints["timeout"] = "`timeout` is set for the whole pipeline, at the top level"
    chk.unknown_keys(items, path, STAGE_KEYS, "a stage", hints)
    out: dict = {}
    if "name" in items:
        out["name"] = chk.text(items["name"][1], join(path, "name"), "the stage `name`")
    if not out.get("name", "").strip():
        at = items["name"][1] if "name" in items else node
        chk.error(at, join(path, "name"), "a stage needs a `name`")
    if "steps" not in items:
        chk.error(node, join(path, "steps"), "a stage needs `steps:` with at least one step")
        steps = []
    else:
        key, snode = items["steps"]
        steps = chk.sequence(snode, join(path, "steps"), "`steps`")
        if steps == []:
            chk.error(key, join(path, "steps"), "`steps` is empty: a stage needs at least one step")
    _when_and_cache(chk, items, path, out)
    out["steps"] = [_step(chk, s, join(join(path, "steps"), i), out.get("when"))
                    for i, s in enumerate(steps or ())]
    return out


def _step(chk: Checker, node: Node, path: str, stage_when: dict | None = None) -> dict:
    items = chk.mapping(node, path, "a step")
    if items is None:
        return {}
    hints = _hints(("name",) if "steps" in items else (), "stage")
    hints.update({k: "it belongs inside a step type such as `runScriptConfig`; check its indentation"
                  for k in ("image", "shellScript", "tag", "dockerfilePath", "buildContext", "path", "content")})
    hints["timeout"] = "`timeout` is set for the whole pipeline, at the top level"
    if "name" not in hints:
        hints["name"] = "steps have no name in Rancher files"
    chk.unknown_keys(items, path, STEP_KEYS, "a step", hints)
    types = [t for t in STEP_TYPES if t in items]
    out: dict = {}
    if not types:
        extra = ""
        if "steps" in items:
            extra = " This entry has `steps:`, so it looks like a stage indented too far, under the previous stage's `steps`."
        elif set(items) & {"env", "envFrom", "when"} and len(items) <= 3:
            extra = " Its keys probably belong to the step above it (check the `-` and the indentation)."
        chk.error(node, path, "a step needs exactly one step type (" + ", ".join(STEP_TYPES) + "); found none." + extra)
    elif len(types) > 1:
        key = items[types[1]][0]
        chk.error(key, join(path, types[1]),
                  f"a step has exactly one step type; this one has {' and '.join(types)} (split it into two steps)")
    for kind in types[:1]:
        out["type"] = _step_type(chk, kind, items[kind][0], items[kind][1], join(path, kind))
    if "env" in items:
        out["env"] = chk.text_map(items["env"][1], join(path, "env"), "`env`")
        if items["env"][1].kind == "map":
            for key, _ in items["env"][1].items:
                bad = env_name_problem(key.value)
                if bad:
                    chk.error(key, join(join(path, "env"), key.value), f"`env`: {bad}")
    if "envFrom" in items:
        out["envFrom"] = _env_from(chk, items["envFrom"][1], join(path, "envFrom"))
    if "privileged" in items:
        out["privileged"] = chk.boolean(items["privileged"][1], join(path, "privileged"), "`privileged`")
    for name in RESOURCES:
        if name in items:
            out[name] = chk.quantity(items[name][1], join(path, name), f"`{name}`", cpu=name.startswith("cpu"))
    _when_and_cache(chk, items, path, out)
    if out.get("type", {}).get("kind") == "publishImageConfig" and out["type"].get("tag"):
        _git_tag_on_other_events(chk, items["publishImageConfig"][1], join(path, "publishImageConfig"), out,
                                 stage_when)
    return out


def _can_run(when: dict | None, event: str) -> bool:
    """Whether a `when` (lint data) lets `event` through; the branch is not known here."""
    if not when or "event" not in when:
        return True
    return Constraints.model_validate({"event": when["event"]}).matches(branch="", event=event)


def _git_tag_on_other_events(chk: Checker, node: Node, path: str, step: dict, stage_when: dict | None) -> None:
    """`${CICD_GIT_TAG}` is set on tag events only; elsewhere the tag keeps it literally and the push fails."""
    if "${CICD_GIT_TAG}" not in step["type"]["tag"]:
        return
    others = [e or "manual" for e in UNTAGGED_EVENTS if _can_run(stage_when, e) and _can_run(step.get("when"), e)]
    if others:
        tag_node = next(v for k, v in node.items if k.value == "tag")
        chk.warn(tag_node, join(path, "tag"),
                 f"`${{CICD_GIT_TAG}}` is set only on tag events, but this step also runs on {', '.join(others)} "
                 "runs, where the tag keeps `${CICD_GIT_TAG}` literally and the push fails; "
                 "add `when: {event: tag}` to the step or its stage")


def _step_type(chk: Checker, kind: str, key: Node, node: Node, path: str) -> dict:
    record = STEP_KINDS[kind]
    fields = record.fields
    out: dict = {"kind": kind}
    items = chk.mapping(node, path, f"`{kind}`")
    if items is None:
        return out
    hints = {k: "it belongs to the step (one level up); check its indentation" for k in STEP_KEYS if k not in fields}
    hints.update({k: f"did you mean `{v}`?" for k, v in RENAMED.items() if v in fields})
    hints.update(record.legacy_keys)
    chk.unknown_keys(items, path, fields, f"`{kind}`", hints)
    for name, how in fields.items():
        if name not in items:
            continue
        value = items[name][1]
        fpath = join(path, name)
        if how == TEXT:
            out[name] = chk.text(value, fpath, f"`{name}`")
        elif how == PATH:
            out[name] = chk.path_text(value, fpath, f"`{name}`")
        elif how == BOOL:
            out[name] = chk.boolean(value, fpath, f"`{name}`")
        else:
            out[name] = chk.text_map(value, fpath, f"`{name}`")
    for name, default in record.defaults.items():
        if name in out and out[name] == "" and default:
            out[name] = default  # an empty value means the default, as in Rancher (dockerfilePath: "")
    for name in record.required:
        if not str(out.get(name, "")).strip():
            at = items[name][1] if name in items else key
            empty = " (it is empty)" if node.is_null else ""
            renamed = [k for k, v in RENAMED.items() if v == name and k in items]
            why = f"; found `{renamed[0]}`, which Rancher files used before it was renamed" if renamed else ""
            chk.error(at, join(path, name), f"`{kind}` needs `{name}`{empty}{why}")
    if kind == "applyYamlConfig":
        has_path, has_content = bool(out.get("path")), bool(out.get("content"))
        if not has_path and not has_content:
            empty = (" It is empty: is `path:` indented under it?" if node.is_null else "")
            chk.error(key, path, "`applyYamlConfig` needs `path` (a file in the repository) or `content`." + empty)
        elif has_path and has_content:
            chk.error(items["content"][0], join(path, "content"), "`applyYamlConfig` takes `path` or `content`, not both")
    # the few rules beyond field types and required fields
    if kind == "publishImageConfig":
        _publish_target(chk, items, path, out)
    return out


def _publish_target(chk: Checker, items: dict, path: str, out: dict) -> None:
    """The image reference `tag` and, for a remote push, the registry it goes to."""
    remote = bool(out.get("pushRemote"))
    registry = out.get("registry", "")
    tag = out.get("tag", "")
    if tag.strip():
        # The registry part of `tag` is used only by a remote push without `registry:`
        bad = image_tag_problem(tag, check_registry=remote and not registry)
        if bad:
            chk.error(items["tag"][1], join(path, "tag"), f"`tag`: {bad}")
    if not remote:
        return
    if registry:
        bad = registry_problem(registry)
        if bad:
            chk.error(items["registry"][1], join(path, "registry"), f"`registry`: {bad}")
    elif tag.strip() and not tag_registry(tag):
        chk.error(items["pushRemote"][1], join(path, "pushRemote"),
                  "`pushRemote: true` needs a registry: set `registry:` (e.g. `index.docker.io` for Docker Hub) "
                  "or put the host in `tag` (`registry.example.com/app:1`); with neither, Rancher pushes to "
                  "an empty registry name and the push fails")


def _env_from(chk: Checker, node: Node, path: str) -> list[dict]:
    out = []
    for i, entry in enumerate(chk.sequence(node, path, "`envFrom`") or ()):
        epath = join(path, i)
        items = chk.mapping(entry, epath, "an `envFrom` entry")
        if items is None:
            continue
        chk.unknown_keys(items, epath, ("sourceName", "sourceKey", "targetKey"), "an `envFrom` entry")
        got = {}
        for name, what in (("sourceName", "the project secret's name"), ("sourceKey", "the key in that secret")):
            value = chk.text(items[name][1], join(epath, name), f"`{name}`") if name in items else ""
            if not value.strip():
                chk.error(items[name][1] if name in items else entry, join(epath, name),
                          f"an `envFrom` entry needs `{name}` ({what})")
            got[name] = value
        if "targetKey" in items:
            got["targetKey"] = chk.text(items["targetKey"][1], join(epath, "targetKey"), "`targetKey`")
        # the variable is named targetKey, else sourceKey (Rancher's rule)
        named_by = "targetKey" if got.get("targetKey") else "sourceKey"
        bad = env_name_problem(got.get(named_by, "")) if got.get(named_by, "").strip() else None
        if bad:
            chk.error(items[named_by][1], join(epath, named_by), f"`{named_by}` names the variable: {bad}")
        out.append(got)
    return out


def _notification(chk: Checker, node: Node, path: str) -> dict:
    items = chk.mapping(node, path, "`notification`")
    if not items:
        return {}
    chk.unknown_keys(items, path, ("recipients", "message", "condition"), "`notification`")
    out: dict = {}
    if "recipients" in items:
        rpath = join(path, "recipients")
        recipients = []
        for i, entry in enumerate(chk.sequence(items["recipients"][1], rpath, "`recipients`") or ()):
            pairs = chk.text_map(entry, join(rpath, i), "a recipient")
            if pairs:
                _recipient(chk, entry, join(rpath, i), dict(pairs))
                recipients.append(pairs)
        if recipients:
            out["recipients"] = recipients
            if "condition" not in items:
                chk.warn(items["recipients"][0], join(path, "condition"),
                         f"no `condition`: nothing is ever sent (list any of {', '.join(CONDITIONS)})")
    if "message" in items:
        message = chk.text(items["message"][1], join(path, "message"), "`message`")
        if message:
            out["message"] = message
    if "condition" in items:
        cpath = join(path, "condition")
        conditions = []
        for item, value in chk.text_list(items["condition"][1], cpath, "`condition`"):
            if value not in CONDITIONS:
                chk.warn(item, cpath, f"unknown condition {value!r}: Slipway notifies on {', '.join(CONDITIONS)}")
            conditions.append(value)
        if conditions:
            out["condition"] = conditions
    return out


def _recipient(chk: Checker, node: Node, path: str, pairs: dict[str, str]) -> None:
    """Rancher's recipient: `recipient` (an address, a channel) and `notifier` (whose name is checked
    against the project's notifiers when the caller knows them: `load(text, notifiers=...)`)."""
    items = chk.mapping(node, path, "a recipient") or {}
    chk.unknown_keys(items, path, RECIPIENT_KEYS, "a recipient")
    notifier = pairs.get("notifier", "").strip()
    if not notifier:
        chk.warn(node, join(path, "notifier"), "a recipient needs `notifier`: the name of one of the "
                                               "project's notifiers (else it is never sent)")
    elif chk.notifiers is not None and notifier_name(notifier) not in chk.notifiers \
            and notifier not in chk.notifiers:
        known = ", ".join(sorted(chk.notifiers)) or "none yet"
        chk.warn(items["notifier"][1], join(path, "notifier"),
                 f"no notifier named {notifier_name(notifier)!r} in this project (known: {known})")


def _when_and_cache(chk: Checker, items: dict, path: str, out: dict) -> None:
    """`when` and `cache`, which stages and steps both carry, checked the same way."""
    if "when" in items:
        when = chk.when(items["when"][1], join(path, "when"))
        if when:
            out["when"] = when
    if "cache" in items:
        cache = chk.cache(items["cache"][1], join(path, "cache"))
        if cache is not None:
            out["cache"] = cache
