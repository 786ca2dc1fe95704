"""Lint error cases (issue 2 point 3): each names the field path and line."""
from __future__ import annotations

import textwrap

import pytest

from devops.pipeline import lint, load


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def errors(text: str) -> dict[str, tuple[int, str]]:
    return {p.path: (p.line, p.message) for p in lint(doc(text)) if p.severity == "error"}


def one_error(text: str, path: str, line: int) -> str:
    found = errors(text)
    assert path in found, found
    assert found[path][0] == line, found
    return found[path][1]


RUN = "  - runScriptConfig: {image: alpine, shellScript: 'true'}\n"


@pytest.mark.parametrize(
    "text, path, line, words",
    [
        ("stages: hello\n", "stages", 1, "must be a list"),
        ("stages:\n- name: a\n  steps: {x: 1}\n", "stages[0].steps", 3, "must be a list"),
        ("stages:\n- name: a\n  steps:\n  - runScriptConfig: alpine\n", "stages[0].steps[0].runScriptConfig", 4,
         "must be a mapping"),
        ("stages:\n- name: a\n  steps:\n" + RUN + "    env: [A=1]\n", "stages[0].steps[0].env", 5, "must be a mapping"),
        ("stages:\n- name: a\n  steps:\n" + RUN + "    env: {A: {b: c}}\n", "stages[0].steps[0].env.A", 5,
         "must be text"),
        ("stages:\n- name: a\n  steps:\n" + RUN + "    privileged: maybe\n", "stages[0].steps[0].privileged", 5,
         "true or false"),
        ("stages:\n- name: a\n  steps:\n" + RUN + "timeout: soon\n", "timeout", 5, "whole number"),
        ("stages:\n- name: a\n  steps:\n" + RUN + "timeout: true\n", "timeout", 5, "whole number"),
        ("stages:\n- name: a\n  steps:\n  - publishImageConfig: {tag: x, pushRemote: sure}\n",
         "stages[0].steps[0].publishImageConfig.pushRemote", 4, "true or false"),
        ("stages:\n- name: a\n  steps:\n" + RUN + "  when: yes\n", "stages[0].when", 5, "must be a mapping"),
        ("stages:\n- steps:\n" + RUN, "stages[0].name", 2, "needs a `name`"),
        ("stages:\n- name: a\n", "stages[0].steps", 2, "needs `steps:`"),
        ("stages:\n- name: a\n  steps: []\n", "stages[0].steps", 3, "empty"),
        ("- a\n- b\n", "", 1, "mapping"),
    ],
)
def test_wrong_types_and_shapes(text, path, line, words):
    assert words in one_error(text, path, line)


def test_step_with_zero_or_two_types():
    text = """
    stages:
    - name: a
      steps:
      - env: {A: b}
      - runScriptConfig: {image: alpine}
        publishImageConfig: {tag: x}
    """
    assert "found none" in one_error(text, "stages[0].steps[0]", 4)
    assert "runScriptConfig and publishImageConfig" in one_error(text, "stages[0].steps[1].publishImageConfig", 6)


def test_missing_required_fields():
    text = """
    stages:
    - name: a
      steps:
      - runScriptConfig: {shellScript: make}
      - publishImageConfig: {dockerfilePath: ./Dockerfile}
      - runScriptConfig: {image: ''}
      - applyAppConfig: {name: x}
      - publishCatalogConfig: {catalogTemplate: x}
      - applyYamlConfig: {namespace: x}
    """
    assert "needs `image`" in one_error(text, "stages[0].steps[0].runScriptConfig.image", 4)
    assert "needs `tag`" in one_error(text, "stages[0].steps[1].publishImageConfig.tag", 5)
    assert "needs `image`" in one_error(text, "stages[0].steps[2].runScriptConfig.image", 6)
    assert one_error(text, "stages[0].steps[3].applyAppConfig.catalogTemplate", 7)
    assert one_error(text, "stages[0].steps[4].publishCatalogConfig.path", 8)
    assert "`path`" in one_error(text, "stages[0].steps[5].applyYamlConfig", 9)


