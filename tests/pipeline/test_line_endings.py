"""A file with mixed LF / CRLF lines keeps each line's ending through an edit (not all CRLF, not all LF)."""
from __future__ import annotations

import yaml

from devops.pipeline import apply_ops
from devops.pipeline.edit import apply_edit, round_trip
from devops.pipeline.textedit import with_endings

# Lines 1-3 and the stage's name are CRLF (written on Windows), the rest LF.
MIXED = ("# ci\r\n"
         "stages:\r\n"
         "- name: build\r\n"
         "  steps:\n"
         "  - runScriptConfig:\n"
         "      image: golang:1.22\r\n"
         "      shellScript: go test ./...\n"
         "- name: publish   # later\n"
         "  steps:\n"
         "  - runScriptConfig:\n"
         "      image: alpine\n")


def plain(text):
    return yaml.safe_load(text)


def test_unchanged_save_is_byte_identical():
    assert apply_edit(MIXED, plain(MIXED)) == MIXED
    assert round_trip(MIXED, plain(MIXED)) == MIXED


def test_a_changed_line_keeps_its_own_ending_and_every_other_line_its_own():
    data = plain(MIXED)
    data["stages"][0]["steps"][0]["runScriptConfig"]["image"] = "golang:1.23"   # a CRLF line
    data["stages"][1]["steps"][0]["runScriptConfig"]["image"] = "busybox"       # an LF line
    out = apply_edit(MIXED, data)
    assert out == MIXED.replace("golang:1.22\r\n", "golang:1.23\r\n").replace("alpine\n", "busybox\n")
    assert plain(out) == data


def test_through_the_visual_ops_too():
    out = apply_ops(MIXED, [{"op": "set", "path": "stages[1].name", "value": "ship"}])
    assert out == MIXED.replace("- name: publish", "- name: ship")


def test_new_lines_take_the_files_majority_ending():
    data = plain(MIXED)
    data["stages"][1]["steps"][0]["runScriptConfig"]["shellScript"] = "echo hi"  # a new line, after an LF line
    out = apply_edit(MIXED, data)
    assert plain(out) == data
    new = [ln for ln in out.split("\n") if "echo hi" in ln]
    assert new == ["      shellScript: echo hi"]  # majority of MIXED is LF (7 of 11): no CR
    untouched = out.replace("      shellScript: echo hi\n", "")
    assert untouched == MIXED


def test_with_endings_rules():
    # replaced line -> the ending of the line it replaces; inserted -> majority (here CRLF)
    original = "a\r\nb\r\nc\n"
    assert with_endings(original, "a\nB\nc\n") == "a\r\nB\r\nc\n"
    assert with_endings(original, "a\nb\nx\nc\n") == "a\r\nb\r\nx\r\nc\n"
    assert with_endings("a\r\nb\r\n", "a\nb\nc\n") == "a\r\nb\r\nc\r\n"   # all CRLF stays all CRLF
    assert with_endings("a\nb\n", "a\nb\nc") == "a\nb\nc"                 # LF file untouched
    assert with_endings("a\r\nb\n", "a\nb") == "a\r\nb"                  # a missing final newline stays missing
