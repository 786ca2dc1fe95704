"""The status WebSocket through Channels' WebsocketCommunicator: membership, first frame, live pushes."""
from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from devops.controller.actions import do_finish, do_report, do_stop
from tests.web.run.conftest import make_config, new_execution

pytestmark = pytest.mark.django_db(transaction=True)


def _token(user) -> bytes:
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=user)[0].key.encode()


@pytest.fixture
def tokens(personas) -> dict[str, bytes]:
    return {name: _token(user) for name, user in personas.items()}


def _comm(path: str, token: bytes | None = None) -> WebsocketCommunicator:
    from devops.asgi import application

    headers = [(b"authorization", b"Token " + token)] if token else []
    return WebsocketCommunicator(application, path, headers=headers)


def _run_path(e) -> str:
    return f"/ws/v1/status/{e.project_id}/executions/{e.name}"


async def _refused(path: str, token: bytes | None = None) -> int:
    comm = _comm(path, token)
    connected, code = await comm.connect()
    assert not connected
    return code


def test_non_members_and_anonymous_are_refused_on_connect(run, personas, tokens):
    async def scenario():
        charlie = tokens["charlie"]
        assert await _refused(_run_path(run), charlie) == 4403
        assert await _refused(f"/ws/v1/status/{run.project_id}/", charlie) == 4403
        assert await _refused(_run_path(run)) == 4401
        assert await _refused(f"/ws/v1/status/{run.project_id}/executions/nope-1", tokens["ronnie"]) == 4404

    asyncio.run(scenario())



def test_read_only_member_gets_current_state_then_each_change_and_no_write_control(run, personas, tokens):
    async def scenario():
        comm = _comm(_run_path(run), tokens["ronnie"])
        connected, _ = await comm.connect()
        assert connected
        first = await comm.receive_from(timeout=5)
        assert 'id="run-live"' in first and 'hx-swap-oob="true"' in first
        assert 'id="run-state" class="state state-waiting">Waiting<' in first
        assert "Stop" not in first and "Rerun" not in first            # read-only: no write control

        await database_sync_to_async(do_stop)(run, personas["bob"])      # another "user", another thread
        frame = await comm.receive_from(timeout=5)
        assert 'class="state state-aborted">Aborted<' in frame
        await comm.disconnect()

    asyncio.run(scenario())



def test_a_member_sees_a_step_go_building_then_success(run, personas, tokens):
    async def scenario():
        from devops.engines.base import RunReport, StepReport
        from devops.models import ExecutionState as S

        comm = _comm(_run_path(run), tokens["bob"])
        assert (await comm.connect())[0]
        first = await comm.receive_from(timeout=5)
        assert ">Stop</button>" in first                                   # a member may stop it

        @database_sync_to_async
        def report(state):
            import time

            from devops.controller.actions import do_admit, do_start
            from devops.models import PipelineExecution

            ex = PipelineExecution.objects.get(pk=run.pk)
            if ex.execution_state == S.WAITING and not ex.engine:
                do_admit(ex, "local")
                do_start(ex, {"pid": 1})
                ex.refresh_from_db()
            now = time.time()
            steps = (StepReport(0, 0, S.SUCCESS, started=now, ended=now),
                     StepReport(1, 0, state, started=now, ended=now if state == S.SUCCESS else None))
            do_report(ex, RunReport(state=S.BUILDING, steps=steps))
            if state == S.SUCCESS:
                do_finish(ex, S.SUCCESS)

        await report(S.BUILDING)
        frames = [await comm.receive_from(timeout=5)]
        while 'id="step-1-0" class="step state-building"' not in frames[-1]:
            frames.append(await comm.receive_from(timeout=5))
        assert all('id="run-live"' not in f for f in frames[1:])       # after the first: what changed
        await report(S.SUCCESS)
        while 'id="step-1-0" class="step state-success"' not in frames[-1]:
            frames.append(await comm.receive_from(timeout=5))
        assert ">Rerun</button>" in frames[-1]
        await comm.disconnect()

    asyncio.run(scenario())



