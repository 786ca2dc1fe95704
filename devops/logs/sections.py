"""What a log line means to the viewer: a section start/end, a command, Slipway's own.

Django-free. The viewer folds a section from its start line to its end
line (or, for a command group, to the next command or section marker):

- GitLab: `section_start:<unix ts>:<name>[<options>]\\r\\e[0K<header>` and
  `section_end:<unix ts>:<name>\\r\\e[0K` (GitLab writes an `\\e[0K` before them too);
- GitHub Actions: `::group::<title>` and `::endgroup::`;
- a command of a script step: the line `sh -x` (`set -x` in a shellScript)
  prints before running each command, `+ <command>`. Slipway's runner runs a
  shellScript as `/bin/sh -e -c SCRIPT` and writes no command markers of its
  own, so a script that wants command groups says `set -x`;
- `[slipway] ...`: a line Slipway wrote into the step's log (runtime chosen,
  limits, truncation), not the step itself.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_LEAD = r"(?:\x1b\[0?K)*"
_GITLAB_START = re.compile(_LEAD + r"section_start:(\d+):([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\r(?:\x1b\[0?K)?(.*)", re.S)
_GITLAB_END = re.compile(_LEAD + r"section_end:(\d+):([A-Za-z0-9_.\-]+)\r?(?:\x1b\[0?K)?(.*)", re.S)
_GITHUB_START = re.compile(r"::group::(.*)", re.S)
_GITHUB_END = re.compile(r"::endgroup::\s*$")
_COMMAND = re.compile(r"\++ (.*)", re.S)

START, END, COMMAND, SLIPWAY, TEXT = "start", "end", "command", "slipway", "text"


@dataclass(frozen=True)
class LineKind:
    kind: str         # START, END, COMMAND, SLIPWAY or TEXT
    name: str = ""    # a GitLab section's name
    title: str = ""   # what the fold's header shows (may hold ANSI codes: render it)


def classify(text: str) -> LineKind:
    """The kind of one line (its text without the newline)."""
    if text.startswith("[slipway]"):
        return LineKind(SLIPWAY)
    if "section_" in text[:16]:
        if m := _GITLAB_START.match(text):
            return LineKind(START, m.group(2), m.group(3) or m.group(2))
        if m := _GITLAB_END.match(text):
            return LineKind(END, m.group(2))
    if text.startswith("::"):
        if m := _GITHUB_START.match(text):
            return LineKind(START, "", m.group(1).strip() or "group")
        if _GITHUB_END.match(text):
            return LineKind(END)
    if text.startswith("+") and (m := _COMMAND.match(text)):
        return LineKind(COMMAND, "", m.group(1))
    return LineKind(TEXT)
