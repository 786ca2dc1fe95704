"""apply_ops: the visual editor's operations on the YAML text."""
from __future__ import annotations

import textwrap

import pytest
from ruamel.yaml import YAML

from devops.pipeline import EditError, apply_edit, apply_ops, load, starter_pipeline
from devops.pipeline.operations import apply_ops_data, parse_path

ORIGINAL = textwrap.dedent(
    """\
    # Build and ship
    stages:
    - name: Build   # the build
      steps:
      # compile
      - runScriptConfig:
          image: golang:1.22
          shellScript: go build ./...
      # vet
      - runScriptConfig:
          image: golang:1.22   # same image
          shellScript: go vet ./...
    # publishing
    - name: Publish
      steps:
      - publishImageConfig:
          tag: "org/app:${CICD_EXECUTION_SEQUENCE}"
    timeout: 30
    """
)


def plain(text: str):
    return YAML(typ="safe", pure=True).load(text)


def test_no_ops_is_byte_identical():
    assert apply_ops(ORIGINAL, []) == ORIGINAL


def test_set_one_scalar_changes_one_line():
    out = apply_ops(ORIGINAL, [{"op": "set", "path": "stages[0].steps[1].runScriptConfig.image", "value": "golang:1.23"}])
    assert out == ORIGINAL.replace("golang:1.22   # same image", "golang:1.23   # same image")


def test_rename_stage():
    out = apply_ops(ORIGINAL, [{"op": "set", "path": "stages[1].name", "value": "Ship"}])
    assert out == ORIGINAL.replace("name: Publish", "name: Ship")


def test_set_creates_missing_keys():
    ops = [{"op": "set", "path": "stages[1].steps[0].env.GOFLAGS", "value": "-mod=vendor"}]
    out = apply_ops(ORIGINAL, ops)
    assert plain(out) == apply_ops_data(plain(ORIGINAL), ops)
    assert plain(out)["stages"][1]["steps"][0]["env"] == {"GOFLAGS": "-mod=vendor"}


def test_insert_delete_move_match_plain_data():
    ops = [
        {"op": "insert", "path": "stages[1]", "value": {"name": "Lint", "steps": [{"runScriptConfig": {"image": "x", "shellScript": "lint"}}]}},
        {"op": "move", "from": "stages[0].steps[1]", "to": "stages[1].steps[0]"},
        {"op": "delete", "path": "timeout"},
    ]
    out = apply_ops(ORIGINAL, ops)
    want = apply_ops_data(plain(ORIGINAL), ops)
    assert plain(out) == want
    assert [s["name"] for s in want["stages"]] == ["Build", "Lint", "Publish"]
    assert [s["runScriptConfig"]["shellScript"] for s in want["stages"][1]["steps"]] == ["go vet ./...", "lint"]
    assert load(out).ok


def test_dotted_key_resolves_as_lint_writes_it():
    data = {"stages": [{"name": "a", "steps": [{"applyAppConfig": {"answers": {"slave.replicas": "2"}}}]}]}
    out = apply_ops_data(data, [{"op": "set", "path": "stages[0].steps[0].applyAppConfig.answers.slave.replicas", "value": "3"}])
    assert out["stages"][0]["steps"][0]["applyAppConfig"]["answers"] == {"slave.replicas": "3"}
    assert parse_path('env["a.b"].c[2]') == ["env", "a.b", "c", 2]


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([{"op": "set", "path": "stages[9].name", "value": "x"}], "out of range"),
        ([{"op": "delete", "path": "nope"}], "no key 'nope'"),
        ([{"op": "frobnicate", "path": "x"}], "unknown op"),
        ([{"op": "set", "value": 1}], "missing path"),
        ([{"op": "insert", "path": "stages", "value": {}}], "list index"),
        ([{"op": "move", "from": "stages[0]", "to": "stages[0].steps[0]"}], "into itself"),
        ([{"op": "set", "path": "stages..name", "value": 1}], "bad path"),
        ([{"op": "set", "path": "stages.name", "value": 1}], "is a key, but this is a list"),
        (["set"], "an op is an object"),
    ],
)
def test_bad_ops_raise_edit_error(ops, message):
    with pytest.raises(EditError, match=message):
        apply_ops(ORIGINAL, ops)


def test_starter_pipeline_is_valid_and_commented():
    text = starter_pipeline()
    assert text.startswith("#")
    result = load(text)
    assert result.ok, result.problems
    assert not result.warnings


def test_lint_paths_are_op_paths(rancher_file):
    """A problem's path is what the editor's input is named and what apply_ops takes: fixing the
    field through that path clears the problem (054: a bad CPU quantity)."""
    from devops.pipeline import lint_text

    text = rancher_file("054").decode("utf-8")
    (problem,) = [p for p in lint_text(text) if p.is_error]
    assert problem.path == "stages[0].steps[0].cpuRequest" and problem.line == 7
    fixed = apply_ops(text, [{"op": "set", "path": problem.path, "value": "500m"}])
    assert not [p for p in lint_text(fixed) if p.is_error]
    assert len(fixed.splitlines()) == len(text.splitlines())


def test_every_lint_path_of_the_fixtures_resolves(rancher_dir):
    """Each problem's path (or, for a missing key, its parent) names a node of the document."""
    from devops.pipeline import lint_text
    from devops.pipeline.operations import _real_parts

    checked = 0
    for path in sorted(rancher_dir.glob("*.yml")):
        text = path.read_text(encoding="utf-8")
        try:
            data = plain(text.lstrip("\ufeff"))
        except Exception:
            continue
        for problem in lint_text(text):
            if not problem.path or not isinstance(data, dict):
                continue
            parts, found = _real_parts(data, parse_path(problem.path))
            assert found >= len(parts) - 1, (path.name, problem)
            checked += 1
    assert checked >= 10


