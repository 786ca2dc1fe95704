"""The editor's actions: open a branch's file, commit an edit, run an edit without committing (issue 11)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from devops.controller.actions import PipelineFileInvalid
from devops.controller.actions.editor import (
    BranchMoved,
    do_commit_pipeline_file,
    do_run_edited,
    open_pipeline_file,
)
from devops.models import Pipeline
from devops.pipeline import apply_ops, starter_pipeline

from .conftest import git, make_repo

pytestmark = pytest.mark.django_db

RANCHER = """\
# Build it
stages:
  - name: Build
    steps:
      # the compiler
      - runScriptConfig:
          image: golang:1.21   # pinned
          shellScript: go build ./...
"""


@pytest.fixture
def repo_pipeline(project, data_dir, tmp_path):
    path = tmp_path / "repo"
    make_repo(path, {".rancher-pipeline.yml": RANCHER, "README": "hi\n"}, branch="master")
    git(path, "checkout", "-q", "-b", "feature")
    git(path, "commit", "-q", "--allow-empty", "-m", "feature head")
    git(path, "checkout", "-q", "master")
    # A non-bare repository refuses a push to its checked-out branch; the editor pushes to `feature`.
    pipeline = Pipeline.objects.create(project=project, repository_url=str(path), default_branch="master")
    return pipeline, path


def test_run_an_edit_without_committing(repo_pipeline, personas, client):
    pipeline, path = repo_pipeline
    opened = open_pipeline_file(pipeline, "feature")
    assert (opened.path, opened.text, opened.starter) == (".rancher-pipeline.yml", RANCHER, False)
    edited = apply_ops(opened.text, [{"op": "set", "path": "stages[0].steps[0].runScriptConfig.image",
                                      "value": "golang:1.22"}])
    ex = do_run_edited(pipeline, user=personas["bob"], branch="feature", text=edited, filename=opened.path)
    assert ex.temporary_config and ex.config_text == edited
    assert ex.branch == "feature" and ex.commit == git(path, "rev-parse", "feature") == opened.head
    assert ex.trigger_user == personas["bob"]
    assert "golang:1.22" in str(ex.config["stages"][1]["steps"][0])
    # Nothing was committed.
    assert git(path, "show", "feature:.rancher-pipeline.yml") + "\n" == RANCHER
    # The run page marks the config as temporary and shows its YAML.
    client.force_login(personas["bob"])
    kwargs = {"project": ex.project_id, "pipeline": pipeline.name, "n": ex.run}
    assert "temporary config" in client.get(reverse("web:run", kwargs=kwargs)).content.decode()
    body = client.get(reverse("web:run-config", kwargs=kwargs)).content.decode()
    assert "A temporary config (run without being committed)" in body
    assert "image: golang:1.22   # pinned" in body and "# the compiler" in body


def test_commit_an_edit_as_the_user(repo_pipeline, personas):
    pipeline, path = repo_pipeline
    bob = personas["bob"]
    bob.first_name, bob.last_name, bob.email = "Bob", "Builder", "bob@example.com"
    bob.save()
    opened = open_pipeline_file(pipeline, "feature")
    edited = apply_ops(opened.text, [{"op": "set", "path": "stages[0].name", "value": "Compile"}])
    sha = do_commit_pipeline_file(pipeline, user=bob, branch="feature", path=opened.path, text=edited,
                                  message="Rename the stage", expected_head=opened.head)
    assert git(path, "rev-parse", "feature") == sha
    assert git(path, "log", "-1", "--format=%an <%ae> %s", sha) == "Bob Builder <bob@example.com> Rename the stage"
    assert git(path, "show", f"{sha}:.rancher-pipeline.yml") + "\n" == edited
    # Saving again from the old head is refused: the branch moved.
    with pytest.raises(BranchMoved):
        do_commit_pipeline_file(pipeline, user=bob, branch="feature", path=opened.path, text=RANCHER,
                                message="stale", expected_head=opened.head)
    # A file with lint errors is never committed.
    with pytest.raises(PipelineFileInvalid) as err:
        do_commit_pipeline_file(pipeline, user=bob, branch="feature", path=opened.path, text="stages: 3\n",
                                message="bad", expected_head=sha)
    assert "stages" in str(err.value) and git(path, "rev-parse", "feature") == sha


def test_a_branch_without_a_file_opens_the_starter(repo_pipeline):
    pipeline, path = repo_pipeline
    git(path, "checkout", "-q", "--orphan", "empty")
    git(path, "rm", "-q", "-r", "--cached", ".")
    git(path, "commit", "-q", "--allow-empty", "-m", "nothing")
    git(path, "checkout", "-q", "-f", "master")
    opened = open_pipeline_file(pipeline, "empty")
    assert opened.starter and opened.path == ".devops.yml" and opened.text == starter_pipeline()
