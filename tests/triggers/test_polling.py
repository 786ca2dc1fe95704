"""Generic Git polling against a real smart-HTTP git server on loopback that demands the token."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from devops.models import Pipeline, PipelineExecution, SourceCodeCredential
from tests.controller.conftest import git, make_repo
from tests.controller.fakes import FakeEngine
from tests.gitserver import basic, git_http_server

from .conftest import PIPELINE_YAML

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    def __init__(self):
        self.t = timezone.now()

    def __call__(self):
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def commit(repo, name: str, branch: str = "main") -> str:
    git(repo, "checkout", "-q", branch)
    (repo / name).write_text(name)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"add {name}")
    return git(repo, "rev-parse", "HEAD")


def test_a_new_commit_on_a_watched_branch_runs_and_nothing_changed_is_one_ls_remote(
        tmp_path, project, data_dir):
    from devops.controller.loop import Controller
    from devops.controller.polling import tick_poll
    from devops.scm import git as g

    root = tmp_path / "srv"
    repo = root / "app"
    first = make_repo(repo, {".devops.yml": PIPELINE_YAML})
    git(repo, "branch", "dev")
    expected = basic("bot", "tok-42")
    with git_http_server(root, expected) as server:
        url = f"{server.base_url}/app"
        cred = SourceCodeCredential.objects.create(project=project, name="bot", source_code_type="git",
                                                   login_name="bot", access_token="tok-42")
        pipeline = Pipeline.objects.create(project=project, repository_url=url, credential=cred,
                                           default_branch="main", poll_interval=60)
        clock = Clock()
        controller = Controller(FakeEngine(), clock=clock)

        # Baseline: recorded, nothing runs.
        assert tick_poll(controller) is False
        pipeline.refresh_from_db()
        assert pipeline.poll_heads == {"refs/heads/main": first}  # dev is not watched
        assert not PipelineExecution.objects.exists()

        # Not due yet: not a single request.
        before = len(server.paths)
        clock.advance(30)
        assert tick_poll(controller) is False
        assert len(server.paths) == before

        # Due, nothing changed: exactly the requests of one `git ls-remote`, no fetch.
        mirror = g.mirror_path(data_dir, url)
        n = len(server.paths)
        g.run_git(["ls-remote", "--heads", "origin"], cwd=mirror, auth=g.Auth(token="tok-42", username="bot"))
        one_ls_remote = server.paths[n:]
        before = len(server.paths)
        clock.advance(31)
        assert tick_poll(controller) is False
        assert server.paths[before:] == one_ls_remote
        assert not PipelineExecution.objects.exists()
        assert set(server.seen) == {expected}  # the token went with every request (through the env)

        # A commit on an unwatched branch: nothing; on the watched one: a run of exactly that commit.
        commit(repo, "x", branch="dev")
        clock.advance(61)
        assert tick_poll(controller) is False
        new = commit(repo, "y", branch="main")
        clock.advance(61)
        assert tick_poll(controller) is True
        run = PipelineExecution.objects.get()
        assert (run.branch, run.commit, run.ref, run.event, run.trigger_type, run.message) == (
            "main", new, "refs/heads/main", "push", "poll", "add y")
        # The same head again: no second run.
        clock.advance(61)
        assert tick_poll(controller) is False
        assert PipelineExecution.objects.count() == 1

        # Watching globs: dev moves again and is now watched.
        pipeline.refresh_from_db()
        pipeline.poll_branches = ["main", "d*"]
        pipeline.save()
        dev = commit(repo, "z", branch="dev")
        clock.advance(61)
        assert tick_poll(controller) is True
        assert PipelineExecution.objects.filter(branch="dev", commit=dev).count() == 1


def test_polling_off_or_a_broken_remote_runs_nothing_and_spares_the_others(tmp_path, project, data_dir):
    from devops.controller.loop import Controller
    from devops.controller.polling import tick_poll

    repo = tmp_path / "ok"
    make_repo(repo, {".devops.yml": PIPELINE_YAML})
    broken = Pipeline.objects.create(project=project, repository_url=str(tmp_path / "gone"), poll_interval=10)
    ok = Pipeline.objects.create(project=project, repository_url=str(repo), default_branch="main", poll_interval=10)
    off = Pipeline.objects.create(project=project, repository_url=str(repo), default_branch="main")
    clock = Clock()
    controller = Controller(FakeEngine(), clock=clock)
    tick_poll(controller)
    new = commit(repo, "y")
    clock.advance(11)
    controller.tick()  # the loop's pass polls too
    assert list(PipelineExecution.objects.values_list("pipeline_id", "commit")) == [(ok.pk, new)]
    broken.refresh_from_db()
    off.refresh_from_db()
    assert broken.polled_at is not None and broken.poll_heads == {}   # tried, failed, retried next interval
    assert off.polled_at is None
