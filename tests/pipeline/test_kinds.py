"""The step kind table drives every place that knows step types (issue 9 point 4)."""
from __future__ import annotations

import typing
from importlib import import_module

import pytest
import yaml

from devops.pipeline import dump, load, substitute
from devops.pipeline.config import STEP_TYPES, Step, StepType
from devops.pipeline.kinds import BOOL, MAP, PATH, STEP_KINDS, TEXT


def test_every_step_type_has_one_record_and_the_config_union_is_built_from_them():
    assert tuple(STEP_KINDS) == STEP_TYPES
    assert set(typing.get_args(StepType)) == {k.config for k in STEP_KINDS.values()}
    for name, record in STEP_KINDS.items():
        assert record.name == name and record.label
        assert record.config.model_fields["kind"].default == name
        assert set(record.required) <= set(record.fields) and set(record.paths) <= set(record.fields)
        assert set(record.substituted) <= set(record.fields)


def _value(how: str, alias: str):
    return {TEXT: f"v-{alias}", PATH: f"dir/{alias}", BOOL: True, MAP: {"k": f"v-{alias}"}}[how]


@pytest.mark.parametrize("name", [n for n in STEP_TYPES if n != "sourceCodeConfig"])
def test_every_lint_field_of_a_record_reaches_the_config_and_the_dump(name):
    record = STEP_KINDS[name]
    body = {alias: _value(how, alias) for alias, how in record.fields.items()}
    if name == "applyYamlConfig":
        body.pop("content")  # path or content, not both
    if name == "publishImageConfig":
        body.update(tag="reg.example.com/app:1", registry="reg.example.com")
    text = yaml.safe_dump({"stages": [{"name": "s", "steps": [{name: body}]}]})
    result = load(text)
    assert result.problems == (), result.problems
    step = result.config.stages[1].steps[0]
    for alias, value in body.items():
        got = getattr(step.type, record.attribute(alias))
        assert (dict(got) if isinstance(got, tuple) else got) == value, alias
    assert load(dump(result.config)).config == result.config


def test_substitution_follows_the_records():
    text = ("stages:\n- name: s\n  steps:\n"
            "  - applyAppConfig: {catalogTemplate: 'c:${CICD_GIT_BRANCH}', answers: {a: '${CICD_GIT_BRANCH}'}}\n"
            "  - runScriptConfig: {image: 'img:${CICD_GIT_BRANCH}', shellScript: 'echo ${CICD_GIT_BRANCH}'}\n")
    config = substitute(load(text).config, {"CICD_GIT_BRANCH": "main"})
    app, run = config.stages[1].steps
    assert app.type.catalog_template == "c:main" and dict(app.type.answers) == {"a": "main"}
    assert run.type.image == "img:main" and run.type.shell_script == "echo ${CICD_GIT_BRANCH}"  # never scripts


def test_the_local_engine_loads_every_implementation_from_the_table():
    from devops.engines.local import steps
    from devops.engines.local.runtimes.base import StepRuntime

    assert steps.KINDS == {name: record.local for name, record in STEP_KINDS.items()}
    for name in STEP_TYPES:
        assert callable(steps.step_kind(name))
        assert callable(import_module(STEP_KINDS[name].local).run)
    runtime = StepRuntime()
    runtime.name, runtime.reason = "sandbox", "bwrap"
    assert steps.banner("runScriptConfig", runtime).startswith("runtime: sandbox (bwrap)")
    assert steps.banner("sourceCodeConfig", runtime) == "runtime: host (git clones on the host, outside any sandbox)"
    assert steps.banner("applyYamlConfig", runtime).startswith("runtime: host (applyYamlConfig runs Slipway's")


def test_a_step_holds_any_record_config():
    for record in STEP_KINDS.values():
        required = {alias: "x" for alias in record.required}
        cfg = record.config.model_validate({**required, "tag": "x"} if record.name == "publishImageConfig"
                                           else required)
        step = Step(type=cfg)
        assert Step.model_validate(step.model_dump(by_alias=True)) == step and step.kind == record.name
