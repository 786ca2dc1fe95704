"""A provider's listing is untrusted input: a self-hosted provider is whatever server a project owner named.

Its clone URL becomes a pipeline's repository and its page link an href, so a
`file://` / local / non-https clone URL is never listed or enabled (it would read the
Slipway host's own repositories, other projects' mirrors among them), and a
`javascript:` link is never rendered.
"""
from __future__ import annotations

import copy

import pytest
import responses

from devops.controller import scmcreds
from devops.models import Pipeline, SourceCodeRepository
from tests.scm.conftest import make_credential, octokit

pytestmark = pytest.mark.django_db


def _repo(name: str, clone_url: str, html_url: str) -> dict:
    body = copy.deepcopy(octokit("get-repository")[0]["response"])
    body.update(id=abs(hash(name)) % 10**9, full_name=name, name=name.split("/")[1],
                clone_url=clone_url, html_url=html_url)
    return body


def test_hostile_clone_urls_and_links_are_left_out(client, personas, project, github_config, rsps):
    cred = make_credential(project, "github", user=personas["bob"])
    rsps.add(responses.GET, "https://api.github.com/user/repos", json=[
        _repo("org/good", "https://github.com/org/good.git", "javascript:alert(document.cookie)"),
        _repo("org/local", "file:///var/lib/slipway/mirrors/other.git", "https://github.com/org/local"),
        _repo("org/path", "/srv/git/other.git", "https://github.com/org/path"),
        _repo("org/ext", "ext::sh -c id", "https://github.com/org/ext"),
        _repo("org/meta", "https://169.254.169.254/latest.git", "https://github.com/org/meta"),
    ])
    assert scmcreds.refresh_repositories(cred) == 1
    row = SourceCodeRepository.objects.get()
    assert row.full_name == "org/good" and row.html_url == ""
    client.force_login(personas["bob"])
    assert "javascript:" not in client.get(f"/p/{project.id}/repositories/").content.decode()


def test_enable_refuses_a_row_with_a_local_clone_url(client, personas, project, github_config, rsps):
    cred = make_credential(project, "github", user=personas["bob"])
    row = SourceCodeRepository.objects.create(project=project, credential=cred, source_code_type="github",
                                              url="file:///var/lib/slipway/mirrors/other.git",
                                              full_name="org/local", external_id="1")
    client.force_login(personas["bob"])
    resp = client.post(f"/p/{project.id}/repositories/{row.pk}/enable", follow=True)
    assert b"not an https:// URL" in resp.content
    assert not Pipeline.objects.filter(project=project).exists()
    assert not rsps.calls  # no webhook was asked for
