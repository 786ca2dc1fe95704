"""Per-project isolation in the built-in registry: the real docker-registry (token auth), Slipway's
real token view on a live server, real buildah pushes and pulls.

Project A's credential pushes and pulls `A/...` and nothing else; a pull
request's run pushes only into its own `A/pr/<execution>/`; forged, expired, other-service and
other-issuer tokens are refused by the registry itself; the settings page
lists only the project's own repositories.
"""
from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.images_registry.conftest import BASE_IMAGE, run_auth

pytestmark = pytest.mark.services

A, B = "p-alpha", "p-bravo"


def _token_get(live_server, creds: tuple[str, str] | None, scopes: list[str],
               service: str = "slipway-registry") -> tuple[int, dict, dict]:
    from devops.registry.tokens import TOKEN_PATH

    query = urllib.parse.urlencode([("service", service), *(("scope", s) for s in scopes)])
    req = urllib.request.Request(f"{live_server.url}{TOKEN_PATH}?{query}")
    if creds:
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(creds).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}"), dict(e.headers)


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _registry_status(registry, path: str, token: str) -> int:
    req = urllib.request.Request(registry.url + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _cred(data_dir: Path, project: str, trusted: bool = True) -> tuple[str, str]:
    return next(iter(run_auth(data_dir, project, trusted=trusted).values()))


def _buildah(image_data_dir: Path, tmp_path: Path, auths: dict, *args: str) -> subprocess.CompletedProcess:
    from devops.engines.local.images import auth_json, buildah_storage_args

    authfile = tmp_path / f"auth-{abs(hash(json.dumps(auths, sort_keys=True)))}.json"
    authfile.write_text(auth_json(auths))
    return subprocess.run(["buildah", *buildah_storage_args(image_data_dir), *args[:1], "--tls-verify=false",
                           "--authfile", str(authfile), *args[1:]], capture_output=True, text=True, check=False)


def _refused(done: subprocess.CompletedProcess) -> bool:
    """buildah failed because the registry said no (401 / "denied"), not for another reason."""
    said_no = ("requested access to the resource is denied" in done.stderr or "401" in done.stderr
               or "authentication required" in done.stderr)
    assert done.returncode != 0 and said_no, done.stderr
    return True


@pytest.mark.slow
def test_a_projects_credential_reaches_its_own_images_only(tmp_path, image_data_dir, registry):
    """buildah with A's credential (what A's steps get): push/pull A/..., refused on B/...; the
    pull-request credential of A pulls A/... and cannot push it."""
    from tests.conftest import require_tool

    require_tool("buildah")
    from devops.registry.server import tags

    a, b = run_auth(image_data_dir, A), run_auth(image_data_dir, B)
    a_pr = run_auth(image_data_dir, A, trusted=False)
    reg = registry.address

    def push(auths, ref):
        return _buildah(image_data_dir, tmp_path, auths, "push", BASE_IMAGE, f"docker://{reg}/{ref}")

    def pull(auths, ref):
        return _buildah(image_data_dir, tmp_path, auths, "pull", f"{reg}/{ref}")

    assert (done := push(a, f"{A}/app:1")).returncode == 0, done.stderr
    assert (done := push(b, f"{B}/app:1")).returncode == 0, done.stderr
    assert (done := pull(a, f"{A}/app:1")).returncode == 0, done.stderr

    # A's credential on B's repository: the registry refuses (401 insufficient_scope), nothing is written.
    assert _refused(push(a, f"{B}/app:1"))
    assert _refused(pull(a, f"{B}/app:1"))
    # A name that merely starts like A's (`p-alphabet/`) is not A's.
    assert _refused(push(a, "p-alphabet/app:1"))
    assert tags(registry, B + "/app") == ["1"]
    assert tags(registry, "p-alphabet/app") == []

    # A pull request's run of A: pulls A's images, cannot replace them.
    assert (done := pull(a_pr, f"{A}/app:1")).returncode == 0, done.stderr
    assert _refused(push(a_pr, f"{A}/app:pr"))
    assert tags(registry, A + "/app") == ["1"]


@pytest.mark.slow
def test_a_pull_request_run_pushes_only_into_its_own_namespace(tmp_path, image_data_dir, registry):
    """buildah with a pull-request run's credential: push/pull of `A/pr/<its execution>/...`, pull of
    A's images; refused on A's images, on another run's namespace, on B. A trusted credential cannot
    push (or pull) under `A/pr/`."""
    from tests.conftest import require_tool

    require_tool("buildah")
    from devops.registry.server import tags

    reg = registry.address
    run7, run8 = "p-plone-7", "p-plone-8"
    pr7 = run_auth(image_data_dir, A, trusted=False, execution=run7)
    a = run_auth(image_data_dir, A)
    assert next(iter(pr7.values()))[0] == f"{A}+pr+{run7}"

    def push(auths, ref):
        return _buildah(image_data_dir, tmp_path, auths, "push", BASE_IMAGE, f"docker://{reg}/{ref}")

    def pull(auths, ref):
        return _buildah(image_data_dir, tmp_path, auths, "pull", f"{reg}/{ref}")

    assert (done := push(a, f"{A}/trusted:1")).returncode == 0, done.stderr
    assert (done := push(pr7, f"{A}/pr/{run7}/myorg/app:1")).returncode == 0, done.stderr
    assert (done := pull(pr7, f"{A}/pr/{run7}/myorg/app:1")).returncode == 0, done.stderr
    assert (done := pull(pr7, f"{A}/trusted:1")).returncode == 0, done.stderr   # the project's images: pull
    assert _refused(push(pr7, f"{A}/trusted:1"))           # never replace what trusted runs pull
    assert _refused(push(pr7, f"{A}/pr/{run8}/myorg/app:1"))   # nor another run's
    assert _refused(push(pr7, f"{A}/pr/{run7}x/app:1"))    # a name only starting like its own
    assert _refused(push(pr7, f"{B}/pr/{run7}/app:1"))
    assert _refused(push(a, f"{A}/pr/{run7}/myorg/app:2"))  # trusted runs keep out of pull requests' images
    # (--policy always: the pull-request credential's pull above left a local copy)
    assert _refused(_buildah(image_data_dir, tmp_path, a, "pull", "--policy", "always",
                             f"{reg}/{A}/pr/{run7}/myorg/app:1"))
    assert tags(registry, f"{A}/trusted") == ["1"] and tags(registry, f"{A}/pr/{run7}/myorg/app") == ["1"]
    assert tags(registry, f"{A}/pr/{run8}/myorg/app") == []


def test_pull_request_grants_and_what_counts_as_the_projects_images():
    from devops.registry.tokens import Scope, authenticate, grant, in_namespace, project_credential

    state = {"account_secret": "s"}
    pr = authenticate(state, *project_credential(state, A, push=False, execution="p-plone-7"))
    assert pr is not None and pr.project == A and pr.execution == "p-plone-7" and not pr.push
    # Another run's name with this run's password: refused.
    assert authenticate(state, f"{A}+pr+p-plone-8", project_credential(state, A, push=False,
                                                                        execution="p-plone-7")[1]) is None
    assert authenticate(state, f"{A}+pr+../x", "pw") is None
    ask = [Scope("repository", n, ("pull", "push")) for n in
           (f"{A}/app", f"{A}/pr/p-plone-7/app", f"{A}/pr/p-plone-8/app", f"{B}/app")]
    assert [(g.name, g.actions) for g in grant(pr, ask)] == [
        (f"{A}/app", ("pull",)), (f"{A}/pr/p-plone-7/app", ("pull", "push"))]
    trusted = authenticate(state, *project_credential(state, A, push=True))
    assert [(g.name, g.actions) for g in grant(trusted, ask)] == [(f"{A}/app", ("pull", "push"))]
    # Image triggers and the settings page hear/list the project's images, not pull requests'.
    assert in_namespace(A, f"{A}/pr") and not in_namespace(A, f"{A}/pr/p-plone-7/app")
    with pytest.raises(ValueError):
        project_credential(state, A, push=False, execution="Bad/Name")


def test_the_token_endpoint_grants_only_the_projects_namespace(live_server, image_data_dir, registry):
    from devops.registry.server import registry_info

    a, b = _cred(image_data_dir, A), _cred(image_data_dir, B)
    assert a[0] == A and a[1] != b[1]

    # No credential, a wrong one, or B's password under A's name: 401, no token.
    status, body, headers = _token_get(live_server, None, [f"repository:{A}/app:pull"])
    assert status == 401 and "token" not in body and headers["WWW-Authenticate"].startswith("Basic")
    assert _token_get(live_server, (A, "wrong"), [])[0] == 401
    assert _token_get(live_server, (A, b[1]), [])[0] == 401
    assert _token_get(live_server, (A + "+pull", a[1]), [])[0] == 401  # the push password is not the pull one

    # Asked for more than it may have: the token holds only A's pull/push (no delete, nothing of B's).
    status, body, _ = _token_get(live_server, a, [f"repository:{A}/app:pull,push,delete",
                                                  f"repository:{B}/app:pull", "registry:catalog:*"])
    assert status == 200, body
    claims = _claims(body["token"])
    assert claims["access"] == [{"type": "repository", "name": f"{A}/app", "actions": ["pull", "push"]}]
    assert claims["sub"] == A and claims["aud"] == "slipway-registry" and claims["iss"] == "slipway"
    assert body["expires_in"] == 300 and claims["exp"] - claims["iat"] == 300
    # What the registry says to that token: its own repository yes, B's and the catalog no.
    token = body["token"]
    assert _registry_status(registry, f"/v2/{A}/app/tags/list", token) in (200, 404)
    assert _registry_status(registry, f"/v2/{B}/app/tags/list", token) == 401
    assert _registry_status(registry, "/v2/_catalog", token) == 401

    # Names that only look like A's: another project's with A's prefix, a path that climbs out.
    for name in ("p-alphabet/app", f"{A}/../{B}/app", f"{A}/", f"{A}//app", f"{A}/App"):
        status, body, _ = _token_get(live_server, a, [f"repository:{name}:pull"])
        assert status == 200 and _claims(body["token"])["access"] == [], name

    # A pull request's credential: pull only.
    status, body, _ = _token_get(live_server, _cred(image_data_dir, A, trusted=False),
                                 [f"repository:{A}/app:pull,push"])
    assert status == 200 and _claims(body["token"])["access"] == [
        {"type": "repository", "name": f"{A}/app", "actions": ["pull"]}]

    # Slipway's internal account: the catalog (what the settings page and `registry ls` need), no push.
    info = registry_info(image_data_dir)
    status, body, _ = _token_get(live_server, (info.username, info.password),
                                 ["registry:catalog:*", f"repository:{A}/app:pull,push"])
    assert status == 200
    assert _claims(body["token"])["access"] == [
        {"type": "registry", "name": "catalog", "actions": ["*"]},
        {"type": "repository", "name": f"{A}/app", "actions": ["pull"]}]
    assert _registry_status(registry, "/v2/_catalog", body["token"]) == 200

    # Bad requests name the field.
    status, body, _ = _token_get(live_server, a, [], service="other")
    assert status == 400 and "service" in body
    status, body, _ = _token_get(live_server, a, ["no-colons"])
    assert status == 400 and "scope" in body


def test_forged_expired_and_other_service_tokens_are_refused(tmp_path, image_data_dir, registry):
    """Tokens the registry must not take: each is refused with 401 by docker-registry itself."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from devops.registry.tokens import Scope, claims_for, sign

    rdir = Path(registry.directory)
    catalog = [Scope("registry", "catalog", ("*",))]
    path = "/v2/_catalog"
    assert _registry_status(registry, path, sign(rdir, claims_for("t", catalog))) == 200  # the control

    # Signed by another key, with its own self-signed certificate of the same name in x5c.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Slipway registry token issuer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    assert _registry_status(registry, path, sign(rdir, claims_for("t", catalog), key=key, cert=cert)) == 401
    # Expired (beyond distribution's 60 s leeway), for another service, from another issuer.
    expired = claims_for("t", catalog, now=now.timestamp() - 3600)
    assert _registry_status(registry, path, sign(rdir, expired)) == 401
    assert _registry_status(registry, path, sign(rdir, claims_for("t", catalog, service="other"))) == 401
    assert _registry_status(registry, path, sign(rdir, {**claims_for("t", catalog), "iss": "other"})) == 401
    # A real token with its claims edited (a project widening its own access): the signature breaks.
    real = sign(rdir, claims_for(A, [Scope("repository", f"{A}/app", ("pull",))])).split(".")
    widened = claims_for(A, catalog)
    real[1] = base64.urlsafe_b64encode(json.dumps(widened).encode()).rstrip(b"=").decode()
    assert _registry_status(registry, path, ".".join(real)) == 401
    assert _registry_status(registry, path, "not-a-token") == 401


def test_runs_get_their_projects_credential_and_pull_requests_a_per_run_one(project, image_data_dir, registry):
    """controller/spec.py: the RunSpec's credential for the built-in registry is the project's own
    (a pull request's run: its own, pushing only to `<project>/pr/<execution>/`)."""
    from devops.controller.spec import registry_auth
    from devops.registry.server import load_state
    from devops.registry.tokens import authenticate

    trusted = registry_auth(project)
    untrusted = registry_auth(project, trusted=False, execution="p-plone-3")
    state = load_state(image_data_dir)
    user, password = trusted[registry.address]
    assert user == project.id and authenticate(state, user, password).push
    user, password = untrusted[registry.address]
    account = authenticate(state, user, password)
    assert user == project.id + "+pr+p-plone-3" and not account.push and account.execution == "p-plone-3"
    assert registry.password not in {trusted[registry.address][1], untrusted[registry.address][1]}


def test_settings_page_lists_only_the_projects_own_repositories(client, project, personas, image_data_dir,
                                                                registry):
    """The page's listing runs on Slipway's internal token (catalog), filtered to `<project id>/`."""
    from tests.images_registry.test_registry import _upload_blob

    _upload_blob(registry, f"{project.id}/web", b"mine")
    _upload_blob(registry, "p-other/secret-app", b"not mine")
    client.force_login(personas["ronnie"])  # read-only members see their project's images
    page = client.get(f"/p/{project.id}/settings/").content.decode()
    assert registry.address in page and f"{project.id}/" in page
    assert f"{project.id}/web" in page and "p-other/secret-app" not in page


def test_registry_rotate_changes_every_projects_password(tmp_path, settings, capsys):
    """`registry rotate`: old project passwords are refused by the token rules, new ones work;
    `registry info` names the token endpoint and never prints a password."""
    from django.core.management import call_command

    from devops.registry.server import _save_state, load_state, project_auth, registry_dir
    from devops.registry.tokens import authenticate

    settings.DATA_DIR = tmp_path
    registry_dir(tmp_path).mkdir(parents=True)
    _save_state(registry_dir(tmp_path), {"address": "127.0.0.1:5000", "username": "slipway+internal",
                                         "password": "internal-pw", "account_secret": "before"})
    old = project_auth(tmp_path, A, trusted=True)
    assert authenticate(load_state(tmp_path), *old) is not None
    call_command("registry", "rotate")
    assert authenticate(load_state(tmp_path), *old) is None
    new = project_auth(tmp_path, A, trusted=True)
    assert new != old and authenticate(load_state(tmp_path), *new).project == A
    call_command("registry", "info")
    out = capsys.readouterr().out
    assert "changed" in out and "username slipway+internal" in out and "token endpoint" in out
    assert "internal-pw" not in out and new[1] not in out


def test_scope_parsing_and_bounds():
    from devops.registry.tokens import MAX_SCOPES, Scope, ScopeError, parse_scopes

    assert parse_scopes(["repository:p-a/app:pull,push registry:catalog:*",
                         "repository(plugin):p-a/x:pull"]) == [
        Scope("repository", "p-a/app", ("pull", "push")), Scope("registry", "catalog", ("*",)),
        Scope("repository", "p-a/x", ("pull",), "plugin")]
    # A name holding a port-like colon keeps it: the actions are after the LAST colon.
    assert parse_scopes(["repository:host:5000/app:pull"])[0].name == "host:5000/app"
    for bad in (["nocolon"], ["repository::pull"], [":x:pull"], ["repository:" + "a" * 600 + ":pull"],
                [" ".join(["repository:p-a/app:pull"] * (MAX_SCOPES + 1))]):
        with pytest.raises(ScopeError):
            parse_scopes(bad)
