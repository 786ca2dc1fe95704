"""Rancher fidelity of the pipeline file (issue 9 point 8).

Rancher v2.5 read the file with gopkg.in/yaml.v2 into its Go structs and
ignored unknown keys. A file Rancher ran must run here; what Rancher refused
or failed, lint reports before anything runs.
"""
from __future__ import annotations

import base64
import textwrap

import pytest

from devops.pipeline import dump, load


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def step(body: str, *, stage_extra: str = "", top: str = "") -> str:
    """A one-stage, one-step file; `body` is the step mapping (indented under `- `)."""
    lines = textwrap.dedent(body).strip("\n").splitlines()
    item = "  - " + lines[0] + "".join("\n    " + ln for ln in lines[1:])
    return "stages:\n- name: a\n" + stage_extra + "  steps:\n" + item + "\n" + top


def found(text: str, severity: str) -> dict[str, tuple[int, str]]:
    return {p.path: (p.line, p.message) for p in load(text).problems if p.severity == severity}


RUN = "runScriptConfig: {image: alpine, shellScript: make}"


# -- when.event ---------------------------------------------------------------

@pytest.mark.parametrize("where, owner", [("stage", "stage"), ("step", "step")])
def test_an_unknown_event_is_a_warning_the_stage_or_step_never_runs(where, owner):
    when = "when: {event: merge_request}"
    text = step(RUN + ("\n" + when if where == "step" else ""), stage_extra=f"  {when}\n" if where == "stage" else "")
    result = load(text)
    assert result.errors == () and result.config is not None
    ((path, (_, message)),) = found(text, "warning").items()
    assert path.endswith("when.event")
    assert "never matches" in message and f"the {owner} will always be skipped" in message
    w = result.config.stages[1].when if where == "stage" else result.config.stages[1].steps[0].when
    assert not w.matches(branch="main", event="push")  # it really never runs


def test_an_unknown_event_next_to_a_known_one_only_never_matches():
    text = step(RUN + "\nwhen: {event: [push, merge]}")
    (message,) = [m for _, m in found(text, "warning").values()]
    assert "never matches" in message and "always be skipped" not in message


# -- timeout ------------------------------------------------------------------

@pytest.mark.parametrize("value, minutes", [("0", 60), ("", 60), ("45", 45), ("0x2D", 45), ("055", 45),
                                            ("4_5", 45), ("45.9", 45), ("153722867", 153722867)])
def test_timeout_as_rancher_read_it(value, minutes):
    text = step(RUN, top=f"timeout: {value}\n" if value else "")
    result = load(text)
    assert result.errors == ()
    assert result.config.timeout == minutes


@pytest.mark.parametrize("value", ["153722868", "9223372036854775808", "1e30"])
def test_a_timeout_that_overflows_is_an_error(value):
    line, message = found(step(RUN, top=f"timeout: {value}\n"), "error")["timeout"]
    assert line == 5 and ("overflows" in message or "does not fit a Go int" in message)


def test_a_negative_timeout_runs_for_60_minutes_with_a_warning():
    text = step(RUN, top="timeout: -5\n")
    assert load(text).config.timeout == 60
    assert "60 minutes" in found(text, "warning")["timeout"][1]


@pytest.mark.parametrize("field, text", [
    ("timeout", step(RUN, top='timeout: "60"\n')),
    ("stages[0].steps[0].privileged", step(RUN + '\nprivileged: "yes"')),
    ("stages[0].steps[0].publishImageConfig.pushRemote",
     step("publishImageConfig: {tag: 'reg.io/app:1', pushRemote: \"true\"}")),
    ("stages[0].steps[0].privileged", step(RUN + "\nprivileged: !!str true")),
])
def test_quoted_numbers_and_booleans_run_with_a_warning_that_rancher_refuses_them(field, text):
    result = load(text)
    assert result.errors == ()
    assert "refuses the file" in found(text, "warning")[field][1]
    config = result.config
    s = config.stages[1].steps[0]
    value = {"timeout": config.timeout == 60, "privileged": s.privileged,
             "pushRemote": getattr(s.type, "push_remote", None)}[field.rsplit(".", 1)[-1]]
    assert value is True


def test_unquoted_yaml11_booleans_are_silent():
    text = step(RUN + "\nprivileged: yes")
    assert load(text).problems == () and load(text).config.stages[1].steps[0].privileged


# -- image references ---------------------------------------------------------

@pytest.mark.parametrize("tag, words", [
    ("my app:1", "spaces"),
    ("MyOrg/App:1", "capital letters"),
    ("app:1:2", "two colons"),
    ("app:-x", "not a valid image tag"),
    ("org//app", "not a valid repository name"),
    (":1", "names no repository"),
])
def test_a_bad_tag_is_an_error_naming_the_field(tag, words):
    path = "stages[0].steps[0].publishImageConfig.tag"
    line, message = found(step(f"publishImageConfig: {{tag: '{tag}'}}"), "error")[path]
    assert line == 4 and words in message


@pytest.mark.parametrize("registry, words", [
    ("http://reg.example.com", "URL scheme"),
    ("https://reg.example.com", "URL scheme"),
    ("reg example.com", "spaces"),
    ("reg.example.com:port", "not a registry host"),
])
def test_a_bad_registry_is_an_error_naming_the_field(registry, words):
    path = "stages[0].steps[0].publishImageConfig.registry"
    text = step(f"publishImageConfig: {{tag: 'app:1', pushRemote: true, registry: '{registry}'}}")
    line, message = found(text, "error")[path]
    assert line == 4 and words in message


