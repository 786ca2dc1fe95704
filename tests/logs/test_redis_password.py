"""A password in REDIS_URL works end to end: settings, the channel layer, the live log publisher.

A real redis-server with `--requirepass` on a free loopback port, started here.
"""
from __future__ import annotations

import asyncio
import secrets
import subprocess

import pytest

from devops.env import envurl
from devops.logs.live import RedisLivePublisher, group_name, redis_layer_config
from tests.conftest import require_tool
from tests.logs.conftest import free_port, stop, wait_port


@pytest.fixture(scope="module")
def redis_with_password():
    exe = require_tool("redis-server")
    password = secrets.token_hex(16)
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password,
         "--save", "", "--appendonly", "no", "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc)
        yield port, password
    finally:
        stop(proc)


def _layer_settings(url: str) -> dict:
    # What devops/settings.py builds from REDIS_URL.
    return {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [url]}}}


async def _consume_one(config: dict, execution: str, publish) -> dict:
    from channels_redis.core import RedisChannelLayer

    layer = RedisChannelLayer(**config)
    channel = await layer.new_channel()
    await layer.group_add(group_name(execution), channel)
    await asyncio.to_thread(publish)
    try:
        return await asyncio.wait_for(layer.receive(channel), 10)
    finally:
        await layer.close_pools()


def test_live_log_over_redis_with_a_password(redis_with_password, settings, monkeypatch):
    port, password = redis_with_password
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    monkeypatch.setenv("REDIS_URL", url)
    # settings.py keeps the URL whole (the password included) for Channels.
    assert envurl("REDIS_URL", "", ("redis", "rediss", "unix"), hostless=("unix",)) == url
    settings.CHANNEL_LAYERS = _layer_settings(url)
    config = redis_layer_config()
    assert config == {"hosts": [url]}
    publisher = RedisLivePublisher(config)

    def publish() -> None:
        publisher.publish("p-redis-pw-1", 1, 0, 0, b"hello through an authenticated redis\n")
        assert publisher.flush(5)

    msg = asyncio.run(_consume_one(config, "p-redis-pw-1", publish))
    assert msg["type"] == "log.chunk" and msg["data"] == b"hello through an authenticated redis\n"
    assert publisher.failures == 0


@pytest.mark.parametrize("auth", ["", ":wrong-password@"])
def test_redis_without_the_password_is_refused(redis_with_password, auth):
    port, _password = redis_with_password
    config = {"hosts": [f"redis://{auth}127.0.0.1:{port}/0"]}
    publisher = RedisLivePublisher(config)
    publisher.publish("p-redis-pw-2", 1, 0, 0, b"never delivered\n")
    assert publisher.flush(5)
    assert publisher.failures == 1  # counted and logged, never raised into the runner
    import redis.exceptions

    with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ResponseError)):
        asyncio.run(_consume_one(config, "p-redis-pw-2", lambda: None))
