"""The one table of pluggable engines: name -> (label, dotted path), imported lazily."""
from __future__ import annotations

from importlib import import_module

ENGINES: dict[str, tuple[str, str]] = {
    "local": ("Local (this machine)", "devops.engines.local.engine.LocalEngine"),
    "jenkins": ("Jenkins on Kubernetes", "devops.engines.jenkins.engine.JenkinsEngine"),
}

ENGINE_CHOICES = [(name, label) for name, (label, _path) in ENGINES.items()]


def load_engine_class(name: str):
    try:
        dotted = ENGINES[name][1]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}") from None
    module, _, attr = dotted.rpartition(".")
    return getattr(import_module(module), attr)
