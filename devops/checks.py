"""System checks for misconfiguration, with stable ids (slipway.E0xx / W0xx; README "System checks")."""
from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def check_log_store(app_configs, **kwargs):
    """SLIPWAY_LOG_STORE: E001 unknown scheme, E010 file:// without an absolute path,
    E011 malformed s3:// URL, E012 s3:// without credentials, E013 s3:// without one bucket."""
    from devops.logs.s3config import log_store_url_problems

    return [Error(msg, id=check_id) for check_id, msg in log_store_url_problems(settings.SLIPWAY_LOG_STORE)]


@register()
def check_engine_and_runtime(app_configs, **kwargs):
    """E020: SLIPWAY_ENGINE's module is missing or fails to import. E021: the same for
    SLIPWAY_STEP_RUNTIME (local engine; `auto` checks every runtime it may pick).
    E022: a test-only runtime (dummy) without SLIPWAY_TEST_RUNTIMES. W025: test-only
    runtimes are enabled. Without these `runcontroller` would fail later, or run nothing."""
    from devops.engines.local.runtimes import AUTO, RUNTIMES
    from devops.engines.registry import ENGINES

    engine = settings.SLIPWAY_ENGINE
    problems = _unloadable(ENGINES, [engine], "SLIPWAY_ENGINE", engine, "slipway.E020")
    test_runtimes = getattr(settings, "SLIPWAY_TEST_RUNTIMES", False)
    runtime = settings.SLIPWAY_STEP_RUNTIME
    if engine == "local":
        wanted = [k.name for k in RUNTIMES if k.auto_tool is not None] if runtime == AUTO else [runtime]
        problems += _unloadable(RUNTIMES, wanted, "SLIPWAY_STEP_RUNTIME", runtime, "slipway.E021")
        if runtime in RUNTIMES and RUNTIMES.get(runtime).test_only and not test_runtimes:
            problems.append(Error(
                f"SLIPWAY_STEP_RUNTIME={runtime!r} is for tests only: nothing really runs",
                hint="set SLIPWAY_TEST_RUNTIMES=1 only in tests",
                id="slipway.E022",
            ))
    if test_runtimes:
        problems.append(Warning(
            "SLIPWAY_TEST_RUNTIMES is on: test-only step runtimes "
            f"({', '.join(k.name for k in RUNTIMES if k.test_only)}) may be chosen",
            hint="unset it outside the test suite",
            id="slipway.W025",
        ))
    return problems


def _unloadable(table, names, variable: str, value: str, check_id: str) -> list[Error]:
    """One error per name of `table` that cannot be loaded (unknown, missing, failing import)."""
    from devops.kinds import KindNotFound, KindUnavailable

    errors = []
    for name in names:
        try:
            table.load(name)
        except (KindNotFound, KindUnavailable) as exc:
            usable = []
            for other in table.names():
                try:
                    table.load(other)
                    usable.append(other)
                except KindUnavailable:
                    pass
            errors.append(Error(f"{variable}={value!r} cannot be used: {exc}",
                                hint=f"installed: {', '.join(usable) or 'none'}", id=check_id))
    return errors
# --- dangerous configurations (issue 8): W020-W024 --------------------------------------
# Each is its own function so a deployment can silence one id (SILENCED_SYSTEM_CHECKS)
# and the ids stay stable as checks are added.

def _is_loopback(host: str) -> bool:
    import ipaddress

    host = (host or "").strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _exposed_hosts() -> list[str]:
    """The non-loopback places Slipway is reached at: SLIPWAY_HOST (where `up` binds) and SLIPWAY_PUBLIC_URL."""
    import os
    from urllib.parse import urlsplit

    bind = os.environ.get("SLIPWAY_HOST", "127.0.0.1")
    public = urlsplit(settings.PUBLIC_URL).hostname or ""
    return [h for h in (bind, public) if h and not _is_loopback(h)]


@register()
def check_allowed_hosts(app_configs, **kwargs):
    """W020: ALLOWED_HOSTS contains '*' while Slipway listens or is published beyond loopback."""
    exposed = _exposed_hosts()
    if "*" in settings.ALLOWED_HOSTS and exposed:
        return [Warning(
            f"SLIPWAY_ALLOWED_HOSTS is '*' but Slipway is reachable at {', '.join(exposed)}: any Host "
            "header is accepted (host-header poisoning of links and password-reset mails)",
            hint="set SLIPWAY_ALLOWED_HOSTS to the host names Slipway is served under",
            id="slipway.W020",
        )]
    return []


