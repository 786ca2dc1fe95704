"""JenkinsEngine: each execution is a Jenkins pipeline job whose agent is a Kubernetes pod (DESIGN §5).

Contract (devops/engines/base.py), and how this engine keeps it:
  * run(spec): writes the pipeline's Git credential into Jenkins (credentials REST API; the
    checkout names it by id, a build parameter) and the Kubernetes secrets the agent pod refers
    to into the pipeline namespace (_put_secrets), renders the Jenkinsfile, creates or updates the job
    `slipway-<execution>` (config.xml through python-jenkins), and queues a build
    unless the job already has one or one is queued: a second run() for the same
    execution returns the same handle {"job", "queue", "number"?} and starts nothing.
    Two controllers racing past that check still start one build: Jenkins folds
    queue requests with equal parameters into one item (the parameters include
    SLIPWAY_EXECUTION).
  * sync(spec, handle): one `wfapi/describe` of the build (plus the queue item
    until the build has a number), then, for each step that is running or has
    log left to copy, its stage node's describe and ONE progressive-text piece
    per flow node (`logText/progressiveText?start=N`, honouring `X-Text-Size` and
    `X-More-Data`). Cost grows with the active runs and their active steps only.
    Bytes go through devops.logs `open_step_writer` (masking, cap, live
    streaming) exactly as the local engine's. The run is reported finished only
    once every step's log is copied to its end, so the stored log is the whole
    log. The copy resumes exactly after a controller restart (a new engine
    instance): Jenkins offsets are checkpointed beside the log after each
    append and reconciled with the log's stored length (logcopy.py states the
    guarantee). sync starts nothing and stops nothing.
  * stop(spec, handle, wait): cancels the queue item or POSTs `/job/X/N/stop`;
    with wait=False returns False until Jenkins reports the build over.
  * cleanup: closes the log writers and deletes what is left of the agent pod
    (label slipway.io/execution=<name>) when SLIPWAY_KUBECONFIG is set; the
    plugin normally deleted it already (podRetention: never()).
  * stored_runs / prune: every job named `slipway-<execution>` (one `/api/json` listing, its
    last build's end as the age); prune deletes the job (`doDelete`) unless it is queued or
    building. The controller (devops/controller/prune.py) prunes after SLIPWAY_RUN_RETENTION.
  * deploy(project): checks that Jenkins answers with these credentials and
    reconciles the project's data plane (devops.dataplane.deploy).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from devops.engines.base import (
    PermanentEngineError,
    PipelineEngine,
    ProjectSpec,
    RunReport,
    RunSpec,
    StepReport,
    TemporaryEngineError,
)
from devops.engines.jenkins import jenkinsfile as jf
from devops.engines.jenkins.client import JenkinsClient
from devops.engines.jenkins.errors import JenkinsUnreachable
from devops.engines.jenkins.logcopy import StepLogCopy
from devops.engines.jenkins.options import JenkinsOptions

log = logging.getLogger(__name__)

# wfapi StatusExt -> Slipway state
STATUS = {
    "SUCCESS": "Success",
    "FAILED": "Failed",
    "UNSTABLE": "Failed",
    "ABORTED": "Aborted",
    "IN_PROGRESS": "Building",
    "PAUSED_PENDING_INPUT": "Building",
    "NOT_EXECUTED": "Waiting",
}
FINAL = frozenset({"Success", "Failed", "Aborted"})


class JenkinsEngine(PipelineEngine):
    name = "jenkins"

    def __init__(self, options: JenkinsOptions | None = None, *, client: JenkinsClient | None = None,
                 store=None) -> None:
        self._options = options
        self._client = client
        self._store = store
        self._logs: dict[tuple[str, int, int], StepLogCopy] = {}
        self._numbers: dict[str, int] = {}
        # The final report of each finished run until cleanup(): a later sync (another pass, a
        # slow controller) returns it instead of copying the logs again.
        self._final: dict[str, RunReport] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, **overrides: Any) -> JenkinsEngine:
        return cls(JenkinsOptions.from_settings(**overrides))

    @property
    def options(self) -> JenkinsOptions:
        if self._options is None:
            self._options = JenkinsOptions.from_settings()
        return self._options

    @property
    def client(self) -> JenkinsClient:
        if self._client is None:
            o = self.options
            self._client = JenkinsClient(o.url, o.user, o.token, timeout=o.timeout)
        return self._client

    @property
    def store(self):
        if self._store is None:
            from devops.logs import log_store_from_url

            self._store = log_store_from_url(self.options.log_store_url)
        return self._store

    # -- contract -----------------------------------------------------------------------
    def deploy(self, project: ProjectSpec) -> None:
        self.client.whoami()  # raises JenkinsUnreachable / JenkinsAuthError
        # The project's data plane (Jenkins, registry, MinIO, bindings: devops.dataplane), on the
        # cluster of SLIPWAY_KUBECONFIG, or of this pod when Slipway runs on it. Idempotent: a
        # second deploy writes nothing. Without either there is no cluster to deploy to (E033).
        import os

        if not (self.options.kubeconfig or os.environ.get("KUBERNETES_SERVICE_HOST")):
            return
        from kubernetes.client.exceptions import ApiException

        from devops import dataplane

        try:
            dataplane.deploy(project, self.options.kubeconfig or None)
        except ApiException as exc:
            # 409: another controller changed the shared proxy-mappings meanwhile; 5xx: try later.
            raise TemporaryEngineError(f"data plane of {project.project_id}: {exc.status} {exc.reason}") from None

    def render(self, spec: RunSpec, nodes: list[str] | None = None) -> str:
        return jf.render(spec, self.options, list(spec.scheduled_nodes) if nodes is None else nodes)

    def run(self, spec: RunSpec) -> dict[str, Any]:
        job = jf.job_name(spec.execution)
        if spec.config.branch is not None and spec.branch and not spec.config.branch.matches(spec.branch):
            return {"job": job, "skipped": True}
        if jf.git_credential_id(spec):
            # The pipeline's SourceCodeCredential as a Jenkins credential the checkout names by id,
            # rewritten on every run so a changed token or key is what the next clone uses.
            self.client.put_credential(jf.git_credential_id(spec), jf.git_credential_xml(spec))
        try:
            self._put_secrets(spec)
        except jf.JenkinsfileError as exc:
            raise PermanentEngineError(str(exc)) from None
        self.client.ensure_job(job, jf.job_config_xml(spec, self.render(spec)))
        info = self.client.job_info(job) or {}
        if info.get("lastBuild"):
            return {"job": job, "queue": 0, "number": int(info["lastBuild"]["number"])}
        if info.get("inQueue") and info.get("queueItem"):
            return {"job": job, "queue": int(info["queueItem"]["id"])}
        return {"job": job, "queue": self.client.build(job, jf.build_parameters(spec, self.options))}

    def _put_secrets(self, spec: RunSpec) -> None:
        """The Kubernetes secrets the agent pod refers to (jf.run_secrets: envFrom values, registry
        credentials, the deploy target `slipway-deploy-target`), written into the pipeline namespace
        before the job runs, through SLIPWAY_KUBECONFIG's cluster (or this pod's); each rewritten only
        when its data changed. Values travel only in those API requests: the Jenkinsfile and the pod
        hold `secretKeyRef`s and a secret volume. Without a deploy target, deploy steps act with the
        pod's service account `jenkins`, which the data plane binds in the project's namespaces."""
        wanted = jf.run_secrets(spec, self.options)
        if not wanted:
            return
        import base64
        import os

        if not (self.options.kubeconfig or os.environ.get("KUBERNETES_SERVICE_HOST")):
            # No cluster to write to (E033 stops a real controller before this): the operator
            # provides the secrets, as `deploy()` leaves the data plane to them.
            log.warning("%s: no cluster configured: the run's secrets are not written", spec.execution)
            return

        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        from devops.dataplane.client import (
            AlreadyExists,
            KubernetesAPI,
            check_kubeconfig,
            load_api_client,
        )

        if jf.DEPLOY_SECRET in wanted:
            try:
                check_kubeconfig(spec.deploy_kubeconfig)
            except ValueError as exc:
                raise PermanentEngineError(f"the deploy target's kubeconfig is refused: {exc}") from None
        namespace = spec.settings.get("pipeline-namespace") or f"{spec.project_id}-pipeline"
        try:
            api = KubernetesAPI(load_api_client(self.options.kubeconfig or None))
            for name, values in sorted(wanted.items()):
                data = {k: base64.b64encode(v.encode()).decode() for k, v in sorted(values.items())}
                live = api.read("Secret", namespace, name)
                if live is None:
                    body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": data,
                            "metadata": {"name": name, "namespace": namespace,
                                         "labels": {"app.kubernetes.io/managed-by": "slipway"}}}
                    try:
                        api.create("Secret", namespace, body)
                        continue
                    except AlreadyExists:  # another controller wrote it meanwhile
                        live = {}
                if (live or {}).get("data") != data:
                    api.patch("Secret", namespace, name, {"data": data})
        except (ApiException, HTTPError, OSError) as exc:
            status = getattr(exc, "status", None) or type(exc).__name__
            raise TemporaryEngineError(f"writing the run's secrets in {namespace}: {status}") from None

    def _number(self, handle: dict[str, Any]) -> int | None:
        if handle.get("number"):
            return int(handle["number"])
        job = handle["job"]
        if job in self._numbers:
            return self._numbers[job]
        item = self.client.queue_item(int(handle.get("queue") or 0)) if handle.get("queue") else None
        number = None
        if item and item.get("executable"):
            number = int(item["executable"]["number"])
        elif item is None:  # queue items are forgotten ~5 minutes after they leave: ask the job
            info = self.client.job_info(job) or {}
            if info.get("lastBuild"):
                number = int(info["lastBuild"]["number"])
        if number is not None:
            self._numbers[job] = number
        return number

    def sync(self, spec: RunSpec, handle: dict[str, Any]) -> RunReport:
        runs = jf.planned(spec)
        steps = {k: "Waiting" if ok else "Skipped" for k, ok in runs.items()}
        if handle.get("skipped"):
            now = time.time()
            return RunReport(state="Skipped", started=now, ended=now, steps=tuple(
                StepReport(stage=i, step=j, state="Skipped", started=now, ended=now) for (i, j) in steps))
        if spec.execution in self._final:
            return self._final[spec.execution]
        job = handle["job"]
        number = self._number(handle)
        if number is None:
            return RunReport(state="Building", steps=self._reports(spec, steps, {}))
        run = self.client.describe(job, number)
        if run is None:
            return RunReport(state="Building", steps=self._reports(spec, steps, {}))
        times: dict[tuple[int, int], tuple[float | None, float | None, str]] = {}
        all_copied = True
        for stage in run.get("stages") or []:
            m = jf.STEP_STAGE.fullmatch(stage.get("name", ""))
            if not m:
                continue
            key = (int(m.group(1)), int(m.group(2)))
            if key not in steps or not runs[key]:
                continue
            state = STATUS.get(stage.get("status", ""), "Building")
            started = stage.get("startTimeMillis") or None
            started = started / 1000 if started else None
            ended = (started + stage.get("durationMillis", 0) / 1000) if started and state in FINAL else None
            message = ""
            if state != "Waiting":
                done, message = self._copy_log(spec, job, number, key, stage, final=state in FINAL)
                if state in FINAL and not done:
                    all_copied = False
            steps[key] = state
            times[key] = (started, ended, message)
        status = STATUS.get(run.get("status", ""), "Building")
        started = run.get("startTimeMillis")
        report_started = started / 1000 if started else None
        if status not in FINAL or not all_copied:
            return RunReport(state="Building", started=report_started, steps=self._reports(spec, steps, times))
        info = self.client.build_info(job, number) or {}
        node = ""
        desc = info.get("description") or ""
        if desc.startswith(jf.NODE_MARKER):
            node = desc[len(jf.NODE_MARKER):].strip()
        ended = (run.get("endTimeMillis") or 0) / 1000 or time.time()
        error = ""
        if status == "Failed":
            failed = sorted(k for k, s in steps.items() if s == "Failed")
            error = f"step {failed[0][0]}.{failed[0][1]} failed" if failed else "the Jenkins build failed"
        elif status == "Aborted":
            error = "aborted in Jenkins (stopped, or the pipeline timeout passed)"
        report = RunReport(state=status, started=report_started, ended=ended, error=error, node=node,
                           steps=self._reports(spec, steps, times))
        self._close_logs(spec.execution)
        self._final[spec.execution] = report
        return report

    def _reports(self, spec, steps, times) -> tuple[StepReport, ...]:
        out = []
        for (i, j), state in sorted(steps.items()):
            # Skipped steps carry no times: a report must not change between passes when nothing
            # did (the controller skips writing an unchanged report).
            started, ended, message = times.get((i, j), (None, None, ""))
            lg = self._logs.get((spec.execution, i, j))
            out.append(StepReport(stage=i, step=j, state=state, started=started, ended=ended, message=message,
                                  runtime="jenkins", log_size=lg.size if lg else 0))
        return tuple(out)

    def _copy_log(self, spec: RunSpec, job: str, number: int, key: tuple[int, int], stage: dict[str, Any],
                  *, final: bool) -> tuple[bool, str]:
        """Copy what is new of step `key`'s log; (copied to its end, error message of a failed node)."""
        from devops.logs import LogKey

        lk = (spec.execution, *key)
        with self._lock:
            lg = self._logs.get(lk)
            if lg is None:
                # A new instance (a restarted controller) picks up where the log store says the copy
                # stands (logcopy.py): nothing is copied twice, nothing lost.
                lg = self._logs[lk] = StepLogCopy(self.store, LogKey(*lk), mask=spec.mask, cap=_cap(spec.settings))
        if lg.done:
            return True, ""
        described = self.client.node_describe(job, number, str(stage["id"])) or {}
        nodes = described.get("stageFlowNodes") or []
        messages = [n["error"]["message"] for n in nodes if (n.get("error") or {}).get("message")]
        message = messages[-1] if messages else ""
        return lg.copy(self.client, job, number, nodes, final=final), message

    def _close_logs(self, execution: str) -> None:
        with self._lock:
            for k in [k for k in self._logs if k[0] == execution]:
                self._logs.pop(k).close()
        self._numbers.pop(jf.job_name(execution), None)

    def stop(self, spec: RunSpec, handle: dict[str, Any], *, wait: bool = True) -> bool:
        if handle.get("skipped") or not handle.get("job"):
            return True
        job = handle["job"]
        deadline = time.monotonic() + 60
        while True:
            number = self._number(handle)
            if number is None:  # still queued: take it out of the queue
                queue = int(handle.get("queue") or 0)
                if not queue:
                    return True
                self.client.cancel_queue(queue)
                item = self.client.queue_item(queue)
                if item is None or item.get("cancelled"):
                    return True
            else:
                info = self.client.build_info(job, number)
                if info is None or not info.get("building"):
                    return True
                self.client.stop(job, number)  # the fake and Jenkins both record this POST
            if not wait or time.monotonic() > deadline:
                return False
            time.sleep(0.5)

    def cleanup(self, spec: RunSpec, handle: dict[str, Any]) -> None:
        self._close_logs(spec.execution)
        self._final.pop(spec.execution, None)
        if not self.options.kubeconfig:
            return
        try:
            from kubernetes import client as k8s
            from kubernetes import config as k8s_config

            api = k8s.CoreV1Api(k8s_config.new_client_from_config(config_file=self.options.kubeconfig))
            namespace = spec.settings.get("pipeline-namespace") or f"{spec.project_id}-pipeline"
            api.delete_collection_namespaced_pod(namespace, label_selector=f"{jf.EXECUTION_LABEL}={spec.execution}")
        except Exception as exc:  # idempotent and best effort: the plugin deletes the pod itself
            log.warning("%s: deleting the agent pod: %s", spec.execution, type(exc).__name__)

    # Retention (devops/controller/prune.py): each execution's job stays in Jenkins, with its builds
    # and their logs, until the controller prunes it; the log store keeps Slipway's own copy.
    def stored_runs(self) -> list[tuple[str, str, float]]:
        """(execution, execution, end of its last build) of every Slipway job in Jenkins."""
        out = []
        now = time.time()
        for job in self.client.jobs():
            execution = jf.execution_of(str(job.get("name") or ""))
            if execution is None:
                continue  # not ours: Slipway never touches other jobs
            last = job.get("lastBuild") or {}
            if last.get("timestamp"):
                mtime = (int(last["timestamp"]) + int(last.get("duration") or 0)) / 1000.0
            else:
                # Never built (a run() that failed between creating and queuing it): its age is
                # unknown, so it counts as new; its execution's row still decides when it ends.
                mtime = now
            out.append((execution, execution, mtime))
        return out

    def prune(self, entry: str) -> bool:
        """Delete the job of execution `entry` — not while it is queued or building (deleting a
        job aborts its build); True when it is gone."""
        job = jf.job_name(entry)
        info = self.client.job_info(job)
        if info is None:
            return True
        if info.get("inQueue"):
            return False
        last = info.get("lastBuild") or {}
        if last.get("number") is not None:
            build = self.client.build_info(job, int(last["number"])) or {}
            if build.get("building"):
                return False
        self.client.delete_job(job)
        self._final.pop(entry, None)
        return True


def _cap(settings: dict[str, str]) -> int | None:
    from devops.quantity import parse_bytes

    raw = (settings.get("log-size-cap") or "").strip()
    try:
        return parse_bytes(raw) if raw else None
    except ValueError:
        return None


__all__ = ["JenkinsEngine", "JenkinsUnreachable"]
