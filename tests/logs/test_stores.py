"""File and S3 stores: byte-exact logs, chunked objects, sidecar timestamps, spooling."""
from __future__ import annotations

import time

import pytest

from devops.logs import LogKey, log_store_from_url, open_step_writer, upload_spooled
from devops.logs.lines import read_lines

BINARY = bytes(range(256)) + b"\r\nno newline at the end \xe2\x82"


def _write(store, key, pieces, **kw):
    w = open_step_writer(store, key, **kw)
    for p in pieces:
        w.write(p)
    w.close()
    return w


@pytest.fixture(params=["file", "s3"])
def store(request):
    return request.getfixturevalue(f"{request.param}_store")


def test_the_log_is_byte_exact_what_the_step_wrote(store):
    key = LogKey("e-exact", 1, 2)
    pieces = [BINARY[i:i + 37] for i in range(0, len(BINARY), 37)] * 40   # > several S3 chunks
    _write(store, key, pieces)
    whole = b"".join(pieces)
    assert store.read(key) == whole
    assert store.size(key) == len(whole) and store.is_complete(key)
    assert store.read(key, 4000, 300) == whole[4000:4300]          # across a chunk boundary
    assert store.read(key, len(whole)) == b""
    assert store.keys("e-exact") == [key]


def test_iter_bytes_streams_any_range_in_bounded_pieces(store):
    key = LogKey("e-iter", 1, 0)
    whole = b"".join(b"%05d streamed\n" % i for i in range(1500))    # ~21 KiB: S3 chunks of 4 KiB
    _write(store, key, [whole[i:i + 999] for i in range(0, len(whole), 999)])
    for first, end in [(0, len(whole)), (0, 1), (4095, 4097), (5000, 13001), (len(whole) - 3, len(whole) + 50)]:
        pieces = list(store.iter_bytes(key, first, end, piece=1000))
        assert b"".join(pieces) == whole[first:end], (first, end)
        assert all(0 < len(p) <= 1000 for p in pieces)
    assert list(store.iter_bytes(LogKey("e-iter", 9, 9), 0, 10)) == []


def test_the_index_window_of_the_sidecar_file_is_the_window_of_the_whole_index(tmp_path):
    import random

    from devops.logs.index import IndexRecord, parse_index, window, window_in_file

    rng = random.Random(7)
    line, records = 1, []
    for i in range(3000):
        records.append(IndexRecord(line, i * 40, 1.5 + i))
        line += rng.choice((1, 1, 2, 17))
    path = tmp_path / "1-0.idx"
    path.write_bytes(b"".join(r.encode() for r in records) + b"99999 12")  # a torn last record
    assert parse_index(path.read_bytes()) == records
    for first in [1, 2, 3, records[1500].line, records[1500].line + 1, line - 1, line + 5, *rng.sample(range(line), 40)]:
        for span in (0, 1, 99, 5000):
            assert window_in_file(path, first, first + span) == window(records, first, first + span), first
    assert window_in_file(tmp_path / "missing.idx", 1, 10) == []


def test_timestamps_live_beside_the_log_not_in_it(store):
    key = LogKey("e-lines", 0, 0)
    w = open_step_writer(store, key)
    w.write(b"first line\nsecond ")
    t1 = time.time()
    time.sleep(0.02)
    w.write(b"half\nthird\n")
    w.write(b"fourth, no newline")
    w.close()
    assert store.read(key) == b"first line\nsecond half\nthird\nfourth, no newline"
    page = read_lines(store, key, 1, 10)
    assert [ln["text"] for ln in page["lines"]] == ["first line", "second half", "third", "fourth, no newline"]
    assert [ln["offset"] for ln in page["lines"]] == [0, 11, 23, 29]
    times = [ln["time"] for ln in page["lines"]]
    assert times[0] == times[1] < times[2] <= times[3]          # a line's time: the write that started it
    assert page["complete"] and not page["more"]
    page = read_lines(store, key, 3, 1)
    assert [ln["number"] for ln in page["lines"]] == [3] and page["next"] == 4 and page["more"]
    assert time.strftime("%Y-%m-%dT", time.gmtime(t1)) in times[2]


