"""Notification fixtures: real receivers on loopback (an HTTP server thread, aiosmtpd), runs driven by ticks."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from devops.pipeline.config import Notification, PipelineConfig
from tests.controller.conftest import data_dir, engine, make_config, new_execution, pipeline  # noqa: F401


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A loopback HTTP server: records each POST, answers from `statuses` (then 200)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
def receiver():
    rec = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            rec.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            status = rec.statuses.pop(0) if rec.statuses else 200
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 400 else b"upstream trouble")

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp_server():
    """aiosmtpd on a free loopback port; yields (port, messages)."""
    from aiosmtpd.controller import Controller as SMTPController

    messages: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            messages.append(envelope)
            return "250 OK"

    import socket

    with socket.socket() as s:  # aiosmtpd 1.4 connects to its own port to see it is up: no port 0
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctl = SMTPController(Handler(), hostname="127.0.0.1", port=port)
    ctl.start()
    yield port, messages
    ctl.stop()


class Clock:
    """A controller clock the test moves (backoffs and leases without sleeping)."""

    def __init__(self) -> None:
        self.t = timezone.now()

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw) -> None:
        self.t += timedelta(**kw)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def controller(engine, data_dir, clock, settings):  # noqa: F811
    from devops.controller.loop import Controller
    from devops.controller.notifications import outbox_of

    settings.SLIPWAY_NOTIFY_ALLOW_PRIVATE = True  # the receivers are on loopback
    c = Controller(engine, clock=clock)
    yield c
    outbox_of(c).wait(30)
    outbox_of(c).close()
    c.close_wakeups()


def notifying(*recipients: tuple[str, str], condition=("Success", "Failed"), message: str = "",
              fail: bool = False) -> PipelineConfig:
    """A one-step config (failing with `fail`) whose file notifies (recipient, notifier) pairs."""
    base = make_config([{"EXIT": "1"}] if fail else [{}])
    note = Notification(recipients=tuple((("recipient", r), ("notifier", n)) for r, n in recipients),
                        condition=tuple(condition), message=message)
    return base.model_copy(update={"notification": note})


def finish_run(controller, pipeline, config, **fields):  # noqa: F811
    """Create a run, drive it to its end through the controller's ticks; the execution row."""
    from devops.models import PipelineExecution

    ex = new_execution(pipeline, config, **fields)
    for _ in range(5):
        controller.tick_admit()
        controller.tick_sync()
        ex.refresh_from_db()
        if ex.is_finished:
            break
    assert ex.is_finished, ex.execution_state
    return PipelineExecution.objects.get(pk=ex.pk)


def drain(controller, rounds: int = 3) -> None:
    """tick_notify until its sends are recorded (waits for the worker threads, never for the clock)."""
    from devops.controller.notifications import outbox_of, tick_notify

    for _ in range(rounds):
        tick_notify(controller)
        outbox_of(controller).wait(30)
    tick_notify(controller)
