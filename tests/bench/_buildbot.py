"""Buildbot 4.3.0 side by side: a master and two local workers on loopback, driven over its REST API.

Contract:
    venv, why = ensure_buildbot(path)        # a separate venv (never the project's); (None, reason) if it can't be made
    with BuildbotHarness(venv, root, builders) as bb:   # starts master + 2 workers, waits until both are attached
        t_sent, bsid = bb.force("a21")        # the same request the web UI's "Force" button sends
        t_done = bb.wait_buildset(bsid)       # time.time() at which the master's event stream said "complete"
    # leaving the block stops every process the harness started (SIGTERM, then SIGKILL of its process group)

Builders are described as plain data (`BuilderSpec`): a list of shell commands
run one per `ShellCommand` step, optionally preceded by a `Git` step
(mode=full, method=clobber: a fresh clone each build, as Slipway's workspace).
Every builder may run on both workers, each worker takes one build at a time,
so at most two builds run at once (the `executor-quota 2` of scenario (c)).
`collapseRequests=False`, or Buildbot would merge the 20 identical requests of (c).
"""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

BUILDBOT_VERSION = "4.3.0"
# buildbot-www is needed only because the REST API (how we trigger, like the UI does) is served by it.
PACKAGES = (f"buildbot=={BUILDBOT_VERSION}", f"buildbot-worker=={BUILDBOT_VERSION}", f"buildbot-www=={BUILDBOT_VERSION}")
WORKERS = ("w1", "w2")


@dataclass(frozen=True)
class BuilderSpec:
    name: str
    commands: tuple[str, ...]          # one ShellCommand step each (run by /bin/sh -c, as a Slipway script step)
    git_url: str = ""                  # if set: a Git step (fresh clone) before the commands
    git_branch: str = "main"


def ensure_buildbot(venv: Path) -> tuple[Path | None, str]:
    """Make `venv` with Buildbot installed from PyPI unless it already has it.

    Returns (venv, "") or (None, reason). Never touches the project's venv.
    """
    buildbot = venv / "bin" / "buildbot"
    if buildbot.exists() and (venv / "bin" / "buildbot-worker").exists():
        ok = subprocess.run([str(buildbot), "--version"], capture_output=True, text=True, check=False)
        if ok.returncode == 0 and f"Buildbot version: {BUILDBOT_VERSION}" in ok.stdout:
            return venv, ""
    print(f"  installing Buildbot {BUILDBOT_VERSION} into {venv} (once) ...", flush=True)
    try:
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)],
                           check=True, capture_output=True, text=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *PACKAGES],
                       check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        return None, f"pip install {' '.join(PACKAGES)} failed: {detail.strip().splitlines()[-1:] or e}"
    return venv, ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MASTER_CFG = '''\
# Written by tests/bench/_buildbot.py for one benchmark run.
from buildbot.plugins import schedulers, steps, util, worker

BUILDERS = {builders!r}
WORKERS = {workers!r}

c = BuildmasterConfig = {{}}
c["workers"] = [worker.Worker(name, "pass", max_builds=1) for name in WORKERS]
c["protocols"] = {{"pb": {{"port": "tcp:{pb_port}:interface=127.0.0.1"}}}}
c["change_source"] = []
c["schedulers"] = [schedulers.ForceScheduler(name="force", builderNames=[b["name"] for b in BUILDERS])]

def factory(b):
    f = util.BuildFactory()
    if b["git_url"]:
        f.addStep(steps.Git(repourl=b["git_url"], branch=b["git_branch"], mode="full", method="clobber"))
    for i, cmd in enumerate(b["commands"]):
        f.addStep(steps.ShellCommand(name="step%d" % i, command=cmd))
    return f

c["builders"] = [
    util.BuilderConfig(name=b["name"], workernames=list(WORKERS), factory=factory(b), collapseRequests=False)
    for b in BUILDERS
]
c["title"] = "slipway-bench"
c["buildbotURL"] = "http://127.0.0.1:{www_port}/"
c["www"] = {{"port": "tcp:{www_port}:interface=127.0.0.1", "plugins": {{}}}}
c["db"] = {{"db_url": "sqlite:///state.sqlite"}}
c["buildbotNetUsageData"] = None
'''


