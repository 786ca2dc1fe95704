"""Every real Rancher file in ../shared/fixtures/rancher-pipelines (DESIGN §3, issue 2 point 7, issue 9 point 8).

Files SOURCES.md calls valid lint without errors; the ones it marks "Looks
invalid" fail with an error naming the field (path and line asserted); the
ones it marks "Runs only Clone" load, with a warning, as the Clone stage alone.
One file SOURCES.md calls valid fails in Rancher at run time (RANCHER_FAILS):
lint says so before anything runs.
"""
from __future__ import annotations

import re

import pytest

from devops.pipeline import dump, load
from tests.conftest import FIXTURES

DIR = FIXTURES / "rancher-pipelines"
FILES = sorted(p.name for p in DIR.glob("*.yml")) if DIR.is_dir() else []

# number -> (path, line, words the message must hold) of the error a user acts on
INVALID = {
    "047": ("stages[1].steps[0].applyYamlConfig", 12, "needs `path`"),
    "049": ("", 2, "mapping"),
    "050": ("stages[0].steps[0].env", 17, "must be a mapping"),
    "051": ("", 77, "tab"),
    "052": ("stages[0].steps[1]", 23, "indented too far"),
    "053": ("", 3, "line 2"),
    "054": ("stages[0].steps[0].cpuRequest", 7, "quantity"),
    "055": ("stages[2].steps[0].applyAppConfig.answers", 32, "must be a mapping"),
    "058": ("stages[1].steps[1]", 16, "found none"),
    "059": ("", 10, "tab"),
    "060": ("stages[0].steps[0].publishImageConfig.tag", 4, "needs `tag`"),
}


# Valid YAML for Rancher, which then fails the run: with `pushRemote: true` and no
# `registry`, convert.go sets the registry to "" and pushes to "/<repository>".
RANCHER_FAILS = {
    "044": ("stages[0].steps[0].publishImageConfig.pushRemote", 8, "needs a registry"),
}
CLONE_ONLY = {"048": ("stages", 1), "056": ("stages", 1), "057": ("stages", 1)}


def _number(name: str) -> str:
    return name[:3]


def test_sources_md_marks_exactly_these_invalid(rancher_dir):
    text = (rancher_dir / "SOURCES.md").read_text()
    rows = re.findall(r"^\| `(\d{3})-[^|]*\|.*\*\*Looks invalid", text, flags=re.MULTILINE)
    assert set(rows) == set(INVALID)
    clone_only = re.findall(r"^\| `(\d{3})-[^|]*\|.*\*\*Runs only Clone", text, flags=re.MULTILINE)
    assert set(clone_only) == set(CLONE_ONLY)
    assert len(FILES) == 60


@pytest.mark.parametrize("name", FILES)
def test_fixture(name, rancher_dir):
    content = (rancher_dir / name).read_bytes()  # byte-exact: BOM, CRLF, tabs kept
    result = load(content, filename=name)
    number = _number(name)
    if number in CLONE_ONLY:
        assert result.errors == (), [p.format(name) for p in result.errors]
        path, line = CLONE_ONLY[number]
        assert [p for p in result.warnings if p.path == path and p.line == line and "only the Clone stage" in p.message]
        assert [s.name for s in result.config.stages] == ["Clone"]
        assert load(dump(result.config)).config == result.config
        return
    if number not in INVALID and number not in RANCHER_FAILS:
        assert result.errors == (), [p.format(name) for p in result.errors]
        assert result.config is not None
        assert result.config.stages[0].steps[0].kind == "sourceCodeConfig"
        # the normalised form survives its own dump
        assert load(dump(result.config)).config == result.config
        return
    path, line, words = INVALID.get(number) or RANCHER_FAILS[number]
    assert result.config is None
    matching = [p for p in result.errors if p.path == path and p.line == line]
    assert matching, [p.format(name) for p in result.problems]
    assert words in matching[0].message


def test_literal_text_of_unquoted_values(rancher_file):
    # yaml.v2 into map[string]string keeps the literal text
    config = load(rancher_file("013")).config
    answers = {k: v for st in config.stages for s in st.steps if s.kind == "applyAppConfig" for k, v in s.type.answers}
    assert answers["db.tag"] == "10.2"
    assert answers["db.gui"] == "true"
    envs = {k: v for st in config.stages for s in st.steps for k, v in s.env}
    assert envs["max_wait"] == "128"
    env15 = dict(load(rancher_file("015")).config.stages[1].steps[0].env)
    assert env15["PLUGIN_DEBUG"] == "true" and env15["PLUGIN_MTU"] == "1000"


def test_explicit_clone_stage_is_not_doubled(rancher_file):
    for number in ("008", "036", "039"):
        stages = load(rancher_file(number)).config.stages
        kinds = [s.kind for st in stages for s in st.steps]
        assert kinds.count("sourceCodeConfig") == 1 and kinds[0] == "sourceCodeConfig"
        assert stages[0].name.lower() == "clone"
    assert dict(load(rancher_file("036")).config.stages[0].steps[0].env)  # its env is kept


def test_implicit_clone_stage_prepended(rancher_file):
    config = load(rancher_file("001")).config
    assert [s.name for s in config.stages][:2] == ["Clone", "Build"]
    assert config.stages[0].steps[0].kind == "sourceCodeConfig"


def test_constraint_forms(rancher_file):
    c20 = load(rancher_file("020")).config
    whens = [s.when for s in c20.stages]
    assert whens[2].branch.include == ("dev", "staging")
    assert whens[2].event.include == ("push", "pull_request")
    assert whens[3].branch.include == ("master",) and whens[3].event.include == ("tag",)
    c23 = load(rancher_file("023")).config
    assert c23.branch is None  # branch: {}
    assert all(s.when is None for st in c23.stages for s in st.steps)  # when: {branch: {}}
    c24 = load(rancher_file("024")).config
    assert c24.branch.include == ("master", "feature/*") and c24.branch.exclude == ("dev",)
    assert c24.timeout == 30


def test_bom_crlf_json_and_missing_newline(rancher_file):
    assert rancher_file("040").startswith(b"\xef\xbb\xbf")
    assert load(rancher_file("040")).ok
    assert b"\r\n" in rancher_file("030")
    shell = load(rancher_file("030")).config.stages[1].steps[0].type.shell_script
    assert "\r" not in shell
    assert load(rancher_file("039")).ok  # one line of JSON
    assert not rancher_file("001").endswith(b"\n") and load(rancher_file("001")).ok


@pytest.mark.parametrize(
    "number, path",
    [
        ("008", "name"),
        ("008", "stages[1].steps[0].runScriptConfig.isShell"),
        ("013", "stages[0].iiidevops"),
        ("019", "triggerWebhookTag"),
        ("021", "stages[0].steps[0].runScriptConfig.name"),
        ("031", "stages[0].steps[0].runScriptConfig.when"),
        ("032", "stages[0].steps[0].name"),
        ("046", "stages[0].artifacts"),
        ("047", "path"),
        ("055", "stages[1].steps[0].publishCatalogConfig.catalog"),
    ],
)
def test_unknown_keys_are_warnings(number, path, rancher_file):
    result = load(rancher_file(number))
    assert path in {p.path for p in result.warnings}, [p.format(number) for p in result.problems]
    assert path not in {p.path for p in result.errors}


def test_misplaced_when_says_where_it_belongs(rancher_file):
    (w,) = [p for p in load(rancher_file("031")).warnings if p.path.endswith("runScriptConfig.when")]
    assert "belongs to the step" in w.message and w.line == 10
