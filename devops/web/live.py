"""Live status: `execution_changed` in any process -> the status consumers of every web process.

The signal (devops.controller.actions.execution_changed) is sent after
commit in the process that changed the rows: a view, the API, or the
controller — which may be another process (`./slipway up` runs
`runcontroller` beside daphne) or a thread of this one (embedded). This
module carries it to the Channels group of the project:

    group    status_group(project_id) == "slipway-status.<project_id>"
    message  {"type": "status.changed", "execution": <name>, "project": <id>, "state": <state>}

How it crosses processes, pushed both ways (nothing polls):
- With Redis (`REDIS_URL`): the receiver sends the message to the group on
  the Redis channel layer (from a publisher thread, so the caller never
  waits on Redis); consumers in every web process on every machine get it.
- Without Redis: the receiver rings the "status" bells in
  `$SLIPWAY_DATA_DIR/status/` — the controllers' doorbell mechanism
  (UNIX datagrams, devops/doorbell.py) with the message as payload, one bell
  per web process on this machine. Each web process reads its bell in its
  event loop (`ensure_listener`) and sends the message to the group on its
  in-memory channel layer. One machine only, which is what "no Redis" means
  here (several machines need Redis or they would not share live logs either).

Delivery is best effort; a consumer sends the full current state on every
(re)connect, so a missed message costs at most the state until the next change.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import weakref

from django.conf import settings

log = logging.getLogger(__name__)

BELL = "status"  # the bell directory name under DATA_DIR


def status_group(project_id: str) -> str:
    """The Channels group of a project's status changes (ASCII, < 100 chars)."""
    return f"slipway-status.{project_id}"[:99]


def _message(execution: str, project_id: str, state: str) -> dict:
    return {"type": "status.changed", "execution": execution, "project": project_id, "state": state}


def uses_redis() -> bool:
    from devops.logs.live import redis_layer_config

    return redis_layer_config() is not None


# --- sending (any process, sync code) ------------------------------------------------

class _RedisSender:
    """group_send from sync code through one background event loop (in order, never blocking the caller)."""

    def __init__(self, config: dict):
        from channels_redis.core import RedisChannelLayer

        self._loop = asyncio.new_event_loop()
        self._layer = RedisChannelLayer(**config)
        threading.Thread(target=self._loop.run_forever, name="status-publisher", daemon=True).start()

    def send(self, group: str, message: dict):
        return asyncio.run_coroutine_threadsafe(self._safe_send(group, message), self._loop)

    async def _safe_send(self, group: str, message: dict) -> None:
        try:
            await self._layer.group_send(group, message)
        except Exception as exc:  # live status is best effort; the next (re)connect catches up
            log.warning("live status: cannot publish to Redis: %s", exc)


_senders: dict[str, _RedisSender] = {}  # by Redis config (tests change settings)
_sender_lock = threading.Lock()


def publish(execution: str, project_id: str, state: str):
    """Carry one change to every status consumer (see module doc). Never raises.

    Returns a future when it went to Redis (tests wait on it), else None.
    """
    message = _message(execution, project_id, state)
    try:
        if uses_redis():
            from devops.logs.live import redis_layer_config

            config = redis_layer_config()
            key = repr(sorted(config.items()))
            with _sender_lock:
                sender = _senders.get(key)
                if sender is None:
                    sender = _senders[key] = _RedisSender(config)
            return sender.send(status_group(project_id), message)
        from devops.doorbell import ring

        ring(settings.DATA_DIR, json.dumps(message).encode(), kind=BELL)
    except Exception:  # never fail the action that changed the state
        log.warning("live status: cannot publish", exc_info=True)
    return None


def _on_execution_changed(sender, execution: str, project_id: str, state: str = "", **kwargs) -> None:
    publish(execution, project_id, state)


def connect() -> None:
    """Forward `execution_changed` from this process (called once from the app's ready())."""
    from devops.controller.actions import execution_changed

    execution_changed.connect(_on_execution_changed, dispatch_uid="devops.web.live")


# --- receiving without Redis (web processes, in their event loop) ------------------------

_listeners: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> Bell
_sending: set[asyncio.Task] = set()


def ensure_listener(channel_layer) -> None:
    """Listen on this process's status bell in the running loop (idempotent per loop).

    Each datagram becomes a group_send on `channel_layer` (the in-memory
    layer): the consumers of this process get it as `status_changed`.
    """
    from devops.doorbell import Bell

    loop = asyncio.get_running_loop()
    if loop in _listeners:
        return
    bell = Bell(settings.DATA_DIR, kind=BELL)
    _listeners[loop] = bell

    def readable() -> None:
        for raw in bell.receive():
            try:
                message = json.loads(raw)
                group = status_group(message["project"])
            except (ValueError, KeyError, TypeError):
                continue
            task = loop.create_task(channel_layer.group_send(group, message))
            _sending.add(task)  # a reference until done (the loop keeps only a weak one)
            task.add_done_callback(_sending.discard)

    loop.add_reader(bell.fileno(), readable)
    # The bell goes with its loop (tests run one loop each; daphne has one).
    weakref.finalize(loop, bell.close)
