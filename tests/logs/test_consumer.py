"""The WebSocket consumer through Channels' WebsocketCommunicator (fast, in-process)."""
from __future__ import annotations

import asyncio
import base64
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from devops.logs import LogKey, get_log_store, open_step_writer

pytestmark = pytest.mark.django_db(transaction=True)


def _token(user) -> bytes:
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=user)[0].key.encode()


def _path(e, query=""):
    return f"/ws/v1/projects/{e.project_id}/executions/{e.name}/log" + (f"?{query}" if query else "")


def _comm(e, query="", token: bytes | None = None) -> WebsocketCommunicator:
    from devops.asgi import application

    headers = [(b"authorization", b"Token " + token)] if token else []
    return WebsocketCommunicator(application, _path(e, query), headers=headers)


async def _frame(comm, timeout=3.0) -> dict:
    return json.loads(await comm.receive_from(timeout=timeout))


async def _collect_until_closed(comm, timeout=5.0) -> list[dict]:
    frames = []
    while True:
        msg = await comm.receive_output(timeout=timeout)
        if msg["type"] == "websocket.close":
            assert msg.get("code", 1000) == 1000
            return frames
        frames.append(json.loads(msg["text"]))


def _data(frames, stage=None, step=None) -> bytes:
    return b"".join(base64.b64decode(f["data"]) for f in frames
                    if f["type"] == "log" and (stage is None or (f["stage"], f["step"]) == (stage, step)))


def test_step_stream_sends_stored_bytes_from_offset_then_live_then_closes(log_settings, execution, personas):
    token = _token(personas["ronnie"])                      # read-only members may watch
    w = open_step_writer(get_log_store(), LogKey(execution.name, 1, 0), mask=("s3cr3t-pw",))
    w.write(b"0123456789\n")

    async def scenario():
        comm = _comm(execution, "stage=1&step=0&offset=4", token)
        connected, _ = await comm.connect()
        assert connected
        f = await _frame(comm)
        assert (f["type"], f["stage"], f["step"], f["offset"]) == ("log", 1, 0, 4)
        assert base64.b64decode(f["data"]) == b"456789\n"
        w.write(b"live s3cr3t-pw line\n")
        f = await _frame(comm)              # arrives while the writer is still open: live (figures: bench)
        assert f["offset"] == 11 and base64.b64decode(f["data"]) == b"live *** line\n"
        w.close()
        rest = await _collect_until_closed(comm)
        assert rest[-2:] == [{"type": "end", "stage": 1, "step": 0, "size": 25}, {"type": "done"}]

    asyncio.run(scenario())


def test_whole_execution_streams_every_step_and_closes_when_it_finished(log_settings, execution, personas):
    token = _token(personas["bob"])
    store = get_log_store()
    w1 = open_step_writer(store, LogKey(execution.name, 0, 0))
    w1.write(b"cloning\n")
    w1.close()

    async def scenario():
        comm = _comm(execution, token=token)
        assert (await comm.connect())[0]
        w2 = open_step_writer(store, LogKey(execution.name, 1, 0))
        w2.write(b"building\n")
        await asyncio.sleep(0.4)
        w2.write(b"built\n")
        w2.close()
        execution.execution_state = "Success"
        await sync_to_async(execution.save)()
        frames = await _collect_until_closed(comm)
        assert _data(frames, 0, 0) == b"cloning\n" and _data(frames, 1, 0) == b"building\nbuilt\n"
        ends = {(f["stage"], f["step"]) for f in frames if f["type"] == "end"}
        assert ends == {(0, 0), (1, 0)} and frames[-1] == {"type": "done"}

    asyncio.run(scenario())


@pytest.mark.parametrize("who,query,code", [
    (None, "stage=1&step=0", 4401),
    ("charlie", "stage=1&step=0", 4403),
    ("bob", "stage=1", 4400),
    ("bob", "stage=1&step=x", 4400),
])
def test_refusals(log_settings, execution, personas, who, query, code):
    token = _token(personas[who]) if who else None

    async def scenario():
        comm = _comm(execution, query, token)
        connected, close_code = await comm.connect()
        assert not connected and close_code == code

    asyncio.run(scenario())