@dataclass
class BuildbotHarness:
    venv: Path
    root: Path
    builders: list[BuilderSpec]
    _procs: list[subprocess.Popen] = field(default_factory=list)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lifecycle -------------------------------------------------------
    def start(self, timeout: float = 90.0) -> None:
        bin_ = self.venv / "bin"
        self.pb_port, self.www_port = _free_port(), _free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        master = self.root / "master"
        subprocess.run([str(bin_ / "buildbot"), "create-master", "-q", str(master)], check=True,
                       capture_output=True, text=True)
        builders = [
            {"name": b.name, "commands": list(b.commands), "git_url": b.git_url, "git_branch": b.git_branch}
            for b in self.builders
        ]
        (master / "master.cfg").write_text(MASTER_CFG.format(
            builders=builders, workers=list(WORKERS), pb_port=self.pb_port, www_port=self.www_port))
        checked = subprocess.run([str(bin_ / "buildbot"), "checkconfig", str(master)], capture_output=True,
                                 text=True, check=False)
        if checked.returncode != 0:
            raise RuntimeError(f"buildbot checkconfig failed:\n{checked.stdout}{checked.stderr}")
        self._spawn([str(bin_ / "buildbot"), "start", "--nodaemon", str(master)], master / "bench-stdout.log")
        for name in WORKERS:
            wdir = self.root / name
            subprocess.run([str(bin_ / "buildbot-worker"), "create-worker", "-q", str(wdir),
                            f"127.0.0.1:{self.pb_port}", name, "pass"], check=True, capture_output=True, text=True)
            self._spawn([str(bin_ / "buildbot-worker"), "start", "--nodaemon", str(wdir)], wdir / "bench-stdout.log")
        deadline = time.monotonic() + timeout
        while True:
            try:
                workers = self._get("/api/v2/workers")["workers"]
                if sum(1 for w in workers if w.get("connected_to")) == len(WORKERS):
                    break
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                pass  # not listening yet
            for p in self._procs:
                if p.poll() is not None:
                    raise RuntimeError(f"buildbot process exited early ({p.args}); see logs under {self.root}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"buildbot master/workers not ready after {timeout:.0f}s; see {self.root}")
            time.sleep(0.2)
        self._start_listener()

    def _spawn(self, argv: list[str], log: Path) -> None:
        with open(log, "wb") as out:
            # Own process group: stop() can end exactly what we started, nothing else.
            self._procs.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}))

    def stop(self) -> None:
        """Stop workers first, then the master; SIGKILL the process group of any that linger."""
        self._stop_listener()
        for p in reversed(self._procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in reversed(self._procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        self._procs.clear()

    # -- REST ------------------------------------------------------------
    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        # A fresh connection per request: with keep-alive, Buildbot's Twisted web server
        # occasionally never answered a request that followed a build's end and only
        # dropped the connection at its 60 s idle timeout. Loopback connects cost ~0.2 ms.
        conn = http.client.HTTPConnection("127.0.0.1", self.www_port, timeout=60)
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Connection": "close"}
            if data:
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        finally:
            conn.close()
        if resp.status >= 400:
            raise RuntimeError(f"buildbot {method} {path}: HTTP {resp.status} {payload[:300]!r}")
        return json.loads(payload)

    def _get(self, path: str) -> dict:
        return self._request("GET", path)

    def force(self, builder: str) -> tuple[float, int]:
        """Trigger one build of `builder`; returns (time.time() just before the request, buildset id)."""
        t = time.time()
        reply = self._request("POST", "/api/v2/forceschedulers/force",
                              {"jsonrpc": "2.0", "method": "force", "id": 1, "params": {"builderNames": [builder]}})
        if "error" in reply:
            raise RuntimeError(f"buildbot force failed: {reply['error']}")
        return t, int(reply["result"][0])

    # -- completion: pushed by the master (SSE), not polled ----------------
    # Polling the REST API every few ms costs the single-threaded master real CPU
    # (it slowed scenario (c) down noticeably), so completions come from its
    # event stream: GET /sse/listen/buildsets/*/complete. A REST check once a
    # second covers a missed event.
    def _start_listener(self) -> None:
        self._done: dict[int, tuple[float, int]] = {}  # bsid -> (time.time() seen, results)
        self._cond = threading.Condition()
        self._sse = http.client.HTTPConnection("127.0.0.1", self.www_port, timeout=None)
        self._sse.request("GET", "/sse/listen/buildsets/*/complete")
        resp = self._sse.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"buildbot SSE: HTTP {resp.status}")
        threading.Thread(target=self._read_events, args=(resp,), daemon=True).start()

    def _read_events(self, resp: http.client.HTTPResponse) -> None:
        try:
            while True:
                line = resp.readline()
                if not line:
                    return
                if line.startswith(b"data: {"):  # the handshake's data line is a bare uuid
                    t = time.time()
                    msg = json.loads(line[6:]).get("message") or {}
                    if msg.get("complete"):
                        with self._cond:
                            self._done[int(msg["bsid"])] = (t, int(msg.get("results") or 0))
                            self._cond.notify_all()
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            # stop() closed the connection (http.client may then fail with any of these);
            # before that, a lost stream only means waits fall back to the REST check.
            return

    def _stop_listener(self) -> None:
        sse = getattr(self, "_sse", None)
        if sse is not None:
            if sse.sock is not None:
                with contextlib.suppress(OSError):
                    sse.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader thread
            sse.close()
            self._sse = None

    def _check_rest(self, bsids: set[int]) -> None:
        """Fallback for a missed event: record what the REST API says is complete."""
        rows = self._get("/api/v2/buildsets?field=bsid&field=complete&field=results")["buildsets"]
        with self._cond:
            for r in rows:
                if r["complete"] and r["bsid"] in bsids and r["bsid"] not in self._done:
                    self._done[r["bsid"]] = (time.time(), int(r["results"] or 0))

    def wait_all(self, bsids: list[int], timeout: float = 300.0) -> float:
        """Wait until every buildset is complete; returns time.time() when the last was seen. Raises if one failed."""
        wanted = set(bsids)
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                pending = wanted - self._done.keys()
                if not pending:
                    seen = [self._done[b] for b in wanted]
                    break
                self._cond.wait(timeout=1.0)
                pending = wanted - self._done.keys()
            if pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"buildbot: {len(pending)} buildsets not complete after {timeout:.0f}s")
                self._check_rest(pending)
        failed = [r for _t, r in seen if r not in (0, 1)]  # SUCCESS, WARNINGS
        if failed:
            raise RuntimeError(f"buildbot buildsets failed (results {failed}); see {self.root}")
        return max(t for t, _r in seen)

    def wait_buildset(self, bsid: int, timeout: float = 120.0) -> float:
        return self.wait_all([bsid], timeout=timeout)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
