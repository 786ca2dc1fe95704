"""No input crashes the parser: every text gives a LoadResult, errors have positions."""
from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from devops.pipeline import load

KEYS = st.sampled_from(
    ["stages", "name", "steps", "when", "branch", "event", "include", "exclude", "cache", "paths", "enabled",
     "env", "envFrom", "sourceName", "sourceKey", "runScriptConfig", "publishImageConfig", "applyYamlConfig",
     "applyAppConfig", "publishCatalogConfig", "sourceCodeConfig", "image", "tag", "path", "answers", "timeout",
     "notification", "recipients", "condition", "privileged", "cpuLimit", "x-y", "<<"]
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=6))
TREES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=4), inner, max_size=5),
    max_leaves=30,
)


def check(result):
    assert (result.config is None) == bool(result.errors)
    for p in result.problems:
        assert p.line >= 1 and p.column >= 1 and p.severity in ("error", "warning") and p.message


@settings(max_examples=80, deadline=None, database=None)
@given(TREES)
def test_any_yaml_shape_is_linted_without_crashing(tree):
    check(load(yaml.safe_dump(tree)))
    check(load(yaml.safe_dump({"stages": [{"name": "s", "steps": [tree]}]})))


@settings(max_examples=80, deadline=None, database=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_are_linted_without_crashing(data):
    check(load(data))
