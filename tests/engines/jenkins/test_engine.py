"""The Jenkins engine and python-jenkins against the fake Jenkins on loopback (tests/engines/jenkins/fake.py).

No Jenkins runs here: the fake answers in the shapes of recordings/ (SOURCES.md)
and enforces what a real Jenkins enforces of a client (basic auth with an API
token, the CSRF crumb bound to its session cookie on every POST).
"""
from __future__ import annotations

import json

import pytest

from devops.engines.jenkins.client import JenkinsClient
from devops.engines.jenkins.errors import JenkinsAuthError, JenkinsUnreachable
from devops.engines.jenkins.jenkinsfile import job_name
from devops.logs import LogKey
from tests.engines.jenkins.conftest import make_spec
from tests.engines.jenkins.fake import RECORDINGS, FakeJenkins

JOB = job_name("p-abcde-7")


def test_run_creates_the_job_queues_one_build_and_is_idempotent(engine, fake):
    spec = make_spec()
    handle = engine.run(spec)
    assert handle == {"job": JOB, "queue": 42}
    assert engine.run(spec) == handle                   # controller crashed before storing the handle
    assert [p for p in fake.posts if "buildWithParameters" in p] == [p for p in fake.posts if "build" in p][:1]
    assert sum("buildWithParameters" in p for p in fake.posts) == 1
    assert fake.requests.count("GET /crumbIssuer/api/json") == 1   # one crumb, one session, reused
    config = fake.jobs[JOB].config
    assert "<sandbox>true</sandbox>" in config and "<name>CICD_GIT_MESSAGE</name>" in config
    # Untrusted text travels as a build parameter, never as Groovy text.
    assert "rm -rf" not in config
    assert fake.items[42]["params"]["CICD_GIT_MESSAGE"] == spec.env["CICD_GIT_MESSAGE"]
    # The secret value is nowhere: only a secretKeyRef to the Kubernetes secret.
    assert "s3cr3t" not in config and "secretKeyRef" in config
    fake.start(JOB)
    assert engine.run(spec) == {"job": JOB, "queue": 0, "number": 1}


def test_two_controllers_racing_start_one_build(fake, tmp_path):
    from devops.engines.jenkins.engine import JenkinsEngine
    from devops.engines.jenkins.options import JenkinsOptions

    a, b = (JenkinsEngine(JenkinsOptions(url=fake.url, user=fake.user, token=fake.token,
                                         log_store_url=f"file://{tmp_path}")) for _ in range(2))
    spec = make_spec()
    # Both passed the "no build yet" check: Jenkins folds equal parameters into one queue item.
    a.client.ensure_job(JOB, "<flow-definition/>")
    qa = a.client.build(JOB, {"SLIPWAY_EXECUTION": spec.execution})
    qb = b.client.build(JOB, {"SLIPWAY_EXECUTION": spec.execution})
    assert qa == qb and len(fake.jobs[JOB].queue) == 1


def _drive(engine, fake, spec):
    handle = engine.run(spec)
    fake.start(JOB)
    return handle


def test_sync_follows_stage_and_step_state_and_copies_the_whole_log_in_pieces(engine, fake):
    spec = make_spec()
    handle = _drive(engine, fake, spec)
    r = engine.sync(spec, handle)
    assert r.state == "Building" and {s.state for s in r.steps} == {"Waiting"}
    whole = b"".join(f"line {n} token=s3cr3t-deploy-token\n".encode() for n in range(300)) + b"no newline at end"
    pieces = [whole[:1], whole[1:4000], whole[4000:4001], whole[4001:]]
    fake.set_step(JOB, "step-1-0", "IN_PROGRESS")
    seen = []
    for piece in pieces:
        fake.append_log(JOB, "step-1-0", piece)
        r = engine.sync(spec, handle)
        step = next(s for s in r.steps if (s.stage, s.step) == (1, 0))
        assert step.state == "Building" and r.state == "Building"
        seen.append(step.log_size)
    assert seen == sorted(seen) and seen[0] < seen[-1]   # the log grows as it is copied
    for label in ("step-0-0", "step-1-1", "step-1-2", "step-2-0"):
        fake.set_step(JOB, label, "SUCCESS")
    fake.set_step(JOB, "step-1-0", "SUCCESS")
    fake.finish(JOB, "SUCCESS", node="node-b")
    r = engine.sync(spec, handle)
    assert r.state == "Success" and r.node == "node-b" and r.ended
    assert {(s.stage, s.step): s.state for s in r.steps} == {
        (0, 0): "Success", (1, 0): "Success", (1, 1): "Success", (1, 2): "Success", (2, 0): "Success"}
    stored = engine.store.read(LogKey(spec.execution, 1, 0))
    assert stored == whole.replace(b"s3cr3t-deploy-token", b"***")  # whole, in order, masked
    assert engine.store.is_complete(LogKey(spec.execution, 1, 0))


