"""Normalised `PipelineConfig` -> YAML text (`pipeline show`, the visual editor).

The text uses Rancher's field names and shapes, so it is itself a valid
pipeline file, and `load(dump(c)).config == c` for every normalised config:
the Clone stage is written out (so it is not prepended twice), constraints
are written as {include, exclude}, and values that would read back as
numbers or booleans are quoted. Defaults are left out, except `timeout`.
"""
from __future__ import annotations

import yaml

from devops.pipeline.config import (
    CacheConfig,
    Constraint,
    Constraints,
    Notification,
    PipelineConfig,
    Stage,
    Step,
)
from devops.pipeline.kinds import STEP_KINDS


class _Dumper(yaml.SafeDumper):
    """Block style; multi-line text as `|` blocks when YAML allows it."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        # Indent list items under their key, as the Rancher UI writes files.
        return super().increase_indent(flow, False)


_UNICODE_BREAKS = ("\x85", "\u2028", "\u2029", "\r")


def _str(dumper: yaml.SafeDumper, value: str):
    # PyYAML writes NEL/LS/PS literally in plain and single-quoted scalars,
    # where a reader folds them: only double quotes escape them.
    if any(c in value for c in _UNICODE_BREAKS):
        style = '"'
    else:
        style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(config: PipelineConfig) -> str:
    """YAML text of a normalised config (see the module docstring for the guarantees)."""
    return yaml.dump(to_data(config), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def to_data(config: PipelineConfig) -> dict:
    """The pipeline as plain dicts and lists, in file shape and key order."""
    out: dict = {"stages": [_stage(s) for s in config.stages], "timeout": config.timeout}
    if config.branch is not None:
        out["branch"] = _constraint(config.branch)
    if config.cache is not None:
        out["cache"] = _cache(config.cache)
    if config.notification is not None:
        out["notification"] = _notification(config.notification)
    return out


def _stage(stage: Stage) -> dict:
    out: dict = {"name": stage.name, "steps": [_step(s) for s in stage.steps]}
    if stage.when is not None:
        out["when"] = _when(stage.when)
    if stage.cache is not None:
        out["cache"] = _cache(stage.cache)
    return out


def _step(step: Step) -> dict:
    fields = step.type.model_dump(by_alias=True, exclude={"kind"})
    body = {}
    record = STEP_KINDS[step.kind]
    defaults = record.defaults
    for name, value in fields.items():
        if name in record.required or name not in defaults or value != defaults[name]:
            body[name] = dict(value) if isinstance(value, tuple) else value
    out: dict = {step.kind: body}
    if step.env:
        out["env"] = dict(step.env)
    if step.env_from:
        out["envFrom"] = [e.model_dump(by_alias=True, exclude={"target_key"} if not e.target_key else None)
                          for e in step.env_from]
    if step.privileged:
        out["privileged"] = True
    for name in ("cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"):
        value = getattr(step, {"cpuRequest": "cpu_request", "cpuLimit": "cpu_limit",
                               "memoryRequest": "memory_request", "memoryLimit": "memory_limit"}[name])
        if value:
            out[name] = value
    if step.when is not None:
        out["when"] = _when(step.when)
    if step.cache is not None:
        out["cache"] = _cache(step.cache)
    return out


def _constraint(c: Constraint) -> dict:
    out = {}
    if c.include:
        out["include"] = list(c.include)
    if c.exclude:
        out["exclude"] = list(c.exclude)
    return out


def _when(w: Constraints) -> dict:
    out = {}
    if w.branch is not None:
        out["branch"] = _constraint(w.branch)
    if w.event is not None:
        out["event"] = _constraint(w.event)
    return out


def _cache(c: CacheConfig) -> dict:
    out: dict = {}
    if c.enabled is not None:
        out["enabled"] = c.enabled
    if c.paths:
        out["paths"] = list(c.paths)
    return out


def _notification(n: Notification) -> dict:
    out: dict = {}
    if n.recipients:
        out["recipients"] = [dict(r) for r in n.recipients]
    if n.message:
        out["message"] = n.message
    if n.condition:
        out["condition"] = list(n.condition)
    return out
