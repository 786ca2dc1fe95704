"""The log copy survives a controller restart exactly (devops/engines/jenkins/logcopy.py).

A restarted controller is a NEW engine instance on the same log store. Whatever
the old one had copied, and wherever it died — even between appending bytes to
the store and writing its checkpoint — the stored log ends up equal to the whole
Jenkins log of the step, masked, byte for byte.
"""
from __future__ import annotations

import re
import time

import pytest

from devops.engines.jenkins import logcopy
from devops.engines.jenkins.engine import JenkinsEngine
from devops.engines.jenkins.jenkinsfile import job_name
from devops.engines.jenkins.options import JenkinsOptions
from devops.logs import LogKey
from devops.logs.filestore import FileLogStore
from devops.logs.masking import mask_all
from tests.engines.jenkins.conftest import make_spec
from tests.logs.conftest import moto_endpoint  # noqa: F401  (the S3 API the logs tests use)

JOB = job_name("p-abcde-7")
SECRET = "s3cr3t-deploy-token"
KEY = LogKey("p-abcde-7", 1, 0)


def new_engine(fake, tmp_path) -> JenkinsEngine:
    """What a (re)started controller builds: a fresh instance on the same log store."""
    options = JenkinsOptions(url=fake.url, user=fake.user, token=fake.token, log_store_url=f"file://{tmp_path}/logs")
    return JenkinsEngine(options, store=FileLogStore(tmp_path / "logs"))


def pieces() -> list[bytes]:
    """A log whose pieces split the secret (one piece ends inside it: the masker holds bytes back)."""
    whole = b"".join(f"line {n} token={SECRET}\n".encode() for n in range(50)) + b"tail without newline"
    cut = whole.index(SECRET.encode(), 300) + 7        # inside a secret
    return [whole[:120], whole[120:cut], whole[cut:900], whole[900:1500], whole[1500:]]


def finish(fake, engine, spec, handle):
    for label in fake.jobs[JOB].builds[-1].steps:
        fake.set_step(JOB, label, "SUCCESS")
    fake.finish(JOB, "SUCCESS")
    r = engine.sync(spec, handle)
    assert r.state == "Success", r
    return r


def start(fake, tmp_path, spec):
    engine = new_engine(fake, tmp_path)
    handle = engine.run(spec)
    fake.start(JOB)
    fake.set_step(JOB, "step-1-0", "IN_PROGRESS")
    return engine, handle


@pytest.mark.parametrize("restart_after", [1, 2, 3, 4])
def test_a_restarted_controller_goes_on_where_the_log_stands(fake, tmp_path, restart_after):
    spec = make_spec()
    engine, handle = start(fake, tmp_path, spec)
    parts = pieces()
    for n, piece in enumerate(parts):
        if n == restart_after:
            engine = new_engine(fake, tmp_path)       # the controller restarted: offsets only on disk
        fake.append_log(JOB, "step-1-0", piece)
        engine.sync(spec, handle)
    r = finish(fake, engine, spec, handle)
    whole = b"".join(parts)
    assert engine.store.read(KEY) == mask_all(whole, [SECRET])      # not once twice, not a byte lost
    assert next(s for s in r.steps if (s.stage, s.step) == (1, 0)).log_size == len(mask_all(whole, [SECRET]))
    assert engine.store.is_complete(KEY)


@pytest.mark.parametrize("died_at", [0, 1, 2, 3])
def test_a_controller_dying_between_the_append_and_the_checkpoint_duplicates_nothing(fake, tmp_path, monkeypatch,
                                                                                    died_at):
    spec = make_spec()
    engine, handle = start(fake, tmp_path, spec)
    parts = pieces()
    real_save = logcopy.StepLogCopy._save
    for n, piece in enumerate(parts):
        fake.append_log(JOB, "step-1-0", piece)
        if n == died_at:
            # The bytes reach the store; the process dies before the checkpoint is written.
            monkeypatch.setattr(logcopy.StepLogCopy, "_save", lambda self: None)
            engine.sync(spec, handle)
            monkeypatch.setattr(logcopy.StepLogCopy, "_save", real_save)
            engine = new_engine(fake, tmp_path)
            continue
        engine.sync(spec, handle)
    finish(fake, engine, spec, handle)
    assert engine.store.read(KEY) == mask_all(b"".join(parts), [SECRET])


