"""Live log bytes over the Redis channel layer (several web processes).

Without Redis the consumer tails the store (devops/api/consumers.py); with Redis the
runner also sends every stored piece to the Channels group of its execution,
so a consumer in any web process gets it within milliseconds, even when the
store itself (S3) only sees the bytes a second later.

Messages (channel layer, msgpack):
    {"type": "log.chunk", "stage", "step", "offset", "data": bytes}
    {"type": "log.end",   "stage", "step", "size"}

Live delivery is best effort: the publisher drops pieces rather than let its
queue grow past `MAX_QUEUED` bytes, and Channels drops messages to a full
consumer channel. Every piece carries its offset, so a consumer that sees a
gap reads the missing range from the store.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import TimeoutError as FutureTimeout

log = logging.getLogger(__name__)

MAX_QUEUED = 8 << 20     # bytes waiting for Redis before pieces are dropped
MAX_MESSAGE = 256 << 10  # coalesce consecutive pieces of one step up to this size


def group_name(execution: str) -> str:
    """The Channels group of an execution's live log (ASCII, < 100 chars)."""
    return f"slipway-log.{execution}"[:99]


def redis_layer_config() -> dict | None:
    """The channel layer CONFIG the web processes use, or None without Redis."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        layer = getattr(settings, "CHANNEL_LAYERS", {}).get("default", {})
    except ImproperlyConfigured:  # no Django settings: a bare runner, use the environment
        layer = None
    if layer is not None:
        if "redis" in layer.get("BACKEND", "").lower():
            return dict(layer.get("CONFIG", {}))
        return None
    url = os.environ.get("REDIS_URL")
    return {"hosts": [url]} if url else None


class RedisLivePublisher:
    """Sends log pieces to Channels groups from sync code, in order, off the caller's thread."""

    def __init__(self, config: dict):
        from channels_redis.core import RedisChannelLayer

        self._config = config
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._queued = 0
        self.dropped = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="log-live-publisher", daemon=True)
        self._layer = RedisChannelLayer(**config)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._queue: asyncio.Queue = asyncio.Queue()
        self._loop.create_task(self._drain())
        self._ready.set()
        self._loop.run_forever()

    def _put(self, item: tuple) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def publish(self, execution: str, stage: int, step: int, offset: int, data: bytes) -> None:
        with self._lock:
            if self._queued + len(data) > MAX_QUEUED:
                self.dropped += len(data)
                return
            self._queued += len(data)
        self._put(("chunk", execution, stage, step, offset, bytes(data)))

    def end(self, execution: str, stage: int, step: int, size: int) -> None:
        self._put(("end", execution, stage, step, size, b""))

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until everything queued so far was handed to Redis."""
        fut = asyncio.run_coroutine_threadsafe(self._queue.join(), self._loop)
        try:
            fut.result(timeout)
            return True
        except FutureTimeout:
            fut.cancel()
            return False

    async def _drain(self) -> None:
        while True:
            item = await self._queue.get()
            batch = [item]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._send(batch)
            except Exception as exc:
                self.failures += 1
                if self.failures == 1 or self.failures % 1000 == 0:  # not once per line
                    log.warning("live log: cannot publish to Redis (%d failures): %s", self.failures, exc)
            finally:
                with self._lock:
                    self._queued -= sum(len(i[5]) for i in batch)
                for _ in batch:
                    self._queue.task_done()

    async def _send(self, batch: list[tuple]) -> None:
        merged: list[list] = []
        for kind, execution, stage, step, value, data in batch:
            last = merged[-1] if merged else None
            if (
                kind == "chunk" and last is not None and last[0] == "chunk"
                and last[1:4] == [execution, stage, step]
                and last[4] + len(last[5]) == value
                and len(last[5]) + len(data) <= MAX_MESSAGE
            ):
                last[5] += data
                continue
            merged.append([kind, execution, stage, step, value, bytearray(data)])
        for kind, execution, stage, step, value, data in merged:
            if kind == "chunk":
                msg = {"type": "log.chunk", "stage": stage, "step": step, "offset": value, "data": bytes(data)}
            else:
                msg = {"type": "log.end", "stage": stage, "step": step, "size": value}
            await self._layer.group_send(group_name(execution), msg)


_publishers: dict[str, RedisLivePublisher] = {}
_publishers_lock = threading.Lock()


def get_publisher() -> RedisLivePublisher | None:
    """The process's publisher for the configured Redis, or None (embedded default)."""
    config = redis_layer_config()
    if not config:
        return None
    key = repr(sorted(config.items()))
    with _publishers_lock:
        pub = _publishers.get(key)
        if pub is None:
            pub = _publishers[key] = RedisLivePublisher(config)
        return pub
