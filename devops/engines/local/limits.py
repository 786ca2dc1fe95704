"""CPU, memory and process-count limits of a step, enforced where the OS allows.

Order of preference, per resource: a cgroup v2 child (memory.max, cpu.max,
pids.max) when the unified hierarchy is writable with those controllers, else
a cgroup v1 child of the controller's hierarchy (pids.max,
memory.limit_in_bytes, cpu.cfs_quota_us), else an rlimit through prlimit(1)
(memory -> RLIMIT_AS; pids -> RLIMIT_NPROC, which never binds root; CPU has
no rlimit equivalent of a rate and is then not enforced). `Enforcement.describe()`
is the line the step's log starts with, so a user sees which applied.

A step joins its cgroups before it runs anything: the runtime wraps its argv
with `wrap()` (a tiny `sh` that writes its own pid into cgroup.procs and
execs), so no fork of the step can escape, and no preexec_fn runs in the
threaded runner.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from devops.quantity import QuantityError, format_bytes, format_cpu, parse_bytes, parse_cpu

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Limits:
    cpu: int | None = None  # millicores
    memory: int | None = None  # bytes
    pids: int | None = None


def resolve_limits(
    cpu_limit: str, memory_limit: str, settings: dict[str, str], pids: int | None
) -> Limits:
    """The step's own cpuLimit/memoryLimit, else the project's executor-*-limit settings.

    Parsed by devops.quantity, as lint and the settings API parse them, so a
    value they accepted always applies here; `0` means no limit (as in
    Kubernetes). QuantityError, naming the field, only for a setting stored
    before the settings API checked it.
    """
    values: dict[str, int | None] = {}
    for step_field, own, setting, parse in (("cpuLimit", cpu_limit, "executor-cpu-limit", parse_cpu),
                                            ("memoryLimit", memory_limit, "executor-memory-limit", parse_bytes)):
        own = (own or "").strip()
        name, text = (step_field, own) if own else (setting, (settings.get(setting) or "").strip())
        try:
            values[step_field] = (parse(text, zero_ok=True) or None) if text else None
        except QuantityError as exc:
            raise QuantityError(f"{name}: {exc}") from None
    return Limits(cpu=values["cpuLimit"], memory=values["memoryLimit"], pids=pids)


# --- what this machine offers ----------------------------------------------------


@dataclass(frozen=True)
class _Hierarchy:
    version: int  # 1 or 2
    base: Path  # our own cgroup in that hierarchy (children go below base/slipway)
    controllers: frozenset[str]


def _own_paths() -> dict[str, str]:
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _hid, ctls, path = line.rstrip("\n").split(":", 2)
            out[ctls] = path
    return out


def _writable_dir(path: Path) -> bool:
    try:
        (path / "slipway").mkdir(exist_ok=True)
        return True
    except OSError:
        return False


@lru_cache(maxsize=1)
def hierarchies() -> tuple[_Hierarchy, ...]:
    """The writable cgroup hierarchies with pids/memory/cpu, best first. Cached per process."""
    found: list[_Hierarchy] = []
    try:
        own = _own_paths()
    except OSError:
        return ()
    # cgroup v2: pure (/sys/fs/cgroup) or hybrid (/sys/fs/cgroup/unified).
    v2_path = own.get("")
    for mount in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        if v2_path is None or not (mount / "cgroup.controllers").exists():
            continue
        base = mount / v2_path.lstrip("/")
        want = {"pids", "memory", "cpu"}
        try:
            available = set((base / "cgroup.controllers").read_text().split()) & want
            if not available or not _writable_dir(base):
                break
            sub = base / "slipway"
            for ctl in available:
                # Enabling controllers for our children may be refused (the
                # "no internal processes" rule); then they simply are not used.
                for where in (base, sub):
                    try:
                        (where / "cgroup.subtree_control").write_text(f"+{ctl}")
                    except OSError:
                        pass
            enabled = set((sub / "cgroup.subtree_control").read_text().split()) & want
            if enabled:
                found.append(_Hierarchy(2, base, frozenset(enabled)))
        except OSError:
            pass
        break
    # cgroup v1: one hierarchy per controller (cpu may be co-mounted with cpuacct).
    have = {c for h in found for c in h.controllers}
    for ctls, path in own.items():
        names = set(ctls.split(",")) & {"pids", "memory", "cpu"}
        names -= have
        if not names or ctls == "":
            continue
        mount = CGROUP_ROOT / ctls
        if not mount.is_dir():
            mount = CGROUP_ROOT / sorted(names)[0]
        base = mount / path.lstrip("/")
        if base.is_dir() and _writable_dir(base):
            found.append(_Hierarchy(1, base, frozenset(names)))
            have |= names
    return tuple(found)


# --- per step --------------------------------------------------------------------


@dataclass
class Enforcement:
    """The limits of one running step. `wrap(argv)` before starting; `release()` after."""

    limits: Limits
    cgroups: list[tuple[_Hierarchy, Path]] = field(default_factory=list)
    prlimit_args: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return "limits: " + ("; ".join(self.notes) if self.notes else "none set")

    def wrap(self, argv: list[str], cgroups: list[Path] | None = None) -> list[str]:
        """`argv` behind prlimit and/or a tiny `sh` that joins `cgroups` (default: all) first."""
        out = list(argv)
        if self.prlimit_args:
            out = ["prlimit", *self.prlimit_args, "--", *out]
        dirs = [d for _h, d in self.cgroups] if cgroups is None else cgroups
        if dirs:
            procs = [str(d / "cgroup.procs") for d in dirs]
            # $$ of this sh is the pid the step keeps after exec.
            script = (
                'for f in "$@"; do [ "$f" = -- ] && break; '
                'echo $$ > "$f" || exit 125; shift; done; shift; exec "$@"'
            )
            out = ["/bin/sh", "-c", script, "slipway-limits", *procs, "--", *out]
        return out

    @contextmanager
    def spawning(self) -> Iterator[Callable[[list[str]], list[str]]]:
        """Around the spawn of the step's first process; yields how to wrap its argv.

        cgroup v1 lets one *thread* change cgroups (`tasks`): the calling
        thread joins the step's v1 cgroups, the child it spawns is born there
        (no fork can escape, no wrapper process: ~2 ms per step), and the
        thread moves back. cgroup v2 moves whole processes only, so v2
        cgroups (and any v1 move that fails) use the `sh` wrapper instead.
        """
        tid = threading.get_native_id()
        moved: list[_Hierarchy] = []
        rest: list[Path] = []
        try:
            for h, d in self.cgroups:
                if h.version == 1:
                    try:
                        (d / "tasks").write_text(str(tid))
                        moved.append(h)
                        continue
                    except OSError:
                        pass
                rest.append(d)
            yield lambda argv: self.wrap(argv, rest)
        finally:
            for h in moved:
                try:
                    (h.base / "tasks").write_text(str(tid))
                except OSError:
                    pass

    def pids(self) -> list[int]:
        out: set[int] = set()
        for _h, d in self.cgroups:
            try:
                out.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return sorted(out)

    def kill_all(self, wait: bool = True) -> None:
        """SIGKILL every process in the step's cgroups (no-op without cgroups).

        wait=False signals each process once and returns (the step's normal
        end: its output pipe tells when they are gone); wait=True repeats
        until the cgroups are empty (a fork may race the kill).
        """
        for h, d in self.cgroups:
            if h.version == 2 and (d / "cgroup.kill").exists():
                try:
                    (d / "cgroup.kill").write_text("1")
                except OSError:
                    pass
        for _ in range(500 if wait else 1):  # v1 has no cgroup.kill: kill until empty
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if wait:
                time.sleep(0.001)

    def release(self, wait: bool = True) -> None:
        """Kill what is left and remove the cgroups.

        wait=False (the per-step path) tries each rmdir once: a cgroup whose
        last process is still being reaped stays until `release_execution`
        at the end of the run, instead of costing the step a sleep.
        """
        self.kill_all(wait)
        for _h, d in self.cgroups:
            for _ in range(20 if wait else 1):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if wait:
                        time.sleep(0.01)  # the last process is still being reaped


def cgroup_scope(runs_root: Path) -> str:
    """A short name for one Slipway install's step cgroups: a hash of its run directory.

    Step cgroups live in one machine-wide tree (`.../slipway/`), while
    execution names are only unique per database: two installs (two data
    dirs) on one machine both run `p-abc-1`. Prefixing every cgroup with the
    install's scope keeps one install's kill/release of `p-abc-1` away from
    the other's steps.
    """
    return hashlib.sha256(str(Path(runs_root).resolve()).encode()).hexdigest()[:10]


def step_cgroup_name(scope: str, execution: str, stage: int, step: int) -> str:
    """The cgroup of one step: `<scope>.<execution>.<stage>-<step>` (see `release_execution`)."""
    return f"{scope}.{execution}.{stage}-{step}"


def enforce(limits: Limits, name: str) -> Enforcement:
    """Make the cgroups for one step (named `name`, from `step_cgroup_name`) or plan rlimits."""
    e = Enforcement(limits)
    wanted = {
        "pids": limits.pids,
        "memory": limits.memory,
        "cpu": limits.cpu,
    }
    wanted = {k: v for k, v in wanted.items() if v}
    done: set[str] = set()
    for h in hierarchies():
        ctls = h.controllers & set(wanted)
        if not ctls:
            continue
        d = h.base / "slipway" / name
        try:
            d.mkdir(parents=True, exist_ok=True)
            parts = []
            for ctl in sorted(ctls):
                parts.append(_write_limit(h.version, d, ctl, wanted[ctl]))
            e.cgroups.append((h, d))
            done |= ctls
            e.notes.append(f"cgroup v{h.version} " + ", ".join(parts))
        except OSError as exc:
            e.notes.append(f"cgroup v{h.version} unusable ({exc.strerror})")
    rest = set(wanted) - done
    if rest:
        have_prlimit = shutil.which("prlimit") is not None
        parts = []
        if "memory" in rest and have_prlimit:
            e.prlimit_args.append(f"--as={wanted['memory']}")
            parts.append(f"RLIMIT_AS={format_bytes(wanted['memory'])}")
        if "pids" in rest and have_prlimit:
            e.prlimit_args.append(f"--nproc={wanted['pids']}")
            parts.append(
                f"RLIMIT_NPROC={wanted['pids']}"
                + (" (root is exempt)" if os.geteuid() == 0 else "")
            )
        if parts:
            e.notes.append("rlimits " + ", ".join(parts))
        if "cpu" in rest:
            e.notes.append(f"cpu={format_cpu(limits.cpu)} not enforced (no writable cpu cgroup)")
        if not have_prlimit and rest - {"cpu"}:
            e.notes.append(
                "no cgroup and no prlimit: " + ", ".join(sorted(rest - {"cpu"})) + " not enforced"
            )
    return e


def _write_limit(version: int, d: Path, ctl: str, value: int) -> str:
    if ctl == "pids":
        (d / "pids.max").write_text(str(value))
        return f"pids.max={value}"
    if ctl == "memory":
        # Any byte count up to 2**63-1 (devops.quantity.MAX_BYTES) is taken;
        # the kernel rounds it down to pages.
        fname = "memory.max" if version == 2 else "memory.limit_in_bytes"
        (d / fname).write_text(str(value))
        if version == 2 and (d / "memory.swap.max").exists():
            (d / "memory.swap.max").write_text("0")
        return f"{fname}={format_bytes(value)}"
    period, quota = cpu_quota(value)
    if version == 2:
        (d / "cpu.max").write_text(f"{quota} {period}")
        return f"cpu.max={quota} {period}"
    (d / "cpu.cfs_period_us").write_text(str(period))
    (d / "cpu.cfs_quota_us").write_text(str(quota))
    return f"cpu.cfs_quota_us={quota}/{period}"


def cpu_quota(millicores: int) -> tuple[int, int]:
    """(period, quota) in microseconds for exactly `millicores` of CPU.

    The kernel takes a quota of at least 1000 us and a period of at most 1 s:
    the usual 100 ms period holds 10m and more exactly, 1m..9m get a 1 s
    period. The largest quota (2**44-1 us) bounds devops.quantity.MAX_MILLICORES.
    """
    period = 100_000 if millicores >= 10 else 1_000_000
    return period, millicores * period // 1000


def release_execution(execution: str, scope: str) -> None:
    """Kill and remove every step cgroup an execution of install `scope` left
    (runner killed, or stop by force); another install's cgroups are never touched."""
    for h in hierarchies():
        for d in (h.base / "slipway").glob(f"{scope}.{execution}.*"):
            Enforcement(Limits(), cgroups=[(h, d)]).release()
