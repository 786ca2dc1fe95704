"""The deploy target reaches trusted RunSpecs only: the kubeconfig of the project Secret `deploy-target`."""
from __future__ import annotations

from devops.controller.spec import build_spec
from devops.models import PipelineExecution, Secret
from tests.kubefake import kubeconfig_for

from .test_spec import config_with_env_from, new_execution


def full(ex):
    return PipelineExecution.objects.select_related("project", "pipeline", "pipeline__credential").get(pk=ex.pk)


def test_trusted_run_gets_the_kubeconfig_masked_and_the_namespace(pipeline, project):
    text = kubeconfig_for("https://k8s.example:6443")
    Secret.objects.create(project=project, name="deploy-target", data={"kubeconfig": text, "namespace": "apps"})
    spec = build_spec(full(new_execution(pipeline, config_with_env_from(), event="push")))
    assert spec.deploy_kubeconfig == text and spec.deploy_namespace == "apps"
    assert "fake-token" in spec.mask  # the kubeconfig's bearer token never shows in a log


def test_pull_request_run_gets_no_target(pipeline, project):
    Secret.objects.create(project=project, name="deploy-target", data={"kubeconfig": kubeconfig_for("https://x")})
    spec = build_spec(full(new_execution(pipeline, config_with_env_from(), event="pull_request")))
    assert spec.deploy_kubeconfig == ""


def test_namespace_falls_back_to_the_setting_then_default(pipeline, project):
    Secret.objects.create(project=project, name="deploy-target", data={"kubeconfig": kubeconfig_for("https://x")})
    assert build_spec(full(new_execution(pipeline, config_with_env_from()))).deploy_namespace == "default"
    project.settings.update_or_create(name="deploy-namespace", defaults={"value": "prod"})
    assert build_spec(full(new_execution(pipeline, config_with_env_from()))).deploy_namespace == "prod"
