"""`manage.py pipeline lint|show` (issue 2 point 4): output format and exit codes."""
from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from devops.pipeline import PIPELINE_FILENAMES, find_pipeline_file, load
from tests.controller.conftest import make_repo

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<warn>warning: )?(?P<path>\S+): (?P<msg>.+)$")
GOOD = "stages:\n- name: a\n  steps:\n  - runScriptConfig: {image: alpine, shellScript: make}\n"


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("pipeline", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def files(tmp_path):
    (tmp_path / "good.yml").write_text(GOOD)
    (tmp_path / "warn.yml").write_text(GOOD + "name: legacy\n")
    (tmp_path / "bad.yml").write_text(GOOD.replace("image: alpine, ", "") + "timeout: soon\n")
    (tmp_path / "syntax.yml").write_text("stages:\ninvalid line\n- name: x\n")
    return tmp_path


def test_lint_clean_file_prints_nothing(files):
    assert run("lint", str(files / "good.yml")) == (0, "", "")


def test_lint_warnings_pass_and_are_marked(files):
    code, out, _ = run("lint", str(files / "warn.yml"))
    assert code == 0
    (line,) = out.splitlines()
    m = LINE.match(line)
    assert m and m["warn"] and m["path"] == "name" and m["line"] == "5" and m["col"] == "1"
    assert m["file"] == str(files / "warn.yml")


def test_lint_errors_fail_with_one_line_each(files):
    code, out, _ = run("lint", str(files / "good.yml"), str(files / "bad.yml"))
    assert code == 1
    lines = out.splitlines()
    parsed = [LINE.match(ln) for ln in lines]
    assert all(parsed), lines
    assert [(m["path"], m["line"], bool(m["warn"])) for m in parsed] == [
        ("stages[0].steps[0].runScriptConfig.image", "4", False),
        ("timeout", "5", False),
    ]
    assert all(m["file"].endswith("bad.yml") for m in parsed)


def test_lint_syntax_error_at_the_line_found(files):
    code, out, _ = run("lint", str(files / "syntax.yml"))
    assert code == 1
    m = LINE.match(out.strip())
    assert m["path"] == "(document)" and m["line"] == "3" and "YAML syntax error" in m["msg"]


def test_lint_missing_file(files):
    code, out, _ = run("lint", str(files / "good.yml"), str(files / "nope.yml"))
    assert code == 1 and "nope.yml:1:1: (document): cannot read" in out


def test_lint_directory_finds_the_pipeline_file(files):
    (files / ".rancher-pipeline.yml").write_text(GOOD + "timeout: soon\n")
    code, out, _ = run("lint", str(files))
    assert code == 1 and out.startswith(str(files / ".rancher-pipeline.yml") + ":5:")


def test_show_prints_normalised_yaml(files):
    code, out, err = run("show", str(files / "warn.yml"))
    assert code == 0
    assert out.startswith("stages:\n  - name: Clone\n    steps:\n      - sourceCodeConfig: {}\n")
    assert "timeout: 60" in out
    assert load(out).config == load(GOOD).config
    assert "warning: name" in err


def test_show_on_error_prints_lint_lines_and_fails(files):
    code, out, err = run("show", str(files / "bad.yml"))
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 2 and all(LINE.match(ln) for ln in err.splitlines())


def test_fixture_files_through_the_command(fixtures_dir):
    d = fixtures_dir / "rancher-pipelines"
    # 044 (pushRemote without a registry) is one Rancher fails at run time: lint says so
    code, out, _ = run("lint", *(str(p) for p in sorted(d.glob("0[0-4]*.yml")) if p.name < "047" and p.name[:3] != "044"))
    assert code == 0
    assert all(LINE.match(ln)["warn"] for ln in out.splitlines())
    assert run("lint", str(d / "047-KTPL-DevOps__mage-2.3.yml"))[0] == 1


def test_real_process_exit_codes(files):
    def proc(*args):
        return subprocess.run(
            [sys.executable, "manage.py", "pipeline", *args],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )

    # one process (Django start-up is the cost); exit 0 is covered through call_command
    bad = proc("lint", str(files / "warn.yml"), str(files / "bad.yml"))
    assert bad.returncode == 1 and bad.stdout.count("\n") == 3 and "warning: name" in bad.stdout


def test_find_pipeline_file_order(tmp_path):
    assert find_pipeline_file(tmp_path) is None
    for name in reversed(PIPELINE_FILENAMES):
        (tmp_path / name).write_text(GOOD)
        assert find_pipeline_file(tmp_path) == tmp_path / name
    # Slipway's own name first, then Rancher's order (its GitHub and Bitbucket providers): .yaml, .yml
    assert PIPELINE_FILENAMES == (".devops.yml", ".rancher-pipeline.yaml", ".rancher-pipeline.yml")
    (tmp_path / ".devops.yml").unlink()
    (tmp_path / ".devops.yml").symlink_to("/etc/hostname")
    assert find_pipeline_file(tmp_path) == tmp_path / ".rancher-pipeline.yaml"
    (tmp_path / ".rancher-pipeline.yaml").unlink()
    assert find_pipeline_file(tmp_path) == tmp_path / ".rancher-pipeline.yml"


def test_the_controller_chooses_the_pipeline_file_in_the_same_order(tmp_path):
    # read_source() asks git for the first of PIPELINE_FILENAMES at the commit
    from devops.scm import git

    repo = tmp_path / "repo"
    head = make_repo(repo, {".rancher-pipeline.yml": GOOD, ".rancher-pipeline.yaml": GOOD + "timeout: 5\n"})
    mirror = git.update_mirror(tmp_path / "data", str(repo))
    assert git.find_file(mirror, head, PIPELINE_FILENAMES) == ".rancher-pipeline.yaml"
    head = make_repo(tmp_path / "both", {".devops.yml": GOOD, ".rancher-pipeline.yaml": GOOD})
    mirror = git.update_mirror(tmp_path / "data", str(tmp_path / "both"))
    assert git.find_file(mirror, head, PIPELINE_FILENAMES) == ".devops.yml"


def test_lint_refuses_a_huge_file_without_reading_it(files):
    import tracemalloc

    huge = files / "huge.yml"
    with huge.open("wb") as f:  # sparse: 64 MiB that cost no disk
        f.truncate(64 * 1024 * 1024)
    tracemalloc.start()
    try:
        code, out, _ = run("lint", str(huge), str(files / "good.yml"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 1
    assert out == f"{huge}:1:1: (document): the file is 67108864 bytes; the limit is 1048576 bytes (1 MiB)\n"
    assert peak < 8 * 1024 * 1024  # at most the limit is read, not the file
