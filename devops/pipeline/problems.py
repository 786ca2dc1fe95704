"""What the linter reports: `Problem` and the result of loading a file.

A `Problem` names the field as written in the file (`stages[1].steps[0].
publishImageConfig.tag`, indices of the file, before the implicit Clone stage)
and its 1-based line and column. `path` is "" for problems of the document as
a whole (YAML syntax errors, size and alias limits, a document that is not a
mapping).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devops.pipeline.config import PipelineConfig

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    column: int
    severity: str  # "error" | "warning"
    message: str

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def to_dict(self) -> dict:
        """JSON shape used by the API (`POST /api/v1/lint`)."""
        return asdict(self)

    def format(self, filename: str) -> str:
        """One lint line: `FILE:LINE:COL: [warning: ]PATH: message`.

        Document-level problems (empty `path`) print `(document)` as the path
        so every line has the same five fields.
        """
        mark = "warning: " if self.severity == WARNING else ""
        return f"{filename}:{self.line}:{self.column}: {mark}{self.path or '(document)'}: {self.message}"


@dataclass(frozen=True)
class LoadResult:
    """`config` is None when any problem is an error; warnings never block."""

    config: PipelineConfig | None
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return self.config is not None and not self.errors

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == WARNING)


class EditError(ValueError):
    """apply_edit cannot edit the original text (syntax error, limits, not a mapping)."""
