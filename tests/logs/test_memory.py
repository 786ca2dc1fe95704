"""Bounded memory in the web process: downloads, ranges and the lines API on 40 MiB logs.

Peak Python allocations (tracemalloc) while a request is served and its
streaming body consumed chunk by chunk, as a client would. The bound must not
depend on the log's size: the same request on a 4 MiB and a 40 MiB log peaks
at about the same, and well under the size of the log.
"""
from __future__ import annotations

import asyncio
import tracemalloc

import pytest
from rest_framework.test import APIClient

from devops.logs import LogKey, get_log_store
from devops.logs.lines import MAX_LINE

MiB = 1 << 20
BOUND = 8 * MiB


def _fill(store, key: LogKey, size: int, line: bytes) -> None:
    """`size` bytes of `line` repeated (b"x" alone: one line, no newline), written in 1 MiB pieces."""
    piece = (line * (MiB // len(line) + 1))[:MiB]
    w = store.writer(key)
    for _ in range(size // MiB):
        w.write(piece)
    w.close()


def _peak(fn) -> tuple[int, object]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = fn()
        return tracemalloc.get_traced_memory()[1], out
    finally:
        tracemalloc.stop()


def _url(e, stage: int, suffix: str = "") -> str:
    return f"/api/v1/projects/{e.project_id}/executions/{e.name}/stages/{stage}/steps/0/log{suffix}"


def _download(client, url: str, **headers) -> tuple[int, int]:
    """(status, bytes received), consuming the stream chunk by chunk and keeping none."""
    r = client.get(url, **headers)
    received = 0
    for chunk in r.streaming_content:  # the test client closes the response at the end
        received += len(chunk)
    return r.status_code, received


@pytest.fixture
def logs(log_settings, execution):
    """Stage 1: a 4 MiB log, stage 2: a 40 MiB log, both a single line without newline."""
    store = get_log_store()
    _fill(store, LogKey(execution.name, 1, 0), 4 * MiB, b"x")
    _fill(store, LogKey(execution.name, 2, 0), 40 * MiB, b"x")
    return execution


@pytest.mark.parametrize("headers", [{}, {"HTTP_RANGE": "bytes=0-"}, {"HTTP_RANGE": "bytes=1-"}],
                         ids=["whole", "range-0-", "range-1-"])
def test_a_download_holds_one_piece_not_the_log(logs, personas, headers):
    client = APIClient()
    client.force_authenticate(personas["ronnie"])  # a read-only member
    _download(client, _url(logs, 1), **headers)  # warm up: imports, first queries
    peaks = {}
    for stage, size in ((1, 4 * MiB), (2, 40 * MiB)):
        peaks[size], (status, received) = _peak(lambda s=stage: _download(client, _url(logs, s), **headers))
        assert status == (206 if headers else 200)
        assert received == size - (1 if headers.get("HTTP_RANGE") == "bytes=1-" else 0)
    assert peaks[40 * MiB] < BOUND, peaks
    assert peaks[40 * MiB] < peaks[4 * MiB] + MiB, peaks  # does not grow with the log


def test_a_download_from_s3_streams_its_chunks(settings, s3_url, execution, personas):
    """The spool is gone (uploaded): pieces come from streamed GETs of the 4 MiB chunk objects."""
    settings.SLIPWAY_LOG_STORE = s3_url
    get_log_store.cache_clear()
    try:
        store = get_log_store()
        for stage, size in ((1, 4 * MiB), (2, 40 * MiB)):
            _fill(store, LogKey(execution.name, stage, 0), size, b"0123456789abcde\n")
            assert not store.spool(LogKey(execution.name, stage, 0)).log.exists()
        client = APIClient()
        client.force_authenticate(personas["ronnie"])
        _download(client, _url(execution, 1), HTTP_RANGE="bytes=0-")
        peaks = {}
        for stage, size in ((1, 4 * MiB), (2, 40 * MiB)):
            peaks[size], got = _peak(lambda s=stage: _download(client, _url(execution, s), HTTP_RANGE="bytes=7-"))
            assert got == (206, size - 7)
        assert peaks[40 * MiB] < BOUND and peaks[40 * MiB] < peaks[4 * MiB] + MiB, peaks
    finally:
        get_log_store.cache_clear()


def test_one_huge_line_is_cut_and_the_page_stays_small(logs, personas):
    client = APIClient()
    client.force_authenticate(personas["ronnie"])
    client.get(_url(logs, 1, "/lines"), {"limit": 1})
    peaks, pages = {}, {}
    for stage, size in ((1, 4 * MiB), (2, 40 * MiB)):
        peaks[size], pages[size] = _peak(
            lambda s=stage: client.get(_url(logs, s, "/lines"), {"limit": 1}).json())
    assert peaks[40 * MiB] < BOUND, peaks
    assert peaks[40 * MiB] < peaks[4 * MiB] + MiB, peaks
    line = pages[40 * MiB]["lines"][0]
    assert line["cut"] == 40 * MiB - MAX_LINE and line["text"].startswith("x" * MAX_LINE)
    assert line["text"].endswith(f" [slipway: {40 * MiB - MAX_LINE} bytes of this line cut; the raw log has them]")
    assert pages[40 * MiB]["next"] == 2 and not pages[40 * MiB]["more"]


def test_lines_after_a_huge_line_are_found_without_holding_it(log_settings, execution, personas):
    store = get_log_store()
    key = LogKey(execution.name, 1, 0)
    w = store.writer(key)
    w.write(b"first\n")
    for _ in range(40):
        w.write(b"y" * MiB)
    w.write("\nsecond é\nthird".encode())
    w.close()
    client = APIClient()
    client.force_authenticate(personas["ronnie"])
    client.get(_url(execution, 1, "/lines"), {"from": 3})
    peak, page = _peak(lambda: client.get(_url(execution, 1, "/lines"), {"from": 3, "limit": 5}).json())
    assert peak < BOUND
    assert [(ln["number"], ln["text"], ln["cut"]) for ln in page["lines"]] == [(3, "second é", 0), (4, "third", 0)]
    assert page["lines"][0]["offset"] == 6 + 40 * MiB + 1
    whole = client.get(_url(execution, 1, "/lines"), {"limit": 2}).json()["lines"]
    assert whole[0]["text"] == "first" and whole[1]["cut"] == 40 * MiB - MAX_LINE


def test_a_cut_never_splits_a_character(log_settings, execution, personas):
    store = get_log_store()
    key = LogKey(execution.name, 1, 0)
    w = store.writer(key)
    w.write(b"a" + "é".encode() * MAX_LINE + b"\n")  # the cut at MAX_LINE falls inside an é
    w.close()
    client = APIClient()
    client.force_authenticate(personas["ronnie"])
    line = client.get(_url(execution, 1, "/lines")).json()["lines"][0]
    shown = line["text"].split(" [slipway:")[0]
    assert shown == "a" + "é" * ((MAX_LINE - 1) // 2) and "\ufffd" not in shown
    assert line["cut"] == 1 + 2 * MAX_LINE - len(shown.encode())
    # The raw download still has every byte.
    r = client.get(_url(execution, 1))
    assert b"".join(r.streaming_content) == b"a" + "é".encode() * MAX_LINE + b"\n"


def test_a_page_of_a_chatty_log_bisects_its_index_instead_of_reading_it(log_settings, execution, personas):
    """One index record per line (a step printing slowly): a page reads O(log n) of the sidecar."""
    store = get_log_store()
    client = APIClient()
    client.force_authenticate(personas["ronnie"])
    peaks = {}
    for stage, lines in ((1, 10_000), (2, 100_000)):
        w = store.writer(LogKey(execution.name, stage, 0))
        for i in range(1, lines + 1):
            w.write(b"line %d\n" % i)
        w.close()
        url = _url(execution, stage, "/lines")
        client.get(url, {"from": lines - 10, "limit": 3})
        peaks[lines], page = _peak(lambda u=url, n=lines: client.get(u, {"from": n - 10, "limit": 3}).json())
        assert [ln["text"] for ln in page["lines"]] == [f"line {n}" for n in range(lines - 10, lines - 7)]
    assert peaks[100_000] < peaks[10_000] + (256 << 10), peaks  # was ~29 MiB for 100 000 lines


def _asgi_download(url: str, token: str) -> tuple[int, int]:
    """(status, bytes sent) of a GET served by Django's ASGIHandler, as daphne serves it,
    counting the body messages it sends and keeping none."""
    from asgiref.sync import async_to_sync
    from django.core.handlers.asgi import ASGIHandler

    got = {"status": 0, "bytes": 0, "received": 0}

    async def receive():
        got["received"] += 1
        if got["received"] > 1:  # the client stays connected until the response is sent
            await asyncio.Event().wait()
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            got["status"] = message["status"]
        elif message["type"] == "http.response.body":
            got["bytes"] += len(message.get("body", b""))

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": url, "raw_path": url.encode(), "query_string": b"",
             "root_path": "", "server": ("testserver", 80), "client": ("127.0.0.1", 40000),
             "headers": [(b"host", b"testserver"), (b"authorization", f"Token {token}".encode())]}
    async_to_sync(ASGIHandler())(scope, receive, send)
    return got["status"], got["bytes"]


def test_a_download_served_over_asgi_streams_too(logs, personas):
    """daphne serves Slipway through Django's ASGIHandler, which turned a sync
    iterator into a list (the whole log in the web process: +120 MiB RSS for a
    40 MiB `Range: bytes=0-` under `./slipway up`) before sending any of it."""
    from django.core import signals
    from django.db import close_old_connections
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=personas["ronnie"]).key
    signals.request_started.disconnect(close_old_connections)  # keep the test's transaction
    signals.request_finished.disconnect(close_old_connections)
    try:
        _asgi_download(_url(logs, 1), token)
        peaks = {}
        for stage, size in ((1, 4 * MiB), (2, 40 * MiB)):
            peaks[size], got = _peak(lambda s=stage: _asgi_download(_url(logs, s), token))
            assert got == (200, size)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    assert peaks[40 * MiB] < BOUND, peaks
    assert peaks[40 * MiB] < peaks[4 * MiB] + MiB, peaks


class _Sink:
    """A binary stdout that counts what it is given and keeps none of it."""

    def __init__(self):
        self.received = 0
        self.buffer = self

    def write(self, data):
        self.received += len(data)

    def flush(self):
        pass


def test_pipeline_logs_streams_a_big_log(logs):
    """`manage.py pipeline logs` read each log whole (store.read) before printing it."""
    from django.core.management import call_command

    from devops.models import StageStatus, StepStatus

    for stage in (1, 2):
        StageStatus.objects.create(execution=logs, index=stage, name=f"S{stage}")
        StepStatus.objects.create(execution=logs, stage_index=stage, index=0, name="run")
    call_command("pipeline", "logs", logs.name, "--stage", "1", "--step", "0", stdout=_Sink())
    peaks = {}
    for stage, size in ((1, 4 * MiB), (2, 40 * MiB)):
        sink = _Sink()
        peaks[size], _ = _peak(lambda s=stage, o=sink: call_command(
            "pipeline", "logs", logs.name, "--stage", str(s), "--step", "0", stdout=o))
        assert sink.received == size
    assert peaks[40 * MiB] < BOUND and peaks[40 * MiB] < peaks[4 * MiB] + MiB, peaks
    sink = _Sink()
    peak, _ = _peak(lambda: call_command("pipeline", "logs", logs.name, stdout=sink))
    assert sink.received > 44 * MiB and peak < BOUND, peak  # every step, headers and newlines
