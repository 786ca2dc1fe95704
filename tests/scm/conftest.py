"""SCM fixtures: recorded provider exchanges (recordings/, SOURCES.md) replayed with `responses`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
from responses import matchers

RECORDINGS = Path(__file__).parent / "recordings"


def recording(name: str) -> bytes:
    return (RECORDINGS / name).read_bytes()


def octokit(name: str) -> list[dict]:
    """An @octokit/fixtures normalized scenario: [{scope, method, path, status, response, headers, ...}]."""
    return json.loads(recording(f"octokit-{name}.json"))


def replay_octokit(rsps: responses.RequestsMock, name: str, *, base: str = "https://api.github.com") -> list[dict]:
    """Register every exchange of a scenario, URL (with its query) and method matched, answered as recorded."""
    exchanges = octokit(name)
    for x in exchanges:
        body = x["response"]
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        headers = {k: v for k, v in x["headers"].items() if k in ("link", "etag", "x-github-media-type")}
        path, _, query = x["path"].partition("?")
        rsps.add(x["method"].upper(), base + path, body=raw, status=x["status"], headers=headers,
                 content_type=x["headers"].get("content-type", "application/json"),
                 match=[matchers.query_string_matcher(query)])
    return exchanges


def openapi_operation(key: str) -> dict:
    """An operation from GitHub's OpenAPI description (github-openapi-subset.json, see extract_openapi.py)."""
    return json.loads(recording("github-openapi-subset.json"))["operations"][key]


def check_github_body(key: str, body: bytes) -> dict:
    """The request body, validated against GitHub's own schema for the operation (jsonschema, OpenAPI 3.0 style)."""
    import jsonschema

    schema = dict(openapi_operation(key)["request_schema"])
    data = json.loads(body)
    jsonschema.validate(data, _openapi_to_jsonschema(schema))
    return data


def _openapi_to_jsonschema(node):
    # OpenAPI 3.0's `nullable` and `example` are not JSON Schema keywords; the rest is.
    if isinstance(node, dict):
        out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if k not in ("example", "nullable")}
        if node.get("nullable") and "type" in out:
            out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_openapi_to_jsonschema(v) for v in node]
    return node


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as r:
        yield r


@pytest.fixture
def github_config(project):
    from devops.scm.providers import PROVIDERS
    from devops.web.views_scm import save_app

    return save_app(project, PROVIDERS.get("github"), None,
                    {"client_id": "Iv1.gh-demo", "client_secret": "gh-client-secret", "hostname": "",
                     "enabled": True})


@pytest.fixture
def gitlab_config(project):
    from devops.scm.providers import PROVIDERS
    from devops.web.views_scm import save_app

    return save_app(project, PROVIDERS.get("gitlab"), None,
                    {"client_id": "gl-app-id", "client_secret": "gl-client-secret", "hostname": "gitlab.example.com",
                     "enabled": True})


@pytest.fixture
def bitbucket_config(project):
    from devops.scm.providers import PROVIDERS
    from devops.web.views_scm import save_app

    return save_app(project, PROVIDERS.get("bitbucketcloud"), None,
                    {"client_id": "bb-key", "client_secret": "bb-secret", "enabled": True})


def make_credential(project, kind: str, *, token: str = "tok-1", refresh: str = "", expiry=None, user=None):
    from devops.models import SourceCodeCredential

    return SourceCodeCredential.objects.create(project=project, name=f"{kind}-someone", user=user,
                                               source_code_type=kind, login_name="someone",
                                               access_token=token, refresh_token=refresh, expiry=expiry)
