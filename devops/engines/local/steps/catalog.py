"""publishCatalogConfig: commit the chart at `path` into a catalog Git repository and push it.

The catalog (`gitUrl`, branch `gitBranch`) is cloned into a private
directory of the run with the pipeline's Git credential (the same one that
cloned the source: a token in GIT_CONFIG_* variables, never in argv). The
chart directory is copied to `<root>/<catalogTemplate>/<version>/` where
root is `templates/` when the catalog has one (Rancher's catalog layout),
else `charts/`, and `version` defaults to the chart's Chart.yaml version.
The commit is by `gitAuthor` <`gitEmail`>; a real `git push` sends it. A
chart identical to what the catalog holds makes no commit and succeeds.
Runs of pull requests never push (as with remote image pushes).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from devops.engines.local.context import StepResult
from devops.scm.git import GitError, run_git

if TYPE_CHECKING:
    from devops.engines.local.context import StepContext


class CatalogError(Exception):
    pass


def _chart_dir(ctx: StepContext, path: str) -> Path:
    root = ctx.workspace.resolve()
    chart = (root / path).resolve()
    if not chart.is_relative_to(root):
        raise CatalogError(f"{path} is outside the workspace")
    if not (chart / "Chart.yaml").is_file():
        raise CatalogError(f"{path} is not a Helm chart (no Chart.yaml)")
    return chart


def _version(chart: Path, wanted: str) -> str:
    if wanted:
        return wanted
    try:
        version = str((yaml.safe_load((chart / "Chart.yaml").read_text()) or {}).get("version") or "")
    except yaml.YAMLError:
        version = ""
    if not version:
        raise CatalogError("no `version` given and the chart's Chart.yaml has none")
    return version


def publish(ctx: StepContext) -> str:
    cfg = ctx.config.type
    if not ctx.spec.trusted:
        raise CatalogError("runs of pull requests never publish to a catalog")
    if not cfg.git_url:  # type: ignore[union-attr]
        raise CatalogError("publishCatalogConfig needs `gitUrl`, the catalog repository")
    chart = _chart_dir(ctx, cfg.path)  # type: ignore[union-attr]
    version = _version(chart, cfg.version)  # type: ignore[union-attr]
    template = cfg.catalog_template  # type: ignore[union-attr]
    if not template or "/" in template or template.startswith("."):
        raise CatalogError(f"catalogTemplate {template!r} must be a plain name")
    if "/" in version or version.startswith("."):
        raise CatalogError(f"version {version!r} must be a plain name")
    branch = cfg.git_branch or "master"  # type: ignore[union-attr]
    author = cfg.git_author or "Slipway"  # type: ignore[union-attr]
    email = cfg.git_email or "slipway@localhost"  # type: ignore[union-attr]
    auth = ctx.spec.git_auth
    work = Path(ctx.run_dir) / f"catalog-{ctx.stage}-{ctx.step}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        run_git(["clone", "--quiet", "--depth", "1", "--branch", branch, "--", cfg.git_url, str(work)], auth=auth)  # type: ignore[union-attr]
        root = "templates" if (work / "templates").is_dir() else "charts"
        target = work / root / template / version
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(chart, target, ignore=shutil.ignore_patterns(".git"))
        rel = f"{root}/{template}/{version}"
        run_git(["add", "--all", "--", rel], cwd=work)
        if run_git(["diff", "--cached", "--quiet"], cwd=work, check=False).returncode == 0:
            return f"{rel} in {branch} already holds this chart: nothing to publish"
        message = f"Publish {template} {version} ({ctx.spec.execution})"
        run_git(["-c", f"user.name={author}", "-c", f"user.email={email}",
                 "commit", "--quiet", "--no-verify", "-m", message], cwd=work)
        run_git(["push", "--quiet", "origin", f"HEAD:refs/heads/{branch}"], cwd=work, auth=auth)
        commit = run_git(["rev-parse", "HEAD"], cwd=work).stdout.decode().strip()
        return f"published {rel} to {branch} as {commit[:12]}"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(ctx: StepContext) -> StepResult:
    try:
        ctx.say(publish(ctx))
    except (CatalogError, GitError) as exc:
        ctx.say(str(exc))
        return StepResult(1, str(exc))
    return StepResult(0)
