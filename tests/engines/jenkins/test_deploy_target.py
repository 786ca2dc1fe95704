"""Deploy steps on the Jenkins engine: the project's deploy target, and nothing for pull requests.

A trusted run with a deploy target (RunSpec.deploy_kubeconfig) gets it as the Kubernetes secret
`slipway-deploy-target` of the pipeline namespace — written by run() through the real `kubernetes`
client against the stateful fake API server — mounted read-only in the deploy containers with
KUBECONFIG pointing at it. Without one, deploy steps act with the pod's service account (the data
plane binds it in the project's namespaces): its token is automounted nowhere, only the deploy
containers mount it (a projected volume); script and catalog containers and the agent get none. Pull requests get neither: their pod mounts no
service-account token, and their deploy and catalog steps fail in the Jenkinsfile.
"""
from __future__ import annotations

import base64
from dataclasses import replace

import pytest

from devops.engines.base import PermanentEngineError
from devops.engines.jenkins import jenkinsfile as jf
from devops.engines.jenkins.engine import JenkinsEngine
from devops.engines.jenkins.options import JenkinsOptions
from tests.engines.jenkins.conftest import make_spec
from tests.kubefake import fake_kube, kubeconfig_for
from tests.kubeschema import problems

PIPELINE = """\
stages:
- name: Build
  steps:
  - runScriptConfig:
      image: golang:1.22
      shellScript: go build ./...
- name: Deploy
  steps:
  - applyYamlConfig:
      path: ./deploy.yaml
  - applyAppConfig:
      catalogTemplate: bitnami/nginx
      version: 1.0.0
"""
TARGET = kubeconfig_for("https://k8s.example.com:6443", namespace="apps").replace("fake-token", "tgt-tok-98765")
SECRET_PATH = ("v1", "secrets", "p-abcde-pipeline", jf.DEPLOY_SECRET)


@pytest.fixture
def kube(fake, tmp_path):
    with fake_kube() as fk:
        operator = tmp_path / "operator-kubeconfig"
        operator.write_text(kubeconfig_for(fk.url))
        options = replace(JenkinsOptions(url=fake.url, user=fake.user, token=fake.token,
                                          log_store_url=f"file://{tmp_path}/logs"), kubeconfig=str(operator))
        yield fk, JenkinsEngine(options)


def test_the_deploy_target_reaches_the_deploy_containers_as_a_secret(kube, fake):
    fk, engine = kube
    spec = make_spec(PIPELINE, deploy_kubeconfig=TARGET, deploy_namespace="apps")
    engine.run(spec)
    secret = fk.objects[SECRET_PATH]
    assert base64.b64decode(secret["data"]["kubeconfig"]).decode() == TARGET
    pod = jf.agent_pod(spec, engine.options)
    assert problems(pod) == ""
    assert {"name": "deploy-target", "secret": {"secretName": jf.DEPLOY_SECRET, "defaultMode": 0o400}} \
        in pod["spec"]["volumes"]
    tools = [c for c in pod["spec"]["containers"] if c.get("image") == engine.options.tools_image]
    assert len(tools) == 2                                          # applyYaml, applyApp
    for c in tools:
        assert {"name": "KUBECONFIG", "value": f"{jf.DEPLOY_MOUNT}/kubeconfig"} in c["env"]
        assert c["volumeMounts"] == [{"name": "deploy-target", "mountPath": jf.DEPLOY_MOUNT, "readOnly": True}]
    env = [e for c in tools for e in c["env"]]
    assert {"name": "YAML_NAMESPACE", "value": "apps"} in env and {"name": "APP_NAMESPACE", "value": "apps"} in env
    build = next(c for c in pod["spec"]["containers"] if c.get("image") == "golang:1.22")
    assert "volumeMounts" not in build                              # only deploy steps see it
    # With a target, nothing needs the pod's own token: no container mounts it.
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert all(v["name"] != jf.SA_VOLUME for v in pod["spec"]["volumes"])
    assert "tgt-tok-98765" not in fake.jobs[jf.job_name(spec.execution)].config


def test_the_secret_is_rewritten_only_when_the_target_changed(kube):
    fk, engine = kube
    engine.run(make_spec(PIPELINE, deploy_kubeconfig=TARGET))
    writes = len(fk.writes)
    engine.run(make_spec(PIPELINE, execution="p-abcde-8", deploy_kubeconfig=TARGET))
    assert len(fk.writes) == writes
    rotated = TARGET.replace("tgt-tok-98765", "tgt-tok-rotated")
    engine.run(make_spec(PIPELINE, execution="p-abcde-9", deploy_kubeconfig=rotated))
    assert fk.writes[-1][0] == "PATCH"
    assert base64.b64decode(fk.objects[SECRET_PATH]["data"]["kubeconfig"]).decode() == rotated


def test_a_kubeconfig_that_would_run_a_program_fails_the_run_before_anything_is_written(kube):
    fk, engine = kube
    bad = TARGET.replace("token: tgt-tok-98765", "exec: {command: touch, apiVersion: v1}")
    with pytest.raises(PermanentEngineError, match="exec"):
        engine.run(make_spec(PIPELINE, deploy_kubeconfig=bad))
    assert fk.writes == []


