"""HTTP: raw step log (Range, 206/416) and the paged JSON lines API; membership on each."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from devops.logs import LogKey, get_log_store, open_step_writer

LOG = b"".join(b"line %d \xc3\xa9 output\n" % i for i in range(1, 301))


@pytest.fixture
def logged(log_settings, execution):
    w = open_step_writer(get_log_store(), LogKey(execution.name, 1, 0), mask=("hunter2-pw",))
    w.write(LOG[:5000])
    w.write(LOG[5000:] + b"password hunter2-pw\n")
    w.close()
    return execution


def _url(e, suffix=""):
    return f"/api/v1/projects/{e.project_id}/executions/{e.name}/stages/1/steps/0/log{suffix}"


def client_for(user) -> APIClient:
    c = APIClient()
    if user is not None:
        c.force_authenticate(user)
    return c


def test_raw_download_is_byte_exact_plain_text(logged, personas):
    r = client_for(personas["ronnie"]).get(_url(logged))               # read-only member may read
    assert r.status_code == 200
    assert r["Content-Type"] == "text/plain; charset=utf-8" and r["Accept-Ranges"] == "bytes"
    assert b"".join(r.streaming_content) == LOG + b"password ***\n"
    assert r["Content-Length"] == str(len(LOG) + 13) and r["X-Log-Complete"] == "true"


@pytest.mark.parametrize("header,first,last", [("bytes=0-9", 0, 9), ("bytes=100-", 100, None),
                                               ("bytes=-13", None, None), ("bytes=5-999999", 5, None)])
def test_range_requests_get_206_with_content_range(logged, personas, header, first, last):
    full = LOG + b"password ***\n"
    size = len(full)
    r = client_for(personas["bob"]).get(_url(logged), HTTP_RANGE=header)
    assert r.status_code == 206
    first = size - 13 if first is None else first
    last = size - 1 if last is None else last
    assert b"".join(r.streaming_content) == full[first:last + 1]
    assert r["Content-Range"] == f"bytes {first}-{last}/{size}" and r["Content-Length"] == str(last + 1 - first)


def test_unsatisfiable_range_is_416(logged, personas):
    size = len(LOG) + 13
    r = client_for(personas["bob"]).get(_url(logged), HTTP_RANGE=f"bytes={size}-")
    assert r.status_code == 416 and r["Content-Range"] == f"bytes */{size}"


def test_accept_text_plain_is_honoured(logged, personas):
    r = client_for(personas["alice"]).get(_url(logged), HTTP_ACCEPT="text/plain")
    assert r.status_code == 200


@pytest.mark.parametrize("who,status", [("charlie", 404), (None, 403)])
def test_non_members_and_anonymous_get_nothing(logged, personas, who, status):
    user = personas[who] if who else None
    for suffix in ("", "/lines"):
        r = client_for(user).get(_url(logged, suffix))
        assert r.status_code in ((401, 403) if who is None else (status,)), (suffix, r.status_code)
        assert b"line 1" not in r.content


def test_token_auth_works_for_downloads(logged, personas):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=personas["ronnie"])
    r = APIClient().get(_url(logged), HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_RANGE="bytes=0-5")
    assert r.status_code == 206 and b"".join(r.streaming_content) == b"line 1"


def test_missing_execution_or_step_is_404(logged, personas):
    c = client_for(personas["alice"])
    assert c.get(_url(logged).replace(logged.name, "nope-1")).status_code == 404
    assert c.get(_url(logged).replace("/steps/0/", "/steps/7/")).status_code == 404


def test_lines_api_pages_with_numbers_and_timestamps(logged, personas):
    c = client_for(personas["ronnie"])
    page = c.get(_url(logged, "/lines"), {"from": 299, "limit": 5}).json()
    assert [(ln["number"], ln["text"]) for ln in page["lines"]] == [
        (299, "line 299 é output"), (300, "line 300 é output"), (301, "password ***")]
    assert page["lines"][0]["time"].endswith("Z") and page["complete"] and not page["more"]
    assert page["next"] == 302
    first = c.get(_url(logged, "/lines")).json()
    assert len(first["lines"]) == 100 and first["next"] == 101 and first["more"]
    assert first["lines"][0] == {"number": 1, "offset": 0, "time": first["lines"][0]["time"],
                                 "text": "line 1 é output", "cut": 0}
    assert c.get(_url(logged, "/lines"), {"limit": 5000}).status_code == 400
    assert c.get(_url(logged, "/lines"), {"from": "x"}).status_code == 400


def test_execution_log_list(logged, personas):
    r = client_for(personas["bob"]).get(f"/api/v1/projects/{logged.project_id}/executions/{logged.name}/logs")
    assert r.json()["logs"] == [{"stage": 1, "step": 0, "size": len(LOG) + 13, "complete": True}]


def test_download_from_s3_after_the_spool_is_gone(settings, s3_url, execution, personas):
    from devops.logs import get_log_store as current

    settings.SLIPWAY_LOG_STORE = s3_url
    current.cache_clear()
    try:
        store = current()
        w = open_step_writer(store, LogKey(execution.name, 1, 0))
        w.write(LOG)
        w.close()
        assert not store.spool(LogKey(execution.name, 1, 0)).log.exists()
        c = client_for(personas["ronnie"])
        assert b"".join(c.get(_url(execution)).streaming_content) == LOG
        r = c.get(_url(execution), HTTP_RANGE="bytes=9-20")
        assert r.status_code == 206 and b"".join(r.streaming_content) == LOG[9:21]
        assert c.get(_url(execution, "/lines"), {"from": 300}).json()["lines"][0]["text"] == "line 300 é output"
    finally:
        current.cache_clear()


def test_an_unreachable_s3_store_is_a_503_not_a_500(settings, execution, personas):
    """S3 down and the log not in this machine's spool: say so (503), don't crash."""
    from tests.logs.conftest import free_port

    settings.SLIPWAY_LOG_STORE = f"s3://k:s@127.0.0.1:{free_port()}/logs?secure=false"
    get_log_store.cache_clear()
    try:
        c = client_for(personas["ronnie"])
        for suffix in ("", "/lines"):
            r = c.get(_url(execution, suffix))
            assert r.status_code == 503, (suffix, r.status_code)
            assert "log store" in r.json()["detail"]
    finally:
        get_log_store.cache_clear()
