"""The Jenkinsfile and agent pod of every pipeline: parsed by a real Groovy parser, validated by the Kubernetes schemas.

- Groovy: npm-groovy-lint (CodeNarc + Groovy 4, Java 17) from the npm registry,
  installed by .ci/run into .ci/node (`npm install --prefix .ci/node
  npm-groovy-lint@16.1.1`). It ships its jars and runs offline: the test runs it
  in a network namespace without any interface when `unshare -rn` works here.
- Kubernetes: kubernetes-validate, strict (unknown fields are errors), for the
  newest Kubernetes minor version it ships.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from devops.cache.affinity import preferred_node_affinity
from devops.engines.jenkins.jenkinsfile import (
    DEPLOY_KINDS,
    SA_MOUNT,
    agent_pod,
    build_plan,
    env_secret_name,
    groovy_block,
    groovy_str,
    render,
)
from devops.engines.jenkins.options import JenkinsOptions
from devops.pipeline import load
from tests.conftest import FIXTURES, require_service
from tests.engines.jenkins.conftest import PIPELINE, make_spec
from tests.kubeschema import problems

ROOT = Path(__file__).resolve().parents[3]
GROOVY_LINT = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "npm-groovy-lint"
K8S = kubernetes_validate.utils.latest_version()
OPTIONS = JenkinsOptions()
RANCHER = FIXTURES / "rancher-pipelines"


def _valid_fixtures() -> list[Path]:
    """The files of ../shared/fixtures/rancher-pipelines that load (SOURCES.md's valid ones; test_fixtures.py
    checks that exactly those load)."""
    if not RANCHER.is_dir():
        return []
    return [p for p in sorted(RANCHER.glob("*.yml")) if load(p.read_bytes()).config is not None]


def _spec_of(path: Path, **kw):
    return make_spec(path.read_bytes().decode("utf-8-sig"), execution=f"p-fix-{path.name[:3]}", **kw)


def _offline_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


def test_every_generated_jenkinsfile_parses_with_a_real_groovy_parser(tmp_path, fixtures_dir):
    require_service(GROOVY_LINT.exists(), f"npm-groovy-lint in {GROOVY_LINT.parent} (.ci/run installs it)")
    require_service(shutil.which("java") is not None, "java on PATH (npm-groovy-lint runs CodeNarc)")
    files = _valid_fixtures()
    assert len(files) >= 45
    written = []
    nodes = tuple(f"node-{i}" for i in range(15))
    for p in files:
        out = tmp_path / f"{p.stem}.groovy"
        out.write_text(render(_spec_of(p, nodes=nodes), OPTIONS, list(nodes)))
        written.append(out)
    sample = tmp_path / "sample.groovy"
    sample.write_text(render(make_spec(), OPTIONS, ["a"]))
    written.append(sample)
    # Pull requests (their refused steps become error(...)) and a run with a deploy target.
    from devops.engines.base import GitAuth
    from tests.engines.jenkins.test_deploy_target import PIPELINE as DEPLOYING
    from tests.engines.jenkins.test_deploy_target import TARGET
    from tests.engines.jenkins.test_step_scripts import CATALOG

    for name, spec in (("pull-request", make_spec(DEPLOYING, event="pull_request", branch="f")),
                       ("deploy-target", make_spec(DEPLOYING, deploy_kubeconfig=TARGET)),
                       ("deploy-token", make_spec(DEPLOYING)),
                       ("catalog-token", make_spec(CATALOG, git_auth=GitAuth(token="t0ken-xyz"))),
                       ("catalog-ssh", make_spec(CATALOG, git_auth=GitAuth(ssh_private_key="k3y-xyz")))):
        (tmp_path / f"{name}.groovy").write_text(render(spec, OPTIONS))
        written.append(tmp_path / f"{name}.groovy")
    # A control: the parser must report a broken file, or "no errors" proves nothing.
    broken = tmp_path / "broken.groovy"
    broken.write_text(render(make_spec(), OPTIONS).replace("podTemplate(", "podTemplate((", 1))
    written.append(broken)
    # Parse errors come from GroovyShell (NglParseError) whatever the rules; one cheap CodeNarc
    # rule keeps the run short on a shared machine.
    proc = subprocess.run(
        [*_offline_prefix(), str(GROOVY_LINT), "--noserver", "--output", "json", "--failon", "none",
         "--rulesets", "EmptyClass", "--javaoptions=-Xms64m,-Xmx512m", *map(str, written)],
        capture_output=True, text=True, timeout=600,
    )
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    errors = {Path(f).name: [e for e in r["errors"] if e["severity"] == "error"] for f, r in report["files"].items()}
    assert len(errors) == len(written)
    assert [e["rule"] for e in errors.pop("broken.groovy")] == ["NglParseError"]
    assert {name: errs for name, errs in errors.items() if errs} == {}


def test_every_agent_pod_validates_strict(fixtures_dir):
    files = _valid_fixtures()
    assert files
    for p in files:
        for spec in (_spec_of(p), _spec_of(p, event="pull_request"), _spec_of(p, nodes=("n1", "n2"))):
            pod, steps, cfg = build_plan(spec, OPTIONS, list(spec.scheduled_nodes))
            kubernetes_validate.validate(pod, K8S, strict=True)
            assert problems(pod) == "", p.name
            assert pod["spec"]["automountServiceAccountToken"] is False
            # The service-account token only in containers of deploy steps (of trusted runs).
            holders = {c["name"] for c in pod["spec"]["containers"]
                       if any(m["mountPath"] == SA_MOUNT for m in c.get("volumeMounts", []))}
            for (i, j), (container, _) in steps.items():
                if container in holders:
                    assert cfg.stages[i].steps[j].kind in DEPLOY_KINDS and spec.trusted, (p.name, i, j)
            # The YAML inside the Jenkinsfile is this pod, unchanged by the Groovy escaping.
            text = render(spec, OPTIONS, list(spec.scheduled_nodes))
            assert "def slipwayPod = '''" in text


def _pod_yaml_from(jenkinsfile: str) -> dict:
    start = jenkinsfile.index("'''") + 3
    body = jenkinsfile[start:jenkinsfile.index("'''", start)]
    return yaml.safe_load(body.replace("\\'", "'").replace("\\\\", "\\"))


@pytest.mark.parametrize("count", [0, 1, 10, 15])
def test_affinity_terms_for_recorded_nodes(count):
    nodes = [f"node-{i}" for i in range(count)]       # newest first, as executionScheduledInfo holds them
    spec = make_spec(nodes=tuple(nodes))
    pod = _pod_yaml_from(render(spec, OPTIONS, nodes))
    assert pod == agent_pod(spec, OPTIONS, nodes)
    kubernetes_validate.validate(pod, K8S, strict=True)
    terms = pod["spec"].get("affinity", {}).get("nodeAffinity", {}).get(
        "preferredDuringSchedulingIgnoredDuringExecution", [])
    assert terms == preferred_node_affinity(nodes)
    assert [t["weight"] for t in terms] == [100 - 10 * i for i in range(min(count, 10))]
    assert [t["preference"]["matchExpressions"][0]["values"] for t in terms] == [[n] for n in nodes[:10]]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in json.dumps(pod)  # preferred only


def test_pod_template_containers_resources_privilege_env_and_caches():
    spec = make_spec(settings={"devops-cache-dir": "/mnt/slipway-cache", "executor-memory-request": "64Mi"})
    pod = agent_pod(spec, OPTIONS)
    kubernetes_validate.validate(pod, K8S, strict=True)
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    assert list(containers) == ["jnlp", "c0", "c1", "c2", "c3"]
    go, go_vet, dind, kaniko = containers["c0"], containers["c1"], containers["c2"], containers["c3"]
    assert (go["image"], go_vet["image"], dind["image"]) == ("golang:1.22", "golang:1.22", "docker:dind")
    assert dind["securityContext"] == {"privileged": True}
    assert all("securityContext" not in c for c in (go, go_vet, kaniko))
    assert dind["resources"] == {"requests": {"memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
    assert go["resources"] == {"requests": {"memory": "64Mi"}}
    assert {"name": "GOFLAGS", "value": "-mod=vendor"} in go["env"]
    assert {"name": "DEPLOY_TOKEN", "valueFrom": {"secretKeyRef": {"name": env_secret_name("deploy-keys"), "key": "TOKEN"}}} in go["env"]
    assert "s3cr3t" not in render(spec, OPTIONS)
    mounts = {m["mountPath"]: m["name"] for m in go["volumeMounts"]}
    assert set(mounts) == {"/root/.cache/go-build", "/home/jenkins/agent/workspace/slipway-p-abcde-7/vendor"}
    volumes = {v["name"]: v["hostPath"] for v in pod["spec"]["volumes"]}
    assert all(volumes[n]["path"].startswith("/mnt/slipway-cache/p-abcde:pl-1/") for n in mounts.values())
    assert {v["type"] for v in volumes.values()} == {"DirectoryOrCreate"}
    assert kaniko["image"] == OPTIONS.kaniko_image and "volumeMounts" not in kaniko


def test_steps_of_one_image_and_settings_share_a_container():
    text = PIPELINE.replace("    env:\n      GOFLAGS: -mod=vendor\n", "").split("    envFrom:")[0] + \
        "  - runScriptConfig:\n      image: golang:1.22\n      shellScript: go vet ./...\n"
    pod = agent_pod(make_spec(text), OPTIONS)
    assert [c.get("image") for c in pod["spec"]["containers"]] == [None, "golang:1.22"]


def test_pull_requests_get_no_secrets_no_caches_and_no_remote_push():
    text = PIPELINE.replace("      tag: app:${CICD_GIT_COMMIT}", "      tag: app:1\n      pushRemote: true\n"
                            "      registry: reg.example")
    spec = make_spec(text, event="pull_request")
    pod = agent_pod(spec, OPTIONS)
    assert "secretKeyRef" not in json.dumps(pod) and "volumes" not in pod["spec"]
    assert "error('runs of pull requests never push to remote registries')" in render(spec, OPTIONS)


def test_stages_in_order_steps_in_parallel_when_and_timeout():
    text = render(make_spec(branch="feature"), OPTIONS)
    assert text.index("stage('Clone')") < text.index("stage('Build')")
    assert "stage('Release')" not in text and "step-2-0" not in text   # when.branch.include [main]
    assert "timeout(time: 15, unit: 'MINUTES')" in text
    build = text[text.index("stage('Build')"):]
    assert build.index("parallel(") < build.index("'step-1-0'") < build.index("'step-1-1'") < build.index("'step-1-2'")
    main = render(make_spec(branch="main"), OPTIONS)
    assert "stage('Release')" in main and "container('c3')" in main


def test_groovy_literals_escape_everything_that_could_break_out():
    nasty = "a'b\\c''' $x ${y}\n\t\x01"
    assert groovy_str(nasty) == "'a\\'b\\\\c\\'\\'\\' $x ${y}\\n\\t\\u0001'"
    assert groovy_block("it's\\") == "'''it\\'s\\\\'''"


def test_render_command_prints_the_jenkinsfile(tmp_path):
    import io

    from django.core.management import call_command

    f = tmp_path / ".rancher-pipeline.yml"
    f.write_text(PIPELINE)
    out = io.StringIO()
    call_command("engine", "jenkins", "render", str(f), "--nodes", "n1,n2,n3", stdout=out)
    text = out.getvalue()
    assert text.startswith("// Generated by Slipway") and "podTemplate(yaml: slipwayPod" in text
    pod = _pod_yaml_from(text)
    weights = [t["weight"] for t in pod["spec"]["affinity"]["nodeAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"]]
    assert weights == [100, 90, 80]
