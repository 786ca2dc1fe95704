"""Deploy steps on the local engine: applyYamlConfig against a fake API server through the REAL
kubernetes client, publishCatalogConfig with a real `git push` to a loopback Git server,
applyAppConfig's configuration errors. Runs go through the real runner (host runtime)."""
from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from devops.engines.base import GitAuth
from devops.engines.local.context import StepContext
from devops.engines.local.steps import kubeapply
from devops.pipeline.config import ApplyYamlConfig, Step
from tests.engines.conftest import (
    GIT_ENV,
    config,
    git,
    log_of,
    make_engine,
    make_spec,
    step_of,
    wait_done,
)
from tests.gitserver import basic, git_http_server
from tests.kubefake import fake_kube, kubeconfig_for

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {commit: "${CICD_GIT_COMMIT}"}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "${CICD_IMAGE}:${CICD_EXECUTION_SEQUENCE}"}]
---
apiVersion: v1
kind: Namespace
metadata: {name: extra}
"""


@pytest.fixture
def allow_local(monkeypatch):
    """The fake API server listens on loopback: as an operator would, allow deploy targets there."""
    monkeypatch.setenv("SLIPWAY_DEPLOY_ALLOW_LOCAL", "1")


def yaml_step(**fields) -> dict:
    return {"type": {"kind": "applyYamlConfig", **fields}}


def run_steps(repo, data_dir, steps, **spec_kw):
    engine = make_engine(data_dir)
    spec = make_spec(repo, config([{"name": "Deploy", "steps": steps}]), **spec_kw)
    report = wait_done(engine, spec, engine.run(spec))
    return spec, report


def test_without_a_deploy_target_the_step_fails_saying_how_to_configure_one(repo, data_dir):
    spec, report = run_steps(repo, data_dir, [yaml_step(content=MANIFEST)])
    step = step_of(report, 1, 0)
    assert report.state == "Failed" and step.state == "Failed"
    assert "no deploy target is configured" in step.message
    assert "deploy-target" in step.message and "kubeconfig" in step.message
    assert "project secret PROJECT deploy-target" in log_of(data_dir, spec, 1, 0)


def test_pull_request_runs_get_no_target(repo, data_dir):
    _spec, report = run_steps(repo, data_dir, [yaml_step(content=MANIFEST)], event="pull_request")
    assert "pull requests get no deploy target" in step_of(report, 1, 0).message


def test_apply_yaml_server_side_applies_each_document_with_substitution(repo, data_dir, allow_local):
    repo.commit("k8s.yaml", MANIFEST)
    with fake_kube() as fk:
        spec, report = run_steps(repo, data_dir, [yaml_step(path="k8s.yaml")],
                                 deploy_kubeconfig=kubeconfig_for(fk.url), deploy_namespace="apps")
        assert report.state == "Success", report
        dep = fk.get("apps/v1", "deployments", "apps", "web")
        assert dep["metadata"]["labels"]["commit"] == repo.commits[-1]
        assert dep["spec"]["replicas"] == 2
        assert fk.get("v1", "namespaces", "", "extra") is not None
        assert fk.managers == ["slipway", "slipway"]
        assert {m for m, _p in fk.writes} == {"PATCH"}  # server-side apply only
        log = log_of(data_dir, spec, 1, 0)
        assert "Deployment apps/web created" in log and "Namespace extra created" in log
        # Apply again: the same objects are configured, not duplicated.
        dep["spec"]["replicas"] = 5
        spec2, report2 = run_steps(repo, data_dir, [yaml_step(path="k8s.yaml", namespace="apps")],
                                   name="p-test-2", deploy_kubeconfig=kubeconfig_for(fk.url))
        assert report2.state == "Success"
        assert "Deployment apps/web configured" in log_of(data_dir, spec2, 1, 0)
        assert fk.get("apps/v1", "deployments", "apps", "web")["spec"]["replicas"] == 2


def test_an_unknown_kind_fails_the_step_with_the_reason(repo, data_dir, allow_local):
    content = "apiVersion: v1\nkind: Gizmo\nmetadata: {name: g}\n"
    with fake_kube() as fk:
        _spec, report = run_steps(repo, data_dir, [yaml_step(content=content)], deploy_kubeconfig=kubeconfig_for(fk.url))
    assert report.state == "Failed"
    assert "serves no kind Gizmo in v1" in step_of(report, 1, 0).message


def test_a_kubeconfig_that_would_run_a_program_is_refused(repo, data_dir, tmp_path):
    marker = tmp_path / "ran"
    config_text = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "x", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                   "command": "touch", "args": [str(marker)]}}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}]})
    _spec, report = run_steps(repo, data_dir, [yaml_step(content=MANIFEST)], deploy_kubeconfig=config_text)
    assert "kubeconfig is refused" in step_of(report, 1, 0).message and "exec" in step_of(report, 1, 0).message
    assert not marker.exists()


class _Log:
    def __init__(self):
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data


def test_cicd_image_of_the_earlier_publish_step_reaches_the_manifest(repo, tmp_path, allow_local):
    """The runner puts CICD_IMAGE (from published-image.env) into ctx.env; the step substitutes from it.
    CICD_IMAGE has no tag, as Rancher's kube-apply made it: the manifest of pipeline-example-go writes
    `${CICD_IMAGE}:${CICD_EXECUTION_SEQUENCE}` (publish_image._export)."""
    with fake_kube() as fk:
        spec = make_spec(repo, config([]), deploy_kubeconfig=kubeconfig_for(fk.url))
        ctx = StepContext(spec=spec, stage=1, step=0, config=Step(type=ApplyYamlConfig(content=MANIFEST)),
                          workspace=tmp_path, run_dir=tmp_path, data_dir=tmp_path, log=_Log(), deadline=0,
                          env={"CICD_IMAGE": "127.0.0.1:5000/p-test/myorg/app", "CICD_EXECUTION_SEQUENCE": "7",
                               "CICD_GIT_COMMIT": "abc"},
                          cancelled=threading.Event())
        assert kubeapply.run(ctx).exit_code == 0
        dep = fk.get("apps/v1", "deployments", "default", "web")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "127.0.0.1:5000/p-test/myorg/app:7"


def test_apply_app_without_a_tools_image_says_how_to_configure_one(repo, data_dir):
    # 192.0.2.10: a documentation address (RFC 5737), a cluster elsewhere, never contacted here.
    step = {"type": {"kind": "applyAppConfig", "catalogTemplate": "bitnami/nginx", "version": "1.0.0"}}
    spec, report = run_steps(repo, data_dir, [step], deploy_kubeconfig=kubeconfig_for("https://192.0.2.10:6443"))
    message = step_of(report, 1, 0).message
    assert report.state == "Failed" and "deploy-tools-image" in message and "no helm" in message
    assert "project setting PROJECT deploy-tools-image alpine/helm" in message   # how to configure one
    assert "deploy-tools-image" in log_of(data_dir, spec, 1, 0)


def _own_address() -> str:
    from devops.engines.local.runtimes.network import host_addresses

    found = host_addresses()
    return found[0] if found else "127.0.0.1"


@pytest.mark.parametrize("server, why", [
    ("fake", "loopback"),
    ("https://localhost:6443", "loopback"),
    ("https://[::1]:6443", "loopback"),
    ("https://169.254.169.254", "link-local"),
    ("https://0.0.0.0:6443", "unspecified"),
    ("own", "Slipway's own machine"),
    ("unix:///var/run/docker.sock", "not an https://"),
])
def test_a_deploy_target_on_slipway_s_own_machine_is_refused(repo, data_dir, server, why):
    with fake_kube() as fk:
        url = fk.url if server == "fake" else f"https://{_own_address()}:{fk.url.rsplit(':', 1)[1]}" \
            if server == "own" else server
        spec, report = run_steps(repo, data_dir, [yaml_step(content=MANIFEST)], deploy_kubeconfig=kubeconfig_for(url))
        assert fk.writes == [] and fk.get("v1", "namespaces", "", "extra") is None   # nothing reached it
    step = step_of(report, 1, 0)
    assert report.state == "Failed" and step.state == "Failed"
    assert "refused" in step.message and why in step.message
    assert "SLIPWAY_DEPLOY_ALLOW_LOCAL=1" in step.message          # says how an operator allows it
    assert "SLIPWAY_DEPLOY_ALLOW_LOCAL=1" in log_of(data_dir, spec, 1, 0)


def test_a_proxy_url_on_slipway_s_own_machine_is_refused_too(repo, data_dir):
    text = yaml.safe_load(kubeconfig_for("https://192.0.2.10:6443"))
    text["clusters"][0]["cluster"]["proxy-url"] = "http://127.0.0.1:3128"
    _spec, report = run_steps(repo, data_dir, [yaml_step(content=MANIFEST)], deploy_kubeconfig=yaml.safe_dump(text))
    assert "proxy-url" in step_of(report, 1, 0).message and "loopback" in step_of(report, 1, 0).message


def test_apply_app_to_a_loopback_target_is_refused_before_helm(repo, data_dir):
    step = {"type": {"kind": "applyAppConfig", "catalogTemplate": "bitnami/nginx"}}
    _spec, report = run_steps(repo, data_dir, [step], deploy_kubeconfig=kubeconfig_for("https://127.0.0.1:6443"),
                              settings={"deploy-tools-image": "alpine/helm:3.16.2"})
    assert "refused" in step_of(report, 1, 0).message and "loopback" in step_of(report, 1, 0).message


def test_the_operator_setting_allows_a_loopback_target(repo, data_dir, monkeypatch):
    monkeypatch.setenv("SLIPWAY_DEPLOY_ALLOW_LOCAL", "1")
    with fake_kube() as fk:
        _spec, report = run_steps(repo, data_dir, [yaml_step(content=MANIFEST)], deploy_kubeconfig=kubeconfig_for(fk.url))
        assert report.state == "Success", report
        assert fk.get("v1", "namespaces", "", "extra") is not None


def test_apply_app_values_from_answers():
    from devops.engines.local.steps.helm import helm_argv, values_of
    from devops.pipeline.config import ApplyAppConfig

    assert values_of((("image.tag", "7"), ("image.repo", "r"), ("replicas", "2"))) == \
        {"image": {"tag": "7", "repo": "r"}, "replicas": "2"}
    cfg = ApplyAppConfig(catalogTemplate="bitnami/nginx", version="1.0.0")
    assert helm_argv(cfg, "apps", "web") == [
        "helm", "upgrade", "--install", "web", "bitnami/nginx", "--namespace", "apps",
        "--values", "/run/slipway-deploy/values.yaml", "--version", "1.0.0"]


# -- publishCatalogConfig ------------------------------------------------------------------------

@pytest.fixture
def catalog(tmp_path: Path):
    """A bare catalog repository `catalog.git` (branch main, a templates/ directory) served over HTTP."""
    root = tmp_path / "srv"
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    (seed / "templates").mkdir()
    (seed / "templates" / "README").write_text("catalog\n")
    git(seed, "add", ".")
    git(seed, "commit", "-q", "-m", "seed")
    root.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(root / "catalog.git")], check=True, env=GIT_ENV)
    git(root / "catalog.git", "config", "http.receivepack", "true")
    with git_http_server(root, basic("ci", "s3cret")) as server:
        yield server, root / "catalog.git"


def chart_repo(repo) -> None:
    (repo.path / "chart").mkdir()
    (repo.path / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: app\nversion: 1.2.3\n")
    (repo.path / "chart" / "values.yaml").write_text("replicas: 1\n")
    git(repo.path, "add", "chart")
    repo.commit("version.txt", "two\n")


def publish_step(server) -> dict:
    return {"type": {"kind": "publishCatalogConfig", "path": "chart", "catalogTemplate": "app",
                     "gitUrl": f"{server.base_url}/catalog.git", "gitBranch": "main",
                     "gitAuthor": "Release Bot", "gitEmail": "bot@example.com"}}


def test_publish_catalog_pushes_the_chart_to_the_catalog(repo, data_dir, catalog):
    server, bare = catalog
    chart_repo(repo)
    auth = GitAuth(token="s3cret", username="ci")
    spec, report = run_steps(repo, data_dir, [publish_step(server)], git_auth=auth, mask=("s3cret",))
    assert report.state == "Success", log_of(data_dir, spec, 1, 0)
    shown = git(bare, "show", "main:templates/app/1.2.3/Chart.yaml")
    assert "version: 1.2.3" in shown
    assert git(bare, "log", "-1", "--format=%an <%ae>|%s", "main") == \
        f"Release Bot <bot@example.com>|Publish app 1.2.3 ({spec.execution})"
    assert "published templates/app/1.2.3 to main" in log_of(data_dir, spec, 1, 0)
    assert "s3cret" not in log_of(data_dir, spec, 1, 0)
    # The same chart again: nothing to commit, the step still succeeds.
    head = git(bare, "rev-parse", "main")
    spec2, report2 = run_steps(repo, data_dir, [publish_step(server)], name="p-test-2", git_auth=auth)
    assert report2.state == "Success"
    assert git(bare, "rev-parse", "main") == head
    assert "nothing to publish" in log_of(data_dir, spec2, 1, 0)


def test_publish_catalog_with_wrong_credentials_fails_the_step(repo, data_dir, catalog):
    server, bare = catalog
    chart_repo(repo)
    head = git(bare, "rev-parse", "main")
    _spec, report = run_steps(repo, data_dir, [publish_step(server)], git_auth=GitAuth(token="wrong", username="ci"))
    assert report.state == "Failed" and "git clone failed" in step_of(report, 1, 0).message
    assert git(bare, "rev-parse", "main") == head
