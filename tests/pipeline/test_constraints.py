"""Constraint matching (DESIGN §3): Go filepath.Match globs, include/exclude, events."""
from __future__ import annotations

import pytest

from devops.pipeline import load, should_run
from devops.pipeline.config import Constraint, Constraints, glob_match, glob_problem


@pytest.mark.parametrize(
    "pattern, value, expected",
    [
        ("master", "master", True),
        ("master", "main", False),
        ("release-*", "release-1.2", True),
        ("release-*", "release-", True),
        ("feature/*", "feature/login", True),
        ("feature/*", "feature/a/b", False),  # `*` does not cross `/`
        ("*", "a/b", False),
        ("**", "a/b", False),  # Go: `**` is `*` twice, still no `/`
        ("*/*", "a/b", True),
        ("v?.?", "v1.2", True),
        ("v?", "v/", False),  # `?` does not match `/`
        ("v[0-9]*", "v10", True),
        ("v[0-9]*", "vx", False),
        ("[^a]x", "bx", True),
        ("[^a]x", "ax", False),
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("[z-a]", "m", False),
        ("release/[", "release/[", True),  # a bad pattern still matches itself (Rancher checks equality first)
        ("release/[", "release/x", False),
        ("", "", True),
        ("", "main", False),
    ],
)
def test_glob_match(pattern, value, expected):
    assert glob_match(pattern, value) is expected


@pytest.mark.parametrize("pattern", ["[abc", "x\\", "[]", "[a-]", "[-a]"])
def test_bad_globs(pattern):
    assert glob_problem(pattern)


@pytest.mark.parametrize("pattern", ["main", "release-*", "[a-z]*", "a\\[b", "*/*", "[^x]"])
def test_good_globs(pattern):
    assert glob_problem(pattern) is None


@pytest.mark.parametrize(
    "include, exclude, value, expected",
    [
        ((), (), "anything", True),  # empty include matches everything
        (("main",), (), "main", True),
        (("main",), (), "dev", False),
        ((), ("wip-*",), "wip-1", False),
        ((), ("wip-*",), "main", True),
        (("release-*",), ("release-old",), "release-old", False),  # exclude wins
        (("release-*",), ("release-old",), "release-new", True),
        (("*",), ("*",), "main", False),
    ],
)
def test_constraint(include, exclude, value, expected):
    assert Constraint(include=include, exclude=exclude).matches(value) is expected


PUSH_ONLY = Constraints(event=Constraint(include=("push",)))
NOT_PR = Constraints(event=Constraint(exclude=("pull_request",)))
MAIN_PUSH = Constraints(branch=Constraint(include=("main",)), event=Constraint(include=("push", "tag")))


@pytest.mark.parametrize(
    "when, branch, event, expected",
    [
        (PUSH_ONLY, "main", "push", True),
        (PUSH_ONLY, "main", "pull_request", False),
        (PUSH_ONLY, "main", "", False),  # a manual run has no event: an event include does not match it
        (NOT_PR, "main", "", True),
        (NOT_PR, "main", "pull_request", False),
        (NOT_PR, "main", "tag", True),
        (MAIN_PUSH, "main", "tag", True),
        (MAIN_PUSH, "dev", "push", False),
        (MAIN_PUSH, "main", "pull_request", False),
        (Constraints(), "x", "", True),
    ],
)
def test_constraints(when, branch, event, expected):
    assert when.matches(branch=branch, event=event) is expected


def test_should_run_uses_top_level_branch():
    text = (
        "stages:\n- name: a\n  steps:\n  - runScriptConfig: {image: alpine}\n"
        "branch: {include: [main, 'release/*'], exclude: [release/old]}\n"
    )
    config = load(text).config
    assert should_run(config, branch="main", event="push")
    assert should_run(config, branch="release/1", event="tag")
    assert not should_run(config, branch="release/old", event="push")
    assert not should_run(config, branch="release/1/x", event="push")
    assert not should_run(config, branch="dev", event="")
    no_branch = load("stages:\n- name: a\n  steps:\n  - runScriptConfig: {image: alpine}\n").config
    assert should_run(no_branch, branch="anything", event="pull_request")
    assert should_run(no_branch, branch="main", event="")


def test_fixture_022_step_when_globs(rancher_file):
    config = load(rancher_file("022")).config
    assert should_run(config, branch=config.branch.include[0], event="push")
    whens = [s.when for st in config.stages for s in st.steps if s.when and s.when.branch]
    assert any(w.matches(branch="release/2.0", event="push") for w in whens)
    assert not any(w.matches(branch="release/2.0/hotfix", event="push") for w in whens if "release/*" in w.branch.include)
