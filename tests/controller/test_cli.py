"""`pipeline run` / `pipeline logs` end to end: a real git repository, the local engine, the host runtime."""
from __future__ import annotations

import pytest

from devops.models import ExecutionState as S
from devops.models import Pipeline, PipelineExecution, Project
from tests.conftest import pipeline_cmd

from .conftest import git, make_repo

GOOD = """\
stages:
- name: Build
  steps:
  - runScriptConfig:
      image: busybox
      shellScript: echo "hello from $CICD_GIT_BRANCH"; printf 'no newline'
- name: Test
  steps:
  - runScriptConfig: {image: busybox, shellScript: echo tested}
"""
FAILING = """\
stages:
- name: Build
  steps:
  - runScriptConfig: {image: busybox, shellScript: echo about to fail; exit 3}
- name: Never
  steps:
  - runScriptConfig: {image: busybox, shellScript: echo never}
"""


@pytest.fixture
def cli_env(data_dir, settings, db):
    settings.SLIPWAY_STEP_RUNTIME = "host"
    return data_dir


def test_run_success_prints_prefixed_output_and_logs_reads_it_back(cli_env, tmp_path):
    repo = tmp_path / "app"
    make_repo(repo, {".devops.yml": GOOD})
    code, out, err = pipeline_cmd("run", str(repo))
    assert code == 0, err
    assert "[1.0 Build] hello from main" in out
    assert "[1.0 Build] no newline" in out
    assert "[2.0 Test] tested" in out
    assert out.index("[1.0 Build] hello") < out.index("[2.0 Test] tested")
    name = out.strip().splitlines()[-1].split(":")[0]
    ex = PipelineExecution.objects.get(name=name)
    assert ex.execution_state == S.SUCCESS and ex.project.name == "default"
    assert ex.pipeline.repository_url == str(repo.resolve())
    # Raw bytes of one step (stage indices count Clone).
    code, raw, _ = pipeline_cmd("logs", name, "--stage", "1", "--step", "0")
    assert code == 0 and raw.endswith("hello from main\nno newline")
    # Every step in order, with headers.
    code, all_logs, _ = pipeline_cmd("logs", name)
    headers = [line for line in all_logs.splitlines() if line.startswith("==> ")]
    assert [h.split()[1] for h in headers] == ["0.0", "1.0", "2.0"]
    assert all_logs.index("hello from main") < all_logs.index("tested")
    # The second run reuses the pipeline.
    code, _, _ = pipeline_cmd("run", str(repo))
    assert code == 0 and Pipeline.objects.filter(repository_url=str(repo.resolve())).count() == 1
    assert PipelineExecution.objects.filter(pipeline=ex.pipeline).count() == 2


def test_failed_run_exits_1_and_later_stages_do_not_run(cli_env, tmp_path):
    repo = tmp_path / "bad"
    make_repo(repo, {".devops.yml": FAILING})
    code, out, _ = pipeline_cmd("run", str(repo), "--project", "team")
    assert code == 1
    assert "[1.0 Build] about to fail" in out and "[1.0 Build] -- Failed (exit 3)" in out
    assert "never" not in out.replace("Never", "")
    assert Project.objects.filter(name="team").exists()
    # `pipeline logs` says why the step failed in its header.
    name = PipelineExecution.objects.get(pipeline__project__name="team").name
    code, all_logs, _ = pipeline_cmd("logs", name)
    failed = [h for h in all_logs.splitlines() if h.startswith("==> 1.0 ")]
    assert failed and "Failed (exit 3)" in failed[0] and "exit code 3" in failed[0], all_logs


def test_invalid_file_exits_2_with_lint_lines(cli_env, tmp_path, repo):
    bad = tmp_path / "broken.yml"
    bad.write_text("stages:\n- name: B\n  steps:\n  - runScriptConfig: {shellScript: [1]}\n  - {}\n")
    code, _, err = pipeline_cmd("run", str(repo), "--file", str(bad))
    assert code == 2
    lines = err.strip().splitlines()
    assert lines and all(line.startswith(f"{bad}:") for line in lines)
    assert any("stages[0].steps[0].runScriptConfig" in line for line in lines)
    assert PipelineExecution.objects.count() == 0


def test_detach_prints_name_last_and_temporary_config_runs(cli_env, tmp_path, repo):
    tmp = tmp_path / "tmp.yml"
    tmp.write_text("stages:\n- name: T\n  steps:\n  - runScriptConfig: {image: a, shellScript: echo temp}\n")
    code, out, _ = pipeline_cmd("run", str(repo), "--file", str(tmp), "--detach", "--branch", "main")
    assert code == 0
    name = out.strip().splitlines()[-1]
    ex = PipelineExecution.objects.get(name=name)
    assert ex.execution_state == S.WAITING and ex.temporary_config
    assert [s["name"] for s in ex.config["stages"]] == ["Clone", "T"]


def test_git_url_and_bad_branch(cli_env, tmp_path):
    repo = tmp_path / "u"
    make_repo(repo, {".devops.yml": GOOD})
    git(repo, "checkout", "-q", "-b", "feature")
    code, out, _ = pipeline_cmd("run", f"file://{repo}", "--branch", "feature")
    assert code == 0 and "hello from feature" in out
    code, _, err = pipeline_cmd("run", f"file://{repo}", "--branch", "nope")
    assert code == 3 and "no branch" in err
    code, _, err = pipeline_cmd("logs", "p-nothere-1")
    assert code == 1 and "no execution" in err


def test_hostile_branch_name_reaches_steps_only_as_a_value(cli_env, tmp_path):
    repo = tmp_path / "h"
    make_repo(repo, {".devops.yml": "stages:\n- name: E\n  steps:\n  - runScriptConfig:\n      image: busybox\n"
                                    "      shellScript: echo \"branch=[$CICD_GIT_BRANCH]\"\n"})
    # The workspace is deleted after the run, so aim the injection at tmp_path.
    hostile = f"$(touch${{IFS}}{tmp_path}/pwned)`touch${{IFS}}{tmp_path}/pwned2`"
    git(repo, "checkout", "-q", "-b", hostile)
    code, out, err = pipeline_cmd("run", str(repo), "--branch", hostile)
    assert code == 0, err
    assert f"branch=[{hostile}]" in out
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