COMMENTED = textwrap.dedent(
    """\

    # header, after a blank first line
    stages:
      - name: Build
        when:
          event: [ push, pull_request ]
        steps:
          # first: compile
          - runScriptConfig:
              image: golang:1.22   # compiler
              shellScript: go build
          # second: vet
          - runScriptConfig:
              image: golang:1.22   # vet image
              shellScript: go vet
      - name: Ship
        steps:
        # publish it
        - publishImageConfig:
            tag: org/app
    """
)


def test_a_moved_step_takes_its_comments_with_it():
    out = apply_ops(COMMENTED, [{"op": "move", "from": "stages[0].steps[0]", "to": "stages[1].steps[1]"}])
    assert out == textwrap.dedent(
        """\

        # header, after a blank first line
        stages:
          - name: Build
            when:
              event: [ push, pull_request ]
            steps:
              # second: vet
              - runScriptConfig:
                  image: golang:1.22   # vet image
                  shellScript: go vet
          - name: Ship
            steps:
            # publish it
            - publishImageConfig:
                tag: org/app
            # first: compile
            - runScriptConfig:
                image: golang:1.22   # compiler
                shellScript: go build
        """
    )


def test_a_deleted_step_takes_its_comments_and_leaves_the_neighbours():
    out = apply_ops(COMMENTED, [{"op": "delete", "path": "stages[0].steps[0]"}])
    assert "# first: compile" not in out and "# compiler" not in out
    assert "# second: vet" in out and "# vet image" in out and "# publish it" in out
    assert out.startswith("\n# header")


def test_flow_lists_keep_their_spacing():
    out = apply_ops(COMMENTED, [{"op": "set", "path": "stages[0].when.event", "value": ["push"]}])
    assert out == COMMENTED.replace("[ push, pull_request ]", "[ push ]")
    out = apply_ops(COMMENTED, [{"op": "insert", "path": "stages[0].when.event[2]", "value": "tag"}])
    assert out == COMMENTED.replace("[ push, pull_request ]", "[ push, pull_request, tag ]")


def test_changing_a_steps_type_rewrites_only_that_step():
    new = {"publishImageConfig": {"tag": "org/x", "dockerfilePath": "./Dockerfile"}}
    out = apply_ops(COMMENTED, [{"op": "set", "path": "stages[0].steps[1]", "value": new}])
    assert plain(out)["stages"][0]["steps"][1] == new
    assert "# second: vet" in out  # the comment above the item stays with it
    before, after = COMMENTED.splitlines(), out.splitlines()
    assert before[:12] == after[:12] and before[-5:] == after[-5:]


def test_apply_edit_puts_a_new_key_after_its_predecessor():
    data = plain(COMMENTED)
    step = data["stages"][0]["steps"][0]
    data["stages"][0]["steps"][0] = {"runScriptConfig": step["runScriptConfig"], "privileged": True}
    data["stages"][0] = {"name": "Build", "when": data["stages"][0]["when"], "timeout_note": "x",
                         "steps": data["stages"][0]["steps"]}
    out = apply_edit(COMMENTED, data)
    assert plain(out) == data
    assert out.index("timeout_note") < out.index("steps:")
    assert "        privileged: true\n" in out and out.index("go build") < out.index("privileged")


def test_read_document_is_what_ops_work_on():
    from devops.pipeline.operations import read_document

    data = read_document(ORIGINAL)
    assert data["stages"][0]["steps"][1]["runScriptConfig"]["image"] == "golang:1.22"
    assert read_document("") == {}
    with pytest.raises(EditError, match="line"):
        read_document("stages: [\n")
    with pytest.raises(EditError, match="mapping"):
        read_document("- a\n")


def test_a_file_with_anchors_is_edited_through_the_round_trip():
    """The text engine leaves anchors and aliases to ruamel's round trip: same data, comments kept."""
    from devops.pipeline import textedit
    from devops.pipeline.operations import apply_ops_lossless

    text = textwrap.dedent(
        """\
        .defaults: &img
          image: golang:1.22   # shared
        stages:
        - name: Build
          steps:
          - runScriptConfig:
              <<: *img
              shellScript: go build
        """
    )
    ops = [{"op": "set", "path": "stages[0].name", "value": "Compile"}]
    with pytest.raises(textedit.Unsupported):
        apply_ops_lossless(text, ops)
    out = apply_ops(text, ops)
    assert plain(out) == apply_ops_data(plain(text), ops)
    assert "# shared" in out and "&img" in out and "*img" in out


def test_shorthand_forms_stay_as_written():
    text = textwrap.dedent(
        """\
        stages:
        - name: Build
          when:
            branch: master
            event: [push]
          steps:
          - runScriptConfig:
              image: "golang:1.22"
              shellScript: go build
            cache: false
        branch: master
        """
    )
    out = apply_ops(text, [{"op": "set", "path": "stages[0].steps[0].runScriptConfig.image", "value": "golang:1.23"},
                           {"op": "set", "path": "stages[0].steps[0].privileged", "value": True}])
    assert out == text.replace('"golang:1.22"', '"golang:1.23"').replace(
        "    cache: false\n", "    cache: false\n    privileged: true\n")