def test_after_the_first_frame_a_step_change_pushes_that_step_alone(pipeline, personas, tokens):
    """One step going Building sends that step's element (out of band), not the whole run again."""
    run = new_execution(pipeline, make_config([{}, {}, {}]))

    async def scenario():
        from devops.engines.base import RunReport, StepReport
        from devops.models import ExecutionState as S

        comm = _comm(_run_path(run), tokens["ronnie"])
        assert (await comm.connect())[0]
        first = await comm.receive_from(timeout=5)
        assert 'id="run-live"' in first

        @database_sync_to_async
        def report(*building):
            import time

            from devops.controller.actions import do_admit, do_start
            from devops.models import PipelineExecution

            ex = PipelineExecution.objects.get(pk=run.pk)
            if not ex.engine:
                do_admit(ex, "local")
                do_start(ex, {"pid": 1})
                ex.refresh_from_db()
            do_report(ex, RunReport(state=S.BUILDING, steps=tuple(
                StepReport(1, i, S.BUILDING, started=time.time()) for i in building)))

        await report(0)
        frame = await comm.receive_from(timeout=5)
        while 'id="step-1-0" class="step state-building"' not in frame:
            frame = await comm.receive_from(timeout=5)
        await report(0, 1)
        frame = await comm.receive_from(timeout=5)
        assert frame.count('hx-swap-oob="true"') == 1
        assert frame.lstrip().startswith('<a id="step-1-1" class="step state-building" hx-swap-oob="true"')
        assert 'id="run-live"' not in frame and 'id="stage-1"' not in frame and 'id="step-1-2"' not in frame
        await comm.disconnect()

    asyncio.run(scenario())


def test_a_reconnect_starts_with_the_state_changed_while_away(run, personas, tokens):
    async def scenario():
        comm = _comm(_run_path(run), tokens["ronnie"])
        assert (await comm.connect())[0]
        assert "Waiting" in await comm.receive_from(timeout=5)
        await comm.disconnect()
        await database_sync_to_async(do_stop)(run, personas["alice"])     # while nobody listens
        comm = _comm(_run_path(run), tokens["ronnie"])
        assert (await comm.connect())[0]
        assert 'class="state state-aborted">Aborted<' in await comm.receive_from(timeout=5)
        await comm.disconnect()

    asyncio.run(scenario())



def test_pipeline_and_project_lists_get_their_rows(run, personas, tokens):
    async def scenario():
        lists = _comm(f"/ws/v1/status/{run.project_id}/", tokens["ronnie"])
        home = _comm("/ws/v1/status/", tokens["ronnie"])
        assert (await lists.connect())[0] and (await home.connect())[0]
        row = await lists.receive_from(timeout=5)
        assert f'<tr id="pipeline-{run.pipeline.name}" hx-swap-oob="true">' in row and "Waiting" in row
        assert ">Run</a>" not in row                                        # read-only
        project = await home.receive_from(timeout=5)
        assert f'<tr id="project-{run.project_id}" hx-swap-oob="true">' in project
        await database_sync_to_async(do_stop)(run, personas["bob"])
        assert "Aborted" in await lists.receive_from(timeout=5)
        assert "Aborted" in await home.receive_from(timeout=5)
        await lists.disconnect()
        await home.disconnect()

    asyncio.run(scenario())


@pytest.mark.services
def test_with_redis_the_change_goes_through_the_redis_group_not_the_bells(run, personas, tokens, settings, data_dir):
    from tests.logs.conftest import REDIS_DB_URL, port_open, require_service

    require_service(port_open("127.0.0.1", 6379), "Redis at 127.0.0.1:6379")
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [REDIS_DB_URL]}}}

    async def scenario():
        comm = _comm(_run_path(run), tokens["ronnie"])
        assert (await comm.connect())[0]
        assert "Waiting" in await comm.receive_from(timeout=5)
        await database_sync_to_async(do_stop)(run, personas["bob"])
        assert 'class="state state-aborted">Aborted<' in await comm.receive_from(timeout=5)
        await comm.disconnect()

    asyncio.run(scenario())
    assert not (data_dir / "status").exists()          # no bell was made or rung: Redis carried it
