"""applyYamlConfig, applyAppConfig, publishCatalogConfig on the local engine (DESIGN §5).

applyYamlConfig and applyAppConfig act on the project's deploy target: a
kubeconfig stored as the project Secret `deploy-target` (key `kubeconfig`,
optional `namespace`; encrypted at rest, never returned by the API), which
the controller passes to trusted runs only (`RunSpec.deploy_kubeconfig`).
Without one the step fails with a message that says how to configure it;
nothing is ever silently skipped. publishCatalogConfig needs no cluster: it
pushes the chart to a Git repository (catalog.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devops.engines.base import DEPLOY_TARGET_SECRET
from devops.engines.local.context import StepResult

if TYPE_CHECKING:
    from devops.engines.local.context import StepContext

HOW_TO_CONFIGURE = (
    f"store a kubeconfig as the project secret `{DEPLOY_TARGET_SECRET}` (key `kubeconfig`, optional key "
    f"`namespace`), e.g. `python manage.py project secret PROJECT {DEPLOY_TARGET_SECRET} kubeconfig=@FILE`"
)


def no_target_message(ctx: StepContext) -> str:
    kind = ctx.config.kind
    if not ctx.spec.trusted:
        return f"{kind}: runs of pull requests get no deploy target (the project's kubeconfig); nothing was applied"
    return f"{kind}: no deploy target is configured for this project: {HOW_TO_CONFIGURE}; nothing was applied"


def target_refusal(kubeconfig: str) -> str:
    """Why the project's kubeconfig may not be used (programs, files, this machine's addresses), or "".

    Checked before either step uses it: applyYamlConfig talks to the server with Slipway's own
    client, applyAppConfig hands the file to helm; both connect from Slipway's machine."""
    from devops.dataplane.client import check_kubeconfig, check_target_addresses

    try:
        check_target_addresses(check_kubeconfig(kubeconfig))
    except ValueError as exc:
        return str(exc)
    return ""


def run(ctx: StepContext) -> StepResult:
    kind = ctx.config.kind
    if kind == "publishCatalogConfig":
        from devops.engines.local.steps import catalog

        return catalog.run(ctx)
    if not ctx.spec.deploy_kubeconfig:
        msg = no_target_message(ctx)
        ctx.say(msg)
        return StepResult(1, msg)
    refused = target_refusal(ctx.spec.deploy_kubeconfig)
    if refused:
        msg = f"{kind}: the deploy target's kubeconfig is refused: {refused}; nothing was applied"
        ctx.say(msg)
        return StepResult(1, msg)
    if kind == "applyYamlConfig":
        from devops.engines.local.steps import kubeapply

        return kubeapply.run(ctx)
    from devops.engines.local.steps import helm

    return helm.run(ctx)
