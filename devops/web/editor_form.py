"""The visual editor's model of a pipeline file: stages, step cards and the side panel's fields.

Read from the text as written (file indices, before the implicit Clone stage),
so every field carries the path lint writes (`stages[1].steps[0].runScriptConfig.image`):
it names the input, and a problem reported for that path lands on that input
and on its card. Every control carries the visual operation it sends
(`devops.pipeline.operations`, JSON in `data-op*` attributes); the browser only
fills in what the user typed (`@VALUE@`, `@KEY@`) and posts it. What each step
type holds comes from its record in `devops.pipeline.kinds`; keys the form does
not know are listed read-only and left alone.

Plain Python, no Django: the view renders `Model` with `web/editor_visual.html`.
"""
from __future__ import annotations

import json
import re
from typing import Any

import yaml

from devops.pipeline.kinds import BOOL, MAP, STEP_KINDS, STEP_TYPES
from devops.pipeline.problems import Problem
from devops.web.editor_model import Field, Model, Row, Section, StageColumn, StepCard

# Rancher's variables, as devops.controller.spec.cicd_env sets them; offered where kinds.py says
# `${CICD_*}` is substituted (never in shellScript: the shell reads them from the environment).
CICD_VARS = ("CICD_GIT_URL", "CICD_GIT_REPO_NAME", "CICD_GIT_COMMIT", "CICD_GIT_BRANCH", "CICD_GIT_REF",
             "CICD_GIT_TAG", "CICD_EVENT", "CICD_TRIGGER_TYPE", "CICD_EXECUTION_ID", "CICD_EXECUTION_SEQUENCE",
             "CICD_PIPELINE_ID", "CICD_PROJECT_ID", "CICD_CLUSTER_ID", "CICD_LOCAL_REGISTRY")
TOP_KEYS = ("stages", "timeout", "branch", "notification", "cache")
STAGE_KEYS = ("name", "steps", "when", "cache")
COMMON_KEYS = ("env", "envFrom", "privileged", "cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit",
               "when", "cache")
RESOURCES = (("cpuRequest", "CPU request", "e.g. 100m"), ("cpuLimit", "CPU limit", "e.g. 1"),
             ("memoryRequest", "Memory request", "e.g. 128Mi"), ("memoryLimit", "Memory limit", "e.g. 1Gi"))
TEXTAREAS = ("shellScript", "content")
LABELS = {"image": "Image", "shellScript": "Shell script", "dockerfilePath": "Dockerfile path",
          "buildContext": "Build context", "tag": "Image tag", "pushRemote": "Push to a remote registry",
          "registry": "Registry", "path": "Path", "content": "Inline YAML content", "namespace": "Namespace",
          "catalogTemplate": "Catalog template", "version": "Version", "gitUrl": "Git URL",
          "gitBranch": "Git branch", "gitAuthor": "Git author", "gitEmail": "Git email", "answers": "Answers",
          "name": "App name", "targetNamespace": "Target namespace"}
# The card's "key field" per step type (the first one set wins)
SUMMARY = {"runScriptConfig": ("image",), "publishImageConfig": ("tag",), "applyYamlConfig": ("path", "content"),
           "publishCatalogConfig": ("catalogTemplate", "path"), "applyAppConfig": ("catalogTemplate", "name")}
# What "Add step" inserts: the required fields empty, so lint points at them until they are filled.
NEW_STEP = {"runScriptConfig": {"image": "", "shellScript": ""},
            "publishImageConfig": {"dockerfilePath": "./Dockerfile", "buildContext": ".", "tag": ""},
            "applyYamlConfig": {"path": "./deployment.yaml"},
            "publishCatalogConfig": {"path": "", "catalogTemplate": "", "version": ""},
            "applyAppConfig": {"catalogTemplate": "", "version": "", "name": "", "targetNamespace": ""}}
_SIMPLE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def key_path(path: str, key: str) -> str:
    """`path.key`, or `path["k.e.y"]` when the key has characters a dotted path cannot hold."""
    if _SIMPLE_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def op(kind: str, path: str, value: Any = None, **extra) -> str:
    """One visual operation as the JSON a control carries."""
    out: dict[str, Any] = {"op": kind, "path": path}
    if kind in ("set", "insert"):
        out["value"] = value
    out.update(extra)
    return json.dumps(out)


def humanise(key: str) -> str:
    return LABELS.get(key) or re.sub(r"(?<!^)(?=[A-Z])", " ", key).capitalize()


def _under(problems: list[Problem], path: str) -> list[Problem]:
    return [p for p in problems if p.path == path or p.path.startswith(path + ".") or p.path.startswith(path + "[")]


