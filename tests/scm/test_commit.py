"""devops.scm.commit: the editor's read and commit, pushed to a real smart-HTTP server on loopback."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devops.pipeline import apply_ops
from devops.scm import git as g
from devops.scm.commit import (
    FILE_STORES,
    BranchExists,
    BranchMoved,
    CommitError,
    RepoSpec,
    commit_file,
    read_file,
    store_for,
)
from tests.gitserver import basic, git_http_server

TOKEN = "tok-editor-5e4d3c2b1a"
RANCHER = """\
# Build it
stages:
  - name: Build
    when:
      event: [ push, pull_request ]
    steps:
      # the compiler
      - runScriptConfig:
          image: golang:1.21   # pinned
          shellScript: go build ./...
"""


def git(cwd: Path, *args: str, env: dict | None = None) -> str:
    base = {"GIT_AUTHOR_NAME": "Tess", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "Tess",
            "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(cwd), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env={**base, **(env or {})}, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def served(tmp_path):
    """(server, bare repository, work clone): a repo with a Rancher file on `main`, served with Basic auth."""
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / ".rancher-pipeline.yml").write_text(RANCHER)
    (work / "run.sh").write_text("#!/bin/sh\n")
    (work / "run.sh").chmod(0o755)
    git(work, "add", "-A")
    git(work, "commit", "-qm", "first")
    bare = tmp_path / "srv" / "app.git"
    bare.parent.mkdir()
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    git(bare, "config", "http.receivepack", "true")
    with git_http_server(bare.parent, basic("ci", TOKEN)) as server:
        yield server, bare, work


def spec(server, tmp_path) -> RepoSpec:
    return RepoSpec(url=f"{server.base_url}/app.git", auth=g.Auth(token=TOKEN, username="ci"),
                    data_dir=tmp_path / "data")


def test_read_then_commit_a_one_line_change(served, tmp_path):
    server, bare, _ = served
    repo = spec(server, tmp_path)
    opened = read_file(repo, "main")
    assert opened.path == ".rancher-pipeline.yml" and opened.text == RANCHER
    assert opened.head == git(bare, "rev-parse", "main")
    new_text = apply_ops(opened.text, [{"op": "set", "path": "stages[0].steps[0].runScriptConfig.image",
                                        "value": "golang:1.22"}])
    sha = commit_file(repo, "main", opened.path, new_text, "Use Go 1.22", "Ada Lovelace", "ada@example.com",
                      expected_head=opened.head)
    # The server has the commit: on main, parent = the opened head, author = the user, one line changed.
    assert git(bare, "rev-parse", "main") == sha
    assert git(bare, "rev-parse", f"{sha}^") == opened.head
    assert git(bare, "log", "-1", "--format=%an <%ae>|%cn|%B", sha) == "Ada Lovelace <ada@example.com>|Ada Lovelace|Use Go 1.22"
    assert git(bare, "show", f"{sha}:.rancher-pipeline.yml") + "\n" == new_text
    diff = git(bare, "diff", "--unified=0", opened.head, sha)
    changed = [ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    assert changed == ["-          image: golang:1.21   # pinned", "+          image: golang:1.22   # pinned"]
    # Only that file changed, and the other file kept its mode.
    assert git(bare, "diff", "--name-only", opened.head, sha) == ".rancher-pipeline.yml"
    assert git(bare, "ls-tree", sha, "run.sh").startswith("100755")
    # Every request carried the credential; it was never in a URL.
    assert server.seen and all(a == basic("ci", TOKEN) for a in server.seen if a)
    assert all(TOKEN not in p for p in server.paths)
    mirror = g.mirror_path(tmp_path / "data", repo.url)
    assert TOKEN not in (mirror / "config").read_text()
    # The mirror (what runs read) has the commit at once.
    assert read_file(repo, "main") == type(opened)(sha, ".rancher-pipeline.yml", new_text)


def test_commit_to_a_new_branch(served, tmp_path):
    server, bare, _ = served
    repo = spec(server, tmp_path)
    opened = read_file(repo, "main")
    sha = commit_file(repo, "main", ".devops.yml", "stages: []\n", "Add .devops.yml", "Ada", "ada@example.com",
                      expected_head=opened.head, new_branch="editor/try")
    assert git(bare, "rev-parse", "editor/try") == sha
    assert git(bare, "rev-parse", "main") == opened.head  # main untouched
    assert git(bare, "rev-parse", f"{sha}^") == opened.head
    assert read_file(repo, "editor/try").path == ".devops.yml"  # .devops.yml wins over the Rancher file
    with pytest.raises(BranchExists, match="editor/try already exists"):
        commit_file(repo, "main", ".devops.yml", "x: 1\n", "again", "Ada", "ada@example.com",
                    expected_head=opened.head, new_branch="editor/try")
    assert git(bare, "rev-parse", "editor/try") == sha


def test_a_branch_that_moved_is_never_overwritten(served, tmp_path):
    server, bare, work = served
    repo = spec(server, tmp_path)
    opened = read_file(repo, "main")
    # Someone else pushes to main after the editor opened it.
    (work / "README").write_text("other change\n")
    git(work, "add", "README")
    git(work, "commit", "-qm", "someone else")
    git(work, "push", "-q", str(bare), "main")
    theirs = git(bare, "rev-parse", "main")
    with pytest.raises(BranchMoved) as err:
        commit_file(repo, "main", opened.path, "stages: []\n", "mine", "Ada", "ada@example.com",
                    expected_head=opened.head)
    assert err.value.actual == theirs and "reload" in str(err.value)
    assert git(bare, "rev-parse", "main") == theirs


def test_a_push_refused_as_non_fast_forward_is_branch_moved(served, tmp_path, monkeypatch):
    """The race after the check: the remote moves between our fetch and our push."""
    server, bare, work = served
    repo = spec(server, tmp_path)
    opened = read_file(repo, "main")
    store = store_for(repo)
    original = g.update_mirror

    def fetch_then_someone_pushes(*args, **kwargs):
        mirror = original(*args, **kwargs)
        if not (work / "late").exists():
            (work / "late").write_text("x")
            git(work, "add", "late")
            git(work, "commit", "-qm", "late push")
            git(work, "push", "-q", str(bare), "main")
        return mirror

    # A real push by someone else, made right after our fetch: our mirror still
    # says main is at opened.head, so only the server's refusal can catch it.
    monkeypatch.setattr(g, "update_mirror", fetch_then_someone_pushes)
    with pytest.raises(BranchMoved):
        store.commit_file(repo, "main", opened.path, "stages: []\n", "mine", "Ada", "ada@example.com",
                          opened.head)
    assert git(bare, "log", "-1", "--format=%s", "main") == "late push"


def test_a_branch_without_a_pipeline_file(served, tmp_path):
    server, bare, work = served
    git(work, "checkout", "-q", "-b", "empty")
    git(work, "rm", "-q", ".rancher-pipeline.yml")
    git(work, "commit", "-qm", "no pipeline")
    git(work, "push", "-q", str(bare), "empty")
    opened = read_file(spec(server, tmp_path), "empty")
    assert opened.text is None and opened.path == ".devops.yml"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"path": "../x"}, "not a file path"),
    ({"path": ".git/config"}, "not a file path"),
    ({"author_name": "A <b>"}, "author name"),
    ({"author_email": ""}, "author email"),
    ({"message": " "}, "message is empty"),
    ({"expected_head": "main"}, "full commit id"),
    ({"new_branch": "bad..name"}, "not a valid branch"),
    ({"branch": "-f"}, "not a valid branch"),
])
def test_bad_input_is_refused_before_anything_runs(kwargs, message, tmp_path):
    args = {"repo": RepoSpec(url=str(tmp_path / "none")), "branch": "main", "path": ".devops.yml",
            "text": "a: 1\n", "message": "m", "author_name": "A", "author_email": "a@example.com",
            "expected_head": "0" * 40, **kwargs}
    with pytest.raises(CommitError, match=message):
        commit_file(**args)


def test_the_store_table_defaults_to_generic_git():
    assert "git" in FILE_STORES
    assert type(store_for(RepoSpec(url="x", provider="github"))).__name__ == "GitFileStore"
    assert "tok" not in repr(RepoSpec(url="x", auth=g.Auth(token="tok")))


def test_a_push_the_server_refuses_says_why(served, tmp_path):
    """A hook-like refusal (here: a non-bare repository's checked-out branch) is a CommitError
    with the server's reason, not BranchMoved."""
    _, _, work = served
    repo = RepoSpec(url=str(work), data_dir=tmp_path / "data")
    opened = read_file(repo, "main")
    with pytest.raises(CommitError, match="checked out") as err:
        commit_file(repo, "main", opened.path, "stages: []\n", "m", "Ada", "ada@example.com", opened.head)
    assert not isinstance(err.value, BranchMoved)
