"""Cache benchmarks: `./slipway bench cache` (README "Benchmarks").

Each case runs a real pipeline through the local engine twice or more: the
first (cold: empty cache / no layers) is the baseline measured in the same
run; the warm runs change nothing but the commit (a README edit), as a
repeat push does. Reported: the build step's time and the whole pipeline's
(clone + steps) time, and the ratios cold / warm.

(a) C project, 80 files, `make -j2` with ccache, cache path /root/.ccache.
    Runs in the `sandbox` runtime with Debian's gcc + ccache (a compiler
    image cannot be pulled here; the busybox image has no gcc).
(b) Image build (publishImageConfig) with unchanged layers, `container`
    storage + the built-in registry: first build+push vs rebuild+push.
(c) Python project: dependencies installed by `pip install --target deps`
    from a wheelhouse in the repository (no network), `deps` cached; the
    script skips pip when requirements.txt equals the cached copy.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _setup_django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "devops.settings")
    django.setup()


GIT_ENV = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@example.com", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_repo(path: Path, files: dict[str, str | bytes]) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for name, content in files.items():
        p = path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def touch_commit(repo: Path, n: int) -> str:
    (repo / "README").write_text(f"run {n}\n")
    git(repo, "add", "README")
    git(repo, "commit", "-q", "-m", f"run {n}")
    return git(repo, "rev-parse", "HEAD")


class Runner:
    """Runs pipelines through the real LocalEngine on a private data dir."""

    def __init__(self, data_dir: Path, runtime: str, env: dict[str, str] | None = None,
                 registry_auth: dict | None = None):
        from devops.engines.local.engine import LocalEngine
        from devops.engines.local.options import LocalOptions

        self.data_dir = data_dir
        self.engine = LocalEngine(LocalOptions(
            data_dir=data_dir, workspace_dir=data_dir / "workspaces",
            log_store_url=f"file://{data_dir / 'logs'}", step_runtime=runtime))
        self.env = env or {}
        self.registry_auth = registry_auth or {}
        self.n = 0

    def run(self, repo: Path, stages: list[dict], *, cache: dict | None = None, timeout: float = 600):
        from devops.engines.base import RunSpec
        from devops.pipeline.config import PipelineConfig

        self.n += 1
        commit = touch_commit(repo, self.n)
        raw = {"stages": [{"name": "Clone", "steps": [{"type": {"kind": "sourceCodeConfig"}}]}, *stages]}
        if cache:
            raw["cache"] = cache
        name = f"p-bench-{repo.name}-{self.n}"
        spec = RunSpec(execution=name, project_id="p-bench", pipeline_id=f"pl-{repo.name}", run=self.n,
                       repository_url=str(repo), commit=commit, branch="main", ref="refs/heads/main",
                       event="push", trigger_type="user", config=PipelineConfig.model_validate(raw),
                       env={"CICD_EXECUTION_SEQUENCE": str(self.n), **self.env},
                       registry_auth=self.registry_auth)
        handle = self.engine.run(spec)
        end = time.monotonic() + timeout
        while True:
            report = self.engine.sync(spec, handle)
            if report.state not in ("Building", "Waiting"):
                break
            if time.monotonic() > end:
                self.engine.stop(spec, handle)
                raise RuntimeError(f"{name} did not finish in {timeout}s")
            time.sleep(0.05)
        if report.state != "Success":
            raise RuntimeError(f"{name}: {report.state} {report.error}\n{self.log(spec, 1, 0)}")
        step = next(s for s in report.steps if (s.stage, s.step) == (1, 0))
        self.engine.cleanup(spec, handle)
        return step.ended - step.started, report.ended - report.started, self.log(spec, 1, 0)

    def log(self, spec, stage: int, step: int) -> str:
        from devops.logs.base import LogKey
        from devops.logs.filestore import FileLogStore

        try:
            return FileLogStore(self.data_dir / "logs").read(LogKey(spec.execution, stage, step)).decode(
                errors="replace")
        except Exception:
            return ""


def report(title: str, cold: tuple[float, float], warm: list[tuple[float, float]], target: float | None,
           results: list[str]) -> None:
    step_w = statistics.median(w[0] for w in warm)
    pipe_w = statistics.median(w[1] for w in warm)
    ratio, pratio = cold[0] / step_w, cold[1] / pipe_w
    verdict = "" if target is None else (f"  (target >= {target:g}x: {'met' if ratio >= target else 'NOT met'})")
    line = (f"{title}: build step cold {cold[0]:.2f}s -> warm {step_w:.2f}s = {ratio:.1f}x{verdict}; "
            f"whole pipeline cold {cold[1]:.2f}s -> warm {pipe_w:.2f}s = {pratio:.1f}x")
    print(line, flush=True)
    results.append(line)


# --- (a) C with ccache ----------------------------------------------------------

def c_project(files: int = 80, functions: int = 40) -> dict[str, str]:
    out: dict[str, str] = {"common.h": "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
                                       "#include <math.h>\n"}
    for i in range(files):
        body = "".join(
            f"double f{i}_{j}(const double *a, int n) {{\n  double s = 0;\n"
            f"  for (int k = 0; k < n; k++) {{ s += a[k] * {j + 1}.5 / (k + {i + 1});\n"
            f"    if (s > 1e9) s = s / 3.0 - a[(k * {j + 3}) % n]; }}\n"
            f"  for (int k = n - 1; k > 0; k--) s -= a[k] * a[k-1] * {j};\n  return s;\n}}\n"
            for j in range(functions))
        out[f"src/m{i}.c"] = '#include "../common.h"\n' + body
    objs = " ".join(f"build/m{i}.o" for i in range(files))
    out["Makefile"] = (f"CC ?= gcc\nOBJS = {objs}\nall: build/libapp.a\n"
                       "build/libapp.a: $(OBJS)\n\tar rcs $@ $(OBJS)\n"
                       "build/%.o: src/%.c common.h\n\t@mkdir -p build\n\t$(CC) -O2 -c $< -o $@\n")
    return out


def bench_ccache(tmp: Path, results: list[str]) -> None:
    for tool in ("bwrap", "gcc", "ccache", "make"):
        if not shutil.which(tool):
            print(f"(a) skipped: {tool} is not installed")
            return
    repo = make_repo(tmp / "cproj", c_project())
    runner = Runner(tmp / "data-a", "sandbox")
    script = ("export CCACHE_DIR=/root/.ccache CCACHE_NOHASHDIR=1 CC='ccache gcc'; "
              "make -j2 -s && ccache --print-stats | grep -E '^(direct_cache_hit|cache_miss)\\s'")
    stages = [{"name": "Build", "steps": [{"type": {"kind": "runScriptConfig", "image": "gcc",
                                                    "shellScript": script}}]}]
    cache = {"paths": ["/root/.ccache"]}
    step, pipe, _log = runner.run(repo, stages, cache=cache)
    warm = []
    for _ in range(2):
        s, p, wlog = runner.run(repo, stages, cache=cache)
        warm.append((s, p))
    hits = [ln for ln in wlog.splitlines() if ln.startswith("direct_cache_hit")]
    print(f"(a) warm run ccache stats: {hits}")
    report("(a) C, 80 files, ccache", (step, pipe), warm, 10, results)


# --- (b) image rebuild with unchanged layers ---------------------------------------

DOCKERFILE = """FROM localhost/busybox:latest
RUN mkdir -p /opt/app && for i in $(seq 1 400); do echo "line $i" > /opt/app/f$i.txt; done
# Stands in for a dependency install / asset build (real CPU work, ~2-3 s):
RUN dd if=/dev/urandom bs=1M count=8 2>/dev/null | gzip -9 > /opt/app/assets.gz && \
    i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done
