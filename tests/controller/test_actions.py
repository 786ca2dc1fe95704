"""do_run / do_rerun / do_stop / do_finish against a real git repository and the real parser."""
from __future__ import annotations

import pytest

from devops.controller.actions import (
    BranchNotAllowed,
    InvalidTransition,
    PipelineFileInvalid,
    RepositoryError,
    allowed_transitions,
    check_transition,
    do_finish,
    do_rerun,
    do_run,
    do_stop,
)
from devops.models import ExecutionState as S
from devops.models import Pipeline, StageStatus, StepStatus

from .conftest import git, make_repo

WHEN_YAML = """\
stages:
- name: Build
  steps:
  - runScriptConfig: {image: busybox, shellScript: make}
  - runScriptConfig: {image: busybox, shellScript: deploy}
    when: {branch: [release-*]}
- name: Publish
  when: {event: [push]}
  steps:
  - runScriptConfig: {image: busybox, shellScript: publish}
branch: {exclude: [wip-*]}
"""


@pytest.fixture
def repo_pipeline(project, data_dir, tmp_path):
    path = tmp_path / "app"
    make_repo(path, {".devops.yml": WHEN_YAML})
    return Pipeline.objects.create(project=project, repository_url=str(path), default_branch="main"), path


def test_run_reads_file_at_commit_and_creates_rows(repo_pipeline, personas):
    pipeline, path = repo_pipeline
    head = git(path, "rev-parse", "HEAD")
    ex = do_run(pipeline, user=personas["bob"])
    assert (ex.name, ex.run, ex.branch, ex.commit, ex.ref) == (
        f"{pipeline.name}-1", 1, "main", head, "refs/heads/main")
    assert ex.message == "first commit" and ex.author == "Tess" and ex.trigger_user == personas["bob"]
    assert ex.execution_state == S.WAITING and ex.engine == ""
    assert ex.config["stages"][0]["name"] == "Clone" and len(ex.config["stages"]) == 3
    assert "shellScript: make" in ex.config_text and not ex.temporary_config
    # Stage indices count the Clone stage; `when` that cannot match is Skipped from the start.
    assert list(StageStatus.objects.filter(execution=ex).values_list("index", "name", "state")) == [
        (0, "Clone", S.WAITING), (1, "Build", S.WAITING), (2, "Publish", S.SKIPPED)]
    assert list(StepStatus.objects.filter(execution=ex).values_list("stage_index", "index", "state")) == [
        (0, 0, S.WAITING), (1, 0, S.WAITING), (1, 1, S.SKIPPED), (2, 0, S.SKIPPED)]
    pipeline.refresh_from_db()
    assert (pipeline.next_run, pipeline.last_execution_id, pipeline.last_run_state) == (2, ex.name, S.WAITING)
    # The next run gets the next number; a new commit is seen (the mirror is fetched each time).
    (path / "x").write_text("x")
    git(path, "add", "x")
    git(path, "commit", "-q", "-m", "second")
    ex2 = do_run(pipeline, event="push")
    assert ex2.name == f"{pipeline.name}-2" and ex2.commit == git(path, "rev-parse", "HEAD")
    assert StageStatus.objects.get(execution=ex2, index=2).state == S.WAITING  # event push matches


def test_invalid_file_raises_with_every_problem(repo_pipeline):
    pipeline, _ = repo_pipeline
    bad = "stages:\n- name: B\n  steps:\n  - runScriptConfig: {shellScript: 1}\n    bogus: 2\n  - {}\n"
    with pytest.raises(PipelineFileInvalid) as err:
        do_run(pipeline, config_text=bad, config_filename="tmp.yml")
    lines = err.value.lines
    assert len(lines) >= 2 and all(line.startswith("tmp.yml:") for line in lines)
    assert any("stages[0].steps[0].runScriptConfig" in line for line in lines)
    assert pipeline.executions.count() == 0


def test_a_pipeline_file_over_1_mib_gets_lints_size_problem(repo_pipeline):
    pipeline, path = repo_pipeline
    from devops.pipeline import load

    huge = b"# padding\n" * 120_000
    (path / ".devops.yml").write_bytes(huge)
    git(path, "commit", "-qam", "huge")
    with pytest.raises(PipelineFileInvalid) as err:
        do_run(pipeline)
    assert err.value.lines == [p.format(".devops.yml") for p in load(huge).problems]  # lint's own words
    assert err.value.lines == [".devops.yml:1:1: (document): the file is 1200000 bytes; "
                               "the limit is 1048576 bytes (1 MiB)"]
    assert pipeline.executions.count() == 0