def test_push_remote_needs_a_registry_somewhere():
    path = "stages[0].steps[0].publishImageConfig.pushRemote"
    assert "needs a registry" in found(step("publishImageConfig: {tag: 'org/app:1', pushRemote: true}"),
                                       "error")[path][1]
    for ok in ("publishImageConfig: {tag: 'org/app:1', pushRemote: true, registry: index.docker.io}",
               "publishImageConfig: {tag: 'reg.example.com:5000/org/app:1', pushRemote: true}",
               "publishImageConfig: {tag: 'org/app:1'}"):  # the built-in registry
        assert load(step(ok)).problems == (), ok


def test_variables_and_comma_separated_tags_are_valid():
    for tag in ("app:", "app:1,", "${CICD_GIT_REPO_NAME}:${CICD_GIT_BRANCH}-${CICD_EXECUTION_SEQUENCE}",
                "bjornadalno/${CICD_GIT_REPO_NAME}:1,1.${CICD_EXECUTION_SEQUENCE}", "Reg.Example.com/app"):
        assert load(step(f"publishImageConfig: {{tag: '{tag}'}}")).problems == (), tag


# -- ${CICD_GIT_TAG} ----------------------------------------------------------

def test_git_tag_in_a_publish_tag_warns_unless_the_step_runs_on_tags_only():
    publish = "publishImageConfig: {tag: 'org/app:${CICD_GIT_TAG}'}"
    path = "stages[0].steps[0].publishImageConfig.tag"
    line, message = found(step(publish), "warning")[path]
    assert line == 4 and "push, pull_request, manual" in message and "event: tag" in message
    line, message = found(step(publish + "\nwhen: {event: [tag, push]}"), "warning")[path]
    assert "push runs" in message
    assert load(step(publish + "\nwhen: {event: tag}")).problems == ()
    assert load(step(publish, stage_extra="  when: {event: {include: [tag]}}\n")).problems == ()


# -- env names ----------------------------------------------------------------

@pytest.mark.parametrize("name", ["1X", "'A B'", "''", "'A=B'", "'..x'"])
def test_env_names_kubernetes_refuses_are_errors(name):
    errors = found(step(RUN + f"\nenv: {{{name}: v}}"), "error")
    ((path, (line, message)),) = errors.items()
    assert path.startswith("stages[0].steps[0].env") and line == 5 and "environment variable name" in message


def test_env_from_names_the_variable_by_target_or_source_key():
    text = step(RUN + "\nenvFrom:\n- {sourceName: s, sourceKey: 'my key'}\n- {sourceName: s, sourceKey: k, targetKey: 9X}")
    errors = found(text, "error")
    assert set(errors) == {"stages[0].steps[0].envFrom[0].sourceKey", "stages[0].steps[0].envFrom[1].targetKey"}
    ok = step(RUN + "\nenvFrom:\n- {sourceName: s, sourceKey: 'my key', targetKey: MY_KEY}\nenv: {my.env-name: 1}")
    assert load(ok).problems == ()


# -- YAML as yaml.v2 read it --------------------------------------------------

def test_merge_keys_apply_in_file_order_as_in_yaml_v2():
    text = doc("""
    x-a: &a {image: golang, shellScript: from-a}
    x-b: &b {image: python}
    stages:
    - name: a
      steps:
      - runScriptConfig:
          image: written-before
          <<: [*a, *b]
      - runScriptConfig:
          <<: *a
          shellScript: written-after
    """)
    result = load(text)
    (warning,) = result.problems  # the surprise is said: `<<` after `image` replaced it
    assert warning.severity == "warning" and warning.path == "stages[0].steps[0].runScriptConfig.image"
    assert warning.line == 7 and "`<<` at line 8" in warning.message
    first, second = result.config.stages[1].steps
    assert (first.type.image, first.type.shell_script) == ("golang", "from-a")  # the merge came later; *a before *b
    assert (second.type.image, second.type.shell_script) == ("golang", "written-after")


def test_binary_scalars_are_decoded_as_in_yaml_v2():
    script = base64.b64encode(b"echo hello\n").decode()
    text = step(f"runScriptConfig:\n  image: alpine\n  shellScript: !!binary |\n    {script[:8]}\n    {script[8:]}"
                + f"\nenv: {{TOKEN: !!binary {base64.b64encode(b'abc').decode()}}}")
    result = load(text)
    assert result.problems == ()
    s = result.config.stages[1].steps[0]
    assert s.type.shell_script == "echo hello\n" and dict(s.env) == {"TOKEN": "abc"}
    assert load(dump(result.config)).config == result.config
    bad = found(step("runScriptConfig: {image: !!binary 'not base64!'}"), "error")
    assert "not valid base64" in bad["stages[0].steps[0].runScriptConfig.image"][1]


# -- messages -----------------------------------------------------------------

def test_a_missing_space_after_the_dash_gets_a_hint():
    text = "stages:\n-name: a\n  steps:\n  - " + RUN + "\n"
    (problem,) = load(text).problems
    assert problem.is_error and "line 2 reads `-name:`" in problem.message and "`- name:`" in problem.message
    text = step("runScriptConfig:\n  -image: alpine")
    problems = {p.path: p for p in load(text).problems}
    assert "a list item is `- image:`" in problems["stages[0].steps[0].runScriptConfig.-image"].message


@pytest.mark.parametrize("text", ["", "timeout: 30\n", "stages: []\n", "stages:\n", "apiVersion: v1\nkind: Pod\n"])
def test_no_stages_runs_the_clone_stage_alone_with_a_warning(text):
    result = load(text)
    assert result.errors == ()
    assert any("only the Clone stage" in p.message for p in result.warnings)
    assert [s.name for s in result.config.stages] == ["Clone"]
