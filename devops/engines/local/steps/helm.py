"""applyAppConfig: `helm upgrade --install` of a chart as a release, with `answers` as values.

No helm binary is packaged with Slipway: the step runs helm inside the
project's tools image (setting `deploy-tools-image`, e.g. `alpine/helm:3.16.2`)
with the container runtime. The deploy target's kubeconfig and the values
file are written to a private 0700 directory of the run and shown to the
step read-only at /run/slipway-deploy (never in the workspace, never on the
command line); they are deleted after the step. Without a tools image, or
under a runtime that runs no images, the step fails saying what to configure.

`catalogTemplate` is the chart as helm understands it (`repo/chart`, an
`oci://` reference, or a chart directory in the repository); `answers` are
Rancher's dotted keys (`image.tag: ...`), turned into a nested values file.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from devops.engines.local.context import StepResult
from devops.pipeline.config import RunScriptConfig, Step

if TYPE_CHECKING:
    from devops.engines.local.context import StepContext

MOUNT = "/run/slipway-deploy"
SETTING = "deploy-tools-image"


def values_of(answers: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """Rancher's answers (`a.b.c: v`) as helm values ({a: {b: {c: v}}}); values stay strings."""
    out: dict[str, Any] = {}
    for key, value in answers:
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.get(part)
            node[part] = child = child if isinstance(child, dict) else {}
            node = child
        node[leaf] = value
    return out


def helm_argv(cfg: Any, namespace: str, release: str) -> list[str]:
    argv = ["helm", "upgrade", "--install", release, cfg.catalog_template, "--namespace", namespace,
            "--values", f"{MOUNT}/values.yaml"]
    if cfg.version:
        argv += ["--version", cfg.version]
    return argv


def run(ctx: StepContext) -> StepResult:
    from devops.engines.local.steps import execute

    cfg = ctx.config.type
    image = ctx.spec.settings.get(SETTING, "")
    if not image:
        msg = (f"applyAppConfig: no helm is packaged with Slipway; set the project setting {SETTING} to an "
               f"image with helm (e.g. `python manage.py project setting PROJECT {SETTING} alpine/helm:3.16.2`)")
        ctx.say(msg)
        return StepResult(1, msg)
    if not getattr(ctx.runtime, "uses_image", False):
        msg = (f"applyAppConfig runs helm inside {image}, and the {ctx.runtime.name} step runtime runs no images: "
               "use the container runtime (SLIPWAY_STEP_RUNTIME=container, buildah installed)")
        ctx.say(msg)
        return StepResult(1, msg)
    namespace = cfg.target_namespace or ctx.spec.deploy_namespace or "default"  # type: ignore[union-attr]
    release = cfg.name or cfg.catalog_template.rstrip("/").rsplit("/", 1)[-1]  # type: ignore[union-attr]
    private = Path(ctx.run_dir) / f"deploy-{ctx.stage}-{ctx.step}"
    private.mkdir(mode=0o700, exist_ok=True)
    try:
        for name, text in (("kubeconfig", ctx.spec.deploy_kubeconfig),
                           ("values.yaml", yaml.safe_dump(values_of(cfg.answers)))):  # type: ignore[union-attr]
            fd = os.open(private / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        step = Step(type=RunScriptConfig(image=image, shellScript=""))
        tools = dataclasses.replace(ctx, config=step, env={**ctx.env, "KUBECONFIG": f"{MOUNT}/kubeconfig"},
                                    mounts=list(ctx.mounts))  # the kill hooks stay shared
        tools.add_mount(private, MOUNT, read_only=True)
        ctx.say(f"helm in {image}: release {release}, chart {cfg.catalog_template}, namespace {namespace}")  # type: ignore[union-attr]
        return execute(tools, helm_argv(cfg, namespace, release))
    finally:
        shutil.rmtree(private, ignore_errors=True)