COPY app.txt /opt/app/app.txt
RUN cat /opt/app/app.txt > /opt/app/built
CMD ["cat", "/opt/app/built"]
"""


def _token_server(data: Path):
    """Slipway's real token view (GET /api/v1/registry/token) served on a loopback port in a thread:
    the registry's token auth sends buildah there. (server, realm URL)."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from django.conf import settings
    from django.core.wsgi import get_wsgi_application

    from devops.registry.tokens import TOKEN_PATH

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args) -> None:
            pass

    settings.DATA_DIR = data
    server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}{TOKEN_PATH}"


def bench_image(tmp: Path, results: list[str]) -> None:
    if not shutil.which("buildah") or not shutil.which("docker-registry"):
        print("(b) skipped: needs buildah and docker-registry")
        return
    from devops.registry.server import ensure_registry, project_auth, stop_registry
    from tests.images import build_busybox

    data = tmp / "data-b"
    build_busybox(data / "containers")
    server, realm = _token_server(data)
    info = ensure_registry(data, notify_url="", token_realm=realm)
    try:
        repo = make_repo(tmp / "imgproj", {"Dockerfile": DOCKERFILE, "app.txt": "bench\n"})
        runner = Runner(data, "container", env={"CICD_LOCAL_REGISTRY": info.address},
                        registry_auth={info.address: project_auth(data, "p-bench", trusted=True)})
        for label, env in (("layer cache only (SLIPWAY_BUILD_REUSE=false)", [["SLIPWAY_BUILD_REUSE", "false"]]),
                           ("with whole-build reuse (default)", [])):
            stages = [{"name": "Publish", "steps": [{"type": {"kind": "publishImageConfig",
                                                              "tag": "p-bench/app:${CICD_EXECUTION_SEQUENCE}"},
                                                     "env": env}]}]
            # Cold: a fresh storage for the built layers (the busybox base stays).
            subprocess.run(["buildah", "--root", str(data / "containers" / "storage"), "--runroot",
                            str(data / "containers" / "run"), "--storage-driver", "vfs", "rmi", "--all",
                            "--force"], capture_output=True)
            shutil.rmtree(data / "containers" / "fingerprints", ignore_errors=True)
            build_busybox(data / "containers")
            step, pipe, _log = runner.run(repo, stages)
            warm = []
            for _ in range(2):
                s, p, wlog = runner.run(repo, stages)
                warm.append((s, p))
            reused = [ln for ln in wlog.splitlines() if "reused" in ln]
            print(f"(b) warm run: {reused[-1] if reused else '?'}")
            if os.environ.get("BENCH_VERBOSE"):
                print(wlog)
            report(f"(b) image rebuild, unchanged layers, build + push, {label}", (step, pipe), warm, 5, results)
    finally:
        stop_registry(data)
        server.shutdown()
        subprocess.run(["buildah", "--root", str(data / "containers" / "storage"), "--runroot",
                        str(data / "containers" / "run"), "--storage-driver", "vfs", "rm", "--all"],
                       capture_output=True)


