"""Kubernetes quantities (`500m`, `2`, `256Mi`, `1e3`) -> exact numbers: the one parser.

Every place that reads a CPU amount or a byte size uses this module: the
settings rules (`devops/api/validation.py`: executor-cpu/memory-request/limit,
cache-size-cap, log-size-cap), lint (`cpuRequest`, `cpuLimit`,
`memoryRequest`, `memoryLimit`), the local engine's step limits, the cache
cap and the log cap. So a value the API or lint accepts is exactly the value
the engine applies, and a value the engine could not apply is refused where
it is typed. Django-free and cheap to import (the runner imports it).

Contract:
- Grammar: Kubernetes' own (apimachinery `resource.ParseQuantity`), after
  stripping surrounding spaces: a decimal number with an optional `+`
  (`1`, `+1.5`, `.5`, `5.`), then nothing, a binary suffix `Ki Mi Gi Ti Pi
  Ei`, a decimal one `n u m k M G T P E`, or an exponent `e3`/`E-2`. No `-`,
  no inner spaces, no `K`, no `mi`, no `NaN`, at most 64 characters. The value is
  computed by `kubernetes.utils.parse_quantity` (which alone would also take
  `1K`, `1mi`, `NaN`, `1_000` and ` 5`; the grammar refuses them first).
- `parse_cpu` -> whole millicores (int); `parse_bytes` -> whole bytes (int).
  Never a float: `0.3` is exactly 300m.
- Bounds are what the OS can hold, never what this machine has: CPU from 1m
  (Kubernetes' precision) to `MAX_MILLICORES` (the largest cgroup cpu.max
  quota, 2**44-1 us per 100 ms period); bytes from 1 to `MAX_BYTES`
  (2**63-1, the largest cgroup memory.max, RLIMIT_AS or file size that a
  signed 64-bit count holds). Negative values are refused, and zero unless
  `zero_ok` (a limit or request of 0 means none, as in Kubernetes; a cap of
  0 means nothing useful and is refused).
- Every refusal is a `QuantityError` (a ValueError) whose message names the
  value and says what would be accepted; callers prefix the field's name.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable
from decimal import (
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Subnormal,
    Underflow,
    localcontext,
)
from functools import lru_cache

MAX_BYTES = 2**63 - 1
MAX_LENGTH = 64  # characters; no real quantity is longer, and huge exponents stay out
MAX_MILLICORES = (2**44 - 1) // 100  # cpu.max quota (us) per 100 000 us period = millicores * 100

# Kubernetes' quantity grammar without the sign (no resource is negative).
_GRAMMAR = re.compile(r"\+?([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][-+]?[0-9]+)?")


# Exact arithmetic whatever the digits: any rounding, overflow or underflow raises.
_EXACT = Context(prec=80, Emax=10**9, Emin=-(10**9),
                 traps=[InvalidOperation, DivisionByZero, Overflow, Underflow, Subnormal, Inexact])


class QuantityError(ValueError):
    """A value that is not a quantity, or one the engine cannot apply; the message says why."""


@lru_cache(maxsize=1)
def _parse_quantity() -> Callable[[str], Decimal]:
    """`kubernetes.utils.parse_quantity`, without importing the whole client.

    `import kubernetes` loads the generated API client (~0.5 s, ~55 MiB of
    RSS) into every process that checks a setting, including each runner; the
    function lives in one dependency-free file, so only that file is loaded
    (the package's own module when something already imported it).
    """
    loaded = sys.modules.get("kubernetes.utils.quantity")
    if loaded is not None:
        return loaded.parse_quantity
    spec = importlib.util.find_spec("kubernetes")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the kubernetes package is not installed (pip install kubernetes)")
    path = f"{next(iter(spec.submodule_search_locations))}/utils/quantity.py"
    file_spec = importlib.util.spec_from_file_location("devops._k8s_quantity", path)
    module = importlib.util.module_from_spec(file_spec)
    file_spec.loader.exec_module(module)
    return module.parse_quantity


def _value(text: str, example: str, zero_ok: bool) -> tuple[str, Decimal]:
    """(the stripped text, its exact value), or QuantityError. Call in the _EXACT context."""
    stripped = text.strip() if isinstance(text, str) else ""
    if len(stripped) > MAX_LENGTH or _GRAMMAR.fullmatch(stripped) is None:
        shown = repr(text) if len(repr(text)) <= MAX_LENGTH + 2 else repr(text)[:MAX_LENGTH] + "..."
        raise QuantityError(f"{shown} is not a Kubernetes quantity (e.g. {example})")
    try:
        value = _parse_quantity()(stripped)
    except (ValueError, DecimalException):
        raise QuantityError(f"{stripped!r} has more digits than can be counted exactly") from None
    if value == 0 and not zero_ok:
        raise QuantityError(f"{stripped!r} must be more than 0")
    return stripped, value


def parse_cpu(text: str, *, zero_ok: bool = False) -> int:
    """CPU in whole millicores: `2` -> 2000, `0.5` -> 500, `250m` -> 250, `1e-3` -> 1."""
    with localcontext(_EXACT):
        text, value = _value(text, "500m, 1 or 2.5", zero_ok)
        # Compare before any arithmetic: `1e999999999` must not be multiplied out.
        if value > Decimal(MAX_MILLICORES) / 1000:
            raise QuantityError(
                f"{text!r} is more CPU than a cgroup can limit "
                f"(at most {MAX_MILLICORES}m, about {MAX_MILLICORES // 1000} cores)"
            )
        try:
            millis = value * 1000
            whole = (value == 0 or value >= Decimal("0.001")) and millis == millis.to_integral_value()
        except DecimalException:
            whole = False
        if not whole:
            raise QuantityError(f"{text!r} is finer than 1m (CPU is counted in whole millicores)")
    return int(millis)


def parse_bytes(text: str, *, zero_ok: bool = False) -> int:
    """A size in whole bytes: `512Mi` -> 536870912, `1G` -> 10**9, `1.5Ki` -> 1536."""
    with localcontext(_EXACT):
        text, value = _value(text, "512Mi, 10Gi or 100M", zero_ok)
        if value > MAX_BYTES:
            raise QuantityError(
                f"{text!r} is more than the largest size a cgroup, an rlimit or a file can hold "
                "(2**63-1 bytes, just under 8Ei)"
            )
        if (0 < value < 1) or value != value.to_integral_value():
            hint = f"; did you mean {text[:-1]}Mi?" if text.endswith("m") else ""
            raise QuantityError(f"{text!r} is not a whole number of bytes{hint}")
    return int(value)


def format_bytes(n: int) -> str:
    """`536870912` -> `512Mi`: the largest binary suffix that divides `n` exactly, else bytes."""
    for unit, size in (("Ei", 1 << 60), ("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30),
                       ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def format_cpu(millicores: int) -> str:
    """`500` -> `0.5`, `2000` -> `2`: cores, as the step log shows them."""
    return f"{Decimal(millicores) / 1000:f}".rstrip("0").rstrip(".") if millicores % 1000 else str(millicores // 1000)
