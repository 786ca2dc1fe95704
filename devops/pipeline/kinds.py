"""Step kinds: ONE record per step type, in one table (`STEP_KINDS`).

Everything that differs between step types is read from here: the typed
config class (config.py builds `Step.type` from it), the fields lint reads and
how (rules.py), the required ones, the fields `${CICD_*}` is substituted in
(substitute.py), the defaults `dump` leaves out (dump.py), and the local
engine's implementation and banner (engines/local/steps/__init__.py). The
implementation is a dotted module path, imported by the engine when a step of
that kind runs: this package never imports the engines, and stays Django-free.

Adding a step type: its config class and its record below, then its module in
devops/engines/local/steps/ (see CONTRIBUTING.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# How lint reads a field of a step type (fields.Checker): text, a workspace path, a boolean, text pairs
TEXT, PATH, BOOL, MAP = "text", "path", "bool", "map"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")


# -- the typed config of each step type (Rancher's camelCase names as aliases) -----------------

class SourceCodeConfig(Frozen):
    kind: Literal["sourceCodeConfig"] = "sourceCodeConfig"


class RunScriptConfig(Frozen):
    kind: Literal["runScriptConfig"] = "runScriptConfig"
    image: str
    shell_script: str = Field("", alias="shellScript")


class PublishImageConfig(Frozen):
    kind: Literal["publishImageConfig"] = "publishImageConfig"
    dockerfile_path: str = Field("./Dockerfile", alias="dockerfilePath")
    build_context: str = Field(".", alias="buildContext")
    tag: str
    push_remote: bool = Field(False, alias="pushRemote")
    registry: str = ""


class ApplyYamlConfig(Frozen):
    kind: Literal["applyYamlConfig"] = "applyYamlConfig"
    path: str = ""
    content: str = ""
    namespace: str = ""


class PublishCatalogConfig(Frozen):
    kind: Literal["publishCatalogConfig"] = "publishCatalogConfig"
    path: str = ""
    catalog_template: str = Field("", alias="catalogTemplate")
    version: str = ""
    git_url: str = Field("", alias="gitUrl")
    git_branch: str = Field("", alias="gitBranch")
    git_author: str = Field("", alias="gitAuthor")
    git_email: str = Field("", alias="gitEmail")


class ApplyAppConfig(Frozen):
    kind: Literal["applyAppConfig"] = "applyAppConfig"
    catalog_template: str = Field("", alias="catalogTemplate")
    version: str = ""
    answers: tuple[tuple[str, str], ...] = ()  # ordered pairs; values are text, as Rancher's map[string]string
    name: str = ""
    target_namespace: str = Field("", alias="targetNamespace")


# -- the record ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class StepKind:
    """What Slipway knows about one step type.

    `config`: the frozen config class (its `kind` literal is `name`).
    `paths`: fields that are workspace paths (lint refuses `..` and absolute ones).
    `required`: fields that must be non-empty.
    `substituted`: fields where `${CICD_*}` is replaced (Rancher's list; text pairs have their values replaced).
    `local`: the local engine's module (`run(ctx) -> StepResult`), imported lazily by the engine.
    `in_runtime`: the step runs in the execution's step runtime (else on the host, with Slipway's tools).
    `caches`: its commands run with the pipeline's cache mounts (devops/cache/stepcache.py); image
        builds have buildah's layers instead, and clone must see a clean checkout.
    `mirrors`: it gets the project's package-mirror env and Maven settings (devops/cache/mirrors.py).
    `host_note`: for host steps, why, for the first line of the step log.
    `legacy_keys`: keys old Rancher files carried inside the type, with the hint lint gives.
    """

    name: str
    label: str
    config: type[Frozen]
    local: str
    paths: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    substituted: tuple[str, ...] = ()
    in_runtime: bool = False
    caches: bool = False
    mirrors: bool = False
    host_note: str = ""
    legacy_keys: dict[str, str] = field(default_factory=dict)

    @property
    def fields(self) -> dict[str, str]:
        """Each field's name in the file (alias) -> how lint reads it (TEXT, PATH, BOOL or MAP)."""
        out = {}
        for name, info in self.config.model_fields.items():
            if name == "kind":
                continue
            alias = info.alias or name
            if alias in self.paths:
                out[alias] = PATH
            elif info.annotation is bool:
                out[alias] = BOOL
            elif info.annotation is str:
                out[alias] = TEXT
            else:
                out[alias] = MAP
        return out

    @property
    def defaults(self) -> dict[str, object]:
        """Alias -> default of each optional field (dump leaves a default value out)."""
        return {info.alias or name: info.default for name, info in self.config.model_fields.items()
                if name != "kind" and not info.is_required()}

    def attribute(self, alias: str) -> str:
        """The Python attribute of the field named `alias` in the file."""
        return next(n for n, i in self.config.model_fields.items() if (i.alias or n) == alias)

    def banner(self, runtime_banner: str) -> str:
        """The first line of the step's log, given the step runtime's own banner."""
        if self.in_runtime:
            return runtime_banner
        note = self.host_note or f"{self.name} runs Slipway's own tools on this machine"
        return f"runtime: host ({note})"


_LOCAL = "devops.engines.local.steps."

STEP_KINDS: dict[str, StepKind] = {k.name: k for k in (
    StepKind("sourceCodeConfig", "Clone", SourceCodeConfig, _LOCAL + "clone",
             host_note="git clones on the host, outside any sandbox"),
    StepKind("runScriptConfig", "Run script", RunScriptConfig, _LOCAL + "run_script",
             required=("image",), substituted=("image",), in_runtime=True, caches=True, mirrors=True,
             legacy_keys={"isShell": "Rancher 2.0 wrote it; scripts always run in a shell"}),
    StepKind("publishImageConfig", "Publish image", PublishImageConfig, _LOCAL + "publish_image",
             paths=("dockerfilePath", "buildContext"), required=("tag",),
             substituted=("tag", "dockerfilePath", "buildContext", "registry")),
    StepKind("applyYamlConfig", "Deploy YAML", ApplyYamlConfig, _LOCAL + "deploy",
             paths=("path",), substituted=("path", "content", "namespace")),
    StepKind("publishCatalogConfig", "Publish catalog template", PublishCatalogConfig, _LOCAL + "deploy",
             paths=("path",), required=("path", "catalogTemplate"),
             substituted=("path", "catalogTemplate", "version", "gitUrl", "gitBranch", "gitAuthor", "gitEmail")),
    StepKind("applyAppConfig", "Deploy catalog app", ApplyAppConfig, _LOCAL + "deploy",
             required=("catalogTemplate",),
             substituted=("catalogTemplate", "version", "answers", "name", "targetNamespace")),
)}

STEP_TYPES: tuple[str, ...] = tuple(STEP_KINDS)