class _Builder:
    def __init__(self, problems: list[Problem], secrets: dict[str, list[str]]):
        self.problems = problems
        self.secrets = secrets

    def at(self, path: str) -> list[Problem]:
        return [p for p in self.problems if p.path == path]

    def _field(self, name: str, label: str, widget: str, **kw) -> Field:
        f = Field(name=name, label=label, widget=widget, **kw)
        f.problems = self.at(name)
        for r in f.rows:  # a row's problems show on its field
            f.problems += [p for p in self.at(r.name) if p not in f.problems]
        if widget in ("constraint", "list", "map", "envfrom"):
            f.problems += [p for p in _under(self.problems, name) if p not in f.problems]
        return f

    # -- generic widgets ---------------------------------------------------------
    def text(self, path: str, key: str, value: Any, *, label: str = "", required=False, substituted=False,
             placeholder: str = "", help: str = "") -> Field:
        widget = "textarea" if key in TEXTAREAS else "text"
        return self._field(key_path(path, key), label or humanise(key), widget,
                           value="" if value is None else _scalar_text(value), required=required,
                           substituted=substituted, placeholder=placeholder, help=help)

    def boolean(self, path: str, key: str, value: Any, label: str = "") -> Field:
        name = key_path(path, key)
        return self._field(name, label or humanise(key), "bool", value=value is True,
                           choices=[{"op": op("set", name, True)}, {"op": op("set", name, False)}])

    def text_list(self, path: str, label: str, value: Any, *, help: str = "") -> Field:
        """A list of text (or its one-value shorthand): a row per item, and an Add row."""
        rows, adders = _list_rows(path, value)
        return self._field(path, label, "list", rows=rows, adders=adders, help=help)

    def mapping(self, path: str, label: str, value: Any, *, substituted=False, help: str = "") -> Field:
        if value is not None and not isinstance(value, dict):
            return self._field(path, label, "readonly", value=_yaml(value), help="not a mapping: edit it in YAML")
        rows = [Row(key_path(path, str(k)), _scalar_text(v), key=str(k), delete=op("delete", key_path(path, str(k))))
                for k, v in (value or {}).items()]
        adders = [{"label": "Add", "op": op("set", path + ".@KEY@", "@VALUE@"),
                   "placeholders": [("@KEY@", "Name"), ("@VALUE@", "Value")]}]
        return self._field(path, label, "map", rows=rows, adders=adders, substituted=substituted, help=help)

    def constraint(self, path: str, label: str, value: Any, *, events: bool) -> Field:
        """`branch`/`event`: a scalar, a list (= include) or {include, exclude}, as include/exclude rows."""
        rows: list[Row] = []
        adders: list[dict] = []
        ph = [("@VALUE@", "Event" if events else "Branch pattern")]
        if value is None or value == "":
            for b in ("include", "exclude"):
                adders.append({"label": f"Add {b}", "op": op("set", path, {b: ["@VALUE@"]}), "placeholders": ph})
        elif isinstance(value, dict):
            for b in ("include", "exclude"):
                sub = path + "." + b
                items, add = _list_rows(sub, value.get(b), bucket=b, label=f"Add {b}", ph=ph)
                rows += items
                adders += add
        else:
            items = value if isinstance(value, list) else [value]
            if isinstance(value, list):
                rows = [Row(f"{path}[{i}]", _scalar_text(v), bucket="include", delete=op("delete", f"{path}[{i}]"))
                        for i, v in enumerate(value)]
                add_inc = op("insert", f"{path}[{len(value)}]", "@VALUE@")
            else:
                rows = [Row(path, _scalar_text(value), bucket="include", delete=op("delete", path))]
                add_inc = op("set", path, [value, "@VALUE@"])
            adders = [{"label": "Add include", "op": add_inc, "placeholders": ph},
                      {"label": "Add exclude", "op": op("set", path, {"include": items, "exclude": ["@VALUE@"]}),
                       "placeholders": ph}]
        return self._field(path, label, "constraint", rows=rows, adders=adders,
                           help="Glob patterns; exclude wins; no include matches every "
                                + ("event (push, pull_request, tag)" if events else "branch") + ".")

    def cache(self, path: str, value: Any, label: str) -> list[Field]:
        """`cache:` true/false, a list of paths or {enabled, paths}: an on/off/inherit choice and the paths."""
        if isinstance(value, bool):
            enabled, paths, epath, ppath = value, None, path, None
        elif isinstance(value, list):
            enabled, paths, epath, ppath = None, value, None, path
        elif isinstance(value, dict):
            enabled, paths = value.get("enabled"), value.get("paths")
            epath, ppath = path + ".enabled", path + ".paths"
        elif value is None:
            enabled, paths, epath, ppath = None, None, None, None
        else:
            return [self._field(path, label, "readonly", value=_yaml(value))]
        choices = []
        for text, want in (("inherit", None), ("on", True), ("off", False)):
            if want is None:
                o = op("delete", epath) if epath and epath != path else (
                    op("delete", path) if epath == path else "")
            elif epath:
                o = op("set", epath, want)
            elif paths is not None:
                o = op("set", path, {"enabled": want, "paths": paths})
            else:
                o = op("set", path, want)
            choices.append({"label": text, "op": o, "selected": enabled is want})
        out = [self._field(epath or path, label, "choice", choices=choices,
                           help="Inherit: the nearest level that sets it (step, stage, pipeline); off by default.")]
        if ppath is None:  # no paths yet: adding one makes the mapping form
            adders = [{"label": "Add path", "op": op("set", path, {"enabled": enabled, "paths": ["@VALUE@"]}
                                                     if enabled is not None else ["@VALUE@"]),
                       "placeholders": [("@VALUE@", "Path")]}]
            out.append(self._field(path + ".paths", label + " paths", "list", adders=adders))
        else:
            out.append(self.text_list(ppath, label + " paths", paths))
        return out

    def unknown(self, items: dict, known) -> list[tuple[str, str]]:
        return [(str(k), _yaml(v)) for k, v in items.items() if k not in known]

    # -- the levels ------------------------------------------------------------
    def step(self, path: str, index: int, data: Any) -> StepCard:
        problems = _under(self.problems, path)
        if not isinstance(data, dict):
            return StepCard(path, index, "", "Unreadable step", "edit it in YAML",
                            [Section("Step", [self._field(path, "Step", "readonly", value=_yaml(data))])], problems)
        kinds = [k for k in STEP_TYPES if k in data]
        kind = kinds[0] if len(kinds) == 1 else ""
        sections: list[Section] = []
        summary = ""
        if kind:
            rec = STEP_KINDS[kind]
            cfg = data.get(kind)
            tpath = f"{path}.{kind}"
            if cfg is None or isinstance(cfg, dict):
                cfg = cfg or {}
                fields = [self._field(tpath, "Step type", "choice", choices=[
                    {"label": other.label, "selected": name == kind,
                     "op": "" if name == kind else json.dumps([
                         {"op": "delete", "path": tpath},
                         {"op": "set", "path": f"{path}.{name}", "value": NEW_STEP[name]}])}
                    for name, other in STEP_KINDS.items() if name in NEW_STEP],
                    help="Changing it replaces this type's fields; the common ones below stay.")]
                for alias, how in rec.fields.items():
                    value = cfg.get(alias)
                    sub = alias in rec.substituted
                    if how == BOOL:
                        fields.append(self.boolean(tpath, alias, value))
                    elif how == MAP:
                        fields.append(self.mapping(key_path(tpath, alias), humanise(alias), value, substituted=sub))
                    else:
                        fields.append(self.text(tpath, alias, value, required=alias in rec.required, substituted=sub,
                                                placeholder=str(rec.defaults.get(alias) or "")))
                sections.append(Section(rec.label, fields, self.unknown(cfg, rec.fields)))
                summary = next((_scalar_text(cfg[k]).splitlines()[0] if _scalar_text(cfg[k]) else ""
                                for k in SUMMARY.get(kind, ()) if cfg.get(k)), "")
                if kind == "applyYamlConfig" and not cfg.get("path") and cfg.get("content"):
                    summary = "inline YAML"
            else:
                sections.append(Section(rec.label, [self._field(tpath, rec.label, "readonly", value=_yaml(cfg))]))
            label = rec.label
        else:
            label = "Two step types" if kinds else "No step type"
        sections.append(self.common(path, data))
        known = (*STEP_TYPES, *COMMON_KEYS)
        sections[-1].unknown = self.unknown(data, known)
        return StepCard(path, index, kind, label, summary, sections, problems, when=when_note(data.get("when")))

    def common(self, path: str, data: dict) -> Section:
        fields = [self.mapping(path + ".env", "Environment variables", data.get("env"),
                               help="Values are text, given to the step as written."),
                  self.env_from(path, data.get("envFrom")),
                  self.boolean(path, "privileged", data.get("privileged"), "Privileged")]
        for key, label, hint in RESOURCES:
            fields.append(self.text(path, key, data.get(key), label=label, placeholder=hint))
        fields += self.cache(path + ".cache", data.get("cache"), "Cache")
        fields += self.when(path, data.get("when"))
        return Section("Every step", fields)

    def when(self, path: str, value: Any) -> list[Field]:
        wpath = path + ".when"
        if value is not None and not isinstance(value, dict):
            return [self._field(wpath, "When", "readonly", value=_yaml(value))]
        value = value or {}
        return [self.constraint(wpath + ".branch", "When: branch", value.get("branch"), events=False),
                self.constraint(wpath + ".event", "When: event", value.get("event"), events=True)]

    def env_from(self, path: str, value: Any) -> Field:
        fpath = path + ".envFrom"
        if value is not None and not isinstance(value, list):
            return self._field(fpath, "Environment from secrets", "readonly", value=_yaml(value))
        rows = []
        for i, item in enumerate(value or []):
            ipath = f"{fpath}[{i}]"
            item = item if isinstance(item, dict) else {}
            rows.append(Row(ipath, "", delete=op("delete", ipath), extra={
                "source_name": _scalar_text(item.get("sourceName", "")),
                "source_key": _scalar_text(item.get("sourceKey", "")),
                "target_key": _scalar_text(item.get("targetKey", "")),
                "keys": self.secrets.get(_scalar_text(item.get("sourceName", "")), []),
            }))
        adders = [{"label": "Add", "op": op("insert", f"{fpath}[{len(value or [])}]",
                                             {"sourceName": "@NAME@", "sourceKey": "@SKEY@", "targetKey": "@TKEY@"}),
                   "placeholders": [("@NAME@", "Secret"), ("@SKEY@", "Key"), ("@TKEY@", "As variable (optional)")]}]
        return self._field(fpath, "Environment from secrets", "envfrom", rows=rows, adders=adders,
                           help="Names and keys of the project's secrets; values never reach this page.")

    def stage(self, path: str, index: int, data: Any) -> StageColumn:
        problems = [p for p in _under(self.problems, path) if not p.path.startswith(path + ".steps[")]
        add_step = op("insert", f"{path}.steps[0]", "@STEP@")
        if not isinstance(data, dict):
            return StageColumn(path, index, "(unreadable stage)", [],
                               [Section("Stage", [self._field(path, "Stage", "readonly", value=_yaml(data))])],
                               problems, add_step)
        steps_data = data.get("steps")
        steps = [self.step(f"{path}.steps[{i}]", i, s) for i, s in enumerate(steps_data)] \
            if isinstance(steps_data, list) else []
        add_step = op("insert", f"{path}.steps[{len(steps)}]", "@STEP@")
        fields = [self.text(path, "name", data.get("name"), label="Stage name", required=True)]
        fields += self.when(path, data.get("when"))
        fields += self.cache(path + ".cache", data.get("cache"), "Cache")
        section = Section("Stage", fields, self.unknown(data, STAGE_KEYS))
        return StageColumn(path, index, _scalar_text(data.get("name") or ""), steps, [section], problems, add_step,
                           when=when_note(data.get("when")))

    def pipeline(self, data: dict) -> list[Section]:
        timeout = self._field("timeout", "Timeout (minutes)", "int", value=_scalar_text(data.get("timeout", "")),
                              placeholder="60")
        fields = [timeout, self.constraint("branch", "Branches", data.get("branch"), events=False)]
        fields += self.cache("cache", data.get("cache"), "Cache")
        sections = [Section("Pipeline", fields, self.unknown(data, TOP_KEYS))]
        n = data.get("notification")
        if n is not None and not isinstance(n, dict):
            sections.append(Section("Notification", [self._field("notification", "Notification", "readonly",
                                                                 value=_yaml(n))]))
            return sections
        n = n or {}
        nfields: list[Field] = []
        recipients = n.get("recipients")
        if isinstance(recipients, list):
            for i, r in enumerate(recipients):
                f = self.mapping(f"notification.recipients[{i}]", f"Recipient {i + 1}", r)
                f.adders.append({"label": "Delete recipient", "op": op("delete", f"notification.recipients[{i}]"),
                                 "placeholders": []})
                nfields.append(f)
        count = len(recipients) if isinstance(recipients, list) else 0
        add = self._field("notification.recipients", "Recipients", "list", adders=[{
            "label": "Add recipient", "op": op("insert", f"notification.recipients[{count}]",
                                               {"recipient": "@VALUE@", "notifier": "@KEY@"}),
            "placeholders": [("@VALUE@", "Recipient"), ("@KEY@", "Notifier")]}])
        nfields.append(add)
        nfields.append(self.text("notification", "message", n.get("message"), label="Message"))
        nfields.append(self.text_list("notification.condition", "Conditions", n.get("condition"),
                                      help="Success, Failed, Changed, Aborted."))
        sections.append(Section("Notification", nfields, self.unknown(n, ("recipients", "message", "condition"))))
        return sections


