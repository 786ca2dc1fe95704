"""Errors the actions raise; the message is for the user (HTTP 400 / CLI stderr)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ActionError(Exception):
    """An action was refused; the message is for the user (HTTP 400 / CLI stderr)."""


class InvalidTransition(ActionError):
    pass


class RepositoryError(ActionError):
    """The repository, branch or commit could not be read."""


class BranchNotAllowed(ActionError):
    """The pipeline's top-level `branch` constraint excludes the branch: nothing runs."""


class PipelineFileInvalid(ActionError):
    """The pipeline file (or temporary config) has errors; `problems` lists them all."""

    def __init__(self, filename: str, problems: Sequence[Any], message: str = ""):
        self.filename = filename
        self.problems = list(problems)
        self.lines = [format_problem(p, filename) for p in self.problems] or [f"{filename}: {message}"]
        super().__init__(message or f"{filename} is invalid:\n" + "\n".join(self.lines))


def problem_is_error(p: Any) -> bool:
    severity = str(getattr(p, "severity", getattr(p, "level", "error")) or "error").lower()
    return not severity.startswith("warn")


def format_problem(p: Any, filename: str) -> str:
    """`FILE:LINE:COL: PATH: message`, the lint line format (the parser's own when it has one)."""
    if hasattr(p, "format") and not isinstance(p, str):
        return p.format(filename)
    line = getattr(p, "line", None) or 0
    col = getattr(p, "column", getattr(p, "col", None)) or 0
    path = getattr(p, "path", "") or ""
    message = getattr(p, "message", str(p))
    where = f"{filename}:{line}:{col}"
    return f"{where}: {path}: {message}" if path else f"{where}: {message}"


