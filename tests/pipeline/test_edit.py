"""apply_edit: round-trip edits keep comments, key order, quoting and anchors."""
from __future__ import annotations

import difflib
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from devops.pipeline import EditError, apply_edit, load

ORIGINAL = textwrap.dedent(
    """\
    # Build and ship
    stages:
    - name: Build   # the build
      steps:
      - runScriptConfig:
          image: golang:1.22
          shellScript: |-
            go build ./...
            go test ./...
        env:
          CGO_ENABLED: '0'     # quoted on purpose
          LEVEL: 10.20
    # publishing
    - name: Publish
      steps:
      - publishImageConfig:
          tag: "org/app:${CICD_EXECUTION_SEQUENCE}"
    timeout: 30
    notification: {}
    """
)


def plain(text: str):
    return YAML(typ="safe").load(text)


def test_unchanged_data_gives_the_same_text():
    assert apply_edit(ORIGINAL, plain(ORIGINAL)) == ORIGINAL


def test_change_one_value_keeps_everything_else():
    data = plain(ORIGINAL)
    data["timeout"] = 45
    data["stages"][1]["steps"][0]["publishImageConfig"]["tag"] = "org/app:v2"
    out = apply_edit(ORIGINAL, data)
    assert out == ORIGINAL.replace("timeout: 30", "timeout: 45").replace(
        '"org/app:${CICD_EXECUTION_SEQUENCE}"', '"org/app:v2"'
    )


def test_insert_stage_and_key_keep_comments_and_order():
    data = plain(ORIGINAL)
    data["stages"].insert(1, {"name": "Lint", "steps": [{"runScriptConfig": {"image": "golangci/golangci-lint"}}]})
    data["stages"][0]["steps"][0]["env"]["NEW"] = "x"
    out = apply_edit(ORIGINAL, data)
    for comment in ("# Build and ship", "# the build", "# quoted on purpose", "# publishing"):
        assert comment in out
    assert out.index("name: Build") < out.index("name: Lint") < out.index("name: Publish")
    assert "CGO_ENABLED: '0'" in out and "LEVEL: 10.20" in out
    assert out.index("LEVEL") < out.index("NEW")
    assert plain(out) == data
    assert load(out).ok


def test_delete_keys_and_items():
    data = plain(ORIGINAL)
    del data["notification"]
    del data["stages"][0]["steps"][0]["env"]["LEVEL"]
    out = apply_edit(ORIGINAL, data)
    assert plain(out) == data
    assert "# quoted on purpose" in out and "notification" not in out


def test_anchors_kept_and_shared_nodes_not_changed_through_an_alias():
    text = textwrap.dedent(
        """\
        x-env: &env {A: '1'}   # shared
        stages:
        - name: a
          steps:
          - runScriptConfig: {image: alpine}
            env: *env
          - runScriptConfig: {image: busybox}
            env: *env
        """
    )
    data = plain(text)
    assert apply_edit(text, data) == text
    data["stages"][0]["steps"][1]["env"] = {"A": "2"}
    out = apply_edit(text, data)
    assert plain(out) == data
    assert plain(out)["stages"][0]["steps"][0]["env"] == {"A": "1"}
    assert "&env" in out and "# shared" in out


def test_crlf_bom_and_indented_sequences_are_kept():
    text = "\ufeffstages:\r\n  - name: a   # c\r\n    steps:\r\n      - runScriptConfig:\r\n          image: alpine\r\n"
    data = plain(text)
    assert apply_edit(text, data) == text
    data["stages"][0]["steps"][0]["runScriptConfig"]["image"] = "busybox"
    assert apply_edit(text, data) == text.replace("alpine", "busybox")


def test_refuses_hostile_or_broken_originals():
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n' + "\n".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]" for i in range(8)
    )
    with pytest.raises(EditError, match="alias"):
        apply_edit(bomb, {})
    with pytest.raises(EditError):
        apply_edit("stages: [a\n", {})
    with pytest.raises(EditError):
        apply_edit("- a\n", {"stages": []})


def test_fixture_edits_are_minimal(rancher_dir):
    """Identity edits give back every valid fixture byte for byte; a small edit changes few lines."""
    small = 0
    valid = [p for p in sorted(rancher_dir.glob("*.yml")) if int(p.name[:3]) < 47]
    for path in valid:
        text = path.read_bytes().decode("utf-8")
        data = plain(text)
        assert apply_edit(text, data) == text, path.name
        data["stages"][-1]["name"] = "Renamed"
        out = apply_edit(text, data)
        assert plain(out) == data, path.name
        comments = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("#")]
        assert all(c in out for c in comments), path.name
        changed = [ln for ln in difflib.unified_diff(text.splitlines(), out.splitlines(), n=0)
                   if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
        small += len(changed) <= 2
    # files with mixed indentation are re-rendered whole; the rest change one line
    assert small >= len(valid) - 5, small


values = st.one_of(st.text(max_size=8), st.integers(-5, 5), st.booleans())


@settings(max_examples=40, deadline=None, database=None)
@given(st.lists(st.tuples(st.from_regex(r"[A-Z]{1,4}", fullmatch=True), values), max_size=6, unique_by=lambda t: t[0]),
       st.data())
def test_edits_keep_comments_and_key_order(new_env, data):
    data_ = plain(ORIGINAL)
    env = data_["stages"][0]["steps"][0]["env"]
    for k, v in new_env:
        env[k] = v
    if data.draw(st.booleans()):
        env.pop("LEVEL")
    out = apply_edit(ORIGINAL, data_)
    assert plain(out) == data_
    for comment in ("# Build and ship", "# the build", "# publishing"):
        assert comment in out
    order = [k for k in ("stages", "timeout", "notification") if k in out]
    assert [out.index(k + ":") for k in order] == sorted(out.index(k + ":") for k in order)
    assert list(plain(out)["stages"][0]["steps"][0]["env"]) == list(env)