def _list_rows(path: str, value: Any, *, bucket: str = "", label: str = "Add",
               ph=(("@VALUE@", "Value"),)) -> tuple[list[Row], list[dict]]:
    ph = list(ph)
    if value is None:
        return [], [{"label": label, "op": op("set", path, ["@VALUE@"]), "placeholders": ph}]
    if isinstance(value, list):
        rows = [Row(f"{path}[{i}]", _scalar_text(v), bucket=bucket, delete=op("delete", f"{path}[{i}]"))
                for i, v in enumerate(value)]
        return rows, [{"label": label, "op": op("insert", f"{path}[{len(value)}]", "@VALUE@"), "placeholders": ph}]
    return ([Row(path, _scalar_text(value), bucket=bucket, delete=op("delete", path))],
            [{"label": label, "op": op("set", path, [value, "@VALUE@"]), "placeholders": ph}])


def when_note(when: Any) -> str:
    """A `when` block in words ("branch master · event push, pull_request"), "" when it has none."""
    if not isinstance(when, dict):
        return ""
    parts = []
    for name in ("branch", "event"):
        c = when.get(name)
        if isinstance(c, dict):
            inc, exc = c.get("include"), c.get("exclude")
            words = [", ".join(map(str, inc if isinstance(inc, list) else [inc]))] if inc else []
            words += ["not " + ", ".join(map(str, exc if isinstance(exc, list) else [exc]))] if exc else []
            text = "; ".join(words)
        elif isinstance(c, list):
            text = ", ".join(map(str, c))
        else:
            text = "" if c is None else str(c)
        if text:
            parts.append(f"{name} {text}")
    return " · ".join(parts)