# --- (c) Python dependencies into a cached directory --------------------------------

def make_wheel(directory: Path, name: str, modules: int) -> str:
    """A pure-Python wheel written by hand (no build backend, no network)."""
    import base64
    import hashlib

    version = "1.0.0"
    fname = f"{name}-{version}-py3-none-any.whl"
    dist = f"{name}-{version}.dist-info"
    files: dict[str, bytes] = {f"{name}/__init__.py": f"VERSION = '{version}'\n".encode()}
    for m in range(modules):
        files[f"{name}/mod{m}.py"] = ("".join(f"def fn{k}(x):\n    return x * {k} + {m}\n\n" for k in range(40))
                                      ).encode()
    files[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: slipway-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(directory / fname, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            z.writestr(path, data)
    return name


def bench_python(tmp: Path, results: list[str]) -> None:
    if not shutil.which("bwrap") or subprocess.run(["python3", "-m", "pip", "--version"],
                                                   capture_output=True).returncode != 0:
        print("(c) skipped: needs bwrap and python3 -m pip")
        return
    staging = tmp / "wheels"
    staging.mkdir()
    names = [make_wheel(staging, f"benchpkg{i}", 150) for i in range(12)]
    for whl in Path("/usr/share/python-wheels").glob("*.whl"):  # Debian's pip + setuptools wheels
        shutil.copy(whl, staging)
        names.append(whl.name.split("-")[0])
    files: dict[str, str | bytes] = {f"wheelhouse/{p.name}": p.read_bytes() for p in staging.iterdir()}
    files["requirements.txt"] = "\n".join(names) + "\n"
    files["app.py"] = "import benchpkg0, benchpkg11\nprint('app ok', benchpkg0.VERSION)\n"
    repo = make_repo(tmp / "pyproj", files)
    script = ("if cmp -s requirements.txt deps/.requirements; then echo 'deps: up to date (cache)'; "
              "else python3 -m pip install -q --no-index --find-links wheelhouse --target deps "
              "--upgrade -r requirements.txt && cp requirements.txt deps/.requirements; fi; "
              "PYTHONPATH=deps python3 app.py")
    stages = [{"name": "Test", "steps": [{"type": {"kind": "runScriptConfig", "image": "python",
                                                   "shellScript": script}}]}]
    runner = Runner(tmp / "data-c", "sandbox")
    cache = {"paths": ["deps"]}
    step, pipe, _log = runner.run(repo, stages, cache=cache)
    warm = []
    for _ in range(2):
        s, p, wlog = runner.run(repo, stages, cache=cache)
        warm.append((s, p))
    assert "up to date" in wlog, wlog
    report("(c) Python deps (pip --target from a wheelhouse)", (step, pipe), warm, None, results)


def main() -> None:
    """All cases; BENCH_CACHE_CASES=a,c picks some."""
    _setup_django()
    results: list[str] = []
    wanted = set((os.environ.get("BENCH_CACHE_CASES") or "a,b,c").split(","))
    with tempfile.TemporaryDirectory(prefix="slipway-bench-cache-") as t:
        tmp = Path(t)
        for case, fn in (("a", bench_ccache), ("c", bench_python), ("b", bench_image)):
            if case in wanted:
                fn(tmp, results)
    print("\nsummary (ratios = cold / warm, measured in this run):")
    for line in results:
        print("  " + line)
