"""applyYamlConfig, applyAppConfig, publishCatalogConfig on the local engine.

They act on the project's deploy target (a kubeconfig, DESIGN §5). Until a
project has one configured (setting `deploy-kubeconfig`), the step fails with
a message that says so, never silently succeeds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devops.engines.local.context import StepResult

if TYPE_CHECKING:
    from devops.engines.local.context import StepContext


def run(ctx: StepContext) -> StepResult:
    kind = ctx.config.kind
    if not ctx.spec.settings.get("deploy-kubeconfig"):
        msg = f"{kind}: no deploy target is configured for this project (a kubeconfig); nothing was applied"
    else:
        msg = f"{kind}: deploying from the local engine is not available yet"
    ctx.say(msg)
    return StepResult(1, msg)