def _scalar_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return _yaml(value)
    return str(value)


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=None, sort_keys=False, allow_unicode=True).strip()


def build(text: str, problems: list[Problem], secrets: dict[str, list[str]] | None = None) -> Model:
    """The visual model of `text`; `problems` from lint; `secrets` name -> keys (never values)."""
    from devops.pipeline.operations import read_document
    from devops.pipeline.problems import EditError

    b = _Builder(list(problems), secrets or {})
    empty = Model([], [], [], op("insert", "stages[0]", {"name": "@VALUE@", "steps": []}))
    try:
        data = read_document(text)  # the very data the ops work on, so every path here is an op path
    except EditError as exc:
        empty.error = str(exc)
        return empty
    stages_data = data.get("stages")
    stages = [b.stage(f"stages[{i}]", i, s) for i, s in enumerate(stages_data)] \
        if isinstance(stages_data, list) else []
    _moves(stages)
    top = [p for p in b.problems if not p.path.startswith("stages[")]
    return Model(stages, b.pipeline(data), top,
                 op("insert", f"stages[{len(stages)}]", {"name": "@VALUE@", "steps": []}))


def _move(direction: str, label: str, src: str, dst: str) -> dict:
    return {"dir": direction, "label": label, "op": json.dumps({"op": "move", "from": src, "to": dst})}