def test_reopening_a_log_continues_its_line_numbers(file_store):
    key = LogKey("e-reopen", 1, 0)
    _write(file_store, key, [b"one\ntw"])
    _write(file_store, key, [b"o\nthree\n"])
    assert [ln["text"] for ln in read_lines(file_store, key)["lines"]] == ["one", "two", "three"]


def test_delete_execution(store):
    key = LogKey("e-del", 1, 0)
    _write(store, key, [b"bye\n"])
    store.delete_execution("e-del")
    assert store.keys("e-del") == [] and store.read(key) == b""


def test_s3_objects_are_immutable_chunks_plus_a_manifest(s3_store):
    key = LogKey("e-chunks", 2, 1)
    data = b"".join(b"%06d some output\n" % i for i in range(2000))   # ~34 KiB, chunk 4 KiB
    _write(s3_store, key, [data[i:i + 1000] for i in range(0, len(data), 1000)])
    names = [o.object_name for o in s3_store.client.list_objects(s3_store.bucket, "e-chunks/", recursive=True)]
    chunks = [n for n in names if "/d/" in n]
    assert len(chunks) >= 8 and chunks == sorted(chunks) and chunks[0] == "e-chunks/2-1/d/00000000"
    assert "e-chunks/2-1/manifest.json" in names
    assert not s3_store.spool(key).log.exists(), "the spool is deleted once the manifest is up"
    assert s3_store.read(key) == data                                  # read back from S3 chunks
    assert read_lines(s3_store, key, 1500, 2)["lines"][0]["text"] == "001499 some output"


def test_s3_reader_elsewhere_sees_flushed_chunks_while_the_step_runs(s3_store, tmp_path):
    from devops.logs.s3store import S3LogStore

    key = LogKey("e-live", 1, 0)
    other_host = S3LogStore(s3_store.cfg, spool_root=tmp_path / "other")
    w = open_step_writer(s3_store, key)
    w.write(b"early line\n")
    assert s3_store.read(key) == b"early line\n"                       # this host: from the spool
    deadline = time.monotonic() + 5
    while other_host.read(key) != b"early line\n":                      # elsewhere: flushed by time
        assert time.monotonic() < deadline, "the time-based flush never reached S3"
        time.sleep(0.05)
    assert not other_host.is_complete(key)
    w.close()
    assert other_host.is_complete(key)


def test_s3_unreachable_spools_then_uploads_later_losing_nothing(s3_url, tmp_path):
    from devops.logs.s3store import S3LogStore
    from tests.logs.conftest import free_port

    spool = tmp_path / "spool"
    good = S3LogStore.from_url(s3_url, spool_root=spool)
    bucket_url = s3_url.split("@")[0] + f"@127.0.0.1:{free_port()}/" + good.bucket + "?secure=false"
    dead = S3LogStore.from_url(bucket_url, spool_root=spool, flush_interval=0.05)
    key = LogKey("e-down", 1, 0)
    w = _write(dead, key, [b"built ok\n", b"tests ok\n"], mask=("password1",))
    assert w.errors == []                # the step saw no error (and was not held up: _write returned)
    # Readers on this machine find the log in the spool, complete.
    assert good.read(key) == b"built ok\ntests ok\n" and good.is_complete(key)
    assert good.keys("e-down") == [key]
    assert upload_spooled(good) == 1
    assert not good.spool(key).log.exists()
    assert good.read(key) == b"built ok\ntests ok\n" and good.is_complete(key)
    assert good._manifest(key)["size"] == 18
    assert upload_spooled(good) == 0


def test_upload_spooled_skips_a_log_a_live_writer_holds(s3_store):
    key = LogKey("e-held", 1, 0)
    w = open_step_writer(s3_store, key)
    w.write(b"still running\n")
    assert upload_spooled(s3_store) == 0 and not s3_store.is_complete(key)
    w.close()
    assert s3_store.is_complete(key)