def test_temporary_config_runs_without_commit(repo_pipeline):
    pipeline, _ = repo_pipeline
    ex = do_run(pipeline, config_text="stages:\n- name: T\n  steps:\n  - runScriptConfig: {image: a, shellScript: b}\n")
    assert ex.temporary_config and [s["name"] for s in ex.config["stages"]] == ["Clone", "T"]


def test_branch_constraint_and_repository_errors(repo_pipeline, tmp_path):
    pipeline, path = repo_pipeline
    git(path, "branch", "wip-x")
    with pytest.raises(BranchNotAllowed):
        do_run(pipeline, branch="wip-x")
    with pytest.raises(RepositoryError, match="no branch"):
        do_run(pipeline, branch="nope")
    missing = Pipeline.objects.create(project=pipeline.project, repository_url=str(tmp_path / "gone"))
    with pytest.raises(RepositoryError, match="does not exist"):
        do_run(missing)
    empty = tmp_path / "empty"
    make_repo(empty, {"README": "no pipeline here"})
    p2 = Pipeline.objects.create(project=pipeline.project, repository_url=str(empty), default_branch="main")
    with pytest.raises(PipelineFileInvalid, match="no pipeline file"):
        do_run(p2)


def test_rerun_is_a_new_execution_with_same_config_and_commit(repo_pipeline, personas):
    pipeline, path = repo_pipeline
    ex = do_run(pipeline)
    with pytest.raises(InvalidTransition):
        do_rerun(ex, personas["alice"])  # still active
    ex.execution_state = S.BUILDING
    ex.save()
    assert do_finish(ex, S.FAILED, error="boom")
    (path / ".devops.yml").write_text("stages: nope\n")  # a later commit breaks the file: rerun does not care
    git(path, "commit", "-qam", "break")
    again = do_rerun(ex, personas["alice"])
    assert again.name == f"{pipeline.name}-2" and again.rerun_of == ex
    assert (again.commit, again.config, again.branch) == (ex.commit, ex.config, ex.branch)
    assert again.execution_state == S.WAITING and again.trigger_user == personas["alice"]


def test_finish_is_final_and_transitions_are_one_table(repo_pipeline):
    pipeline, _ = repo_pipeline
    ex = do_run(pipeline)
    with pytest.raises(InvalidTransition):
        do_finish(ex, S.SUCCESS)  # Waiting cannot succeed without running
    assert do_stop(ex)
    assert not do_finish(ex, S.FAILED)
    ex.refresh_from_db()
    assert ex.execution_state == S.ABORTED and ex.conditions[-1]["type"] == "Aborted"
    table = allowed_transitions()
    assert all(not table[s] for s in S.finished())
    check_transition(S.BUILDING, S.SUCCESS)
    with pytest.raises(InvalidTransition):
        check_transition(S.SUCCESS, S.BUILDING)
    assert "Queueing" in allowed_transitions.__doc__


def test_run_rings_the_controller_after_commit(repo_pipeline, data_dir, django_capture_on_commit_callbacks):
    from devops.doorbell import Bell

    pipeline, _ = repo_pipeline
    with Bell(data_dir) as bell:
        with django_capture_on_commit_callbacks(execute=True):
            do_run(pipeline)
        assert bell.wait(0.5)


def test_run_of_a_tag_or_commit_gets_the_matching_ref(repo_pipeline):
    """`pipeline run --branch v1.0` (or the API's `branch`) may name a tag or a commit: the ref
    (CICD_GIT_REF, and CICD_GIT_TAG derived from it) must be that tag, never `refs/heads/v1.0`."""
    pipeline, path = repo_pipeline
    head = git(path, "rev-parse", "HEAD")
    git(path, "tag", "v1.0")
    ex = do_run(pipeline, branch="v1.0")
    assert (ex.branch, ex.commit, ex.ref) == ("v1.0", head, "refs/tags/v1.0")
    by_commit = do_run(pipeline, branch=head)
    assert (by_commit.commit, by_commit.ref) == (head, "")
    assert do_run(pipeline, branch="main").ref == "refs/heads/main"
