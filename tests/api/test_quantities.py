"""One quantity parser: the settings API, lint and the engine agree on every value.

Each row goes through the real settings endpoint, the linter and the local
engine's limit computation (the values it writes to cgroup files or passes to
prlimit), plus the cache and log caps. A value accepted anywhere is applied
exactly; a value refused is refused everywhere, naming the field.
"""
from __future__ import annotations

import pytest

from devops.cache.stepcache import size_cap
from devops.engines.base import RunSpec
from devops.engines.local import limits
from devops.engines.local.limits import Limits, _Hierarchy, cpu_quota, enforce, resolve_limits
from devops.engines.local.runner import _log_cap
from devops.pipeline import PipelineConfig, load
from devops.quantity import MAX_BYTES, MAX_MILLICORES, QuantityError, parse_bytes, parse_cpu
from tests.conftest import require_tool

# value -> millicores (None: refused)
CPU = [
    ("500m", 500),
    ("2", 2000),
    ("0.29", 290),          # a float made this 28999 us of quota per 100 ms
    ("1m", 1),              # below the kernel's 1 ms quota at a 100 ms period
    ("1e-3", 1),
    ("+1", 1000),           # Kubernetes' grammar allows the sign
    ("1.5e3", 1_500_000),
    ("0", 0),               # no limit, as in Kubernetes
    (f"{MAX_MILLICORES}m", MAX_MILLICORES),
    (f"{MAX_MILLICORES + 1}m", None),  # more than cpu.max can hold
    ("0.0001", None),       # finer than 1m
    ("1K", None),           # not Kubernetes (only `k`)
    ("1mi", None),
    ("-1", None),
    ("two", None),
    ("2 cores", None),
]

# value -> bytes (None: refused)
MEMORY = [
    ("512Mi", 512 << 20),
    ("1Pi", 1 << 50),       # was accepted by the API, then every step failed to start
    ("1Ei", 1 << 60),
    ("1.5Ki", 1536),
    ("1e3", 1000),          # lint took it, the engine refused it
    ("1M", 10**6),
    ("7Ei", 7 << 60),
    ("0", 0),
    ("500m", None),         # half a byte: lint took it, the engine refused it
    ("0.5", None),
    ("8Ei", None),          # more than a cgroup / rlimit can hold
    ("1K", None),
    ("NaN", None),
    ("1_000", None),
    ("lots", None),
]


def _settings_url(world, name: str) -> str:
    return f"/api/v1/projects/{world['project'].id}/settings/{name}/"


def _lint_errors(field: str, value: str) -> dict[str, str]:
    text = ("stages:\n- name: a\n  steps:\n  - runScriptConfig: {image: alpine, shellScript: 'true'}\n"
            f"    {field}: '{value}'\n")
    return {p.path: p.message for p in load(text).problems if p.is_error}


def _written(tmp_path, monkeypatch, lim: Limits, ctl: str) -> str:
    """What enforce() writes into a cgroup v2 directory for `ctl`."""
    root = tmp_path / ctl
    root.mkdir()
    monkeypatch.setattr(limits, "hierarchies", lambda: (_Hierarchy(2, root, frozenset({ctl})),))
    enforce(lim, "p-q-1.1-0")
    name = {"memory": "memory.max", "cpu": "cpu.max"}[ctl]
    return (root / "slipway" / "p-q-1.1-0" / name).read_text()


def _through_api_and_lint(world, client_as, setting: str, field: str, value: str, accepted: bool) -> None:
    """The settings endpoint and lint both accept `value`, or both refuse it naming the field."""
    api = client_as("alice").patch(_settings_url(world, setting), {"value": value}, format="json")
    lint = _lint_errors(field, value)
    if not accepted:
        assert api.status_code == 400 and setting in api.json()["value"][0], api.content
        assert field in lint[f"stages[0].steps[0].{field}"], lint
        with pytest.raises(QuantityError, match=setting):
            resolve_limits("", "", {setting: value}, None)
        with pytest.raises(QuantityError, match=field):
            resolve_limits(*((value, "") if field == "cpuLimit" else ("", value)), {}, None)
        return
    assert api.status_code == 200, api.content
    assert lint == {}


