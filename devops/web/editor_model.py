"""The visual editor's view model: what `editor_form.build` returns and web/editor_visual.html renders.

Plain dataclasses, no Django. Every field and row carries its field path as
lint writes it (its input's name), and every control its visual operation as JSON.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from devops.pipeline.problems import Problem


def dom_id(path: str) -> str:
    """An element id for a field path (`stages[1].steps[0].image` -> `f-stages-1-steps-0-image`)."""
    return "f-" + re.sub(r"[^A-Za-z0-9_-]+", "-", path).strip("-")


@dataclass
class Row:
    """One row of a list or map field: its input's path, the text shown, its delete op."""

    name: str
    value: str
    key: str = ""
    delete: str = ""
    bucket: str = ""  # include / exclude for constraint rows
    extra: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return dom_id(self.name)


@dataclass
class Field:
    """One control of the side panel. `widget` picks its template block (web/editor_visual.html#field)."""

    name: str
    label: str
    widget: str  # text textarea int bool choice list map constraint envfrom readonly
    value: Any = ""
    required: bool = False
    substituted: bool = False
    help: str = ""
    placeholder: str = ""
    rows: list[Row] = field(default_factory=list)
    adders: list[dict] = field(default_factory=list)  # {label, op, placeholders: [(ph, label)]}
    choices: list[dict] = field(default_factory=list)  # {label, op, selected}
    problems: list[Problem] = field(default_factory=list)

    @property
    def id(self) -> str:
        return dom_id(self.name)


@dataclass
class Section:
    title: str
    fields: list[Field]
    unknown: list[tuple[str, str]] = field(default_factory=list)  # (key, its YAML) shown read-only


@dataclass
class StepCard:
    path: str
    index: int
    kind: str  # "" when the step has no (or two) step types
    label: str
    summary: str
    sections: list[Section]
    problems: list[Problem]
    moves: list[dict] = field(default_factory=list)  # {dir, label, op}: the keyboard's move buttons
    when: str = ""  # its `when` in words, for the card


@dataclass
class StageColumn:
    path: str
    index: int
    name: str
    steps: list[StepCard]
    sections: list[Section]
    problems: list[Problem]
    add_step: str  # op template: insert at the end, value filled by the chosen type
    moves: list[dict] = field(default_factory=list)
    when: str = ""


@dataclass
class Model:
    stages: list[StageColumn]
    pipeline: list[Section]
    pipeline_problems: list[Problem]
    add_stage: str
    error: str = ""  # the document cannot be shown visually (syntax error, not a mapping)

    def find(self, selected: str) -> StageColumn | StepCard | None:
        for st in self.stages:
            if st.path == selected:
                return st
            for sp in st.steps:
                if sp.path == selected:
                    return sp
        return None