@register()
def check_encryption_key(app_configs, **kwargs):
    """W021: SLIPWAY_ENCRYPTION_KEY unset, so the key for secrets at rest is derived from the secret key."""
    if settings.ENCRYPTION_KEY_DERIVED:
        return [Warning(
            "SLIPWAY_ENCRYPTION_KEY is not set: credentials and secrets are encrypted with a key derived "
            "from the Django secret key; whoever reads or rotates that key reads or loses every stored secret",
            hint="set SLIPWAY_ENCRYPTION_KEY to a long random value and keep it apart from SLIPWAY_SECRET_KEY",
            id="slipway.W021",
        )]
    return []


@register()
def check_step_runtime(app_configs, **kwargs):
    """W024: the `dummy` step runtime outside the tests; W022: the unisolated `host` runtime.

    Warnings, not errors: the test suite's own controller subprocesses run `dummy` on purpose.
    """
    runtime = settings.SLIPWAY_STEP_RUNTIME
    if runtime == "dummy" and not settings.SLIPWAY_TESTING:
        return [Warning(
            "SLIPWAY_STEP_RUNTIME is 'dummy': no step runs, every step reports what its env scripts",
            hint="use auto, container or sandbox (dummy is for tests)",
            id="slipway.W024",
        )]
    if runtime == "host" and not settings.SLIPWAY_TESTING:
        return [Warning(
            "SLIPWAY_STEP_RUNTIME is 'host': steps run as plain processes with Slipway's own rights "
            "(they can read the data dir, the database and other projects' workspaces)",
            hint="use auto, container or sandbox unless every pipeline is trusted",
            id="slipway.W022",
        )]
    return []


@register()
def check_signup(app_configs, **kwargs):
    """W023: SLIPWAY_SIGNUP=open: anyone who reaches Slipway can make an account and run code on it."""
    if settings.SLIPWAY_SIGNUP == "open":
        return [Warning(
            "SLIPWAY_SIGNUP is 'open': anyone who reaches /accounts/signup/ gets an account",
            hint="set SLIPWAY_SIGNUP=closed and add users with `manage.py user add` or the admin",
            id="slipway.W023",
        )]
    return []


@register()
def check_jenkins_engine(app_configs, **kwargs):
    """With SLIPWAY_ENGINE=jenkins: E030 SLIPWAY_JENKINS_URL unset; E031 SLIPWAY_JENKINS_USER or
    SLIPWAY_JENKINS_TOKEN unset; E032 Jenkins does not answer or refuses the credentials
    (`/me/api/json`, 5 s); E033 SLIPWAY_KUBECONFIG unset; E034 the kubeconfig cannot be read or loaded."""
    if settings.SLIPWAY_ENGINE != "jenkins":
        return []
    errors = []
    url, user, token = settings.SLIPWAY_JENKINS_URL, settings.SLIPWAY_JENKINS_USER, settings.SLIPWAY_JENKINS_TOKEN
    if not url:
        errors.append(Error("SLIPWAY_ENGINE is 'jenkins' but SLIPWAY_JENKINS_URL is not set",
                            hint="set SLIPWAY_JENKINS_URL to Jenkins' base URL, e.g. http://jenkins:8080",
                            id="slipway.E030"))
    missing = [n for n, v in (("SLIPWAY_JENKINS_USER", user), ("SLIPWAY_JENKINS_TOKEN", token)) if not v]
    if missing:
        errors.append(Error(f"SLIPWAY_ENGINE is 'jenkins' but {' and '.join(missing)} not set",
                            hint="a Jenkins user and an API token of that user (User > Configure > API Token)",
                            id="slipway.E031"))
    if not errors:
        from devops.engines.base import EngineError
        from devops.engines.jenkins.client import JenkinsClient
        from devops.env import redact_url

        try:
            JenkinsClient(url, user, token, timeout=5.0).whoami()
        except EngineError as exc:
            errors.append(Error(f"SLIPWAY_JENKINS_URL={redact_url(url)!r}: {exc}",
                                hint="check SLIPWAY_JENKINS_URL, SLIPWAY_JENKINS_USER and SLIPWAY_JENKINS_TOKEN",
                                id="slipway.E032"))
    kubeconfig = settings.SLIPWAY_KUBECONFIG
    # Empty is fine on the cluster itself: the in-cluster service account (deploy/kubernetes).
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    if not kubeconfig and not in_cluster:
        errors.append(Error("SLIPWAY_ENGINE is 'jenkins' but SLIPWAY_KUBECONFIG is not set",
                            hint="the path of a kubeconfig for the cluster Jenkins' agents run in "
                                 "(or run Slipway on that cluster: its service account is used)",
                            id="slipway.E033"))
    elif kubeconfig:
        try:
            from kubernetes import config as k8s_config

            k8s_config.new_client_from_config(config_file=kubeconfig)
        except Exception as exc:
            errors.append(Error(f"SLIPWAY_KUBECONFIG={kubeconfig!r} cannot be loaded: {type(exc).__name__}: "
                                f"{str(exc)[:200]}", id="slipway.E034"))
    return errors