def test_without_its_checkpoint_the_copy_is_regenerated_from_the_start_and_still_exact(fake, tmp_path):
    spec = make_spec()
    engine, handle = start(fake, tmp_path, spec)
    parts = pieces()
    for piece in parts[:4]:
        fake.append_log(JOB, "step-1-0", piece)
        engine.sync(spec, handle)
    logcopy.checkpoint_path(engine.store, KEY).unlink()       # e.g. lost, or never written by an older version
    engine = new_engine(fake, tmp_path)
    for piece in parts[4:]:
        fake.append_log(JOB, "step-1-0", piece)
        engine.sync(spec, handle)
    finish(fake, engine, spec, handle)
    assert engine.store.read(KEY) == mask_all(b"".join(parts), [SECRET])


def test_the_checkpoint_holds_no_log_text(fake, tmp_path):
    spec = make_spec()
    engine, handle = start(fake, tmp_path, spec)
    fake.append_log(JOB, "step-1-0", f"a secret: {SECRET}\n".encode())
    engine.sync(spec, handle)
    fake.append_log(JOB, "step-1-0", SECRET[:10].encode())   # held back: no new checkpoint here
    engine.sync(spec, handle)
    text = logcopy.checkpoint_path(engine.store, KEY).read_text()
    assert SECRET[:5] not in text and "secret" not in text
    assert '"current": ["21", 30]' in text and '"size": 14' in text   # the position before the held piece


def test_a_step_of_several_flow_nodes_resumes_in_its_second_node(fake, tmp_path):
    spec = make_spec()
    engine, handle = start(fake, tmp_path, spec)
    st = fake.jobs[JOB].builds[-1].steps["step-1-0"]
    fake.append_log(JOB, "step-1-0", b"first sh\n")
    second = fake.add_node(JOB, "step-1-0")
    second.log = b"second sh, part one\n"
    engine.sync(spec, handle)   # the first node is not over: the second waits (order kept)
    assert engine.store.read(KEY) == b"first sh\n"
    st.node_status, st.more = "SUCCESS", False
    engine.sync(spec, handle)
    engine = new_engine(fake, tmp_path)
    second.log += b"part two\n"
    engine.sync(spec, handle)
    second.status, second.more = "SUCCESS", False
    finish(fake, engine, spec, handle)
    assert engine.store.read(KEY) == b"first sh\nsecond sh, part one\npart two\n"


def test_resume_across_the_size_cap_keeps_the_cap_and_its_notices(fake, tmp_path):
    spec = make_spec(settings={"log-size-cap": "600"})
    parts = pieces()
    # The reference: one controller, no restart, same Jenkins bytes.
    ref, handle = start(fake, tmp_path / "ref", spec)
    for piece in parts:
        fake.append_log(JOB, "step-1-0", piece)
        ref.sync(spec, handle)
    finish(fake, ref, spec, handle)
    expected = ref.store.read(KEY)
    assert b"log truncated" in expected
    fake.jobs.clear()
    engine, handle = start(fake, tmp_path / "restarted", spec)
    for n, piece in enumerate(parts):
        if n in (2, 4):
            engine = new_engine(fake, tmp_path / "restarted")
        fake.append_log(JOB, "step-1-0", piece)
        engine.sync(spec, handle)
    finish(fake, engine, spec, handle)
    assert engine.store.read(KEY) == expected


