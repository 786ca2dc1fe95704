"""Names other systems must accept: image references, registries, environment variables.

Lint checks them so that a publish step or a step's environment that Docker's
reference grammar or Kubernetes would refuse is reported before anything runs
(issue 9 point 8). `${...}` variables are filled in at run time, so they count
as valid text here.
"""
from __future__ import annotations

import re

# Kubernetes' rule for environment variable names (IsEnvVarName)
ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*\Z")


def env_name_problem(name: str) -> str | None:
    """Why Kubernetes refuses `name` as an environment variable name, or None."""
    if name == "":
        return "an environment variable name cannot be empty"
    if not ENV_NAME.match(name):
        return (f"{name!r} is not a valid environment variable name: Kubernetes allows letters, digits, "
                "`_`, `-` and `.`, not starting with a digit")
    if name in (".", "..") or name.startswith(".."):
        return f"{name!r} is not a valid environment variable name: it may not be `.` or start with `..`"
    return None


# Docker's reference grammar (distribution/reference), Rancher's SplitImageTag for the registry part
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?\Z")
_PATH_PART = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_TAG = re.compile(r"[\w][\w.-]{0,127}\Z", re.ASCII)
_VARIABLE = re.compile(r"\$\{[^}]*\}")


def _placeholders(text: str) -> str:
    # `${CICD_*}` is filled in at run time: judge the rest with a neutral stand-in
    return _VARIABLE.sub("x0", text)


def tag_registry(tag: str) -> str:
    """The registry host in an image tag (`reg:5000/app:1` -> "reg:5000"), or "" (Rancher's rule)."""
    first, sep, _ = tag.strip().partition("/")
    return first if sep and ("." in first or ":" in first or first == "localhost") else ""


def registry_problem(registry: str) -> str | None:
    """Why `registry` is not a registry host (`host[:port]`, optionally `/path`), or None."""
    value = _placeholders(registry)
    if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", value):
        return f"{registry!r} has a URL scheme; write the host only (e.g. {value.split('://', 1)[1].strip('/')!r})"
    if any(c.isspace() for c in value):
        return f"{registry!r} contains spaces"
    host, _, rest = value.partition("/")
    if not _DOMAIN.match(host):
        return f"{registry!r} is not a registry host (`host` or `host:port`)"
    for part in rest.split("/") if rest else ():
        if not _PATH_PART.match(part):
            return f"{registry!r}: {part!r} is not a valid path component (lowercase letters, digits, `.`, `_`, `-`)"
    return None


def image_tag_problem(tag: str, *, check_registry: bool = True) -> str | None:
    """Why `tag` is not `[registry/]repository[:tag[,tag...]]`, or None.

    Tags after the colon may be comma-separated (Rancher's docker plugin
    pushed each). `${...}` variables count as valid text.
    """
    value = _placeholders(tag)
    if any(c.isspace() for c in value):
        return f"{tag!r} contains spaces"
    registry = tag_registry(value)
    rest = value[len(registry) + 1:] if registry else value
    if registry and check_registry and not _DOMAIN.match(registry):
        return f"{tag!r}: {registry!r} is not a registry host (`host` or `host:port`)"
    repo, colon, tags = rest.partition(":")
    if not repo:
        return f"{tag!r} names no repository"
    for part in repo.split("/"):
        if part.lower() != part and _PATH_PART.match(part.lower()):
            return f"{tag!r}: the repository {repo!r} has capital letters; image repositories are lowercase"
        if not _PATH_PART.match(part):
            return (f"{tag!r}: {part!r} is not a valid repository name (lowercase letters, digits, "
                    "and `.`, `_`, `-` between them)")
    if colon:
        if ":" in tags:
            return f"{tag!r} has two colons after the repository; write `repository:tag`"
        for t in tags.split(","):
            if t == "":
                continue  # `app:` or `app:1,`: no tag there, the engine (and Rancher's plugin) use latest
            if not _TAG.match(t):
                return (f"{tag!r}: {t!r} is not a valid image tag (letters, digits, `_`, `.`, `-`, "
                        "at most 128, not starting with `.` or `-`)")
    if "@" in rest:
        return f"{tag!r}: a digest (`@sha256:...`) cannot be published to"
    return None
