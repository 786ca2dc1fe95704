"""Linted plain data -> the normalised, frozen `PipelineConfig`.

Normalisation (DESIGN §3): a `Clone` stage with one `sourceCodeConfig` step is
prepended when the first step of the file is not one; constraints are
{include, exclude} lists (empty ones are dropped: `branch: {}` means no
constraint); `timeout` defaults to 60 minutes; an empty `notification: {}` or
`cache: {}` is the same as none. The linter (rules.py) already converted
every scalar, so this module only assembles.
"""
from __future__ import annotations

from pydantic import ValidationError

from devops.pipeline.config import PipelineConfig, SourceCodeConfig, Stage, Step
from devops.pipeline.problems import ERROR, Problem

CLONE_STAGE = Stage(name="Clone", steps=(Step(type=SourceCodeConfig()),))


def build(data: dict) -> tuple[PipelineConfig | None, tuple[Problem, ...]]:
    """Assemble a config from lint.check() data that had no errors."""
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as exc:  # a linter gap: report it rather than crash
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        return None, (Problem(path, 1, 1, ERROR, f"invalid pipeline: {first['msg']}"),)
    return with_clone_stage(config), ()


def with_clone_stage(config: PipelineConfig) -> PipelineConfig:
    """Prepend the implicit Clone stage unless the first step already clones."""
    if config.stages and config.stages[0].steps and config.stages[0].steps[0].kind == "sourceCodeConfig":
        return config
    return config.model_copy(update={"stages": (CLONE_STAGE, *config.stages)})
