"""Live log streaming over WebSockets (DESIGN §7).

URL: `ws://HOST/ws/v1/projects/{project}/executions/{name}/log[?stage=N&step=M&offset=K]`

With stage and step: the stored bytes of that step from offset K (default
0), then live bytes as they are written; the socket closes when the step's
log is complete. Without them: every step of the execution from offset 0,
in whichever order bytes arrive; the socket closes when the execution has
finished and every step log is complete.

Frames (JSON text frames, server -> client):
    {"type": "log", "stage": N, "step": M, "offset": K, "data": "<base64>"}
        `data` is the raw bytes at [K, K+len) of that step's log. Base64 keeps
        them byte-exact (a UTF-8 character may be split across frames; decode
        with a streaming decoder, e.g. TextDecoder({stream: true})).
    {"type": "end", "stage": N, "step": M, "size": S}   that step's log is complete
    {"type": "done"}                                      then a normal close (1000)

Refusals close the handshake (HTTP 403 in daphne) with a code for test
clients: 4400 bad query, 4401 not signed in, 4403 not a member of the
project (or no such project), 4404 no such execution.

Where the bytes come from: without Redis (embedded default) the runner is
another process, so the consumer tails the store — a stat + read every 25 ms
on the file store or this machine's S3 spool. With Redis (`REDIS_URL`) the
runner also publishes each piece to the execution's Channels group
(devops.logs.live) and the consumer forwards it at once; the store is then
read only to fill gaps and once a second as a safety net.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from devops.logs import get_log_store
from devops.logs.base import LogKey
from devops.logs.live import group_name, redis_layer_config

log = logging.getLogger(__name__)

FAST_POLL = 0.025      # store tail interval when the bytes are on this machine
SLOW_POLL = 0.5        # ...when they are in S3 only
REDIS_POLL = 1.0       # safety-net store read when Redis delivers live pieces
DISCOVER_EVERY = 0.25  # whole-execution mode: look for new step logs
DB_EVERY = 1.0         # how often to ask whether the execution finished
FRAME_MAX = 256 << 10  # raw bytes per frame
GAP_EVERY = 0.2        # at most this often a store read to fill a live gap
LIVE_MAX = 4 << 20     # live bytes held per step before relying on the store instead


@dataclass
class _Cursor:
    key: LogKey
    offset: int = 0
    live: list[tuple[int, bytes]] = field(default_factory=list)
    live_bytes: int = 0
    end_size: int | None = None   # from a Redis log.end
    ended: bool = False
    gap_read: float = 0.0         # monotonic time of the last gap-filling store read


def _int_arg(query: dict, name: str) -> int | None:
    raw = query.get(name, [None])[-1]
    if raw is None or raw == "":
        return None
    value = int(raw)  # ValueError -> 4400
    if value < 0:
        raise ValueError(name)
    return value


@database_sync_to_async
def _authorize(user, project_id: str, name: str) -> tuple[int | None, int]:
    """(execution pk, 0) or (None, close code)."""
    from devops.models import PipelineExecution, Project

    try:
        from devops.api.permissions import role_in

        project, role = role_in(project_id, user)
    except ImportError:  # pragma: no cover - the API package provides it
        project = Project.objects.filter(pk=project_id).first()
        role = project.role_of(user) if project else None
    if project is None or role is None:
        return None, 4403
    pk = PipelineExecution.objects.filter(project=project, name=name).values_list("pk", flat=True).first()
    return (pk, 0) if pk is not None else (None, 4404)


@database_sync_to_async
def _finished(pk: int) -> bool:
    from devops.models import ExecutionState, PipelineExecution

    state = PipelineExecution.objects.filter(pk=pk).values_list("execution_state", flat=True).first()
    return state is None or state in ExecutionState.finished()


class LogStreamConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.task: asyncio.Task | None = None
        self.redis = False
        kwargs = self.scope["url_route"]["kwargs"]
        self.execution = kwargs["name"]
        try:
            query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
            stage, step, offset = (_int_arg(query, n) for n in ("stage", "step", "offset"))
            if (stage is None) != (step is None):
                raise ValueError("stage and step go together")
        except ValueError:
            await self.close(code=4400)
            return
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.execution_pk, refusal = await _authorize(user, kwargs["project"], self.execution)
        if refusal:
            await self.close(code=refusal)
            return
        self.store = get_log_store()
        self.whole = stage is None
        self.cursors: dict[tuple[int, int], _Cursor] = {}
        if not self.whole:
            key = LogKey(self.execution, stage, step)
            self.cursors[(stage, step)] = _Cursor(key, offset or 0)
        self.wake = asyncio.Event()
        await self.accept()
        # Redis: join the execution's group before the first store read, so
        # no piece falls between what we read and what we are sent.
        self.redis = redis_layer_config() is not None and self.channel_layer is not None
        if self.redis:
            await self.channel_layer.group_add(group_name(self.execution), self.channel_name)
        self.task = asyncio.create_task(self._pump_or_close())

    async def disconnect(self, code) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.redis:
            await self.channel_layer.group_discard(group_name(self.execution), self.channel_name)

    # --- Redis group messages (devops.logs.live) -------------------------------------
    def _cursor_for(self, event) -> _Cursor | None:
        ident = (event["stage"], event["step"])
        c = self.cursors.get(ident)
        if c is None and self.whole:
            c = self.cursors[ident] = _Cursor(LogKey(self.execution, *ident))
        return c

    async def log_chunk(self, event) -> None:
        c = self._cursor_for(event)
        if c is None or c.ended or c.live_bytes + len(event["data"]) > LIVE_MAX:
            return  # the store fills what is skipped here
        c.live.append((event["offset"], event["data"]))
        c.live_bytes += len(event["data"])
        self.wake.set()

    async def log_end(self, event) -> None:
        c = self._cursor_for(event)
        if c is not None:
            c.end_size = event["size"]
            self.wake.set()

    # --- the pump: the only sender --------------------------------------------------
    def _is_local(self, key: LogKey) -> bool:
        spool = getattr(self.store, "spool", None)
        return spool is None or spool(key).log.exists()

    async def _send_bytes(self, c: _Cursor, data: bytes) -> None:
        for i in range(0, len(data), FRAME_MAX):
            piece = data[i:i + FRAME_MAX]
            frame = {"type": "log", "stage": c.key.stage, "step": c.key.step, "offset": c.offset,
                     "data": base64.b64encode(piece).decode()}
            c.offset += len(piece)
            await self.send(text_data=json.dumps(frame))

    async def _drain_live(self, c: _Cursor) -> bool:
        """Send contiguous live pieces; False when a gap needs the store."""
        while c.live:
            off, data = c.live[0]
            if off > c.offset:
                return False
            c.live.pop(0)
            c.live_bytes -= len(data)
            if off + len(data) > c.offset:
                await self._send_bytes(c, data[c.offset - off:])
        return True

    async def _advance(self, c: _Cursor, read_store: bool) -> None:
        if c.ended:
            return
        contiguous = await self._drain_live(c)
        now = time.monotonic()
        # A gap before a live piece (a late join, a dropped message) is filled
        # from the store, but at most every GAP_EVERY: the store may be S3.
        gap_read = not contiguous and now - c.gap_read >= GAP_EVERY
        if read_store or gap_read:
            c.gap_read = now
            # Completion first: if it is complete, the size read after it is final.
            complete = await asyncio.to_thread(self.store.is_complete, c.key)
            size = await asyncio.to_thread(self.store.size, c.key)
            while c.offset < size:
                data = await asyncio.to_thread(self.store.read, c.key, c.offset, min(size - c.offset, 4 * FRAME_MAX))
                if not data:
                    break
                await self._send_bytes(c, data)
            await self._drain_live(c)
            if complete and c.offset >= size:
                c.end_size = size
        if c.end_size is not None and c.offset >= c.end_size:
            c.ended = True
            c.live.clear()
            await self.send(text_data=json.dumps(
                {"type": "end", "stage": c.key.stage, "step": c.key.step, "size": c.end_size}))

    async def _pump_or_close(self) -> None:
        try:
            await self._pump()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("log stream %s failed", self.execution)
            await self.close(code=1011)

    async def _pump(self) -> None:
        last_store = last_discover = last_db = 0.0
        finished = False
        while True:
            now = time.monotonic()
            if self.whole and now - last_discover >= DISCOVER_EVERY:
                last_discover = now
                for key in await asyncio.to_thread(self.store.keys, self.execution):
                    self.cursors.setdefault((key.stage, key.step), _Cursor(key))
            if now - last_db >= DB_EVERY:
                last_db = now
                finished = await _finished(self.execution_pk)
            poll = REDIS_POLL if self.redis else min(
                (FAST_POLL if self._is_local(c.key) else SLOW_POLL) for c in self.cursors.values()
            ) if self.cursors else FAST_POLL
            read_store = finished or now - last_store >= poll
            if read_store:
                last_store = now
            for c in list(self.cursors.values()):
                await self._advance(c, read_store)
            all_ended = all(c.ended for c in self.cursors.values())
            if (not self.whole and all_ended) or finished:
                # A finished execution got one last full read just above (read_store
                # is forced); then the stream ends even if a step's log was never
                # completed (its runner died) or never started (skipped).
                break
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=poll)
            except TimeoutError:
                pass
        await self.send(text_data=json.dumps({"type": "done"}))
        await self.close(code=1000)
