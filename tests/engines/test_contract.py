"""The engine contract (devops/engines/base.py) holds what the controller relies on, and nothing unused."""
from __future__ import annotations

import inspect
from pathlib import Path

from devops.engines.base import PipelineEngine, ProjectSpec

CONTROLLER = Path(__file__).resolve().parents[2] / "devops" / "controller"


def test_every_contract_method_is_called_by_the_controller():
    methods = [n for n, _ in inspect.getmembers(PipelineEngine, inspect.isfunction) if not n.startswith("_")]
    assert sorted(methods) == ["can_reach", "cleanup", "deploy", "pre_check", "prune", "run", "stop", "stored_runs", "sync"]
    source = "\n".join(p.read_text() for p in CONTROLLER.rglob("*.py"))
    for name in methods:
        assert f"engine.{name}(" in source, f"PipelineEngine.{name} is in the contract but never called"


def test_deploy_is_typed_with_the_plain_project_spec():
    hints = inspect.signature(PipelineEngine.deploy).parameters
    assert list(hints) == ["self", "project"]
    assert hints["project"].annotation in (ProjectSpec, "ProjectSpec")
    doc = inspect.getmodule(PipelineEngine).__doc__
    for promise in ("IDEMPOTENT PER EXECUTION", "from ANY controller process", "cheap", "ProjectSpec"):
        assert promise in doc