@pytest.mark.parametrize("value,millis", CPU)
def test_cpu_limit_agrees_everywhere(world, client_as, tmp_path, monkeypatch, value, millis):
    _through_api_and_lint(world, client_as, "executor-cpu-limit", "cpuLimit", value, millis is not None)
    if millis is None:
        return
    applied = resolve_limits("", "", {"executor-cpu-limit": world["project"].setting("executor-cpu-limit")}, None)
    assert applied == resolve_limits(value, "", {"executor-cpu-limit": "7"}, None)  # the step's own wins
    assert applied.cpu == (millis or None)
    if millis:
        quota, period = map(int, _written(tmp_path, monkeypatch, applied, "cpu").split())
        assert quota * 1000 == millis * period and quota >= 1000 and period <= 1_000_000


@pytest.mark.parametrize("value,size", MEMORY)
def test_memory_limit_agrees_everywhere(world, client_as, tmp_path, monkeypatch, value, size):
    _through_api_and_lint(world, client_as, "executor-memory-limit", "memoryLimit", value, size is not None)
    if size is None:
        return
    stored = world["project"].setting("executor-memory-limit")
    applied = resolve_limits("", "", {"executor-memory-limit": stored}, None)
    assert applied == resolve_limits("", value, {"executor-memory-limit": "1Gi"}, None)
    assert applied.memory == (size or None)
    if size:
        assert int(_written(tmp_path, monkeypatch, applied, "memory")) == size
        # Without cgroups the same number goes to prlimit.
        require_tool("prlimit")
        monkeypatch.setattr(limits, "hierarchies", lambda: ())
        assert f"--as={size}" in enforce(applied, "p-q-1.1-1").prlimit_args


def _spec(settings: dict[str, str]) -> RunSpec:
    return RunSpec(execution="p-q-1", project_id="p-q", pipeline_id="p-q", run=1, repository_url="/r",
                   commit="0" * 40, branch="main", ref="refs/heads/main", event="push", trigger_type="user",
                   config=PipelineConfig.model_validate({"stages": []}), settings=settings)


@pytest.mark.parametrize("name", ["cache-size-cap", "log-size-cap"])
@pytest.mark.parametrize("value,size", [("1P", 10**15), ("1Ei", 1 << 60), ("100k", 100_000), ("64Ki", 65536),
                                        ("0", None), ("500m", None), ("8Ei", None), ("1K", None)])
def test_caps_agree(world, client_as, name, value, size):
    api = client_as("alice").patch(_settings_url(world, name), {"value": value}, format="json")
    if size is None:
        assert api.status_code == 400 and name in api.json()["value"][0], api.content
        return
    assert api.status_code == 200, api.content
    stored = {name: world["project"].setting(name)}
    if name == "cache-size-cap":
        assert size_cap(stored) == (value, size, "")  # was "not a size; using 10Gi" for 1P
    else:
        assert _log_cap(_spec(stored)) == size  # was 100Mi, silently, for 1Ei


def test_a_cap_stored_before_the_check_falls_back_and_says_so():
    text, cap, problem = size_cap({"cache-size-cap": "lots"})
    assert (text, cap) == ("10Gi", 10 << 30) and problem.startswith("cache-size-cap: 'lots' is not")
    assert _log_cap(_spec({"log-size-cap": "lots"})) == 100 << 20


def test_exact_values_and_bounds():
    assert cpu_quota(1) == (1_000_000, 1000) and cpu_quota(10) == (100_000, 1000)
    assert cpu_quota(MAX_MILLICORES)[1] <= 2**44 - 1  # the kernel's largest cfs quota (us)
    assert parse_bytes(str(MAX_BYTES)) == MAX_BYTES
    with pytest.raises(QuantityError):
        parse_bytes(str(MAX_BYTES + 1))
    assert parse_cpu("0.3") == 300 and parse_cpu("1e2") == 100_000
    for absurd in ("1e999999999", "1e-999999999", "9" * 200):
        with pytest.raises(QuantityError):
            parse_cpu(absurd)
        with pytest.raises(QuantityError):
            parse_bytes(absurd)


def test_the_parser_does_not_import_the_kubernetes_client():
    import subprocess
    import sys

    code = ("import sys; from devops.quantity import parse_bytes; parse_bytes('1Gi'); "
            "print('kubernetes' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_admin_refuses_what_the_api_refuses(world):
    from devops.admin import SettingForm

    row = world["project"].settings.get(name="executor-memory-limit")

    def form(value: str) -> SettingForm:
        return SettingForm(instance=row, data={"project": world["project"].pk, "name": row.name,
                                               "value": value, "default": "1Gi"})

    bad = form("8Ei")
    assert not bad.is_valid() and bad.errors["value"][0].startswith("executor-memory-limit: '8Ei' is more")
    assert form("1Pi").is_valid(), form("1Pi").errors
