"""Hostile and unusual YAML input: limits, encodings, markers, syntax errors."""
from __future__ import annotations

import pytest

from devops.pipeline import lint, load
from devops.pipeline.yamltree import MAX_BYTES, MAX_DEPTH, MAX_NODES

GOOD = "stages:\n- name: a\n  steps:\n  - runScriptConfig: {image: alpine, shellScript: make}\n"


def only_error(text) -> tuple[int, int, str]:
    (problem,) = lint(text)
    assert problem.severity == "error" and problem.path == ""
    return problem.line, problem.column, problem.message


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\nstages: *i\n"


def test_billion_laughs_refused_at_the_first_alias_over_the_limit():
    # No clock: the refusal comes from the line whose alias crosses MAX_NODES,
    # before `stages: *i` (line 10) would expand 9**9 nodes.
    line, _, message = only_error(billion_laughs())
    assert "alias" in message and "anchor" in message
    assert line <= 9


def test_too_many_aliases():
    text = "x: &x 1\nl: [" + ",".join(["*x"] * 1500) + "]\n" + GOOD
    assert "alias" in only_error(text)[2]


def test_a_big_file_without_aliases_is_not_called_an_alias_bomb():
    text = "x: &x 1\ny: *x\nz: [" + ",".join(["a"] * (MAX_NODES + 10)) + "]\n" + GOOD
    message = only_error(text)[2]
    assert f"more than {MAX_NODES} nodes" in message and "alias" not in message


def test_recursive_and_unknown_alias():
    assert "recursive" in only_error("a: &a [1, *a]\n")[2]
    assert "unknown anchor" in only_error("a: *nope\n")[2]


def test_nesting_depth_limit():
    # refused at the first `[` too deep, not after reading all 50 000
    line, column, message = only_error("stages: " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert f"deeper than {MAX_DEPTH}" in message
    assert (line, column) == (1, len("stages: ") + MAX_DEPTH)  # the root mapping is the first level


def test_size_limit(monkeypatch):
    from devops.pipeline import yamltree

    def no_parsing(*args, **kwargs):
        raise AssertionError("a file over the limit reached the YAML parser")

    monkeypatch.setattr(yamltree.yaml, "parse", no_parsing)  # the size is checked before any parsing
    _, _, message = only_error(GOOD + "#" * MAX_BYTES)
    assert "1 MiB" in message
    monkeypatch.undo()
    assert lint((GOOD + "#" * (MAX_BYTES - len(GOOD) - 1)).encode()) == ()


def test_node_count_limit():
    # refused at the node that crosses the limit (column ~2 per item), not at the end of the list
    line, column, message = only_error("x: [" + ",".join(["a"] * 50_000) + "]\n" + GOOD)
    assert "nodes" in message
    assert line == 1 and column <= len("x: [") + 2 * MAX_NODES


@pytest.mark.parametrize(
    "variant",
    [
        GOOD,
        "\ufeff" + GOOD,
        ("\ufeff" + GOOD).encode("utf-8"),
        GOOD.encode("utf-16"),  # with its BOM
        GOOD.replace("\n", "\r\n"),
        GOOD.rstrip("\n"),
        "---\n" + GOOD,
        "---\n" + GOOD + "...\n",
        "# comment only line\n" + GOOD + "# trailing\n",
        GOOD + "#\ta comment with a tab\n",
    ],
)
def test_text_variants_all_load_the_same(variant):
    result = load(variant)
    assert result.ok, result.problems
    assert result.config == load(GOOD).config


def test_tab_indentation_is_a_syntax_error_at_its_line():
    line, _, message = only_error("stages:\n- name: a\n\tsteps: []\n")
    assert line == 3 and "tab" in message


def test_syntax_error_reported_where_found():
    line, column, message = only_error("stages:\n- name: a\n  steps: [a, b\ntimeout: 3\n")
    assert message.startswith("YAML syntax error")
    assert line == 4 and column >= 1


def test_empty_and_comment_only_files():
    # Rancher runs such a file as the Clone stage alone: a warning, not an error (issue 9 point 8)
    for text in ("", "\n", "# nothing\n", b"", "---\n"):
        result = load(text)
        (problem,) = result.problems
        assert problem.severity == "warning" and problem.path == "stages"
        assert "only the Clone stage" in problem.message
        assert [s.name for s in result.config.stages] == ["Clone"]


def test_multiple_documents():
    line, _, message = only_error(GOOD + "---\n" + GOOD)
    assert line == 5 and "more than one YAML document" in message


def test_not_utf8():
    line, _, message = only_error(b"stages:\n- name: \xff\n")
    assert line == 2 and "UTF-8" in message


def test_control_character():
    line, column, message = only_error("stages:\n- name: a\x07\n")
    assert (line, column) == (2, 10) and "not allowed" in message


def test_non_scalar_key():
    _, _, message = only_error("? [a, b]\n: c\n" + GOOD)
    assert "key" in message
