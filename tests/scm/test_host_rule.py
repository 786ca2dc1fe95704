"""A provider host typed by a project owner never makes Slipway call this machine or a private network.

GitHub Enterprise / self-hosted GitLab / Bitbucket Server hosts are owner input;
without SLIPWAY_SCM_ALLOW_PRIVATE, loopback, link-local (the metadata endpoint) and
private addresses are refused on the form, at connect and before any API call.
"""
from __future__ import annotations

import pytest

from devops.models import SourceCodeProviderConfig
from devops.scm import http
from devops.scm.base import App
from devops.scm.github import GitHubProvider as GitHub

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:6379", "localhost", "169.254.169.254",
                                  "10.1.2.3:8443", "2130706433", "0x7f.1", "git.localhost"])
def test_the_provider_form_refuses_private_hosts(client, personas, project, host):
    client.force_login(personas["alice"])
    resp = client.post(f"/p/{project.id}/settings/providers/gitlab",
                       {"client_id": "x", "client_secret": "y", "hostname": host, "enabled": "on"})
    assert resp.status_code == 400, resp.content[:300]
    assert b"SLIPWAY_SCM_ALLOW_PRIVATE" in resp.content
    assert not SourceCodeProviderConfig.objects.filter(project=project).exists()


def test_the_operator_may_allow_private_hosts(client, personas, project, settings):
    settings.SLIPWAY_SCM_ALLOW_PRIVATE = True
    client.force_login(personas["alice"])
    resp = client.post(f"/p/{project.id}/settings/providers/gitlab",
                       {"client_id": "x", "client_secret": "y", "hostname": "10.1.2.3", "enabled": "on"})
    assert resp.status_code == 302
    assert SourceCodeProviderConfig.objects.get(project=project).hostname == "10.1.2.3"


def test_connect_refuses_an_app_whose_host_is_private(client, personas, project):
    from devops.scm.providers import PROVIDERS
    from devops.web.views_scm import save_app

    save_app(project, PROVIDERS.get("github"), None,  # saved past the form (an older row)
             {"client_id": "id", "client_secret": "s", "hostname": "169.254.169.254", "enabled": True})
    client.force_login(personas["bob"])
    resp = client.post(f"/p/{project.id}/repositories/connect/github", follow=True)
    assert b"169.254.169.254" in resp.content and b"SLIPWAY_SCM_ALLOW_PRIVATE" in resp.content
    assert resp.redirect_chain[-1][0] == f"/p/{project.id}/repositories/"


def test_the_api_client_refuses_a_private_host_before_sending(rsps):
    provider = GitHub(App("id", hostname="127.0.0.1:5432"), "tok")
    with pytest.raises(http.HostRefused, match=r"127\.0\.0\.1"):
        provider.list_repos()
    assert len(rsps.calls) == 0  # nothing left the process


def test_host_problem_passes_public_and_unresolvable_names():
    assert http.host_problem("", allow_private=False) is None
    assert http.host_problem("140.82.112.3", allow_private=False) is None
    assert http.host_problem("no-such-host.invalid", allow_private=False) is None
    assert http.host_problem("127.0.0.1", allow_private=True) is None


def test_the_token_never_follows_a_next_page_to_another_host(rsps):
    """A Link `rel="next"` naming another host ends the listing: the Authorization header stays home."""
    import responses

    rsps.add(responses.GET, "https://api.github.com/user/repos", json=[],
             headers={"Link": '<https://collector.example.net/user/repos?page=2>; rel="next"'})
    rsps.add(responses.GET, "https://collector.example.net/user/repos", json=[])
    with pytest.raises(http.ProviderError, match="another host"):
        GitHub(App("id"), "tok-secret").list_repos()
    assert [c.request.url.split("?")[0] for c in rsps.calls] == ["https://api.github.com/user/repos"]


def test_a_next_page_on_the_same_host_is_followed(rsps):
    import responses

    rsps.add(responses.GET, "https://api.github.com/user/repos", json=[],
             headers={"Link": '<https://api.github.com/user/repos?page=2>; rel="next"'})
    rsps.add(responses.GET, "https://api.github.com/user/repos?page=2", json=[])
    assert GitHub(App("id"), "tok").list_repos() == []
    assert len(rsps.calls) == 2
