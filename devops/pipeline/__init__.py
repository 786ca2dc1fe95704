"""The pipeline file: parse, lint, normalise, substitute, match, dump, edit (DESIGN §3).

Public API (other packages import only these names):

- `load(text)` -> `LoadResult(config, problems)`: parse + lint + normalise;
  `config` is None when any problem is an error.
- `lint(text)` -> problems only; `lint_text(text)` -> the same as a list, for
  the editor (per keystroke, debounced): every problem's `path` is written
  as apply_ops paths and the editor's input names are. `dump(config)` -> YAML text, with
  `load(dump(c)).config == c`.
- `substitute(config, env)`: literal `${CICD_*}` in the fields Rancher
  substituted, never in `shellScript`.
- `should_run(config, branch=, event=)`: the top-level `branch` constraint.
- `find_pipeline_file(root)`, `PIPELINE_FILENAMES` (search order).
- `apply_edit(original_text, new_data)`: round-trip edit keeping comments.
- `apply_ops(text, ops)`: the visual editor's operations (set, delete, insert,
  move by field path), rewriting only the lines they change;
  `starter_pipeline()`: the commented file offered when a branch has none.
- `kinds.STEP_KINDS`: one record per step type (config class, lint fields,
  substitution, dump defaults, the local engine's implementation by dotted path).

The package never imports Django (see docs/architecture.md).
"""
from __future__ import annotations

from collections.abc import Collection

from devops.pipeline.config import PipelineConfig
from devops.pipeline.dump import dump
from devops.pipeline.files import PIPELINE_FILENAMES, find_pipeline_file
from devops.pipeline.problems import ERROR, WARNING, EditError, LoadResult, Problem
from devops.pipeline.substitute import substitute

__all__ = [
    "ERROR", "PIPELINE_FILENAMES", "WARNING", "EditError", "LoadResult", "PipelineConfig", "Problem",
    "apply_edit", "apply_ops", "dump", "find_pipeline_file", "lint", "lint_text", "load", "should_run", "starter_pipeline",
    "substitute",
]


def load(text: str | bytes, *, filename: str = "<string>", notifiers: Collection[str] | None = None) -> LoadResult:
    """Parse, lint and normalise a pipeline file.

    `notifiers`: the names of the project's notifiers when the caller knows
    them (a project-scoped lint); a recipient naming none of them is a
    warning at `notification.recipients[N].notifier`.

    Every problem of the file is reported in one pass, in file order.
    `filename` is accepted for callers' symmetry with `lint`; problems carry
    positions only, the caller prefixes the file name (Problem.format).
    """
    from devops.pipeline import rules
    from devops.pipeline.normalise import build
    from devops.pipeline.yamltree import compose

    root, problems = compose(text)
    if problems:
        return LoadResult(None, tuple(problems))
    data, checker = rules.check(root, notifiers=notifiers)
    found = checker.result()
    if data is None or any(p.severity == ERROR for p in found):
        return LoadResult(None, found)
    config, more = build(data)
    return LoadResult(config, found + more)


def lint(text: str | bytes, *, filename: str = "<string>",
         notifiers: Collection[str] | None = None) -> tuple[Problem, ...]:
    """Every problem of a pipeline file (errors and warnings), in file order (`notifiers`: see load)."""
    return load(text, filename=filename, notifiers=notifiers).problems


def lint_text(text: str | bytes) -> list[Problem]:
    """Every problem of the editor's text, in file order: (path, line, column, severity, message).

    `path` names the field as the editor's inputs and `apply_ops` do
    (`stages[1].steps[0].runScriptConfig.image`; "" for the document);
    `line`/`column` are 1-based, for the YAML gutter.
    """
    return list(lint(text))


def should_run(config: PipelineConfig, *, branch: str, event: str) -> bool:
    """Whether a run on `branch` for `event` passes the top-level `branch` constraint.

    Rancher applied the top-level constraint to every trigger, whatever the
    event ("push", "pull_request", "tag", or "" for a manual run); per-event
    rules live in stage and step `when` blocks, so `event` does not change
    the answer here.
    """
    return config.branch is None or config.branch.matches(branch)


def apply_edit(original_text: str, new_data: dict) -> str:
    """Change `original_text` to equal `new_data`, keeping comments, key order, quoting, anchors.

    Raises EditError when the original cannot be read. (Imported lazily: the
    engines import this package and need not load ruamel.yaml.)
    """
    from devops.pipeline.edit import apply_edit as _apply_edit

    return _apply_edit(original_text, new_data)


def apply_ops(text: str, ops: list[dict]) -> str:
    """Apply the visual editor's operations to `text` (contract: devops.pipeline.operations).

    Raises EditError for a bad op or path. (Imported lazily, as apply_edit.)
    """
    from devops.pipeline.operations import apply_ops as _apply_ops

    return _apply_ops(text, ops)


def starter_pipeline() -> str:
    """The commented starter `.devops.yml` for a branch without a pipeline file."""
    from devops.pipeline.operations import starter_pipeline as _starter

    return _starter()
