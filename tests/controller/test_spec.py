"""Models -> RunSpec: CICD_* environment, envFrom secrets (none on pull requests), git auth, masks."""
from __future__ import annotations

import pytest

from devops.controller.spec import build_spec, repo_name
from devops.models import PipelineExecution, Secret, SourceCodeCredential
from devops.pipeline.config import (
    EnvFrom,
    PipelineConfig,
    RunScriptConfig,
    SourceCodeConfig,
    Stage,
    Step,
)

from .conftest import new_execution


def config_with_env_from() -> PipelineConfig:
    step = Step(type=RunScriptConfig(image="a", shellScript="b"),
                envFrom=(EnvFrom(sourceName="deploy", sourceKey="token", targetKey="TOKEN"),))
    return PipelineConfig(stages=(Stage(name="Clone", steps=(Step(type=SourceCodeConfig()),)),
                                  Stage(name="B", steps=(step,))))


@pytest.fixture
def secret_pipeline(pipeline, project):
    Secret.objects.create(project=project, name="deploy", data={"token": "tok-123", "other": "zz"})
    Secret.objects.create(project=project, name="unrelated", data={"x": "never-sent"})
    cred = SourceCodeCredential.objects.create(project=project, name="c", source_code_type="git",
                                               login_name="bot", access_token="ghp_abc", ssh_private_key="KEY")
    pipeline.credential = cred
    pipeline.repository_url = "https://git.example.com/org/My-App.git"
    pipeline.save()
    project.settings.filter(name="pip-index-url").update(value="http://127.0.0.1:3141/simple")
    return pipeline


def full(ex):
    return PipelineExecution.objects.select_related("project", "pipeline", "pipeline__credential").get(pk=ex.pk)


def test_cicd_environment_and_secrets(secret_pipeline, project):
    ex = new_execution(secret_pipeline, config_with_env_from(), branch="feat/x", event="tag",
                       ref="refs/tags/v1.2", commit="c" * 40, trigger_type="webhook")
    spec = build_spec(full(ex))
    env = spec.env
    assert env["CICD_GIT_URL"] == "https://git.example.com/org/My-App.git"
    assert env["CICD_GIT_REPO_NAME"] == "My-App"
    assert (env["CICD_GIT_BRANCH"], env["CICD_GIT_TAG"], env["CICD_GIT_REF"]) == ("feat/x", "v1.2", "refs/tags/v1.2")
    assert (env["CICD_EVENT"], env["CICD_TRIGGER_TYPE"]) == ("tag", "webhook")
    assert (env["CICD_EXECUTION_ID"], env["CICD_EXECUTION_SEQUENCE"]) == (ex.name, "1")
    assert (env["CICD_PIPELINE_ID"], env["CICD_PROJECT_ID"]) == (secret_pipeline.name, project.id)
    assert env["CICD_CLUSTER_ID"] == project.cluster_id and "CICD_LOCAL_REGISTRY" in env
    assert env["CICD_GIT_COMMIT"] == "c" * 40
    assert env["PIP_INDEX_URL"] == "http://127.0.0.1:3141/simple"
    assert spec.secrets == {"deploy": {"token": "tok-123", "other": "zz"}}  # only what envFrom names
    assert spec.git_auth.token == "ghp_abc" and spec.git_auth.username == "bot"
    assert {"tok-123", "ghp_abc", "KEY"} <= set(spec.mask) and "never-sent" not in spec.mask
    assert spec.settings["executor-quota"] == "2"
    assert spec.config.stages[1].steps[0].env_from[0].name == "TOKEN"


def test_pull_requests_never_get_secrets(secret_pipeline):
    ex = new_execution(secret_pipeline, config_with_env_from(), event="pull_request")
    spec = build_spec(full(ex))
    assert spec.secrets == {} and "tok-123" not in spec.mask


def test_untrusted_branch_names_are_plain_values(pipeline):
    ex = new_execution(pipeline, branch="$(touch /tmp/pwned);rm -rf ~")
    assert build_spec(full(ex)).env["CICD_GIT_BRANCH"] == "$(touch /tmp/pwned);rm -rf ~"


def test_repo_name():
    assert repo_name("git@github.com:org/app.git") == "app" and repo_name("/srv/git/tool/") == "tool"


