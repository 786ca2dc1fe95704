"""System checks for misconfiguration, with stable ids (slipway.E00x / W00x)."""
from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def check_log_store(app_configs, **kwargs):
    """SLIPWAY_LOG_STORE: E001 unknown scheme, E010 file:// without an absolute path,
    E011 malformed s3:// URL, E012 s3:// without credentials, E013 s3:// without one bucket."""
    from devops.logs.s3config import log_store_url_problems

    return [Error(msg, id=check_id) for check_id, msg in log_store_url_problems(settings.SLIPWAY_LOG_STORE)]


@register()
def check_engine_and_runtime(app_configs, **kwargs):
    """E020: SLIPWAY_ENGINE's module is missing or fails to import. E021: the same for
    SLIPWAY_STEP_RUNTIME (local engine; `auto` checks every runtime it may pick).
    E022: a test-only runtime (dummy) without SLIPWAY_TEST_RUNTIMES. W020: test-only
    runtimes are enabled. Without these `runcontroller` would fail later, or run nothing."""
    from devops.engines.local.runtimes import AUTO, RUNTIMES
    from devops.engines.registry import ENGINES

    engine = settings.SLIPWAY_ENGINE
    problems = _unloadable(ENGINES, [engine], "SLIPWAY_ENGINE", engine, "slipway.E020")
    test_runtimes = getattr(settings, "SLIPWAY_TEST_RUNTIMES", False)
    runtime = settings.SLIPWAY_STEP_RUNTIME
    if engine == "local":
        wanted = [k.name for k in RUNTIMES if k.auto_tool is not None] if runtime == AUTO else [runtime]
        problems += _unloadable(RUNTIMES, wanted, "SLIPWAY_STEP_RUNTIME", runtime, "slipway.E021")
        if runtime in RUNTIMES and RUNTIMES.get(runtime).test_only and not test_runtimes:
            problems.append(Error(
                f"SLIPWAY_STEP_RUNTIME={runtime!r} is for tests only: nothing really runs",
                hint="set SLIPWAY_TEST_RUNTIMES=1 only in tests",
                id="slipway.E022",
            ))
    if test_runtimes:
        problems.append(Warning(
            "SLIPWAY_TEST_RUNTIMES is on: test-only step runtimes "
            f"({', '.join(k.name for k in RUNTIMES if k.test_only)}) may be chosen",
            hint="unset it outside the test suite",
            id="slipway.W020",
        ))
    return problems


def _unloadable(table, names, variable: str, value: str, check_id: str) -> list[Error]:
    """One error per name of `table` that cannot be loaded (unknown, missing, failing import)."""
    from devops.kinds import KindNotFound, KindUnavailable

    errors = []
    for name in names:
        try:
            table.load(name)
        except (KindNotFound, KindUnavailable) as exc:
            usable = []
            for other in table.names():
                try:
                    table.load(other)
                    usable.append(other)
                except KindUnavailable:
                    pass
            errors.append(Error(f"{variable}={value!r} cannot be used: {exc}",
                                hint=f"installed: {', '.join(usable) or 'none'}", id=check_id))
    return errors
