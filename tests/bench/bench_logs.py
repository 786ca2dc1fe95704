"""Logs benchmarks: `./slipway bench logs` (README "Benchmarks").

1. Latency, a line written by a runner-like process -> received by a WebSocket
   client through a real daphne: p50/p95/p99 over 200 lines, for the file store
   without Redis (the consumer tails the file), with Redis (the runner publishes
   to the channel layer), and for S3 (moto_server) without Redis (spool tail).
   Baseline: the same two processes with a plain loopback TCP socket between them.
2. A step writing 100 MiB through open_step_writer (3 values masked): stored
   byte-exact (sha256 compare), the writer process's peak RSS, throughput in
   MiB/s, for the file store and S3 (moto_server). Baseline: the same bytes
   written straight to a file with os.write (what `cat > file` does).

Everything runs in a child process with its own SLIPWAY_DATA_DIR and SQLite
file, so it neither touches nor depends on a running Slipway.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench._net import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LINES = 200
TOTAL = 100 << 20
PIECE = 64 << 10
MASK = ("hunter2-secret-value", "AKIAEXAMPLEKEY123", "ghp_exampletoken0000")
REDIS = "redis://127.0.0.1:6379/11"




def _pct(xs: list[float]) -> tuple[float, float, float]:
    xs = sorted(xs)
    def at(q):
        return xs[min(len(xs) - 1, int(q * len(xs)))]
    return at(0.50) * 1000, at(0.95) * 1000, at(0.99) * 1000


# --- the 100 MiB writer (runs in its own process) ----------------------------------
def _piece(i: int, base: bytes) -> bytes:
    return (b"%08d " % i) + base[: PIECE - 9]


def _peak_rss_kib() -> int:
    """VmHWM: this process's peak RSS (ru_maxrss would include the parent's, inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def write_child(url: str, execution: str, direct: str | None, mask: bool = True) -> None:
    """Write TOTAL bytes; print JSON {sha256 (of what must be stored), seconds, rss_before_kib, peak_rss_kib}."""
    base = b"".join(b"[%06d] compiling module %d ... ok hunter2-secret-value\n" % (i, i) for i in range(2000))
    if not direct:
        from devops.logs import LogKey, log_store_from_url, open_step_writer

        store = log_store_from_url(url)
    rss_before = _peak_rss_kib()
    t0 = time.perf_counter()
    if direct:
        fd = os.open(direct, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        for i in range(TOTAL // PIECE):
            os.write(fd, _piece(i, base))
        os.close(fd)
    else:
        w = open_step_writer(store, LogKey(execution, 1, 0), mask=MASK if mask else (), cap=2 * TOTAL)
        for i in range(TOTAL // PIECE):
            w.write(_piece(i, base))
        w.close()
        assert not w.errors, w.errors
    seconds = time.perf_counter() - t0
    peak = _peak_rss_kib()
    h = hashlib.sha256()
    for i in range(TOTAL // PIECE):
        p = _piece(i, base)
        h.update(p.replace(MASK[0].encode(), b"***") if (mask and not direct) else p)
    print(json.dumps({"sha256": h.hexdigest(), "seconds": seconds, "rss_before_kib": rss_before,
                      "peak_rss_kib": peak}))


def _run_writer(env: dict, url: str, execution: str, direct: str | None = None, mask: bool = True) -> dict:
    args = [sys.executable, "-m", "tests.bench.bench_logs", "--write", url, execution, direct or "",
            "mask" if mask else "nomask"]
    out = subprocess.run(args, cwd=ROOT, env=env, check=True, capture_output=True).stdout
    return json.loads(out.decode().strip().splitlines()[-1])


def _stored_sha(url: str, execution: str) -> str:
    from devops.logs import LogKey, log_store_from_url

    store, key, h, off = log_store_from_url(url), LogKey(execution, 1, 0), hashlib.sha256(), 0
    while chunk := store.read(key, off, 8 << 20):
        h.update(chunk)
        off += len(chunk)
    return h.hexdigest()


# --- latency -------------------------------------------------------------------
BASELINE_SENDER = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for line in sys.stdin.buffer:
    s.sendall(line)
"""


async def _drive(writer: subprocess.Popen, receive) -> list[float]:
    delays, buf = [], bytearray()
    for i in range(LINES):
        writer.stdin.write(f"{time.time():.6f} line {i} hunter2-secret-value\n".encode())
        writer.stdin.flush()
        while buf.count(b"\n") <= i:
            buf.extend(await receive())
        delays.append(time.time() - float(buf.splitlines()[i].split()[0]))
        await asyncio.sleep(0.01)
    return delays


def latency_baseline() -> list[float]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    sender = subprocess.Popen([sys.executable, "-c", BASELINE_SENDER, str(port)], stdin=subprocess.PIPE)
    conn, _ = srv.accept()

    async def go():
        loop = asyncio.get_running_loop()
        return await _drive(sender, lambda: loop.sock_recv(conn, 65536))

    conn.setblocking(False)
    try:
        return asyncio.run(go())
    finally:
        sender.stdin.close()
        sender.wait()
        conn.close()
        srv.close()


def latency_ws(env: dict, store_url: str, execution: str, project: str, token: str, stage: int) -> list[float]:
    import websockets

    port = free_port()
    daphne = subprocess.Popen([str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "devops.asgi:application"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wenv = {k: v for k, v in env.items() if k != "DJANGO_SETTINGS_MODULE"}
    writer = subprocess.Popen([sys.executable, "-m", "tests.logs.writer_proc", store_url, execution, str(stage), "0",
                               "--mask", MASK[0]], cwd=ROOT, env=wenv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        wait_port(port)
        assert writer.stdout.readline() == b"ready\n"
        url = f"ws://127.0.0.1:{port}/ws/v1/projects/{project}/executions/{execution}/log?stage={stage}&step=0"

        async def go():
            async with websockets.connect(url, additional_headers={"Authorization": f"Token {token}"}) as ws:
                await asyncio.sleep(0.3)

                async def receive():
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    return base64.b64decode(frame["data"])
                return await _drive(writer, receive)

        return asyncio.run(go())
    finally:
        writer.stdin.close()
        writer.wait(30)
        daphne.terminate()
        daphne.wait(10)


# --- orchestration (child process with its own data dir) ------------------------------
def run(tmp: Path) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from devops.controller.projects import do_create_project
    from devops.models import Pipeline, PipelineExecution

    user = get_user_model().objects.create_user("bench", password="bench-pw")
    project = do_create_project("bench", owner=user)
    pipeline = Pipeline.objects.create(project=project, repository_url="https://example.invalid/r.git")
    execution = PipelineExecution.objects.create(project=project, pipeline=pipeline, name=f"{pipeline.name}-1",
                                                 run=1, execution_state="Building")
    token = Token.objects.create(user=user).key
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    moto_port = free_port()
    moto = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    file_url = f"file://{tmp / 'logs'}"
    s3_url = f"s3://bench:bench-secret@127.0.0.1:{moto_port}/bench-logs?secure=false"
    try:
        wait_port(moto_port)
        print("latency: line written by another process -> received (ms)", flush=True)
        base = _pct(latency_baseline())
        print(f"  baseline loopback TCP socket   p50 {base[0]:6.2f}  p95 {base[1]:6.2f}  p99 {base[2]:6.2f}")
        redis_ok = subprocess.run(["redis-cli", "-u", REDIS, "ping"], capture_output=True, check=False).returncode == 0
        cases = [("file store, no Redis", file_url, {}, 1), ("S3 store, no Redis (spool tail)", s3_url, {}, 2)]
        if redis_ok:
            cases.append(("file store + Redis", file_url, {"REDIS_URL": REDIS}, 3))
        else:
            print("  (Redis at 127.0.0.1:6379 not reachable: Redis case skipped)")
        for label, url, extra, stage in cases:
            p = _pct(latency_ws({**env, **extra, "SLIPWAY_LOG_STORE": url}, url, execution.name, project.id,
                                token, stage))
            print(f"  WebSocket, {label:30} p50 {p[0]:6.2f}  p95 {p[1]:6.2f}  p99 {p[2]:6.2f}"
                  f"   (p95 {p[1] / base[1]:.0f}x baseline; target p95 <= 100 ms: "
                  f"{'met' if p[1] <= 100 else 'MISSED'})", flush=True)

        print("\n100 MiB step (64 KiB writes, 3 values masked)", flush=True)
        direct = _run_writer(env, "", "", str(tmp / "direct.log"))
        d_mib = TOTAL / (1 << 20) / direct["seconds"]
        print(f"  baseline os.write to a file  {d_mib:7.1f} MiB/s                     peak RSS "
              f"{direct['peak_rss_kib'] / 1024:6.1f} MiB")
        for label, url, name, mask in (("file store, no masking", file_url, "tp-file0", False),
                                       ("file store", file_url, "tp-file", True),
                                       ("S3 store (moto)", s3_url, "tp-s3", True)):
            r = _run_writer({**env, "SLIPWAY_DATA_DIR": str(tmp / "writer-data")}, url, name, mask=mask)
            mib = TOTAL / (1 << 20) / r["seconds"]
            exact = _stored_sha(url, name) == r["sha256"]
            print(f"  {label:28} {mib:7.1f} MiB/s ({mib / d_mib:.2f}x baseline)  peak RSS "
                  f"{r['peak_rss_kib'] / 1024:6.1f} MiB (+{(r['peak_rss_kib'] - r['rss_before_kib']) / 1024:.1f} "
                  f"MiB while writing)  byte-exact: {'yes' if exact else 'NO'}", flush=True)
    finally:
        moto.terminate()
        moto.wait(10)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="slipway-bench-logs-") as tmp:
        env = {**os.environ, "SLIPWAY_DATA_DIR": tmp, "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
               "DJANGO_SETTINGS_MODULE": "devops.settings", "SLIPWAY_LOG_LEVEL": "WARNING"}
        env.pop("REDIS_URL", None)
        subprocess.run([sys.executable, "-m", "tests.bench.bench_logs", "--run", tmp], cwd=ROOT, env=env, check=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        write_child(sys.argv[2], sys.argv[3], sys.argv[4] or None, sys.argv[5] == "mask")
    elif sys.argv[1:2] == ["--run"]:
        run(Path(sys.argv[2]))
    else:
        main()
