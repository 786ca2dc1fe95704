"""Network optimisation: the project's package mirrors, given to every step.

Project settings (PipelineSetting, reach the runner as RunSpec.settings):

| setting | step gets |
|---|---|
| `pip-index-url` | `PIP_INDEX_URL` (and `PIP_TRUSTED_HOST` for plain-http mirrors) |
| `npm-registry` | `npm_config_registry` |
| `goproxy` | `GOPROXY` |
| `maven-mirror` | a Maven `settings.xml` with a `<mirror>` of `*`; `MAVEN_ARGS=--settings <it>` (Maven 3.9+ reads MAVEN_ARGS) and `SLIPWAY_MAVEN_SETTINGS` name it |

A value the step sets itself (`env:`) wins. The registry mirror
(`registry-mirror`) is for image pulls, not steps: see
`devops.engines.local.images.registries_conf`.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from devops.pipeline.kinds import STEP_KINDS

if TYPE_CHECKING:
    from devops.cache.step import CacheStep

# Mounted read-only here in container/sandbox steps; host steps get the run-dir path.
MAVEN_SETTINGS_DIR = "/etc/slipway/maven"


def mirror_env(settings: dict[str, str]) -> dict[str, str]:
    """The environment the package mirrors add (pure)."""
    env: dict[str, str] = {}
    pip = (settings.get("pip-index-url") or "").strip()
    if pip:
        env["PIP_INDEX_URL"] = pip
        parts = urlsplit(pip)
        if parts.scheme == "http" and parts.hostname:
            env["PIP_TRUSTED_HOST"] = parts.hostname
    npm = (settings.get("npm-registry") or "").strip()
    if npm:
        env["npm_config_registry"] = npm
    goproxy = (settings.get("goproxy") or "").strip()
    if goproxy:
        env["GOPROXY"] = goproxy
    return env


def maven_settings_xml(mirror_url: str) -> str:
    """A Maven settings.xml whose one mirror serves every repository (pure)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">\n'
        "  <mirrors>\n"
        "    <mirror>\n"
        "      <id>slipway-mirror</id>\n"
        "      <name>Slipway project mirror</name>\n"
        f"      <url>{escape(mirror_url)}</url>\n"
        "      <mirrorOf>*</mirrorOf>\n"
        "    </mirror>\n"
        "  </mirrors>\n"
        "</settings>\n"
    )


def apply_mirrors(ctx: CacheStep) -> list[str]:
    """Add the mirror env (where the step has not set it) and the Maven settings mount.

    Returns the names of what was applied (the step's log lists them).
    """
    applied: list[str] = []
    kind = STEP_KINDS.get(ctx.config.kind)
    if kind is None or not kind.mirrors:  # which kinds: the step-kind records (pipeline/kinds.py)
        return applied
    own = {k for k, _ in ctx.config.env}
    for name, value in mirror_env(ctx.spec.settings).items():
        if name not in own:
            ctx.env[name] = value
            applied.append(name)
    maven = (ctx.spec.settings.get("maven-mirror") or "").strip()
    if maven:
        directory = Path(ctx.run_dir) / "mirrors" / f"maven-{ctx.stage}-{ctx.step}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "settings.xml").write_text(maven_settings_xml(maven))
        if getattr(getattr(ctx, "runtime", None), "name", "") == "host":
            settings_path = str(directory / "settings.xml")
        else:
            ctx.add_mount(directory, MAVEN_SETTINGS_DIR, read_only=True)
            settings_path = f"{MAVEN_SETTINGS_DIR}/settings.xml"
        ctx.env.setdefault("SLIPWAY_MAVEN_SETTINGS", settings_path)
        if "MAVEN_ARGS" not in own:
            ctx.env["MAVEN_ARGS"] = (ctx.env.get("MAVEN_ARGS", "") + f" --settings {settings_path}").strip()
        applied.append("maven settings.xml")
    if applied:
        ctx.say("package mirrors: " + ", ".join(applied))
    return applied