def test_bad_globs_and_unknown_events():
    # Rancher never matches an unknown event (a warning, issue 9 point 8); a bad glob is an error
    text = """
    stages:
    - name: a
      when:
        event: [push, merge]
        branch: {include: ['release-[0-9'], exclude: ['x\\']}
      steps:
      - runScriptConfig: {image: alpine}
        when: {event: {exclude: [pr]}}
    branch: ['[]']
    """
    assert "bad branch pattern" in one_error(text, "stages[0].when.branch.include[0]", 5)
    assert "bad branch pattern" in one_error(text, "stages[0].when.branch.exclude[0]", 5)
    assert one_error(text, "branch[0]", 9)
    warned = {p.path: p.message for p in lint(doc(text)) if p.severity == "warning"}
    assert "unknown event 'merge' never matches" in warned["stages[0].when.event[1]"]
    assert "push, pull_request and tag" in warned["stages[0].steps[0].when.event.exclude[0]"]
    assert not [p for p in errors(text) if ".event" in p]


@pytest.mark.parametrize(
    "step, path",
    [
        ("publishImageConfig: {tag: x, dockerfilePath: ../Dockerfile}", "publishImageConfig.dockerfilePath"),
        ("publishImageConfig: {tag: x, buildContext: /srv/app}", "publishImageConfig.buildContext"),
        ("publishImageConfig: {tag: x, buildContext: 'a/../../b'}", "publishImageConfig.buildContext"),
        ("applyYamlConfig: {path: ../../etc/passwd}", "applyYamlConfig.path"),
        ("applyYamlConfig: {path: 'C:\\\\deploy.yaml'}", "applyYamlConfig.path"),
        ("publishCatalogConfig: {path: /charts, catalogTemplate: x}", "publishCatalogConfig.path"),
    ],
)
def test_paths_that_escape_the_workspace(step, path):
    text = f"stages:\n- name: a\n  steps:\n  - {step}\n"
    message = one_error(text, f"stages[0].steps[0].{path}", 4)
    assert "workspace" in message or "absolute" in message


def test_cache_paths():
    text = """
    cache: {paths: [/root/.cache/pip, node_modules, ./vendor]}
    stages:
    - name: a
      cache: ['../outside']
      steps:
      - runScriptConfig: {image: alpine}
        cache: {paths: ['']}
    """
    found = errors(text)
    assert "cache" not in found  # absolute cache paths live inside the container: allowed
    assert "workspace" in one_error(text, "stages[0].cache[0]", 4)
    assert "empty" in one_error(text, "stages[0].steps[0].cache.paths[0]", 7)


@pytest.mark.parametrize("value, words", [
    (".", "whole workspace"), ("./", "whole workspace"), ("src/..", "whole workspace"),
    ("/", "root directory"), ("//", "root directory"), ("/usr/..", "root directory"),
])
def test_cache_path_that_is_the_whole_workspace_or_root(value, words):
    # The engine skips "." (restoring it would overwrite the fresh checkout) and
    # a cache mounted over "/" hides the image: lint says so before anything runs.
    text = f"stages:\n- name: a\n  steps:\n  - runScriptConfig: {{image: alpine}}\n    cache: ['{value}']\n"
    assert words in one_error(text, "stages[0].steps[0].cache[0]", 5)


def test_env_from_needs_source_name_and_key():
    text = """
    stages:
    - name: a
      steps:
      - runScriptConfig: {image: alpine}
        envFrom:
        - {sourceKey: token}
        - sourceName: s
          targetKey: T
        - just-a-string
    """
    assert "sourceName" in one_error(text, "stages[0].steps[0].envFrom[0].sourceName", 6)
    assert "sourceKey" in one_error(text, "stages[0].steps[0].envFrom[1].sourceKey", 7)
    assert one_error(text, "stages[0].steps[0].envFrom[2]", 9)


def test_duplicate_keys_warn_and_the_later_wins():
    # yaml.v2 (Rancher) sets a repeated key twice: the later value is the one that runs
    text = """
    stages:
    - name: a
      steps:
      - runScriptConfig:
          image: alpine
          image: busybox
        env: {A: '1', A: '2'}
    timeout: 10
    timeout: 20
    """
    result = load(doc(text))
    assert result.errors == ()
    assert "first at line 8" in {p.path: p.message for p in result.warnings}["timeout"]
    warned = {(p.path, p.line) for p in result.warnings if "duplicate key" in p.message}
    assert warned == {("stages[0].steps[0].runScriptConfig.image", 6), ("stages[0].steps[0].env.A", 7),
                      ("timeout", 9)}
    step = result.config.stages[1].steps[0]
    assert step.type.image == "busybox" and dict(step.env) == {"A": "2"} and result.config.timeout == 20


def test_resource_quantities():
    text = "stages:\n- name: a\n  steps:\n" + RUN + "    cpuLimit: 2 cores\n    memoryRequest: 64Mi\n"
    assert "quantity" in one_error(text, "stages[0].steps[0].cpuLimit", 5)
    assert "stages[0].steps[0].memoryRequest" not in errors(text)


