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

_VAR = re.compile(r"\$\{(CICD_[A-Za-z0-9_]*)\}")
# step type -> the fields Rancher substituted
FIELDS = {
    "runScriptConfig": ("image",),
    "publishImageConfig": ("tag", "dockerfile_path", "build_context", "registry"),
    "applyYamlConfig": ("path", "content", "namespace"),
    "publishCatalogConfig": (
        "path", "catalog_template", "version", "git_url", "git_branch", "git_author", "git_email",
    ),
    "applyAppConfig": ("catalog_template", "version", "name", "target_namespace"),
}


def substitute(config: PipelineConfig, env: Mapping[str, str]) -> PipelineConfig:
    """A copy of `config` with `${CICD_*}` replaced from `env` in the substituted fields."""

    def sub(text: str) -> str:
        if "${" not in text:
            return text
        return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text)

    def step(s: Step) -> Step:
        update = {}
        names = FIELDS.get(s.kind, ())
        changes = {n: sub(getattr(s.type, n)) for n in names}
        if s.kind == "applyAppConfig":
            changes["answers"] = tuple((k, sub(v)) for k, v in s.type.answers)
        update["type"] = s.type.model_copy(update=changes)
        if s.env:
            update["env"] = tuple((k, sub(v)) for k, v in s.env)
        return s.model_copy(update=update)

    stages = tuple(st.model_copy(update={"steps": tuple(step(s) for s in st.steps)}) for st in config.stages)
    return config.model_copy(update={"stages": stages})