def test_a_run_is_not_reported_finished_before_its_log_is_copied_to_the_end(engine, fake):
    spec = make_spec()
    handle = _drive(engine, fake, spec)
    for label in fake.jobs[JOB].builds[-1].steps:
        fake.set_step(JOB, label, "SUCCESS")
    st = fake.jobs[JOB].builds[-1].steps["step-1-1"]
    st.log, st.more = b"last words\n", True          # Jenkins still flushing the node's log
    fake.finish(JOB, "SUCCESS")
    assert engine.sync(spec, handle).state == "Building"
    st.more = False
    assert engine.sync(spec, handle).state == "Success"
    assert engine.store.read(LogKey(spec.execution, 1, 1)) == b"last words\n"


def test_a_failed_step_fails_the_run_with_jenkins_message_and_when_skips(engine, fake):
    spec = make_spec(branch="feature")                # Release has when.branch.include [main]
    handle = _drive(engine, fake, spec)
    assert "step-2-0" not in fake.jobs[JOB].builds[-1].steps   # left out of the Jenkinsfile
    fake.set_step(JOB, "step-0-0", "SUCCESS")
    fake.set_step(JOB, "step-1-0", "IN_PROGRESS")
    first = engine.sync(spec, handle)
    assert engine.sync(spec, handle) == first   # nothing changed: the same report (the controller writes nothing)
    fake.set_step(JOB, "step-1-0", "FAILED", error="script returned exit code 1")
    fake.finish(JOB, "FAILED")
    r = engine.sync(spec, handle)
    states = {(s.stage, s.step): s for s in r.steps}
    assert r.state == "Failed" and "1.0" in r.error
    assert states[(1, 0)].state == "Failed" and states[(1, 0)].message == "script returned exit code 1"
    assert states[(2, 0)].state == "Skipped"
    assert engine.sync(spec, handle) == r       # finished: the final report again, logs not copied twice


def test_abort_reaches_jenkins_and_stop_never_blocks(engine, fake):
    spec = make_spec()
    handle = _drive(engine, fake, spec)
    fake.set_step(JOB, "step-0-0", "IN_PROGRESS")
    fake.jobs[JOB].builds[-1].status = "IN_PROGRESS"
    assert engine.stop(spec, handle, wait=False) is False     # asked; Jenkins still reports it building
    assert f"/job/{JOB}/1/stop" in fake.posts
    assert engine.stop(spec, handle, wait=False) is True       # over now
    r = engine.sync(spec, handle)
    assert r.state == "Aborted"


def test_stop_of_a_queued_build_cancels_the_queue_item(engine, fake):
    spec = make_spec()
    handle = engine.run(spec)
    assert engine.stop(spec, handle, wait=False) is True
    assert "/queue/cancelItem?id=42" in fake.posts and fake.jobs[JOB].queue == []


def test_bad_token_is_permanent_and_a_dead_jenkins_temporary(fake):
    with pytest.raises(JenkinsAuthError, match="SLIPWAY_JENKINS_TOKEN"):
        JenkinsClient(fake.url, fake.user, "wrong").whoami()
    with FakeJenkins() as gone:
        url = gone.url
    with pytest.raises(JenkinsUnreachable):
        JenkinsClient(url, "u", "t", timeout=2).whoami()


def test_a_post_without_the_crumb_and_its_session_is_refused_by_the_fake(fake):
    import requests

    r = requests.post(f"{fake.url}/job/x/1/stop", auth=(fake.user, fake.token),
                      headers={"Jenkins-Crumb": "fb171d526b9cc9e25afe80b356e12cb7"})
    assert r.status_code == 403   # crumb without its session cookie: what python-jenkins' session avoids


def test_recorded_bodies_parse_byte_exact(fake, client):
    """The pipeline-stage-view README's bodies, served as they are: describe, node describe (ok and failed)."""
    fake.replay["/job/slipway-x/16/wfapi/describe"] = (RECORDINGS / "wfapi_run_describe.json").read_bytes()
    fake.replay["/job/slipway-x/17/execution/node/8/wfapi/describe"] = \
        (RECORDINGS / "wfapi_node_describe_failed.json").read_bytes()
    fake.replay["/queue/item/42/api/json"] = (RECORDINGS / "queue_item_left.json").read_bytes()
    run = client.describe("slipway-x", 16)
    assert [s["name"] for s in run["stages"]] == ["Build", "Test", "Deploy"] and run["status"] == "PAUSED_PENDING_INPUT"
    node = client.node_describe("slipway-x", 17, "8")
    assert node["stageFlowNodes"][0]["error"]["message"] == "script returned exit code 1"
    assert client.queue_item(42)["executable"]["number"] == 1


def _keys(obj, prefix=""):
    out = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.add(prefix + k)
            out |= _keys(v, prefix + k + ".")
    elif isinstance(obj, list) and obj:
        out |= _keys(obj[0], prefix + "[].")
    return out


