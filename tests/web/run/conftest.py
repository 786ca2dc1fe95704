"""Fixtures of the execution page's tests: a pipeline with runs made through the actions' own path."""
from __future__ import annotations

import pytest

from tests.controller.conftest import make_config, new_execution


@pytest.fixture
def data_dir(tmp_path, settings):
    """DATA_DIR (status bells, doorbell, logs, workspaces) under tmp_path."""
    from devops.logs import get_log_store

    d = tmp_path / "data"
    d.mkdir()
    settings.DATA_DIR = d
    settings.SLIPWAY_LOG_STORE = f"file://{d / 'logs'}"
    settings.SLIPWAY_WORKSPACE_DIR = d / "workspaces"
    get_log_store.cache_clear()
    yield d
    get_log_store.cache_clear()


@pytest.fixture
def pipeline(project, data_dir):
    from devops.models import Pipeline

    return Pipeline.objects.create(project=project, name="web", repository_url="/nonexistent/repo",
                                   default_branch="master")


@pytest.fixture
def run(pipeline):
    """Run 1 of `pipeline`: Clone + one stage of one step, Waiting."""
    return new_execution(pipeline, make_config([{}]))
