"""`manage.py dataplane render|apply PROJECT` end to end: project rows -> ProjectSpec -> YAML / the fake cluster."""
from __future__ import annotations

import io

import pytest
import yaml
from django.core.management import CommandError, call_command

from devops.controller.spec import build_project_spec
from tests.kubefake import fake_kube, kubeconfig_for
from tests.kubeschema import problems


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("dataplane", *args, stdout=out)
    return out.getvalue()


def set_namespaces(project, value: str) -> None:
    project.settings.update_or_create(name="namespaces", defaults={"value": value})


def test_project_spec_carries_the_namespaces_setting(project):
    set_namespaces(project, "app, web,app")
    spec = build_project_spec(project)
    assert spec.namespaces == ("app", "web")
    assert spec.namespace == f"{project.id}-pipeline"


def test_render_prints_valid_objects_of_the_project(project):
    set_namespaces(project, "app")
    docs = list(yaml.safe_load_all(run("render", project.name)))
    refs = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs}
    assert ("Deployment", f"{project.id}-pipeline", "jenkins") in refs
    assert ("RoleBinding", "app", "pipeline-jenkins") in refs
    assert [p for p in map(problems, docs) if p] == []


def test_apply_reconciles_into_the_configured_cluster_once(project, tmp_path, settings):
    set_namespaces(project, "app")
    with fake_kube() as fk:
        config = tmp_path / "kubeconfig"
        config.write_text(kubeconfig_for(fk.url))
        settings.SLIPWAY_KUBECONFIG = str(config)
        first = run("apply", project.id)
        assert f"created Deployment {project.id}-pipeline/jenkins" in first
        assert fk.get("rbac.authorization.k8s.io/v1", "rolebindings", "app", "pipeline-jenkins")
        writes = len(fk.writes)
        assert run("apply", project.id).strip() == "18 unchanged"  # 16 objects + a binding in the pipeline namespace and in app
        assert len(fk.writes) == writes


def test_apply_without_a_reachable_cluster_names_the_setting(project, tmp_path, settings):
    settings.SLIPWAY_KUBECONFIG = str(tmp_path / "missing")
    with pytest.raises(CommandError, match="SLIPWAY_KUBECONFIG"):
        run("apply", project.id)


def test_unknown_project_is_an_error(db):
    with pytest.raises(CommandError, match="no project"):
        run("render", "nope")


def test_namespace_settings_are_checked_as_kubernetes_names():
    from devops.api.validation import check_setting

    assert check_setting("namespaces", " app , web ") == "app,web"
    assert check_setting("deploy-namespace", "prod") == "prod"
    for name, bad in (("namespaces", "app,Web_1"), ("deploy-namespace", "-x"), ("deploy-namespace", "a" * 64)):
        with pytest.raises(ValueError, match="namespace name"):
            check_setting(name, bad)