def test_get_log_store_follows_the_setting(settings, s3_url, tmp_path):
    from devops.logs import get_log_store
    from devops.logs.filestore import FileLogStore
    from devops.logs.s3store import S3LogStore

    try:
        settings.SLIPWAY_LOG_STORE = s3_url
        get_log_store.cache_clear()
        store = get_log_store()
        assert isinstance(store, S3LogStore) and store.spool_root.is_relative_to(settings.DATA_DIR)
        settings.SLIPWAY_LOG_STORE = f"file://{tmp_path}"
        get_log_store.cache_clear()
        assert isinstance(get_log_store(), FileLogStore)
    finally:
        get_log_store.cache_clear()
    assert upload_spooled(log_store_from_url(f"file://{tmp_path}")) == 0


def test_a_runner_killed_while_s3_is_down_loses_nothing_it_wrote(s3_url, tmp_path):
    import signal

    from devops.logs.s3store import S3LogStore
    from tests.logs.conftest import free_port, writer_process

    spool = tmp_path / "spool"
    good = S3LogStore.from_url(s3_url, spool_root=spool)
    dead_url = s3_url.split("@")[0] + f"@127.0.0.1:{free_port()}/" + good.bucket + "?secure=false"
    proc = writer_process(dead_url, "e-killed", 1, 0, spool=spool, flush_interval=0.05)
    assert proc.stdout.readline() == b"ready\n"
    proc.stdin.write(b"step output before the crash\n")
    proc.stdin.flush()
    key = LogKey("e-killed", 1, 0)
    deadline = time.monotonic() + 5
    while good.read(key) != b"step output before the crash\n":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    assert not good.is_complete(key)
    assert upload_spooled(good) == 1                 # its lock died with it: shipped and finalised
    assert good.read(key) == b"step output before the crash\n" and good.is_complete(key)


@pytest.mark.django_db
def test_the_controller_ships_spooled_logs_on_its_own(s3_url, tmp_path, monkeypatch):
    """A runner spooled a log while S3 was down; a controller pass uploads it later."""
    from devops.controller.loop import Controller
    from devops.logs.s3store import S3LogStore
    from tests.controller.fakes import FakeEngine
    from tests.logs.conftest import free_port

    spool = tmp_path / "spool"
    good = S3LogStore.from_url(s3_url, spool_root=spool)
    bucket_url = s3_url.split("@")[0] + f"@127.0.0.1:{free_port()}/" + good.bucket + "?secure=false"
    dead = S3LogStore.from_url(bucket_url, spool_root=spool, flush_interval=0.05)
    key = LogKey("e-ctl", 1, 0)
    _write(dead, key, [b"spooled while S3 was down\n"])
    monkeypatch.setattr("devops.logs.get_log_store", lambda: good)

    controller = Controller(FakeEngine(), data_dir=tmp_path)
    assert controller.tick_upload_logs() is True
    assert not good.spool(key).log.exists()
    assert good.read(key) == b"spooled while S3 was down\n" and good.is_complete(key)
    # Rate-limited: the next pass does not scan the spool again at once.
    assert controller.tick_upload_logs() is False


def test_spooled_logs_reach_s3_after_it_lost_the_bucket(s3_store):
    """S3 came back empty (a restarted MinIO/moto without its volume): a long-lived
    store (the controller's) makes the bucket again instead of failing forever."""
    from minio.deleteobjects import DeleteObject

    first = LogKey("e-bucket", 1, 0)
    _write(s3_store, first, [b"before\n"])
    assert s3_store.is_complete(first) and not s3_store.spool(first).log.exists()
    client = s3_store.client
    names = [o.object_name for o in client.list_objects(s3_store.bucket, recursive=True)]
    assert not list(client.remove_objects(s3_store.bucket, [DeleteObject(n) for n in names]))
    client.remove_bucket(s3_store.bucket)
    key = LogKey("e-bucket", 2, 0)
    _write(s3_store, key, [b"after the bucket vanished\n"])
    assert not s3_store.spool(key).log.exists()      # shipped at close, bucket made again
    assert s3_store.read(key) == b"after the bucket vanished\n" and s3_store.is_complete(key)
