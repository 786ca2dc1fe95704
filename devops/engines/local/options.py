"""Options of the local engine, as plain data the runner process can read without Django.

`LocalOptions.from_settings()` is the only place that reads Django settings;
the runner gets the options as JSON in its run directory (`spec.json`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devops.engines.local.limits import cgroup_scope
from devops.engines.local.runtimes import AUTO, RUNTIMES

START_METHODS = ("fork", "exec")


@dataclass(frozen=True)
class LocalOptions:
    data_dir: Path
    workspace_dir: Path
    log_store_url: str
    step_runtime: str = "auto"
    # Private per-execution directories (spec, state, pid, keys): outside every workspace.
    run_dir: Path | None = None
    # buildah storage (vfs driver); default DATA_DIR/containers.
    container_root: Path | None = None
    # "fork": fork the runner from this (already imported) process, no exec:
    # the first step starts ~150 ms sooner. "exec": `python -m devops.engines.local.runner`.
    start_method: str = "fork"
    # Per-step limit of bytes a step may print before it is killed (the logs
    # package may also cap what it stores; this bounds the step itself).
    log_limit: int = 256 * 1024 * 1024
    # pids.max for a step when cgroups are usable (RLIMIT_NPROC otherwise).
    pids_limit: int = 2048
    # Length of one `timeout:` minute in seconds. Always 60 in production;
    # tests shrink it so that "timed out after 1 minutes" takes a second.
    timeout_unit: float = 60.0
    # Extra seconds stop() waits for the runner to abort cleanly before it kills the tree.
    stop_grace: float = 3.0

    def __post_init__(self) -> None:
        # Test-only rows (dummy) are accepted here: settings.py is where they are gated.
        if self.step_runtime != AUTO and self.step_runtime not in RUNTIMES:
            raise ValueError(
                f"step runtime {self.step_runtime!r} must be one of "
                f"{', '.join((AUTO, *RUNTIMES.names(test=True)))}"
            )
        if self.start_method not in START_METHODS:
            raise ValueError(
                f"start method {self.start_method!r} must be one of {', '.join(START_METHODS)}"
            )

    @property
    def runs_root(self) -> Path:
        return self.run_dir or self.data_dir / "runs"

    @property
    def cgroup_scope(self) -> str:
        """This install's prefix for step cgroups (limits.cgroup_scope of the runs root)."""
        return cgroup_scope(self.runs_root)

    @property
    def containers_root(self) -> Path:
        return self.container_root or self.data_dir / "containers"

    @classmethod
    def from_settings(cls, **overrides: Any) -> LocalOptions:
        from django.conf import settings

        values: dict[str, Any] = dict(
            data_dir=Path(settings.DATA_DIR),
            workspace_dir=Path(settings.SLIPWAY_WORKSPACE_DIR),
            log_store_url=settings.SLIPWAY_LOG_STORE,
            step_runtime=settings.SLIPWAY_STEP_RUNTIME,
        )
        values.update(overrides)
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, Path):
                out[k] = str(v)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LocalOptions:
        values = dict(data)
        for k in ("data_dir", "workspace_dir", "run_dir", "container_root"):
            if values.get(k) is not None:
                values[k] = Path(values[k])
        return cls(**values)
