"""PipelineConfig + RunSpec -> the agent pod and the Jenkinsfile (pure functions, no I/O).

The Jenkinsfile is a scripted pipeline for the Jenkins Kubernetes plugin:

    podTemplate(yaml: '''<the agent Pod>''', podRetention: never()) {
      node(POD_LABEL) {
        timeout(time: <pipeline timeout>, unit: 'MINUTES') {
          stage('<stage name>') {
            parallel('step-1-0': { stage('step-1-0') { container('c1') { sh(...) } } }, ...)
          }
          ...

- The agent pod (`agent_pod()`, a plain Kubernetes Pod dict; the tests validate it
  with kubernetes-validate, strict) has one container per distinct step image
  (and settings: steps of one image with different env, resources or privilege
  get a container each), resources from the step or the project's
  `executor-*` settings, `privileged` only when the step asks, env from the
  step, envFrom as `secretKeyRef` env (a Kubernetes secret of the pipeline
  namespace; the value is never in the script), cache paths as hostPath volumes
  under the project's `devops-cache-dir`, and preferred node affinity for the
  pipeline's recent nodes (devops.cache.affinity, newest first, weight 100-10i).
  No service-account token is automounted: only deploy containers without a
  deploy target mount it (SA_VOLUME, projected).
- Untrusted values (branch names, commit messages, CICD_*) are never spliced into
  Groovy: they are the job's build parameters (`build_parameters()`), which
  Jenkins hands to every `sh` as environment variables. The script holds only
  text of the pipeline file, escaped as Groovy single-quoted strings (no `$`
  interpolation in those).
- `when` is evaluated here, as Rancher did when it converted a pipeline
  (Constraints.matches with the run's branch and event): a step or stage that
  does not match is left out, and the engine reports it Skipped.
- Each Slipway step is a nested stage named `step-<stage>-<step>` (Rancher's
  names); the engine finds it by that name in `wfapi/describe`.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from devops.cache.affinity import pod_affinity
from devops.engines.base import RunSpec
from devops.engines.jenkins.errors import JenkinsfileError
from devops.engines.jenkins.options import JenkinsOptions
from devops.pipeline.config import PipelineConfig, Step
from devops.pipeline.substitute import substitute

AGENT_ROOT = "/home/jenkins/agent"   # the Kubernetes plugin's workspace volume in every container
STEP_STAGE = re.compile(r"step-(\d+)-(\d+)")
EXECUTION_LABEL = "slipway.io/execution"
PIPELINE_LABEL = "slipway.io/pipeline"
NODE_ENV = "SLIPWAY_K8S_NODE"         # the node the agent pod runs on (downward API), see node_marker()
NODE_MARKER = "slipway-node="         # build description prefix carrying the node after the run
_JOB = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
# The project's deploy target (RunSpec.deploy_kubeconfig) as the engine writes it into the pipeline
# namespace before a run (engine.run), and where deploy containers see it.
DEPLOY_SECRET = "slipway-deploy-target"
DEPLOY_MOUNT = "/run/slipway-deploy"
DEPLOY_KINDS = frozenset({"applyYamlConfig", "applyAppConfig"})
# The pod's service-account token (`jenkins`, admin in the project's namespaces) is mounted into no
# container by default (automountServiceAccountToken: false): only the containers of deploy steps
# without a deploy target get it, as the projected volume Kubernetes itself would build (token,
# cluster CA, namespace), where kubectl and helm look for the in-cluster config. A catalog publish
# only talks to Git, so it gets none; the jnlp agent only talks to Jenkins.
SA_VOLUME = "slipway-api-access"
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# Steps that change something outside the run: never for pull requests (the local engine's rule).
UNTRUSTED_REFUSED = {
    "applyYamlConfig": "runs of pull requests get no deploy target; nothing was applied",
    "applyAppConfig": "runs of pull requests get no deploy target; nothing was applied",
    "publishCatalogConfig": "runs of pull requests never publish to the catalog",
}


def sa_volume() -> dict[str, Any]:
    """The projected service-account volume (a fresh dict per pod)."""
    return {
        "name": SA_VOLUME,
        "projected": {
            "defaultMode": 0o644,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                              "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    }


JOB_PREFIX = "slipway-"


def job_name(execution: str) -> str:
    """One Jenkins job per execution: its name (a re-run is a new execution, so a new job)."""
    if not _JOB.fullmatch(execution):
        raise JenkinsfileError(f"execution name {execution!r} cannot be a Jenkins job name")
    return f"{JOB_PREFIX}{execution}"


def execution_of(job: str) -> str | None:
    """The execution whose job is `job` (job_name's inverse); None for a job Slipway did not name."""
    execution = job[len(JOB_PREFIX):] if job.startswith(JOB_PREFIX) else ""
    return execution if _JOB.fullmatch(execution) else None


def groovy_str(text: str) -> str:
    """`text` as a Groovy single-quoted string literal: no interpolation; \\, ' and control characters escaped."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def groovy_block(text: str) -> str:
    """`text` as a Groovy triple-single-quoted literal (readable multi-line; no interpolation)."""
    body = text.replace("\\", "\\\\").replace("'", "\\'")
    body = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", body)
    return "'''" + body + "'''"


# -- which steps run ------------------------------------------------------------------------

def planned(spec: RunSpec, config: PipelineConfig | None = None) -> dict[tuple[int, int], bool]:
    """(stage, step) -> whether it runs in this execution (its stage's and its own `when` match)."""
    cfg = config or spec.config
    out = {}
    for i, stage in enumerate(cfg.stages):
        stage_ok = stage.when is None or stage.when.matches(branch=spec.branch, event=spec.event)
        for j, step in enumerate(stage.steps):
            out[(i, j)] = stage_ok and (step.when is None or step.when.matches(branch=spec.branch, event=spec.event))
    return out


# -- the agent pod ----------------------------------------------------------------------------

@dataclass
class _Container:
    name: str
    body: dict[str, Any]


def _resources(step: Step, settings: dict[str, str]) -> dict[str, Any]:
    out: dict[str, dict[str, str]] = {}
    for kind, key, own in (("requests", "cpu", step.cpu_request), ("requests", "memory", step.memory_request),
                           ("limits", "cpu", step.cpu_limit), ("limits", "memory", step.memory_limit)):
        setting = f"executor-{key}-{'request' if kind == 'requests' else 'limit'}"
        value = (own or settings.get(setting) or "").strip()
        if value:
            out.setdefault(kind, {})[key] = value
    return out


def env_secret_name(source: str) -> str:
    """The Kubernetes secret of the pipeline namespace that holds the project secret `source` for
    envFrom (engine.run writes it): prefixed, so no project secret can replace a data-plane one."""
    slug = re.sub(r"[^a-z0-9-]+", "-", source.lower()).strip("-")[:40] or "secret"
    return f"slipway-env-{slug}-{hashlib.sha256(source.encode()).hexdigest()[:8]}"


def run_secrets(spec: RunSpec, options: JenkinsOptions) -> dict[str, dict[str, str]]:
    """Kubernetes secret name -> data (plain values) the agent pod of `spec` refers to: the envFrom
    keys its steps use, the credentials of the registries it pushes to, the deploy target. Empty for
    pull requests (the controller gives them no secrets, and the pod refers to none)."""
    if not spec.trusted:
        return {}
    cfg = substitute(spec.config, run_env(spec, options))
    out: dict[str, dict[str, str]] = {}
    for (i, j), ok in planned(spec, cfg).items():
        step = cfg.stages[i].steps[j]
        if not ok:
            continue
        for e in step.env_from:
            value = (spec.secrets.get(e.source_name) or {}).get(e.source_key)
            if value is None:
                raise JenkinsfileError(f"step {i}.{j}: envFrom {e.source_name}/{e.source_key}: no such project secret")
            out.setdefault(env_secret_name(e.source_name), {})[e.source_key] = value
        if step.kind == "publishImageConfig":
            registry = publish_target(step, options).registry
            if registry in spec.registry_auth:
                user, password = spec.registry_auth[registry]
                out[registry_secret_name(registry)] = {"username": user, "password": password}
        if step.kind in DEPLOY_KINDS and spec.deploy_kubeconfig:
            out[DEPLOY_SECRET] = {"kubeconfig": spec.deploy_kubeconfig}
    return out


def registry_secret_name(host: str) -> str:
    """The Kubernetes secret (keys `username`, `password`) holding the credentials of registry `host`."""
    slug = re.sub(r"[^a-z0-9-]+", "-", host.lower()).strip("-")[:40] or "default"
    return f"slipway-registry-{slug}-{hashlib.sha256(host.encode()).hexdigest()[:8]}"


def publish_target(step: Step, options: JenkinsOptions):
    """Where a publishImageConfig step pushes: the local engine's rule (devops.engines.local.images),
    so a pipeline file means the same image on both engines."""
    from devops.engines.local.images import resolve_target

    try:
        return resolve_target(step.type, options.local_registry)
    except ValueError as exc:
        raise JenkinsfileError(str(exc)) from None


def run_env(spec: RunSpec, options: JenkinsOptions) -> dict[str, str]:
    """The run's CICD_* values on this engine. The controller's CICD_LOCAL_REGISTRY names the local
    engine's built-in registry (host plus the project's namespace there); on Kubernetes each project's
    pipeline namespace has a registry of its own behind the nodes' registry-proxy, as in Rancher, so
    `${CICD_LOCAL_REGISTRY}/myorg/app` is that registry's image, with no namespace added."""
    return {**spec.env, "CICD_LOCAL_REGISTRY": options.local_registry}


def published_env(target) -> dict[str, str]:
    """CICD_REGISTRY / CICD_IMAGE_REPO / CICD_IMAGE a publish step gives later applyYaml steps (DESIGN §3):
    Rancher's kube-apply rule, the same as the local engine's (publish_image._export): the image
    without its tag, so a manifest writes `${CICD_IMAGE}:${CICD_EXECUTION_SEQUENCE}`."""
    return {"CICD_REGISTRY": target.registry, "CICD_IMAGE_REPO": target.repository,
            "CICD_IMAGE": f"{target.registry}/{target.repository}"}


# `${CICD_*}` of the manifest replaced from the step's environment at run time, by
# devops.pipeline.substitute's rule (only names set in the environment; others stay as written).
# POSIX awk reading ENVIRON: no value is ever shell or awk text.
SUBSTITUTE_AWK = (
    "awk '{ out = \"\"; line = $0\n"
    "  while (match(line, /[$][{]CICD_[A-Za-z0-9_]*[}]/)) {\n"
    "    name = substr(line, RSTART + 2, RLENGTH - 3)\n"
    "    value = (name in ENVIRON) ? ENVIRON[name] : substr(line, RSTART, RLENGTH)\n"
    "    out = out substr(line, 1, RSTART - 1) value; line = substr(line, RSTART + RLENGTH)\n"
    "  }\n"
    "  print out line }'"
)


def _step_image_env(step: Step, spec: RunSpec, options: JenkinsOptions,
                    published: dict[str, str] | None = None) -> tuple[str, list[dict[str, Any]], str]:
    """(image, extra env, shell script) of a step; the script is fixed text reading its values from env."""
    t = step.type
    kind = t.kind
    if kind == "runScriptConfig":
        return t.image, [], t.shell_script
    if kind == "publishImageConfig":
        target = publish_target(step, options)
        registry = target.registry
        env = [{"name": "PLUGIN_DOCKERFILE", "value": t.dockerfile_path},
               {"name": "PLUGIN_CONTEXT", "value": t.build_context},
               {"name": "PLUGIN_REGISTRY", "value": registry},
               {"name": "PLUGIN_DESTINATIONS", "value": "\n".join(target.refs)}]
        if registry in spec.registry_auth and spec.trusted:
            secret = registry_secret_name(registry)
            env += [{"name": n, "valueFrom": {"secretKeyRef": {"name": secret, "key": k}}}
                    for n, k in (("PLUGIN_USERNAME", "username"), ("PLUGIN_PASSWORD", "password"))]
        script = (
            'set -ef\n'
            'if [ -n "${PLUGIN_USERNAME:-}" ]; then\n'
            '  auth=$(printf %s "$PLUGIN_USERNAME:$PLUGIN_PASSWORD" | base64 | tr -d "\\n")\n'
            '  printf \'{"auths":{"%s":{"auth":"%s"}}}\' "$PLUGIN_REGISTRY" "$auth" > /kaniko/.docker/config.json\n'
            'fi\n'
            # One --destination per tag (`app:1,latest`), each its own argument: split on newlines
            # only, globbing off (set -f), so no tag text is ever re-read as shell.
            'IFS=\'\n\'\nset --\nfor d in $PLUGIN_DESTINATIONS; do set -- "$@" "--destination=$d"; done\n'
            '/kaniko/executor --dockerfile="$PLUGIN_DOCKERFILE" --context="dir://$PWD/$PLUGIN_CONTEXT" "$@"\n'
        )
        return options.kaniko_image, env, script
    if kind == "applyYamlConfig":
        namespace = t.namespace or (spec.deploy_namespace if spec.deploy_kubeconfig else "")
        env = [{"name": "YAML_PATH", "value": t.path}, {"name": "YAML_CONTENT", "value": t.content},
               {"name": "YAML_NAMESPACE", "value": namespace}]
        own = {k for k, _ in step.env}
        env += [{"name": k, "value": v} for k, v in (published or {}).items() if k not in own]
        # Files of its own (mktemp): steps of one stage run in parallel, maybe in one container.
        script = ('set -e\nsrc=$(mktemp) && manifest=$(mktemp)\n'
                  'if [ -n "$YAML_CONTENT" ]; then printf \'%s\\n\' "$YAML_CONTENT" > "$src"; '
                  'else cat -- "$YAML_PATH" > "$src"; fi\n'
                  f'{SUBSTITUTE_AWK} "$src" > "$manifest"\n'
                  'kubectl apply --server-side --field-manager=slipway -f "$manifest" '
                  '${YAML_NAMESPACE:+-n "$YAML_NAMESPACE"}\n')
        return options.tools_image, env, script
    if kind == "applyAppConfig":
        answers = "\n".join(f"{k}: {json.dumps(v)}" for k, v in t.answers)
        env = [{"name": "APP_TEMPLATE", "value": t.catalog_template}, {"name": "APP_VERSION", "value": t.version},
               {"name": "APP_NAME", "value": t.name},
               {"name": "APP_NAMESPACE",
                "value": t.target_namespace or (spec.deploy_namespace if spec.deploy_kubeconfig else "")},
               {"name": "APP_ANSWERS", "value": answers}]
        script = ('set -e\nprintf %s "$APP_ANSWERS" > /tmp/slipway-answers.yaml\n'
                  'helm upgrade --install "$APP_NAME" "$APP_TEMPLATE" ${APP_VERSION:+--version "$APP_VERSION"} '
                  '${APP_NAMESPACE:+-n "$APP_NAMESPACE"} -f /tmp/slipway-answers.yaml\n')
        return options.tools_image, env, script
    if kind == "publishCatalogConfig":
        env = [{"name": "CATALOG_PATH", "value": t.path}, {"name": "CATALOG_TEMPLATE", "value": t.catalog_template},
               {"name": "CATALOG_VERSION", "value": t.version}, {"name": "CATALOG_GIT_URL", "value": t.git_url},
               {"name": "CATALOG_GIT_BRANCH", "value": t.git_branch},
               {"name": "GIT_AUTHOR_NAME", "value": t.git_author}, {"name": "GIT_AUTHOR_EMAIL", "value": t.git_email},
               {"name": "GIT_COMMITTER_NAME", "value": t.git_author},
               {"name": "GIT_COMMITTER_EMAIL", "value": t.git_email}]
        script = (
            'set -e\nexport GIT_TERMINAL_PROMPT=0\n'
            # The pipeline's Git credential, bound by withCredentials (render): a credential helper
            # that reads it from the environment, so the token is on no command line.
            'if [ -n "${SLIPWAY_GIT_TOKEN:-}" ]; then\n'
            '  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=credential.helper\n'
            '  export GIT_CONFIG_VALUE_0=\'!f() { echo "username=${SLIPWAY_GIT_USER}"; '
            'echo "password=${SLIPWAY_GIT_TOKEN}"; }; f\'\n'
            'fi\n'
            'if [ -n "${SLIPWAY_GIT_KEY:-}" ]; then\n'
            '  export GIT_SSH_COMMAND="ssh -i $SLIPWAY_GIT_KEY -o IdentitiesOnly=yes -o BatchMode=yes '
            '-o StrictHostKeyChecking=accept-new"\n'
            'fi\n'
            'if [ -z "$CATALOG_VERSION" ]; then\n'
            '  CATALOG_VERSION=$(sed -n \'s/^version:[[:space:]]*//p\' "$CATALOG_PATH/Chart.yaml" | head -n 1 '
            '| tr -d \'"\\047 \\r\')\n'
            'fi\n'
            # A directory of its own: steps of one stage run in parallel, maybe in one container.
            'work=$(mktemp -d) && git clone -q --depth 1 ${CATALOG_GIT_BRANCH:+-b "$CATALOG_GIT_BRANCH"} '
            '"$CATALOG_GIT_URL" "$work/catalog"\n'
            'top=templates; [ -d "$work/catalog/templates" ] || { [ -d "$work/catalog/charts" ] && top=charts; }\n'
            'dest="$work/catalog/$top/$CATALOG_TEMPLATE/$CATALOG_VERSION"\n'
            'rm -rf "$dest" && mkdir -p "$dest" && cp -R "$CATALOG_PATH"/. "$dest"/\n'
            'cd "$work/catalog" && git add -A\n'
            'if git diff --cached --quiet; then echo "the catalog already holds $top/$CATALOG_TEMPLATE/$CATALOG_VERSION"; '
            'exit 0; fi\n'
            'git commit -q -m "Publish $CATALOG_TEMPLATE $CATALOG_VERSION ($SLIPWAY_EXECUTION)"\n'
            'git push -q origin HEAD\n'
            'echo "published $top/$CATALOG_TEMPLATE/$CATALOG_VERSION to ${CATALOG_GIT_BRANCH:-the default branch}"\n'
        )
        return options.tools_image, env, script
    raise JenkinsfileError(f"step type {kind} has no Jenkins conversion")


def cache_paths(cfg: PipelineConfig, i: int, j: int) -> tuple[str, ...]:
    """Step (i, j)'s effective cache paths, by the local engine's rule (devops.cache.stepcache.cache_paths):
    the nearest level that says anything wins; `false` turns caching off, `true` or paths turn it on with
    the nearest paths. Only runScriptConfig steps are cached."""
    stage = cfg.stages[i]
    if stage.steps[j].kind != "runScriptConfig":
        return ()
    levels = [c for c in (stage.steps[j].cache, stage.cache, cfg.cache) if c is not None]
    for k, level in enumerate(levels):
        if level.enabled is False:
            return ()
        if level.enabled is True or level.paths:
            paths = next((c.paths for c in levels[k:] if c.paths), ())
            return tuple(dict.fromkeys(p.strip() for p in paths if p.strip()))
    return ()


def _cache_mounts(spec: RunSpec, cfg: PipelineConfig, i: int, j: int, cache_root: str) -> list[tuple[str, str, str]]:
    """(volume name, host path, mount path) of each cache path of step (i, j)."""
    if not spec.trusted:  # pull requests never publish caches: no hostPath at all
        return []
    out = []
    workspace = f"{AGENT_ROOT}/workspace/{job_name(spec.execution)}"
    for path in cache_paths(cfg, i, j):
        digest = hashlib.sha256(f"{spec.pipeline_id}\0{path}".encode()).hexdigest()[:16]
        mount = path if path.startswith("/") else f"{workspace}/{path.strip('/')}"
        out.append((f"cache-{digest}", f"{cache_root.rstrip('/')}/{spec.pipeline_id}/{digest}", mount))
    return out


def build_plan(spec: RunSpec, options: JenkinsOptions, nodes: list[str] | None = None):
    """(pod dict, {(i, j): (container name, script)}, substituted config) for `spec`."""
    cfg = substitute(spec.config, run_env(spec, options))
    runs = planned(spec, cfg)
    cache_root = (spec.settings.get("devops-cache-dir") or "").strip() or options.cache_dir
    if not cache_root.startswith("/"):
        raise JenkinsfileError(f"devops-cache-dir {cache_root!r} must be an absolute path on the nodes")
    containers: dict[str, _Container] = {}
    volumes: dict[str, dict[str, Any]] = {}
    steps: dict[tuple[int, int], tuple[str, str]] = {}
    # What the nearest publish step of an EARLIER stage exported (steps of one stage run in
    # parallel, so a sibling's image may not exist yet when an applyYaml step starts).
    published: dict[str, str] = {}
    for i, stage in enumerate(cfg.stages):
        stage_published = published
        for j, step in enumerate(stage.steps):
            if not runs[(i, j)] or step.kind == "sourceCodeConfig":
                continue
            if not spec.trusted and step.kind in UNTRUSTED_REFUSED:
                continue  # the Jenkinsfile fails the step instead (render)
            if step.kind == "publishImageConfig":
                stage_published = published_env(publish_target(step, options))
            image, extra, script = _step_image_env(step, spec, options, published)
            env = [{"name": k, "value": v} for k, v in step.env]
            env += [{"name": e.name, "valueFrom": {"secretKeyRef": {"name": env_secret_name(e.source_name),
                                                                     "key": e.source_key}}}
                    for e in step.env_from if spec.trusted]
            env += extra
            target = step.kind in DEPLOY_KINDS and bool(spec.deploy_kubeconfig)
            if target:
                # The project's deploy target instead of the pod's service account: kubectl and helm
                # read KUBECONFIG; the file is the Kubernetes secret the engine wrote (never inline).
                env += [{"name": "KUBECONFIG", "value": f"{DEPLOY_MOUNT}/kubeconfig"}]
            body: dict[str, Any] = {"image": image, "command": ["cat"], "tty": True, "env": env}
            if target:
                body["volumeMounts"] = [{"name": "deploy-target", "mountPath": DEPLOY_MOUNT, "readOnly": True}]
                volumes["deploy-target"] = {"name": "deploy-target",
                                            "secret": {"secretName": DEPLOY_SECRET, "defaultMode": 0o400}}
            elif step.kind in DEPLOY_KINDS and spec.trusted:
                # No deploy target: kubectl/helm use the in-cluster config, i.e. this token. Part of
                # the container's body, so a script step never shares a container with it.
                body["volumeMounts"] = [{"name": SA_VOLUME, "mountPath": SA_MOUNT, "readOnly": True}]
                volumes[SA_VOLUME] = sa_volume()
            if image == options.kaniko_image:
                body["command"] = ["/busybox/cat"]  # the kaniko debug image has no /bin
            resources = _resources(step, spec.settings)
            if resources:
                body["resources"] = resources
            if step.privileged:
                body["securityContext"] = {"privileged": True}
            key = json.dumps(body, sort_keys=True)
            c = containers.get(key)
            if c is None:
                c = containers[key] = _Container(f"c{len(containers)}", body)
            for vol, host, mount in _cache_mounts(spec, cfg, i, j, cache_root):
                volumes[vol] = {"name": vol, "hostPath": {"path": host, "type": "DirectoryOrCreate"}}
                mounts = c.body.setdefault("volumeMounts", [])
                if all(m["mountPath"] != mount for m in mounts):
                    mounts.append({"name": vol, "mountPath": mount})
            steps[(i, j)] = (c.name, script)
        published = stage_published
    pod_spec: dict[str, Any] = {
        "serviceAccountName": "jenkins",
        "restartPolicy": "Never",
        # No container gets the token of `jenkins` (admin in the project's namespaces) unless it
        # mounts SA_VOLUME above: project scripts run next to it. Pull requests have no deploy
        # step in the pod, so no container of theirs has it at all.
        "automountServiceAccountToken": False,
        "containers": [
            # The plugin's own agent container: only the node name added (the plugin fills in the image).
            {"name": "jnlp", "env": [{"name": NODE_ENV, "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]},
            *({"name": c.name, **{k: v for k, v in c.body.items() if v != []}} for c in containers.values()),
        ],
    }
    affinity = pod_affinity(nodes or [])
    if affinity:
        pod_spec["affinity"] = affinity
    if volumes:
        pod_spec["volumes"] = list(volumes.values())
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"labels": {EXECUTION_LABEL: spec.execution, PIPELINE_LABEL: _label(spec.pipeline_id)}},
        "spec": pod_spec,
    }
    return pod, steps, cfg


def _label(value: str) -> str:
    v = re.sub(r"[^A-Za-z0-9._-]", "-", value)[:63].strip("-._")
    return v or "none"


def agent_pod(spec: RunSpec, options: JenkinsOptions, nodes: list[str] | None = None) -> dict[str, Any]:
    """The agent Pod (plain dict) the Jenkinsfile's podTemplate asks the Kubernetes plugin for."""
    return build_plan(spec, options, nodes)[0]


# -- the Jenkinsfile ----------------------------------------------------------------------------

CLONE = (
    "checkout([$class: 'GitSCM', branches: [[name: params.CICD_GIT_COMMIT]], "
    "userRemoteConfigs: [[url: params.CICD_GIT_URL, credentialsId: params.SLIPWAY_GIT_CREDENTIALS ?: null]]])"
)


def _git_binding(spec: RunSpec) -> str:
    """The credentials-binding of the pipeline's Git credential for a catalog push ("" without one):
    its values reach the step as environment variables, and Jenkins masks them in the log."""
    if not git_credential_id(spec):
        return ""
    if spec.git_auth.ssh_private_key:
        return "sshUserPrivateKey(credentialsId: params.SLIPWAY_GIT_CREDENTIALS, keyFileVariable: 'SLIPWAY_GIT_KEY')"
    return ("usernamePassword(credentialsId: params.SLIPWAY_GIT_CREDENTIALS, usernameVariable: 'SLIPWAY_GIT_USER', "
            "passwordVariable: 'SLIPWAY_GIT_TOKEN')")


def render(spec: RunSpec, options: JenkinsOptions, nodes: list[str] | None = None) -> str:
    """The Jenkinsfile of `spec` (see the module docstring); `nodes`: the pipeline's recent nodes, newest first."""
    pod, steps, cfg = build_plan(spec, options, nodes)
    runs = planned(spec, cfg)
    pod_yaml = yaml.safe_dump(pod, sort_keys=False, default_flow_style=False)
    out = [
        f"// Generated by Slipway for execution {spec.execution}: rewritten on every run, do not edit.",
        "// Values of the run (CICD_*, branch, commit) are build parameters, never Groovy text.",
        f"def slipwayPod = {groovy_block(pod_yaml)}",
        "",
        "podTemplate(yaml: slipwayPod, podRetention: never()) {",
        "  node(POD_LABEL) {",
        # The node the pod landed on, for cache affinity of the next run (RunReport.node).
        f"    currentBuild.description = {groovy_str(NODE_MARKER)} + "
        f"sh(script: 'printf %s \"${NODE_ENV}\"', returnStdout: true).trim()",
        f"    timeout(time: {int(cfg.timeout)}, unit: 'MINUTES') {{",
    ]
    for i, stage in enumerate(cfg.stages):
        branches = [j for j in range(len(stage.steps)) if runs[(i, j)]]
        if not branches:
            continue
        name = stage.name if not STEP_STAGE.fullmatch(stage.name) else f"{stage.name} (stage)"
        out.append(f"      stage({groovy_str(name)}) {{")
        out.append("        parallel(")
        for j in branches:
            label = f"step-{i}-{j}"
            out.append(f"          {groovy_str(label)}: {{")
            out.append(f"            stage({groovy_str(label)}) {{")
            if stage.steps[j].kind == "sourceCodeConfig":
                out.append(f"              {CLONE}")
            elif not spec.trusted and stage.steps[j].kind == "publishImageConfig" and stage.steps[j].type.push_remote:
                out.append("              error('runs of pull requests never push to remote registries')")
            elif not spec.trusted and stage.steps[j].kind in UNTRUSTED_REFUSED:
                out.append(f"              error({groovy_str(UNTRUSTED_REFUSED[stage.steps[j].kind])})")
            else:
                container, script = steps[(i, j)]
                out.append(f"              container({groovy_str(container)}) {{")
                binding = _git_binding(spec) if stage.steps[j].kind == "publishCatalogConfig" else ""
                if binding:
                    out.append(f"                withCredentials([{binding}]) {{")
                out.append(f"                sh(script: {groovy_block(script)}, label: {groovy_str(label)})")
                if binding:
                    out.append("                }")
                out.append("              }")
            out.append("            }")
            out.append("          },")
        out.append("          failFast: false")
        out.append("        )")
        out.append("      }")
    out += ["    }", "  }", "}", ""]
    return "\n".join(out)


def git_credential_id(spec: RunSpec) -> str:
    """The Jenkins credential the checkout uses: one per pipeline, "" when the pipeline's repository
    needs none (its SourceCodeCredential has neither token nor SSH key)."""
    auth = spec.git_auth
    if not (auth.token or auth.ssh_private_key):
        return ""
    slug = re.sub(r"[^a-z0-9-]+", "-", spec.pipeline_id.lower()).strip("-")[:40] or "pipeline"
    return f"slipway-git-{slug}-{hashlib.sha256(spec.pipeline_id.encode()).hexdigest()[:8]}"


def git_credential_xml(spec: RunSpec) -> str:
    """The credential's XML for the credentials plugin's REST API: username + token
    (UsernamePasswordCredentialsImpl, for HTTPS remotes) or an SSH private key
    (ssh-credentials' BasicSSHUserPrivateKey, direct entry). It holds the secret: it is only
    ever the body of the POST to Jenkins (JenkinsClient.put_credential), never logged."""
    from xml.sax.saxutils import escape

    auth = spec.git_auth
    cid = git_credential_id(spec)
    head = (f"<scope>GLOBAL</scope><id>{escape(cid)}</id>"
            f"<description>{escape(f'Slipway: Git credential of pipeline {spec.pipeline_id}')}</description>")
    if auth.ssh_private_key:
        key = auth.ssh_private_key if auth.ssh_private_key.endswith("\n") else auth.ssh_private_key + "\n"
        cls = "com.cloudbees.jenkins.plugins.sshcredentials.impl.BasicSSHUserPrivateKey"
        return (f"<{cls}>{head}<username>{escape(auth.username or 'git')}</username><passphrase></passphrase>"
                f'<privateKeySource class="{cls}$DirectEntryPrivateKeySource">'
                f"<privateKey>{escape(key)}</privateKey></privateKeySource></{cls}>")
    cls = "com.cloudbees.plugins.credentials.impl.UsernamePasswordCredentialsImpl"
    return (f"<{cls}>{head}<username>{escape(auth.username or 'x-access-token')}</username>"
            f"<password>{escape(auth.token)}</password></{cls}>")


def build_parameters(spec: RunSpec, options: JenkinsOptions | None = None) -> dict[str, str]:
    """The build's parameters: every value of the run that steps see as environment variables.

    SLIPWAY_GIT_CREDENTIALS is the id (never the secret) of the pipeline's Jenkins credential,
    which run() writes before the build is queued; empty for repositories that need none."""
    params = {k: v for k, v in run_env(spec, options or JenkinsOptions()).items() if not k.startswith("SLIPWAY_")}
    params.update(CICD_GIT_URL=spec.repository_url, CICD_GIT_COMMIT=spec.commit,
                  SLIPWAY_EXECUTION=spec.execution, SLIPWAY_GIT_CREDENTIALS=git_credential_id(spec))
    return params


def job_config_xml(spec: RunSpec, jenkinsfile: str) -> str:
    """The pipeline job's config.xml: string parameters for build_parameters(), the script, sandboxed."""
    from xml.sax.saxutils import escape

    params = "".join(
        "<hudson.model.StringParameterDefinition>"
        f"<name>{escape(name)}</name><defaultValue></defaultValue><trim>false</trim>"
        "</hudson.model.StringParameterDefinition>"
        for name in build_parameters(spec)
    )
    return (
        "<?xml version='1.1' encoding='UTF-8'?>\n"
        '<flow-definition plugin="workflow-job">'
        f"<description>{escape(f'Slipway execution {spec.execution} of pipeline {spec.pipeline_id}')}</description>"
        "<keepDependencies>false</keepDependencies>"
        "<properties>"
        "<org.jenkinsci.plugins.workflow.job.properties.DisableConcurrentBuildsJobProperty/>"
        f"<hudson.model.ParametersDefinitionProperty><parameterDefinitions>{params}"
        "</parameterDefinitions></hudson.model.ParametersDefinitionProperty>"
        "</properties>"
        '<definition class="org.jenkinsci.plugins.workflow.cps.CpsFlowDefinition" plugin="workflow-cps">'
        f"<script>{escape(jenkinsfile)}</script><sandbox>true</sandbox></definition>"
        "<triggers/><disabled>false</disabled>"
        "</flow-definition>"
    )
