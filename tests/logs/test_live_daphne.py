"""End to end: a runner-like writer process -> the store -> a real daphne -> a real WebSocket client."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time

import pytest

from tests.logs.conftest import ROOT, free_port, stop, wait_port, writer_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def database_url_for_subprocess(tmp_path) -> str:
    """A DATABASE_URL another process can open holding this test's committed rows."""
    import sqlite3

    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        # The test DB is in memory: copy it to a file.
        connection.ensure_connection()
        path = tmp_path / "daphne.sqlite3"
        dest = sqlite3.connect(path)
        connection.connection.backup(dest)
        dest.close()
        return f"sqlite:///{path}"
    user = s.get("USER") or "postgres"
    auth = f"{user}:{s['PASSWORD']}" if s.get("PASSWORD") else user
    return f"postgres://{auth}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


@pytest.fixture
def daphne(tmp_path):
    """Start daphne (devops.asgi:application) on a free port with the given store; yields a start(env) function."""
    procs = []

    def start(store_url: str, extra_env: dict | None = None) -> int:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env.update({
            "DJANGO_SETTINGS_MODULE": "devops.settings",
            "DATABASE_URL": database_url_for_subprocess(tmp_path),
            "SLIPWAY_LOG_STORE": store_url,
            "SLIPWAY_DATA_DIR": str(tmp_path / "data"),
            "SLIPWAY_LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        })
        proc = subprocess.Popen([str(os.path.join(os.path.dirname(sys.executable), "daphne")), "-b", "127.0.0.1",
                                 "-p", str(port), "devops.asgi:application"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(proc)
        wait_port(port, proc, 30)
        return port

    yield start
    for p in procs:
        stop(p)


def test_a_browser_sees_each_line_within_100ms_and_the_socket_closes_when_the_step_ends(
    daphne, execution, personas, tmp_path
):
    import websockets
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=personas["ronnie"]).key
    store_url = f"file://{tmp_path / 'logs'}"
    port = daphne(store_url)
    url = f"ws://127.0.0.1:{port}/ws/v1/projects/{execution.project_id}/executions/{execution.name}/log?stage=1&step=0"
    writer = writer_process(store_url, execution.name, 1, 0, mask="hunter2-secret")
    assert writer.stdout.readline() == b"ready\n"

    async def scenario():
        with pytest.raises(websockets.InvalidStatus) as refused:        # anonymous: refused at the handshake
            async with websockets.connect(url):
                pass
        assert refused.value.response.status_code == 403
        delays = []
        received = bytearray()
        async with websockets.connect(url, additional_headers={"Authorization": f"Token {token}"}) as ws:
            for i in range(20):
                line = f"{time.time():.6f} line {i} hunter2-secret\n".encode()
                writer.stdin.write(line)
                writer.stdin.flush()
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    assert frame["type"] == "log" and frame["offset"] == len(received)
                    received.extend(base64.b64decode(frame["data"]))
                    if received.endswith(b"\n"):
                        break
                sent = float(received.splitlines()[-1].split()[0])
                delays.append(time.time() - sent)
                await asyncio.sleep(0.01)
            writer.stdin.close()
            tail = [json.loads(m) async for m in ws]                     # until daphne closes it
            assert ws.close_code == 1000
        assert tail[-1] == {"type": "done"} and tail[-2]["type"] == "end"
        return delays, bytes(received)

    delays, received = asyncio.run(scenario())
    assert writer.wait(10) == 0
    assert b"hunter2-secret" not in received and received.count(b"***") == 20
    assert received == (tmp_path / "logs" / execution.name / "1-0.log").read_bytes()
    # Each line arrived before the next was written (the loop waits for it): live, in order.
    # Latency figures are benchmarks (`./slipway bench logs`), not assertions on a shared machine.
    assert len(delays) == 20


def test_with_redis_every_web_process_gets_the_live_bytes(daphne, execution, personas, s3_url, redis_url, tmp_path):
    """Two daphne processes, one runner on "another host" whose S3 flush is 30 s away:
    only the Redis channel layer can bring its bytes to both clients."""
    import websockets
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=personas["bob"]).key
    ports = [daphne(s3_url, {"REDIS_URL": redis_url}) for _ in range(2)]
    writer = writer_process(s3_url, execution.name, 2, 0, env={"REDIS_URL": redis_url},
                            spool=tmp_path / "runner-host", flush_interval=30)
    assert writer.stdout.readline() == b"ready\n"
    path = f"/ws/v1/projects/{execution.project_id}/executions/{execution.name}/log?stage=2&step=0"

    async def watch(port, joined: asyncio.Event):
        async with websockets.connect(f"ws://127.0.0.1:{port}{path}",
                                      additional_headers={"Authorization": f"Token {token}"}) as ws:
            await asyncio.sleep(0.5)           # the consumer has joined the group
            joined.set()
            got = bytearray()
            while b"line two\n" not in got:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                got.extend(base64.b64decode(frame["data"]))
            return bytes(got)

    async def scenario():
        joined = [asyncio.Event(), asyncio.Event()]
        tasks = [asyncio.create_task(watch(p, j)) for p, j in zip(ports, joined, strict=True)]
        for j in joined:
            await j.wait()
        writer.stdin.write(b"line one\nline two\n")
        writer.stdin.flush()
        return await asyncio.gather(*tasks)

    try:
        assert asyncio.run(scenario()) == [b"line one\nline two\n"] * 2
    finally:
        writer.stdin.close()
        writer.wait(10)
