"""The normalised pipeline config: frozen, typed objects (DESIGN §3).

This is the only form of a pipeline that the controller and the engines see.
Field aliases are Rancher's camelCase names, so `model_dump(by_alias=True)`
gives back a pipeline file and `PipelineConfig.model_validate(json)` reads the
copy stored on an execution.

Stage and step indices here count the implicit Clone stage: `stages[0]` is
always the Clone stage after normalisation (see normalise.py).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Union

from pydantic import Field

from devops.pipeline.kinds import (  # the step types' config classes live with their records
    STEP_KINDS,
    STEP_TYPES,
    ApplyAppConfig,
    ApplyYamlConfig,
    PublishCatalogConfig,
    PublishImageConfig,
    RunScriptConfig,
    SourceCodeConfig,
)
from devops.pipeline.kinds import Frozen as _Frozen

__all__ = [
    "STEP_TYPES", "ApplyAppConfig", "ApplyYamlConfig", "CacheConfig", "Constraint", "Constraints", "EnvFrom",
    "Notification", "PipelineConfig", "PublishCatalogConfig", "PublishImageConfig", "RunScriptConfig",
    "SourceCodeConfig", "Stage", "Step", "StepType", "notifier_name",
]

EVENTS = ("push", "pull_request", "tag")


class GlobError(ValueError):
    """A pattern Go's `filepath.Match` rejects with ErrBadPattern."""


def _glob_char(pattern: str, i: int) -> tuple[str, int]:
    # One class character, `\`-escapes allowed; `-` and `]` must be escaped.
    if i >= len(pattern):
        raise GlobError("unclosed `[` character class")
    c = pattern[i]
    if c == "\\":
        if i + 1 >= len(pattern):
            raise GlobError("`\\` at the end of the pattern")
        return pattern[i + 1], i + 2
    if c in "-]":
        raise GlobError(f"`{c}` must be escaped inside a `[...]` class")
    return c, i + 1


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    """Translate a glob with Go `filepath.Match` semantics (Rancher used it).

    `*` matches any run of characters except `/` (so `**` is the same as `*`),
    `?` one character except `/`, `[a-z]` / `[^a-z]` a class, `\\x` a literal
    x. Raises GlobError for patterns Go reports as ErrBadPattern.
    """
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "\\":
            if i + 1 >= len(pattern):
                raise GlobError("`\\` at the end of the pattern")
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif c == "[":
            i += 1
            negated = pattern[i : i + 1] == "^"
            if negated:
                i += 1
            ranges = []
            while True:
                if i < len(pattern) and pattern[i] == "]" and ranges:
                    i += 1
                    break
                lo, i = _glob_char(pattern, i)
                hi = lo
                if pattern[i : i + 1] == "-":
                    hi, i = _glob_char(pattern, i + 1)
                ranges.append((lo, hi))
            body = "".join(re.escape(lo) + "-" + re.escape(hi) for lo, hi in ranges if lo <= hi)
            if not body:  # only inverted ranges such as [z-a]: Go matches nothing
                out.append("[\\s\\S]" if negated else "(?!)")
            else:
                out.append("[" + ("^" if negated else "") + body + "]")
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("(?s:" + "".join(out) + r")\Z")


def glob_problem(pattern: str) -> str | None:
    """Why `pattern` is not a valid glob, or None when it is."""
    try:
        _glob(pattern)
    except GlobError as exc:
        return str(exc)
    return None


def glob_match(pattern: str, value: str) -> bool:
    """Rancher's rule: equal strings match; else Go `filepath.Match`; a bad pattern matches nothing else."""
    if pattern == value:
        return True
    try:
        return _glob(pattern).match(value) is not None
    except GlobError:
        return False


class Constraint(_Frozen):
    """`branch` / `event` constraint: include and exclude glob lists.

    Exclude wins; an empty include matches everything.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def matches(self, value: str) -> bool:
        if any(glob_match(p, value) for p in self.exclude):
            return False
        if not self.include:
            return True
        return any(glob_match(p, value) for p in self.include)


class Constraints(_Frozen):
    """A `when` block. Events: push, pull_request, tag; a manual run has event ""."""

    branch: Constraint | None = None
    event: Constraint | None = None

    def matches(self, *, branch: str, event: str) -> bool:
        if self.branch is not None and not self.branch.matches(branch):
            return False
        if self.event is not None:
            if event == "":
                # A manual run has no event: it matches only when the
                # constraint does not ask for particular events.
                return not self.event.include
            if not self.event.matches(event):
                return False
        return True


class CacheConfig(_Frozen):
    """`cache:` at pipeline, stage or step level. `enabled=None` means inherit."""

    enabled: bool | None = None
    paths: tuple[str, ...] = ()


class EnvFrom(_Frozen):
    source_name: str = Field(alias="sourceName")
    source_key: str = Field(alias="sourceKey")
    target_key: str = Field("", alias="targetKey")

    @property
    def name(self) -> str:
        return self.target_key or self.source_key


# One member per record of kinds.STEP_KINDS, told apart by `kind`
StepType = Union[tuple(k.config for k in STEP_KINDS.values())]  # noqa: UP007 (built from the table)


class Step(_Frozen):
    type: StepType = Field(discriminator="kind")
    env: tuple[tuple[str, str], ...] = ()  # ordered pairs; values are text
    env_from: tuple[EnvFrom, ...] = Field((), alias="envFrom")
    privileged: bool = False
    cpu_request: str = Field("", alias="cpuRequest")
    cpu_limit: str = Field("", alias="cpuLimit")
    memory_request: str = Field("", alias="memoryRequest")
    memory_limit: str = Field("", alias="memoryLimit")
    when: Constraints | None = None
    cache: CacheConfig | None = None

    @property
    def kind(self) -> str:
        return self.type.kind


class Stage(_Frozen):
    name: str
    steps: tuple[Step, ...]
    when: Constraints | None = None
    cache: CacheConfig | None = None


class Notification(_Frozen):
    recipients: tuple[tuple[tuple[str, str], ...], ...] = ()  # each recipient: ordered pairs
    message: str = ""
    condition: tuple[str, ...] = ()


def notifier_name(value: str) -> str:
    """The notifier a recipient's `notifier` names: Rancher's `<cluster>:<id>` form by its id part
    (Rancher's ref.Parse), any other value as written."""
    return value.rpartition(":")[2].strip() if ":" in value else value.strip()


class PipelineConfig(_Frozen):
    """A normalised pipeline: stages[0] is the Clone stage; timeout in minutes."""

    stages: tuple[Stage, ...]
    timeout: int = 60
    branch: Constraint | None = None
    cache: CacheConfig | None = None
    notification: Notification | None = None

    def to_json(self) -> dict:
        """Plain JSON for PipelineExecution.config."""
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def from_json(cls, data: dict) -> PipelineConfig:
        return cls.model_validate(data)

    def step(self, stage: int, step: int) -> Step:
        return self.stages[stage].steps[step]

    def effective_cache(self, stage: int, step: int) -> CacheConfig:
        """The nearest cache level wins: step, else stage, else pipeline."""
        st = self.stages[stage]
        for level in (st.steps[step].cache, st.cache, self.cache):
            if level is not None:
                return level
        return CacheConfig(enabled=False)
