"""Shared pieces of `bench engine`: the test repositories, the bare-sandbox baselines, statistics.

Clocks: every "start" stamp is written by the step's own process with
`date +%s.%N` (CLOCK_REALTIME) and compared with `time.time()` (also
CLOCK_REALTIME) taken by the bench just before the trigger. bwrap does not
unshare the clock (time namespaces only shift CLOCK_MONOTONIC/BOOTTIME), so
both sides read the same clock. Durations that never cross a process
boundary use `time.monotonic()`.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

STAMP_SCRIPT = "date +%s.%N"


@dataclass(frozen=True)
class Repos:
    """file:// URLs of the small repositories the scenarios run (branch `main`)."""

    a1: str       # (a) 1 one-step stage of `true`
    a21: str      # (a) 21 one-step stages of `true`
    b: str        # (b) a few files; its first real step prints a CLOCK_REALTIME stamp
    c: str        # (c) 10 one-step stages of `true`
    b_path: Path


def _devops_yml(scripts: list[str]) -> str:
    lines = ["stages:"]
    for i, script in enumerate(scripts):
        lines += [
            f"- name: s{i + 1}",
            "  steps:",
            "  - runScriptConfig:",
            "      image: busybox",
            f"      shellScript: {script!r}",
        ]
    return "\n".join(lines) + "\n"


def make_repo(path: Path, scripts: list[str]) -> str:
    """A git repository at `path` with a few files and a `.devops.yml` running `scripts`, one stage each."""
    path.mkdir(parents=True)
    (path / "README.md").write_text("# bench repo\n")
    (path / "app.py").write_text("print('hello')\n" * 20)
    (path / "src").mkdir()
    for i in range(5):
        (path / "src" / f"mod{i}.py").write_text(f"X = {i}\n" * 50)
    (path / ".devops.yml").write_text(_devops_yml(scripts))
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "bench"]):
        subprocess.run(argv, cwd=path, check=True, env=env, capture_output=True)
    return f"file://{path}"


def make_repos(root: Path) -> Repos:
    return Repos(
        a1=make_repo(root / "repo-a1", ["true"]),
        a21=make_repo(root / "repo-a21", ["true"] * 21),
        b=make_repo(root / "repo-b", [STAMP_SCRIPT]),
        c=make_repo(root / "repo-c", ["true"] * 10),
        b_path=root / "repo-b",
    )


def bwrap_argv(workspace: Path, script: str) -> list[str]:
    """The bare sandbox the `sandbox` step runtime builds (devops/engines/local/runtimes/sandbox.py),
    spawned directly: system dirs read-only, workspace read-write, private /tmp and /run,
    own pid/ipc/uts namespaces, the script run by `/bin/sh -e -c` as a runScriptConfig step."""
    argv = ["bwrap", "--die-with-parent", "--new-session",
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    for d in ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt"):
        if os.path.islink(d):
            argv += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            argv += ["--ro-bind", d, d]
    ws = str(workspace)
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run",
             "--bind", ws, ws, "--chdir", ws, "--", "/bin/sh", "-e", "-c", script]
    return argv


# -- baselines -------------------------------------------------------------

def baseline_a(scratch: Path) -> float:
    """Seconds for 20 `bwrap ... true` spawned directly, one after another (per-step cost = this / 20)."""
    ws = Path(tempfile.mkdtemp(dir=scratch))
    argv = bwrap_argv(ws, "true")
    t0 = time.monotonic()
    for _ in range(20):
        subprocess.run(argv, check=True)
    return time.monotonic() - t0


def baseline_b(repo_url: str, scratch: Path) -> float:
    """Seconds from start to the step's own stamp: `git clone` of the repo, then the step in bwrap."""
    ws = Path(tempfile.mkdtemp(dir=scratch)) / "ws"
    t0 = time.time()
    subprocess.run(["git", "clone", "-q", repo_url, str(ws)], check=True)
    out = subprocess.run(bwrap_argv(ws, STAMP_SCRIPT), check=True, capture_output=True, text=True).stdout
    return float(out.strip()) - t0


def baseline_c(scratch: Path, total: int = 200, parallel: int = 2) -> float:
    """Seconds for `total` `bwrap ... true` processes, `parallel` at a time."""
    ws = Path(tempfile.mkdtemp(dir=scratch))
    argv = bwrap_argv(ws, "true")
    counter = iter(range(total))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            subprocess.run(argv, check=True)

    threads = [threading.Thread(target=worker) for _ in range(parallel)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - t0


# -- statistics --------------------------------------------------------------

def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float], scale: float = 1000.0, unit: str = "ms") -> str:
    """`median (min .., max .., n=N)` in `unit` (ms: whole numbers; s: two decimals)."""
    d = 0 if unit == "ms" else 2
    return (f"{median(values) * scale:.{d}f} {unit} "
            f"(min {min(values) * scale:.{d}f}, max {max(values) * scale:.{d}f}, n={len(values)})")


def loadavg() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def cleanup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