def _moves(stages: list[StageColumn]) -> None:
    """The move buttons: a stage left/right; a step up/down, or left/right into the next stage at the
    same row (`to` is read after the item was removed, as apply_ops reads it)."""
    n = len(stages)
    for i, st in enumerate(stages):
        if i > 0:
            st.moves.append(_move("left", f"Move stage {st.name} left", st.path, f"stages[{i - 1}]"))
        if i < n - 1:
            st.moves.append(_move("right", f"Move stage {st.name} right", st.path, f"stages[{i + 1}]"))
        m = len(st.steps)
        for j, sp in enumerate(st.steps):
            what = f"step {sp.label}{' ' + sp.summary if sp.summary else ''}"
            if j > 0:
                sp.moves.append(_move("up", f"Move {what} up", sp.path, f"{st.path}.steps[{j - 1}]"))
            if j < m - 1:
                sp.moves.append(_move("down", f"Move {what} down", sp.path, f"{st.path}.steps[{j + 1}]"))
            if i > 0:
                k = min(j, len(stages[i - 1].steps))
                sp.moves.append(_move("left", f"Move {what} to stage {stages[i - 1].name}", sp.path,
                                      f"stages[{i - 1}].steps[{k}]"))
            if i < n - 1:
                k = min(j, len(stages[i + 1].steps))
                sp.moves.append(_move("right", f"Move {what} to stage {stages[i + 1].name}", sp.path,
                                      f"stages[{i + 1}].steps[{k}]"))
