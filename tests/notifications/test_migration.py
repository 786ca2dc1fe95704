"""0005: runs that existed before notifications count as notified (an upgrade notifies no history)."""
from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


@pytest.mark.django_db(transaction=True)
def test_existing_runs_are_not_notified_after_the_upgrade():
    executor = MigrationExecutor(connection)
    graph = executor.loader.graph
    # By name, not number: migrations are renumbered when branches merge.
    node = next(n for n in graph.nodes if n[0] == "devops" and n[1].endswith("_notify"))
    before = [p.key for p in graph.node_map[node].parents if p.key[0] == "devops"]
    after = [node]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    project = old.get_model("devops", "Project").objects.create(id="p-mig01", name="mig")
    pipeline = old.get_model("devops", "Pipeline").objects.create(project=project, name="p-mig02",
                                                                  repository_url="/x")
    old.get_model("devops", "PipelineExecution").objects.create(
        project=project, pipeline=pipeline, name="p-mig02-1", run=1, execution_state="Success",
        config={"notification": {"recipients": [[["recipient", "a@example.com"], ["notifier", "mail"]]],
                                 "condition": ["Success"]}})
    executor = MigrationExecutor(connection)
    executor.migrate(after)
    new = executor.loader.project_state(after).apps
    Execution = new.get_model("devops", "PipelineExecution")
    assert Execution.objects.get(name="p-mig02-1").notified is True
    fresh = Execution.objects.create(project_id="p-mig01", pipeline_id=pipeline.pk, name="p-mig02-2", run=2)
    assert Execution.objects.get(pk=fresh.pk).notified is False
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # back to the latest schema for the next tests
