"""Section markers, command groups and Slipway's own lines (devops.logs.sections)."""
from __future__ import annotations

import pytest

from devops.logs.sections import COMMAND, END, SLIPWAY, START, TEXT, LineKind, classify


@pytest.mark.parametrize(("line", "kind"), [
    ("\x1b[0Ksection_start:1560896352:my_first_section\r\x1b[0KHeader of the 1st section",
     LineKind(START, "my_first_section", "Header of the 1st section")),
    ("section_start:1560896352:build[collapsed=true]\r\x1b[0KBuild", LineKind(START, "build", "Build")),
    ("\x1b[0Ksection_end:1560896353:my_first_section\r\x1b[0K", LineKind(END, "my_first_section")),
    ("::group::Install deps", LineKind(START, "", "Install deps")),
    ("::endgroup::", LineKind(END)),
    ("+ make test", LineKind(COMMAND, "", "make test")),
    ("++ nested substitution", LineKind(COMMAND, "", "nested substitution")),
    ("[slipway] host runtime: no container", LineKind(SLIPWAY)),
    ("plain output", LineKind(TEXT)),
    ("+1 for this", LineKind(TEXT)),
    ("echo section_start:1:x", LineKind(TEXT)),
    ("  [slipway] quoted by the step", LineKind(TEXT)),
])
def test_classify(line, kind):
    assert classify(line) == kind