def test_deploy_gets_a_plain_project_spec(secret_pipeline, project):
    """engine.deploy() receives namespace, settings and secrets as plain data, not an id."""
    from devops.controller.spec import build_project_spec
    from devops.engines.base import ProjectSpec

    spec = build_project_spec(project)
    assert isinstance(spec, ProjectSpec)
    assert (spec.project_id, spec.cluster_id, spec.namespace) == (project.id, "local", f"{project.id}-pipeline")
    assert spec.settings["pip-index-url"] == "http://127.0.0.1:3141/simple"
    assert spec.settings["executor-quota"] == project.setting("executor-quota")
    assert spec.secrets == {"deploy": {"token": "tok-123", "other": "zz"}, "unrelated": {"x": "never-sent"}}
    assert "tok-123" not in repr(spec)  # secret values never reach a log line through repr
def test_pull_request_specs_are_untrusted_without_registry_credentials(secret_pipeline, project, data_dir):
    from devops.engines.local import state as st
    from devops.models import RegistryCredential

    RegistryCredential.objects.create(project=project, host="harbor.example.com", username="robot",
                                      password="reg-pw-PLANTED")
    pr = build_spec(full(new_execution(secret_pipeline, config_with_env_from(), event="pull_request")))
    assert pr.trusted is False
    assert "harbor.example.com" not in pr.registry_auth and "reg-pw-PLANTED" not in pr.mask
    assert pr.secrets == {}
    assert st.spec_from_json(st.spec_to_json(pr)).trusted is False  # survives the runner's spec.json

    push = build_spec(full(new_execution(secret_pipeline, config_with_env_from(), event="push")))
    assert push.trusted is True
    assert push.registry_auth["harbor.example.com"] == ("robot", "reg-pw-PLANTED") and "reg-pw-PLANTED" in push.mask
    assert push.secrets["deploy"]["token"] == "tok-123"


def test_built_in_registry_credential_is_the_projects_own_and_pull_only_for_pull_requests(
        secret_pipeline, project, data_dir):
    """Never the registry's internal account; a pull request's run gets its own `+pr+<execution>`
    credential, pushing only to `<project>/pr/<execution>/` (registry/tokens.py)."""
    from devops.registry.server import _save_state, load_state, registry_dir
    from devops.registry.tokens import authenticate

    registry_dir(data_dir).mkdir(parents=True)
    _save_state(registry_dir(data_dir), {"address": "127.0.0.1:5999", "username": "slipway+internal",
                                         "password": "internal-PLANTED", "account_secret": "s3cret"})
    state = load_state(data_dir)
    push = build_spec(full(new_execution(secret_pipeline, config_with_env_from(), event="push")))
    pr = build_spec(full(new_execution(secret_pipeline, config_with_env_from(), event="pull_request")))
    for spec, username, may_push in ((push, project.id, True), (pr, f"{project.id}+pr+{pr.execution}", False)):
        user, password = spec.registry_auth["127.0.0.1:5999"]
        assert user == username and password in spec.mask and "internal-PLANTED" not in repr(spec.registry_auth)
        account = authenticate(state, user, password)
        assert account.project == project.id and account.push is may_push
    # The address plus the run's namespace, as Rancher's per-project registry: ${CICD_LOCAL_REGISTRY}/myorg/app.
    assert push.env["CICD_LOCAL_REGISTRY"] == f"127.0.0.1:5999/{project.id}"
    assert pr.env["CICD_LOCAL_REGISTRY"] == f"127.0.0.1:5999/{project.id}/pr/{pr.execution}"


def test_untrusted_runs_get_no_envfrom_even_when_the_spec_has_secrets(secret_pipeline):
    """The runner's own rule: step_env drops envFrom for an untrusted spec, whatever it carries."""
    from dataclasses import replace

    from devops.engines.local.runner import step_env

    spec = build_spec(full(new_execution(secret_pipeline, config_with_env_from(), event="push")))
    step = spec.config.stages[1].steps[0]
    assert step_env(spec, step)["TOKEN"] == "tok-123"
    assert "TOKEN" not in step_env(replace(spec, event="pull_request"), step)
