"""System checks of the Jenkins engine (slipway.E030-E034): each names the setting to fix."""
from __future__ import annotations

from django.core.checks import run_checks

from devops.engines.registry import load_engine_class
from tests.engines.jenkins.fake import FakeJenkins

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: not-a-real-token}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
"""


def _ids(prefix="slipway.E03"):
    return {e.id: e for e in run_checks() if e.id.startswith(prefix)}


def test_the_jenkins_module_loads_so_e020_no_longer_fires(settings):
    from devops.engines.jenkins.engine import JenkinsEngine

    assert load_engine_class("jenkins") is JenkinsEngine
    settings.SLIPWAY_ENGINE = "jenkins"
    assert not [e for e in run_checks() if e.id == "slipway.E020"]


def test_nothing_configured_names_every_setting(settings):
    settings.SLIPWAY_ENGINE = "jenkins"
    settings.SLIPWAY_JENKINS_URL = settings.SLIPWAY_JENKINS_USER = settings.SLIPWAY_JENKINS_TOKEN = ""
    settings.SLIPWAY_KUBECONFIG = ""
    found = _ids()
    assert set(found) == {"slipway.E030", "slipway.E031", "slipway.E033"}
    assert "SLIPWAY_JENKINS_URL" in found["slipway.E030"].msg
    assert "SLIPWAY_JENKINS_USER" in found["slipway.E031"].msg and "SLIPWAY_JENKINS_TOKEN" in found["slipway.E031"].msg
    assert "SLIPWAY_KUBECONFIG" in found["slipway.E033"].msg
    settings.SLIPWAY_ENGINE = "local"
    assert _ids() == {}


def test_reachable_jenkins_with_good_credentials_and_a_kubeconfig_passes(settings, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    with FakeJenkins() as fake:
        settings.SLIPWAY_ENGINE = "jenkins"
        settings.SLIPWAY_JENKINS_URL, settings.SLIPWAY_JENKINS_USER = fake.url, fake.user
        settings.SLIPWAY_JENKINS_TOKEN = fake.token
        settings.SLIPWAY_KUBECONFIG = str(kubeconfig)
        assert _ids() == {}
        assert "GET /me/api/json" in fake.requests
        settings.SLIPWAY_JENKINS_TOKEN = "wrong-token"
        found = _ids()
        assert set(found) == {"slipway.E032"} and "SLIPWAY_JENKINS_TOKEN" in found["slipway.E032"].msg
        assert "wrong-token" not in found["slipway.E032"].msg + (found["slipway.E032"].hint or "")
        url = fake.url
    settings.SLIPWAY_JENKINS_TOKEN = "t"
    found = _ids()                                   # nothing listens there any more
    assert set(found) == {"slipway.E032"} and "unreachable" in found["slipway.E032"].msg
    assert url in found["slipway.E032"].msg


def test_an_unloadable_kubeconfig_is_e034(settings, tmp_path):
    settings.SLIPWAY_ENGINE = "jenkins"
    settings.SLIPWAY_JENKINS_URL = ""
    for content in (None, "this: [is not a kubeconfig"):
        path = tmp_path / "kc"
        if content is not None:
            path.write_text(content)
        settings.SLIPWAY_KUBECONFIG = str(path)
        found = _ids()
        assert "slipway.E034" in found and "SLIPWAY_KUBECONFIG" in found["slipway.E034"].msg
        assert "slipway.E033" not in found
