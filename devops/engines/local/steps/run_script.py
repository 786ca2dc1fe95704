"""runScriptConfig: `shellScript` run by `/bin/sh -e -c` in the step's runtime.

The script is one argv element; untrusted values (branch, commit message)
reach it only as environment variables, expanded by the shell at run time
(DESIGN §10). `-e` as Jenkins' `sh` step (Rancher's engine) ran it: the first
failing command fails the step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devops.engines.local.context import StepResult
from devops.engines.local.steps import execute

if TYPE_CHECKING:
    from devops.engines.local.context import StepContext


def run(ctx: StepContext) -> StepResult:
    cfg = ctx.config.type
    rt = ctx.runtime
    if not rt.uses_image and rt.name != "dummy":
        ctx.say(
            f"image {cfg.image} is not used: the {rt.name} runtime runs the script on this machine"
        )
    return execute(ctx, ["/bin/sh", "-e", "-c", cfg.shell_script])