def test_the_fake_answers_in_the_recorded_shapes(engine, fake, client):
    spec = make_spec()
    engine.run(spec)
    assert _keys(client.queue_item(42)) == _keys(json.loads((RECORDINGS / "queue_item_waiting.json").read_bytes()))
    fake.start(JOB)
    fake.set_step(JOB, "step-1-0", "FAILED", error="boom")
    assert _keys(client.queue_item(42)) == _keys(json.loads((RECORDINGS / "queue_item_left.json").read_bytes()))
    recorded = _keys(json.loads((RECORDINGS / "wfapi_run_describe.json").read_bytes()))
    assert _keys(client.describe(JOB, 1)) == recorded - {"_links.pendingInputActions",
                                                          "_links.pendingInputActions.href"}
    stage = next(s for s in client.describe(JOB, 1)["stages"] if s["name"] == "step-1-0")
    assert _keys(client.node_describe(JOB, 1, stage["id"])) == \
        _keys(json.loads((RECORDINGS / "wfapi_node_describe_failed.json").read_bytes()))


def test_progressive_text_honours_x_text_size_and_x_more_data(fake, client, engine):
    engine.run(make_spec())
    build = fake.start(JOB)
    node = str(build.steps["step-1-0"].node_id)
    fake.append_log(JOB, "step-1-0", b"abc")
    p = client.node_log(JOB, 1, node, 0)
    assert (p.data, p.next, p.more) == (b"abc", 3, True)
    fake.append_log(JOB, "step-1-0", b"def")
    fake.set_step(JOB, "step-1-0", "SUCCESS")
    p = client.node_log(JOB, 1, node, 3)
    assert (p.data, p.next, p.more) == (b"def", 6, False)


def test_deploy_checks_the_connection(engine, fake):
    from devops.engines.base import ProjectSpec

    engine.deploy(ProjectSpec(project_id="p-abcde", cluster_id="local", namespace="p-abcde-pipeline"))
    assert "GET /me/api/json" in fake.requests


def test_deploy_reconciles_the_project_s_data_plane_on_the_configured_cluster(fake, tmp_path):
    """deploy() = Jenkins answers + devops.dataplane.deploy on SLIPWAY_KUBECONFIG's cluster, idempotently."""
    from dataclasses import replace

    from devops.engines.base import ProjectSpec
    from devops.engines.jenkins.engine import JenkinsEngine
    from devops.engines.jenkins.options import JenkinsOptions
    from devops.logs.filestore import FileLogStore
    from tests.kubefake import fake_kube

    spec = ProjectSpec(project_id="p-abcde", cluster_id="local", namespace="p-abcde-pipeline")
    with fake_kube() as fk:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
            f"clusters: [{{name: fake, cluster: {{server: '{fk.url}'}}}}]\n"
            "users: [{name: op, user: {token: operator-token}}]\n"
            "contexts: [{name: fake, context: {cluster: fake, user: op}}]\n")
        options = replace(JenkinsOptions(url=fake.url, user=fake.user, token=fake.token,
                                          log_store_url=f"file://{tmp_path}/logs"), kubeconfig=str(kubeconfig))
        engine = JenkinsEngine(options, store=FileLogStore(tmp_path / "logs"))
        engine.deploy(spec)
        assert fk.get("apps/v1", "deployments", spec.namespace, "jenkins")["metadata"]["name"] == "jenkins"
        writes = len(fk.writes)
        engine.deploy(spec)  # a controller restart deploys again: nothing is written
        assert len(fk.writes) == writes


def test_cleanup_deletes_what_is_left_of_the_agent_pod_and_only_it(fake, tmp_path):
    """cleanup() deletes the pods labelled slipway.io/execution=<name> in the pipeline namespace, through
    the real kubernetes client against the stateful fake API server; other runs' pods stay."""
    from dataclasses import replace

    from devops.engines.jenkins.engine import JenkinsEngine
    from devops.engines.jenkins.jenkinsfile import EXECUTION_LABEL
    from devops.engines.jenkins.options import JenkinsOptions
    from tests.kubefake import fake_kube, kubeconfig_for

    spec = make_spec()
    with fake_kube() as fk:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(kubeconfig_for(fk.url))
        for name, execution in (("agent-a", spec.execution), ("agent-b", spec.execution), ("other", "p-abcde-8")):
            fk.objects[("v1", "pods", "p-abcde-pipeline", name)] = {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "p-abcde-pipeline", "labels": {EXECUTION_LABEL: execution}}}
        options = replace(JenkinsOptions(url=fake.url, user=fake.user, token=fake.token,
                                          log_store_url=f"file://{tmp_path}/logs"), kubeconfig=str(kubeconfig))
        engine = JenkinsEngine(options)
        handle = engine.run(spec)
        engine.cleanup(spec, handle)
        left = sorted(k[3] for k in fk.objects if k[1] == "pods")
        assert left == ["other"]
        assert ("DELETE", "/api/v1/namespaces/p-abcde-pipeline/pods") in fk.writes
        engine.cleanup(spec, handle)   # idempotent
        assert sorted(k[3] for k in fk.objects if k[1] == "pods") == ["other"]