def test_every_problem_in_one_pass():
    text = """
    stages:
    - name: a
      steps:
      - runScriptConfig: {shellScript: x}
      - publishImageConfig: {dockerfilePath: ../x}
        when: {event: merge}
    timeout: abc
    bogus: 1
    """
    problems = lint(doc(text))
    assert [(p.path, p.line, p.severity) for p in problems] == [
        ("stages[0].steps[0].runScriptConfig.image", 4, "error"),
        ("stages[0].steps[1].publishImageConfig.tag", 5, "error"),  # at the key, column 5
        ("stages[0].steps[1].publishImageConfig.dockerfilePath", 5, "error"),
        ("stages[0].steps[1].when.event", 6, "warning"),
        ("timeout", 7, "error"),
        ("bogus", 8, "warning"),
    ]
    for p in problems:
        assert p.column >= 1


def test_unknown_keys_warn_and_anchor_holders_are_silent():
    text = """
    x-defaults: &img {image: 'golang:1.22'}
    .common: &env {GOFLAGS: -mod=vendor}
    name: my pipeline
    stages:
    - name: Build
      iiidevops: sonar
      steps:
      - runScriptConfig:
          <<: *img
          shellScript: go build
        env: *env
        color: blue
    """
    result = load(doc(text))
    assert result.ok
    assert {p.path for p in result.warnings} == {"name", "stages[0].iiidevops", "stages[0].steps[0].color"}
    step = result.config.stages[1].steps[0]
    assert step.type.image == "golang:1.22" and dict(step.env) == {"GOFLAGS": "-mod=vendor"}


def test_kind_conversions():
    text = """
    stages:
    - name: a
      steps:
      - runScriptConfig: {image: alpine}
        env: {N: 0x1F, F: 10.20, B: yes, E: , Q: "007"}
        privileged: yes
      - applyAppConfig:
          catalogTemplate: cattle-global-data:library-mysql
          answers: {db.tag: 10.20, web.port: 8080, tls: true}
    timeout: 0x2D
    """
    result = load(doc(text))
    assert result.problems == ()
    config = result.config
    assert config.timeout == 45
    step = config.stages[1].steps[0]
    assert dict(step.env) == {"N": "0x1F", "F": "10.20", "B": "yes", "E": "", "Q": "007"}
    assert step.privileged is True
    answers = dict(config.stages[1].steps[1].type.answers)
    assert answers == {"db.tag": "10.20", "web.port": "8080", "tls": "true"}


def test_defaults_and_empty_forms():
    text = """
    stages:
    - name: a
      when: {branch: {}}
      steps:
      - publishImageConfig: {tag: 'x:1', dockerfilePath: '', buildContext: ''}
        when: {branch: {}, event: {}}
    branch: {}
    notification: {}
    """
    config = load(doc(text)).config
    step = config.stages[1].steps[0]
    assert (step.type.dockerfile_path, step.type.build_context) == ("./Dockerfile", ".")
    assert config.timeout == 60
    assert config.branch is None and config.notification is None
    assert config.stages[1].when is None and step.when is None


@pytest.mark.parametrize(
    "value, expected",
    [
        ("false", {"enabled": False, "paths": ()}),
        ("true", {"enabled": True, "paths": ()}),
        ("[node_modules, /root/.m2]", {"enabled": None, "paths": ("node_modules", "/root/.m2")}),
        ("{enabled: false}", {"enabled": False, "paths": ()}),
        ("{enabled: true, paths: [.venv]}", {"enabled": True, "paths": (".venv",)}),
        ("{paths: vendor}", {"enabled": None, "paths": ("vendor",)}),
        ("{}", None),
    ],
)
def test_accepted_cache_forms(value, expected):
    text = f"cache: {value}\nstages:\n- name: a\n  cache: {value}\n  steps:\n" + RUN + f"    cache: {value}\n"
    result = load(text)
    assert result.ok, result.problems
    c = result.config
    for level in (c.cache, c.stages[1].cache, c.stages[1].steps[0].cache):
        assert (level.model_dump() if level else None) == expected


def test_bad_cache_forms():
    text = "cache: sometimes\nstages:\n- name: a\n  cache: {enabled: maybe, dirs: [x]}\n  steps:\n" + RUN
    assert one_error(text, "cache", 1)
    assert one_error(text, "stages[0].cache.enabled", 4)
    assert "stages[0].cache.dirs" in {p.path for p in lint(text) if p.severity == "warning"}
