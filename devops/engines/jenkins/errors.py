"""Errors of the Jenkins engine. A failing step is a result in the report, never one of these."""

from __future__ import annotations

from devops.engines.base import PermanentEngineError, TemporaryEngineError


class JenkinsUnreachable(TemporaryEngineError):
    """Jenkins did not answer (connection refused, timeout, 5xx): try again on a later pass."""


class JenkinsAuthError(PermanentEngineError):
    """Jenkins refused SLIPWAY_JENKINS_USER / SLIPWAY_JENKINS_TOKEN (401/403)."""


class JenkinsfileError(PermanentEngineError):
    """The pipeline cannot be expressed as a Jenkinsfile (e.g. a name Jenkins cannot hold)."""