def test_a_finished_log_is_not_touched_by_a_restarted_controller(fake, tmp_path):
    spec = make_spec()
    engine, handle = start(fake, tmp_path, spec)
    fake.append_log(JOB, "step-1-0", b"done\n")
    finish(fake, engine, spec, handle)
    requests = len(fake.requests)
    again = new_engine(fake, tmp_path)
    assert again.sync(spec, handle).state == "Success"
    assert again.store.read(KEY) == b"done\n"
    assert not any("progressiveText" in r for r in fake.requests[requests:])


def test_a_controller_on_another_machine_continues_an_s3_log_exactly(fake, tmp_path, moto_endpoint):  # noqa: F811
    """Slipway on Kubernetes: logs in S3, the controller pod dies (its spool and checkpoint with it) and
    another replica adopts the run. What reached S3 stays; the rest is regenerated from Jenkins."""
    import uuid

    from devops.logs.s3store import S3LogStore

    url = f"s3://testkey:testsecret@{moto_endpoint}/jk-{uuid.uuid4().hex[:10]}?secure=false"

    def machine(name: str) -> JenkinsEngine:
        store = S3LogStore.from_url(url, spool_root=tmp_path / name, chunk_size=64, flush_interval=3600)
        return JenkinsEngine(JenkinsOptions(url=fake.url, user=fake.user, token=fake.token, log_store_url=url),
                             store=store)

    spec = make_spec()
    a = machine("a")
    handle = a.run(spec)
    fake.start(JOB)
    fake.set_step(JOB, "step-1-0", "IN_PROGRESS")
    parts = pieces()
    for piece in parts[:2]:          # > chunk_size once masked: the uploader ships them
        fake.append_log(JOB, "step-1-0", piece)
        a.sync(spec, handle)
    inner = a._logs[(spec.execution, 1, 0)].writer._inner
    for _ in range(200):
        if inner.sp.load_state()["uploaded"]:
            break
        time.sleep(0.05)
    inner._closing = True            # machine A dies: its uploader stops, nothing more reaches S3
    inner._wake.set()
    inner._thread.join()
    uploaded = inner.sp.load_state()["uploaded"]
    assert uploaded > 0
    fake.append_log(JOB, "step-1-0", parts[2])
    a.sync(spec, handle)             # copied into A's spool only: lost with the pod
    assert a.store.size(KEY) > uploaded
    b = machine("b")
    assert b.store.size(KEY) == uploaded
    for piece in parts[3:]:
        fake.append_log(JOB, "step-1-0", piece)
        b.sync(spec, handle)
    finish(fake, b, spec, handle)
    reader = S3LogStore.from_url(url, spool_root=tmp_path / "reader")   # S3 alone, no spool
    assert reader.is_complete(KEY)
    assert reader.read(KEY) == mask_all(b"".join(parts), [SECRET])


def test_a_checkpoint_that_does_not_match_its_checksum_is_ignored(fake, tmp_path):
    """A record torn or changed on disk (numbers that no longer match its checksum) must not steer the
    resume: the copy is regenerated from the start, still exactly."""
    spec = make_spec()
    engine, handle = start(fake, tmp_path, spec)
    parts = pieces()
    for piece in parts[:4]:
        fake.append_log(JOB, "step-1-0", piece)
        engine.sync(spec, handle)
    path = logcopy.checkpoint_path(engine.store, KEY)
    text = path.read_text()
    offset = int(re.search(r'"current": \["21", (\d+)\]', text).group(1))
    # One byte earlier: a plausible record (the store is longer than it says), but not the one summed.
    path.write_text(text.replace(f'"21", {offset}]', f'"21", {offset - 1}]', 1))
    engine = new_engine(fake, tmp_path)
    for piece in parts[4:]:
        fake.append_log(JOB, "step-1-0", piece)
        engine.sync(spec, handle)
    finish(fake, engine, spec, handle)
    assert engine.store.read(KEY) == mask_all(b"".join(parts), [SECRET])