def test_bad_token_is_anonymous_and_unknown_execution_is_refused(log_settings, execution, personas):
    token = _token(personas["alice"])

    async def scenario():
        assert (await _comm(execution, "", b"not-a-token").connect()) == (False, 4401)
        execution.name = "nope-9"
        assert (await _comm(execution, "", token).connect()) == (False, 4404)

    asyncio.run(scenario())


def test_session_cookie_auth(log_settings, execution, personas, client):
    from devops.asgi import application

    client.force_login(personas["alice"])
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    w = open_step_writer(get_log_store(), LogKey(execution.name, 2, 1))
    w.write(b"hello\n")
    w.close()

    async def scenario():
        comm = WebsocketCommunicator(application, _path(execution, "stage=2&step=1"), headers=[(b"cookie", cookie)])
        assert (await comm.connect())[0]
        assert _data(await _collect_until_closed(comm)) == b"hello\n"

    asyncio.run(scenario())


def test_with_redis_live_bytes_arrive_from_another_process_before_the_store_has_them(
    settings, log_settings, s3_url, execution, personas, redis_url, tmp_path
):
    """Several web processes: the runner publishes to Redis; here the consumer's
    store (S3, flushed only every 30 s by that runner) cannot have the bytes yet."""
    from tests.logs.conftest import writer_process

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [redis_url]}}}
    settings.SLIPWAY_LOG_STORE = s3_url
    get_log_store.cache_clear()
    token = _token(personas["bob"])
    proc = writer_process(s3_url, execution.name, 1, 0, env={"REDIS_URL": redis_url},
                          spool=tmp_path / "runner-host", flush_interval=30, mask="topsecret")
    try:
        assert proc.stdout.readline() == b"ready\n"

        async def scenario():
            comm = _comm(execution, "stage=1&step=0", token)
            assert (await comm.connect())[0]
            await asyncio.sleep(0.3)            # joined the group
            proc.stdin.write(b"via redis topsecret\n")
            proc.stdin.flush()
            f = await _frame(comm, timeout=20)
            assert base64.b64decode(f["data"]) == b"via redis ***\n" and f["offset"] == 0
            # the bytes are not in S3 yet (its flush is 30 s away): only Redis can have brought them
            assert get_log_store().read(LogKey(execution.name, 1, 0)) == b""
            proc.stdin.write(b"second\n")
            proc.stdin.close()
            frames = await _collect_until_closed(comm, timeout=10)
            assert _data(frames) == b"second\n"
            assert frames[-2]["type"] == "end" and frames[-2]["size"] == 21

        asyncio.run(scenario())
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_with_redis_a_missed_piece_is_filled_from_the_store(settings, log_settings, execution, personas, redis_url):
    from channels.layers import get_channel_layer

    from devops.logs.live import group_name

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [redis_url]}}}
    token = _token(personas["alice"])
    key = LogKey(execution.name, 3, 0)
    raw = get_log_store().writer(key)           # a backend writer: stores, publishes nothing

    async def scenario():
        comm = _comm(execution, "stage=3&step=0", token)
        assert (await comm.connect())[0]
        await asyncio.sleep(0.3)
        raw.write(b"missed piece\n")            # its message was lost...
        raw.write(b"next piece\n")
        await get_channel_layer().group_send(   # ...only the next one arrives
            group_name(execution.name),
            {"type": "log.chunk", "stage": 3, "step": 0, "offset": 13, "data": b"next piece\n"})
        got = bytearray()
        while len(got) < 24:
            f = await _frame(comm)
            assert f["offset"] == len(got)      # frames stay contiguous
            got.extend(base64.b64decode(f["data"]))
        assert bytes(got) == b"missed piece\nnext piece\n"
        raw.close()
        await comm.disconnect()

    asyncio.run(scenario())