def _token_mounts(container):
    return [m for m in container.get("volumeMounts", []) if m["mountPath"] == jf.SA_MOUNT]


def test_without_a_target_only_the_deploy_containers_get_the_service_account_token(kube):
    fk, engine = kube
    spec = make_spec(PIPELINE + "- name: Catalog\n  steps:\n  - publishCatalogConfig:\n      path: ./chart\n"
                     "      catalogTemplate: app\n      version: 1.0.0\n      gitUrl: https://git.example/c.git\n")
    engine.run(spec)
    assert fk.writes == []
    pod = jf.agent_pod(spec, engine.options)
    assert problems(pod) == ""
    assert pod["spec"]["serviceAccountName"] == "jenkins" and pod["spec"]["automountServiceAccountToken"] is False
    assert all("KUBECONFIG" not in str(c.get("env")) for c in pod["spec"]["containers"])
    [volume] = [v for v in pod["spec"]["volumes"] if v["name"] == jf.SA_VOLUME]
    assert [next(iter(s)) for s in volume["projected"]["sources"]] == ["serviceAccountToken", "configMap",
                                                                       "downwardAPI"]
    assert volume["projected"]["sources"][1]["configMap"]["name"] == "kube-root-ca.crt"
    _, steps, _ = jf.build_plan(spec, engine.options)
    by_name = {c["name"]: c for c in pod["spec"]["containers"]}
    # Stage 0 is the clone; (1, 0) the script, (2, 0) applyYaml, (2, 1) applyApp, (3, 0) the catalog push.
    for key, wanted in (((1, 0), False), ((2, 0), True), ((2, 1), True), ((3, 0), False)):
        container = by_name[steps[key][0]]
        assert bool(_token_mounts(container)) is wanted, key
    for c in _token_mounts(by_name[steps[(2, 0)][0]]):
        assert c == {"name": jf.SA_VOLUME, "mountPath": jf.SA_MOUNT, "readOnly": True}
    assert _token_mounts(by_name["jnlp"]) == []                    # the agent talks to Jenkins only


def test_pull_requests_get_no_token_no_target_and_their_deploy_steps_fail(kube):
    fk, engine = kube
    spec = make_spec(PIPELINE + "- name: Catalog\n  steps:\n  - publishCatalogConfig:\n      path: ./chart\n"
                     "      catalogTemplate: app\n      version: 1.0.0\n      gitUrl: https://git.example/c.git\n",
                     event="pull_request", branch="feature")
    engine.run(spec)
    assert fk.writes == []
    pod = jf.agent_pod(spec, engine.options)
    assert pod["spec"]["automountServiceAccountToken"] is False and problems(pod) == ""
    assert "volumes" not in pod["spec"]                             # no token volume, no cache
    assert all("volumeMounts" not in c for c in pod["spec"]["containers"])
    assert [c.get("image") for c in pod["spec"]["containers"]] == [None, "golang:1.22"]
    text = jf.render(spec, engine.options)
    assert text.count("error('runs of pull requests get no deploy target; nothing was applied')") == 2
    assert "error('runs of pull requests never publish to the catalog')" in text


def test_envfrom_and_registry_secrets_are_written_for_the_pod_s_secret_key_refs(kube, fake):
    """The pod's secretKeyRefs name Kubernetes secrets the engine writes from the project's secrets
    (only the keys the steps use) and the registry credentials, under prefixed names."""
    fk, engine = kube
    text = """\
stages:
- name: Build
  steps:
  - runScriptConfig: {image: golang:1.22, shellScript: make}
    envFrom:
    - {sourceName: pipeline-secret, sourceKey: TOKEN, targetKey: DEPLOY_TOKEN}
  - publishImageConfig: {tag: team/app:1, pushRemote: true, registry: reg.example.com}
"""
    spec = make_spec(text, secrets={"pipeline-secret": {"TOKEN": "env-val-1234", "OTHER": "unused-5678"}},
                     registry_auth={"reg.example.com": ("bot", "reg-pass-4321")})
    engine.run(spec)
    env_name = jf.env_secret_name("pipeline-secret")
    assert env_name != "pipeline-secret"         # a project secret never overwrites the data plane's
    written = {k[3]: v for k, v in fk.objects.items() if k[1] == "secrets"}
    assert {k: base64.b64decode(v).decode() for k, v in written[env_name]["data"].items()} == {"TOKEN": "env-val-1234"}
    reg = written[jf.registry_secret_name("reg.example.com")]["data"]
    assert base64.b64decode(reg["password"]).decode() == "reg-pass-4321"
    pod = jf.agent_pod(spec, engine.options)
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for c in pod["spec"]["containers"] for e in c.get("env", [])
            if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]}
    assert refs == set(written)                  # every reference is a secret that exists
    config = fake.jobs[jf.job_name(spec.execution)].config
    assert not any(v in config for v in ("env-val-1234", "unused-5678", "reg-pass-4321"))


def test_an_envfrom_of_a_missing_project_secret_fails_the_run_saying_which(kube):
    _fk, engine = kube
    spec = make_spec(secrets={})
    with pytest.raises(PermanentEngineError, match="deploy-keys/TOKEN: no such project secret"):
        engine.run(spec)
