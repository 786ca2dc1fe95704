"""devops.scm.git: mirrors, resolving, reading files; credentials never in argv or messages."""
from __future__ import annotations

import os
import stat

import pytest

from devops.scm import git as g

from .conftest import git, make_repo


def test_mirror_resolve_and_read(tmp_path):
    repo = tmp_path / "r"
    head = make_repo(repo, {".rancher-pipeline.yml": "stages: []\n", "sub/x": "y"}, branch="trunk")
    mirror = g.update_mirror(tmp_path / "data", str(repo))
    assert mirror == g.mirror_path(tmp_path / "data", str(repo)) and (mirror / "HEAD").exists()
    assert g.default_branch(mirror) == "trunk"
    assert g.resolve_commit(mirror, "trunk") == head
    assert g.resolve_commit(mirror, head[:10]) == head
    assert g.find_file(mirror, head, (".devops.yml", ".rancher-pipeline.yml")) == ".rancher-pipeline.yml"
    assert g.read_file(mirror, head, ".rancher-pipeline.yml") == b"stages: []\n"
    assert g.read_file(mirror, head, "missing") is None
    assert g.commit_info(mirror, head).message == "first commit"
    # New commits and branches arrive with the next fetch.
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "f").write_text("f")
    git(repo, "add", "f")
    git(repo, "commit", "-qm", "feature work")
    g.update_mirror(tmp_path / "data", f"file://{repo}")  # another URL: another mirror
    g.update_mirror(tmp_path / "data", str(repo))
    assert g.resolve_commit(mirror, "feature") == git(repo, "rev-parse", "HEAD")
    with pytest.raises(g.GitError, match="no branch"):
        g.resolve_commit(mirror, "--upload-pack=evil")


def _peak_of(fn) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with pytest.raises(g.FileTooLarge) as err:
            fn()
        assert err.value.size > err.value.limit == 1 << 20
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_huge_file_is_refused_by_its_size_without_being_read(tmp_path):
    """A 60 MB pipeline file was read whole (115 MiB) before it was refused."""
    peaks = {}
    for mib in (4, 40):
        repo = tmp_path / f"r{mib}"
        make_repo(repo, {"README": "hi\n"})
        (repo / ".devops.yml").write_bytes(b"# padding\n" * (mib * (1 << 20) // 10))
        git(repo, "add", ".devops.yml")
        git(repo, "commit", "-qm", "big")
        head = git(repo, "rev-parse", "HEAD")
        mirror = g.update_mirror(tmp_path / "data", str(repo))
        peaks[mib] = _peak_of(lambda m=mirror, h=head: g.read_file(m, h, ".devops.yml"))
    assert peaks[40] < 1 << 20 and peaks[40] < peaks[4] + (256 << 10), peaks


def test_token_travels_in_env_not_argv_and_errors_are_scrubbed(tmp_path):
    auth = g.Auth(token="s3cr3t-token", username="bot")
    with g.git_env(auth) as env:
        assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
        assert env["GIT_CONFIG_VALUE_0"].startswith("Authorization: Basic ")
        assert env["GIT_TERMINAL_PROMPT"] == "0"
    with pytest.raises(g.GitError) as err:
        # A URL containing the token (a user's mistake) must not leak through the error.
        g.run_git(["ls-remote", f"file://{tmp_path}/s3cr3t-token/nothing"], auth=auth)
    assert "s3cr3t-token" not in str(err.value) and "***" in str(err.value)
    mirror = g.mirror_path(tmp_path, "https://example.invalid/org/app.git")
    assert mirror.name.startswith("app-") and mirror.parent.name == "mirrors"


def test_ssh_key_is_a_private_file_that_disappears(tmp_path):
    with g.git_env(g.Auth(ssh_private_key="-----BEGIN KEY-----\nabc\n-----END KEY-----")) as env:
        cmd = env["GIT_SSH_COMMAND"]
        key = cmd.split("-i ")[1].split()[0]
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
        assert "BEGIN KEY" not in cmd
    assert not os.path.exists(key)


def test_url_kinds():
    assert g.is_remote("https://github.com/a/b.git") and g.is_remote("git@github.com:a/b.git")
    assert g.is_remote("ssh://git@host/a") and not g.is_remote("file:///tmp/x") and not g.is_remote("/tmp/x")
    assert g.normalise_url("relative/dir").startswith("/")


def test_token_reaches_an_http_git_server_as_basic_auth(tmp_path):
    """A real smart-HTTP git server on loopback (git http-backend) that demands the token."""
    from tests.gitserver import basic, git_http_server

    root = tmp_path / "srv"
    head = make_repo(root / "app", {".devops.yml": "stages: []\n"})
    git(root / "app", "config", "http.receivepack", "false")
    expected = basic("bot", "tok-42")
    with git_http_server(root, expected) as server:
        url = f"{server.base_url}/app"
        with pytest.raises(g.GitError) as err:
            g.update_mirror(tmp_path / "nope", url)  # no token: refused, no prompt
        assert "tok-42" not in str(err.value)
        mirror = g.update_mirror(tmp_path / "data", url, g.Auth(token="tok-42", username="bot"))
        assert g.resolve_commit(mirror, "main") == head
        assert "tok-42" not in (mirror / "config").read_text()
        assert expected in server.seen


def test_ssh_url_is_fetched_through_ssh_with_the_key(tmp_path, monkeypatch):
    """An ssh:// URL with a key end to end through git's ssh transport.

    No sshd on this machine: a stand-in `ssh` first on PATH records what git
    gave it (our GIT_SSH_COMMAND's `-i KEY`) and runs the remote command
    (`git-upload-pack '/path'`) locally, as sshd would.
    """
    head = make_repo(tmp_path / "srv" / "app", {".devops.yml": "stages: []\n"})
    key_text = "-----BEGIN OPENSSH PRIVATE KEY-----\nfake-key-material\n-----END OPENSSH PRIVATE KEY-----"
    bindir, seen = tmp_path / "bin", tmp_path / "seen"
    bindir.mkdir()
    (bindir / "ssh").write_text(
        "#!/bin/sh\n"
        'key=""\n'
        'while [ $# -gt 2 ]; do case "$1" in -i) key="$2"; shift 2;; -o|-p) shift 2;; *) shift;; esac; done\n'
        f'{{ echo "$key"; echo "host=$1"; echo "cmd=$2"; stat -c %a "$key"; cat "$key"; }} > {seen}\n'
        'exec sh -c "$2"\n'
    )
    (bindir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    url = f"ssh://git@example.invalid{tmp_path}/srv/app"
    mirror = g.update_mirror(tmp_path / "data", url, g.Auth(ssh_private_key=key_text))
    assert g.resolve_commit(mirror, "main") == head
    record = seen.read_text()
    assert "host=git@example.invalid" in record and "git-upload-pack" in record
    assert "\n600\n" in record and key_text in record  # the key, in a 0600 file
    assert not os.path.exists(record.splitlines()[0])  # the key file is gone afterwards
    assert "fake-key-material" not in (mirror / "config").read_text()
    with pytest.raises(g.GitError) as err:  # without the key the stand-in fails like ssh would
        (bindir / "ssh").write_text("#!/bin/sh\necho 'Permission denied (publickey).' >&2\nexit 255\n")
        g.update_mirror(tmp_path / "data2", url, g.Auth(ssh_private_key=key_text))
    assert "Permission denied" in str(err.value) and "fake-key-material" not in str(err.value)
