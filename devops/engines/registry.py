"""The one table of pluggable engines (devops.kinds): name -> label -> dotted path, imported lazily.

`SLIPWAY_ENGINE` must be a name of this table (devops/settings.py); the
system check slipway.E020 fails `manage.py check` (and so `runcontroller`)
when the configured engine's module is missing or fails to import.
"""
from __future__ import annotations

from devops.kinds import Kind, KindTable

ENGINES: KindTable[Kind] = KindTable(
    "engine",
    Kind("local", "Local (this machine)", "devops.engines.local.engine.LocalEngine"),
    # Not written yet (its issue comes later): `manage.py check` says so (slipway.E020).
    Kind("jenkins", "Jenkins on Kubernetes", "devops.engines.jenkins.engine.JenkinsEngine"),
)


def load_engine_class(name: str):
    """The engine class of `name`; KindNotFound / KindUnavailable (an ImportError) otherwise."""
    return ENGINES.load(name)
