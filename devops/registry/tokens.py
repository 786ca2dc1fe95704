"""Per-project access to the built-in registry: accounts, scopes and the JWTs distribution checks.

docker-registry runs with distribution's token auth (`auth: token:`): a
client without a token gets 401 and a `WWW-Authenticate: Bearer realm=...`
challenge naming Slipway's token endpoint (`GET /api/v1/registry/token`, the
Django view in devops/api/views_registry_token.py); it asks there with Basic
auth for the scopes it needs and comes back with a short-lived JWT signed by
the key below, whose certificate is the registry's `rootcertbundle`.

Accounts (`authenticate`):

- `<project id>`: the credential of that project's trusted runs: pull and
  push of `<project id>/...` repositories, nothing else, and nothing under
  `<project id>/pr/` (what pull requests pushed never reaches a trusted run).
- `<project id>+pr+<execution>`: the credential of one pull-request run
  (code from outside the project): push and pull of its own
  `<project id>/pr/<execution>/...` (so a later step of that run can use the
  image it built), pull of the project's trusted images; never push outside
  its own namespace, so it cannot replace an image a trusted run or deploy
  pulls, nor another run's.
- `<project id>+pull`: pull of the trusted images only (the pull-request
  credential before per-run namespaces; still accepted).
- `slipway+internal`: Slipway's own (state.json): the catalog and pull of
  every repository; for operators' tools. Never given to a step. Slipway's own
  code does not even use it: it signs its tokens here (`internal_token`).

Project passwords are not stored: each is an HMAC of the project id under
`account_secret` (state.json, 0600, generated once), so the token endpoint
and the runner need no database and every project has one the moment it
exists. Rotating `account_secret` (`registry rotate`) changes every
project's password at once; running steps keep working until their token
expires (TOKEN_TTL), new runs get the new one.

Files under <data_dir>/registry/: token-key.pem (the EC P-256 private key,
0600) and token-cert.pem (its self-signed certificate, the rootcertbundle),
generated once. JWT header: `alg: ES256` and `x5c` (the certificate, DER in
base64), which distribution 2.8 verifies against the rootcertbundle
(registry/auth/token/token.go, parseAndVerifyCertChain).

Django-free: the runner process and `manage.py registry` use it too.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

SERVICE = "slipway-registry"     # the registry's `service`: tokens carry it as `aud`
ISSUER = "slipway"               # the registry's `issuer`: tokens carry it as `iss`
TOKEN_PATH = "/api/v1/registry/token"
TOKEN_TTL = 300                  # seconds; clients ask again when it runs out
INTERNAL_USERNAME = "slipway+internal"
PULL_SUFFIX = "+pull"
PR_MARK = "+pr+"                 # `<project id>+pr+<execution>`: one pull-request run's account
PR_SEGMENT = "pr"                # `<project id>/pr/<execution>/...`: what pull-request runs pushed
KEY_FILE = "token-key.pem"
CERT_FILE = "token-cert.pem"
MAX_SCOPES = 32                  # a push asks for 1-3; bounded so a request cannot make a huge token
PUSH_PULL = ("pull", "push")

# A project id as Slipway makes them (`p-` + 5 characters), and anything a
# repository path component may be: lowercase letters, digits, separators.
_ACCOUNT = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
# distribution's repository name grammar (reference/regexp.go): the registry routes no other
# name, and a grant never covers one (`p-a/../p-b/app` is not under `p-a/`).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")


@dataclass(frozen=True)
class Account:
    """Who asked for a token: a project (push or pull only) or Slipway itself."""

    username: str
    project: str = ""       # "" for the internal account
    push: bool = False      # a trusted run's: push of the project's trusted namespace
    execution: str = ""     # a pull-request run's: push of its own `<project>/pr/<execution>/` only

    @property
    def internal(self) -> bool:
        return not self.project


@dataclass(frozen=True)
class Scope:
    """One `type[(class)]:name:actions` item of a token request (or of a token's `access`)."""

    type: str
    name: str
    actions: tuple[str, ...]
    klass: str = ""

    def claim(self) -> dict:
        out = {"type": self.type, "name": self.name, "actions": list(self.actions)}
        if self.klass:
            out["class"] = self.klass
        return out


def namespace(project_id: str) -> str:
    """The repository prefix a project owns in the built-in registry: `<project id>/`."""
    return f"{project_id}/"


def pr_namespace(project_id: str, execution: str = "") -> str:
    """`<project id>/pr/` (every pull-request run's), or one run's `<project id>/pr/<execution>/`."""
    return f"{project_id}/{PR_SEGMENT}/" + (f"{execution}/" if execution else "")


def run_namespace(project_id: str, execution: str, *, trusted: bool) -> str:
    """Where a run's built-in-registry images live: `<project id>/`, or `<project id>/pr/<execution>/`
    for a run of a pull request. `CICD_LOCAL_REGISTRY` is the registry address plus this."""
    return namespace(project_id) if trusted else pr_namespace(project_id, execution)


def local_registry_value(address: str, project_id: str, execution: str, *, trusted: bool) -> str:
    """`CICD_LOCAL_REGISTRY` of a run: `<address>/<its namespace>` (controller/spec.py)."""
    return f"{address}/{run_namespace(project_id, execution, trusted=trusted).rstrip('/')}"


def split_local_registry(value: str) -> tuple[str, str]:
    """`127.0.0.1:5000/p-abcde` -> ("127.0.0.1:5000", "p-abcde/"); a bare address -> (address, "")."""
    host, _, rest = value.strip().partition("/")
    rest = rest.strip("/")
    return host, f"{rest}/" if rest else ""


def valid_repository(repository: str) -> bool:
    """distribution's repository name grammar (no `..`, no empty or upper-case components)."""
    return bool(_REPOSITORY.match(repository))


def valid_execution(execution: str) -> bool:
    return bool(_ACCOUNT.match(execution)) and bool(re.fullmatch(_COMPONENT, execution))


def in_pr_namespace(project_id: str, repository: str, execution: str = "") -> bool:
    """Whether `repository` was pushed by a pull-request run of the project (that run's, if given)."""
    return repository.startswith(pr_namespace(project_id, execution)) and valid_repository(repository)


def in_namespace(project_id: str, repository: str) -> bool:
    """Whether `repository` is one of the project's trusted images: a valid name under
    `<project id>/`, not under `<project id>/pr/` (what pull requests pushed is not the
    project's: image triggers do not hear it, the settings page does not list it)."""
    return (repository.startswith(namespace(project_id)) and valid_repository(repository)
            and not repository.startswith(pr_namespace(project_id)))


# --- key and certificate ---------------------------------------------------------

def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def ensure_signing_key(rdir: Path) -> Path:
    """Generate the token signing key and its self-signed certificate once; the cert's path."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key_path, cert_path = rdir / KEY_FILE, rdir / CERT_FILE
    if key_path.exists() and cert_path.exists():
        return cert_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Slipway registry token issuer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            # The registry checks the chain's dates on every token: long-lived, it is only ever trusted here.
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert_path


def _signer(rdir: Path):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key((rdir / KEY_FILE).read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate((rdir / CERT_FILE).read_bytes())
    return key, cert


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(rdir: Path, claims: dict, *, key=None, cert=None) -> str:
    """A compact JWS (ES256, `x5c` header) of `claims`; `key`/`cert` default to the registry's."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    if key is None or cert is None:
        key, cert = _signer(rdir)
    header = {"typ": "JWT", "alg": "ES256",
              "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]}
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    # JWS wants r || s, 32 bytes each, not the DER that cryptography returns.
    return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def claims_for(subject: str, access: list[Scope], *, ttl: int = TOKEN_TTL, service: str = SERVICE,
               now: float | None = None) -> dict:
    now = int(time.time() if now is None else now)
    return {"iss": ISSUER, "sub": subject, "aud": service, "iat": now, "nbf": now, "exp": now + ttl,
            "jti": secrets.token_hex(16), "access": [s.claim() for s in access]}


def issue(rdir: Path, account: Account, requested: list[Scope]) -> dict:
    """The token endpoint's answer for `account`: only the granted part of `requested`."""
    granted = grant(account, requested)
    now = int(time.time())
    token = sign(rdir, claims_for(account.username, granted, now=now))
    issued = datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # `token` and `access_token`: docker clients read either (the token spec names both).
    return {"token": token, "access_token": token, "expires_in": TOKEN_TTL, "issued_at": issued}


def internal_token(rdir: Path, scopes: list[Scope]) -> str:
    """A token for Slipway's own requests (catalog, tags, digests), signed here, never over HTTP."""
    return sign(rdir, claims_for(INTERNAL_USERNAME, grant(Account(INTERNAL_USERNAME), scopes)))


# --- accounts ----------------------------------------------------------------------

def _hmac(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def project_credential(state: dict, project_id: str, *, push: bool, execution: str = "") -> tuple[str, str]:
    """(username, password) of a project's trusted runs (`push`), of one pull-request run
    (`execution`: its PipelineExecution name), or pull-only (neither)."""
    secret = state["account_secret"]
    if push:
        return project_id, _hmac(secret, f"push\0{project_id}")
    if execution:
        if not valid_execution(execution):
            raise ValueError(f"{execution!r} cannot name a registry namespace")
        return f"{project_id}{PR_MARK}{execution}", _hmac(secret, f"pr\0{project_id}\0{execution}")
    return project_id + PULL_SUFFIX, _hmac(secret, f"pull\0{project_id}")


def authenticate(state: dict, username: str, password: str) -> Account | None:
    """The account these Basic credentials belong to, or None."""
    if not state.get("account_secret") or not username or not password:
        return None
    if username == INTERNAL_USERNAME:
        expected = state.get("password", "")
        ok = bool(expected) and hmac.compare_digest(password.encode(), expected.encode())
        return Account(INTERNAL_USERNAME) if ok else None
    execution = ""
    if PR_MARK in username:
        project, _, execution = username.partition(PR_MARK)
        push = False
        if not valid_execution(execution):
            return None
    else:
        push = not username.endswith(PULL_SUFFIX)
        project = username if push else username[: -len(PULL_SUFFIX)]
    if not _ACCOUNT.match(project):
        return None
    _, expected = project_credential(state, project, push=push, execution=execution)
    if not hmac.compare_digest(password.encode(), expected.encode()):
        return None
    return Account(username, project=project, push=push, execution=execution)


def grant(account: Account, requested: list[Scope]) -> list[Scope]:
    """What `account` may have of `requested` (the token spec: grant a subset, never refuse).

    A trusted run: pull and push of the project's trusted images
    (`in_namespace`). A pull-request run: pull of those, pull and push of its
    own `<project>/pr/<execution>/...`. `+pull`: pull of the trusted images.
    The internal account: the catalog and pull of anything. No one gets
    `delete` or `*` on a repository through the endpoint.
    """
    out: list[Scope] = []
    for scope in requested:
        if scope.type == "registry" and scope.name == "catalog":
            allowed: tuple[str, ...] = ("*",) if account.internal else ()
        elif scope.type != "repository":
            allowed = ()
        elif account.internal:
            allowed = ("pull",)
        elif in_namespace(account.project, scope.name):
            allowed = PUSH_PULL if account.push else ("pull",)
        elif account.execution and in_pr_namespace(account.project, scope.name, account.execution):
            allowed = PUSH_PULL
        else:
            allowed = ()
        actions = tuple(a for a in scope.actions if a in allowed)
        if actions:
            out.append(Scope(scope.type, scope.name, actions, scope.klass))
    return out


class ScopeError(ValueError):
    pass


def parse_scopes(values: list[str]) -> list[Scope]:
    """`scope` query values (each may hold several, space-separated) -> Scopes; ScopeError names the bad one."""
    items = [item for value in values for item in value.split(" ") if item]
    if len(items) > MAX_SCOPES:
        raise ScopeError(f"at most {MAX_SCOPES} scopes per request")
    out = []
    for item in items:
        kind, sep1, rest = item.partition(":")
        name, sep2, actions = rest.rpartition(":")
        if not (sep1 and sep2 and kind and name) or len(item) > 512:
            raise ScopeError(f"{item[:100]!r} is not type:name:actions")
        klass = ""
        if kind.endswith(")") and "(" in kind:
            kind, _, klass = kind[:-1].partition("(")
        out.append(Scope(kind, name, tuple(dict.fromkeys(a for a in actions.split(",") if a)), klass))
    return out
