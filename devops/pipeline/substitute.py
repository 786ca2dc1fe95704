"""Literal `${CICD_*}` substitution in the fields Rancher substituted (DESIGN §3).

Only `${NAME}` with NAME starting `CICD_` and present in `env` is replaced;
unknown variables, `$CICD_X` without braces and shell forms such as
`${CICD_GIT_BRANCH,,}` stay as written. `shellScript` is never touched: the
shell expands variables there at run time, from the step's environment, so a
branch name is never spliced into script text.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from devops.pipeline.config import PipelineConfig, Step
from devops.pipeline.kinds import STEP_KINDS

_VAR = re.compile(r"\$\{(CICD_[A-Za-z0-9_]*)\}")


def substitute_text(text: str, env: Mapping[str, str]) -> str:
    """`${CICD_*}` in `text` replaced from `env` by the same rule (the YAML file an applyYamlConfig reads)."""
    if "${" not in text:
        return text
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def substitute(config: PipelineConfig, env: Mapping[str, str]) -> PipelineConfig:
    """A copy of `config` with `${CICD_*}` replaced from `env` in the substituted fields."""

    def sub(text: str) -> str:
        return substitute_text(text, env)

    def step(s: Step) -> Step:
        update = {}
        record = STEP_KINDS[s.kind]
        changes = {}
        for alias in record.substituted:  # the fields of kinds.STEP_KINDS[kind].substituted
            name = record.attribute(alias)
            value = getattr(s.type, name)
            # text pairs (answers) have their values substituted, as Rancher's map[string]string
            changes[name] = tuple((k, sub(v)) for k, v in value) if isinstance(value, tuple) else sub(value)
        update["type"] = s.type.model_copy(update=changes)
        if s.env:
            update["env"] = tuple((k, sub(v)) for k, v in s.env)
        return s.model_copy(update=update)

    stages = tuple(st.model_copy(update={"steps": tuple(step(s) for s in st.steps)}) for st in config.stages)
    return config.model_copy(update={"stages": stages})
