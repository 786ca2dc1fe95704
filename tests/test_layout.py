"""docs/architecture.md's import rules are enforced: `lint-imports` (pyproject's [tool.importlinter]).

The suite runs it on the tree as it is, and on a temporary copy with one
planted violation per rule, so a contract that stopped matching anything
would be noticed here.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
                          cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_every_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module,line,contract", [
    # the cycle issue 9 removed: the cache importing the engine it serves
    ("devops/cache/store.py", "from devops.engines.local.context import Mount", "Layers"),
    ("devops/pipeline/config.py", "import django.db", "The pipeline package never imports Django"),
    ("devops/engines/local/state.py", "from devops.models import Project", "Engines see plain data"),
    ("devops/logs/writer.py", "from django.db import connection", "Django-free cores"),
    ("devops/quantity.py", "from django.conf import settings", "Django-free cores"),
    ("devops/engines/local/runner.py", "from devops.controller import actions", "Layers"),
    ("devops/dataplane/objects.py", "from devops.models import Project", "The data plane sees plain data"),
    ("devops/dataplane/reconcile.py", "from devops.engines.local import engine", "Layers"),
])
def test_a_planted_violation_fails_lint_imports(tmp_path, module, line, contract):
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(ROOT / "pyproject.toml", copy)
    shutil.copytree(ROOT / "devops", copy / "devops", ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text() + f"\n{line}  # planted\n")
    result = lint_imports(copy)
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken and "planted" not in result.stderr
    assert module.removesuffix(".py").replace("/", ".") in broken


# Lazy imports by name are the registry tables' job (devops/kinds.py), where the
# names are rows of a table; anywhere else they would hide an import from
# lint-imports (as the runner's string imports of the controller and the cache did).
BY_NAME_ALLOWED = {
    "devops/kinds.py",
    "devops/engines/local/steps/__init__.py",        # the step kinds' table (KINDS)
    "devops/management/commands/pipeline.py",        # the subcommands' table
}


def test_nothing_is_imported_by_a_name_string_outside_the_tables():
    offenders = []
    for path in sorted((ROOT / "devops").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("devops/migrations/") or rel in BY_NAME_ALLOWED:
            continue
        text = path.read_text()
        if "import_module" in text or "__import__(" in text:
            offenders.append(rel)
    assert offenders == []
