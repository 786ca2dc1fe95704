from __future__ import annotations

from django.conf import settings
from django.db import models

from devops.models.states import ExecutionState


class PipelineExecution(models.Model):
    """One run of a pipeline, named `<pipeline>-<run>`.

    `config` is the full normalised pipeline config used (plain JSON), so a
    rerun repeats exactly what ran. Stage and step status live in their own
    tables for cheap live updates; the API still renders the CRD shape.
    """

    project = models.ForeignKey("devops.Project", on_delete=models.CASCADE, related_name="executions")
    pipeline = models.ForeignKey("devops.Pipeline", on_delete=models.CASCADE, related_name="executions")
    name = models.CharField(max_length=128, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    # --- spec
    run = models.PositiveIntegerField()
    branch = models.CharField(max_length=255, blank=True)
    ref = models.CharField(max_length=512, blank=True)
    commit = models.CharField(max_length=64, blank=True)
    message = models.TextField(blank=True)
    author = models.CharField(max_length=255, blank=True)
    author_email = models.CharField(max_length=255, blank=True)
    event = models.CharField(max_length=32, blank=True)  # push | pull_request | tag | "" (manual)
    trigger_type = models.CharField(max_length=32, default="user")  # user | webhook | poll | cron | image
    trigger_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    repository_url = models.CharField(max_length=1024, blank=True)
    config = models.JSONField(default=dict, blank=True)
    config_text = models.TextField(blank=True)  # the YAML as written (temporary config or file)
    temporary_config = models.BooleanField(default=False)
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # --- status
    execution_state = models.CharField(
        max_length=16, choices=ExecutionState.choices, default=ExecutionState.WAITING
    )
    started = models.DateTimeField(null=True, blank=True)
    ended = models.DateTimeField(null=True, blank=True)
    conditions = models.JSONField(default=list, blank=True)  # [{type, status, lastUpdateTime, reason, message}]
    node = models.CharField(max_length=255, blank=True)
    engine = models.CharField(max_length=32, blank=True)
    engine_handle = models.JSONField(default=dict, blank=True)  # pid, workspace, Jenkins build number...
    error = models.TextField(blank=True)
    abort_requested = models.BooleanField(default=False)
    # The controller node (SLIPWAY_NODE_NAME) that handed it to the engine and
    # owns its runner: only that node syncs and stops it, until its heartbeat
    # (ControllerNode) goes stale. "" = not claimed yet.
    controller_node = models.CharField(max_length=255, blank=True)
    # A controller unit (admit, start, sync, stop) that raised on this row:
    # the last error, how many times in a row, and when to try again.
    # Cleared by the next unit that succeeds; Failed after too many attempts.
    unit_error = models.TextField(blank=True)
    unit_attempts = models.PositiveIntegerField(default=0)
    unit_retry_at = models.DateTimeField(null=True, blank=True)
    # Notifications (devops/controller/notifications.py): False until the
    # controller has planned this finished run's notifications (the
    # NotificationDelivery rows are written in the same transaction).
    notified = models.BooleanField(default=False)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "run"], name="uniq_run")]
        indexes = [
            # The controller's pass reads only active executions: this index
            # keeps it O(active), not O(history).
            models.Index(
                fields=["execution_state", "created"],
                name="exec_active_idx",
                condition=models.Q(execution_state__in=["Waiting", "Queueing", "Building"]),
            ),
            models.Index(fields=["project", "execution_state"]),
            # Stopped executions whose runner the controller has yet to stop
            # (tick_abort, quota): few rows, found without scanning history.
            models.Index(fields=["project"], name="exec_abort_idx", condition=models.Q(abort_requested=True)),
            # tick_notify: finished runs whose notifications are not planned yet (few rows).
            models.Index(fields=["created"], name="exec_notify_idx", condition=models.Q(notified=False)),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_finished(self) -> bool:
        return self.execution_state in ExecutionState.finished()


class StageStatus(models.Model):
    execution = models.ForeignKey(PipelineExecution, on_delete=models.CASCADE, related_name="stages")
    index = models.PositiveIntegerField()  # counts the implicit Clone stage
    name = models.CharField(max_length=255)
    state = models.CharField(max_length=16, choices=ExecutionState.choices, default=ExecutionState.WAITING)
    started = models.DateTimeField(null=True, blank=True)
    ended = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["execution_id", "index"]
        constraints = [models.UniqueConstraint(fields=["execution", "index"], name="uniq_stage")]


class StepStatus(models.Model):
    execution = models.ForeignKey(PipelineExecution, on_delete=models.CASCADE, related_name="steps")
    stage_index = models.PositiveIntegerField()
    index = models.PositiveIntegerField()
    name = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=16, choices=ExecutionState.choices, default=ExecutionState.WAITING)
    started = models.DateTimeField(null=True, blank=True)
    ended = models.DateTimeField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    message = models.TextField(blank=True)  # why it failed / was skipped
    runtime = models.CharField(max_length=32, blank=True)  # container | sandbox | host | dummy
    attempts = models.PositiveIntegerField(default=0)
    handle = models.JSONField(default=dict, blank=True)  # engine-specific: pid, container id...
    image_digest = models.CharField(max_length=128, blank=True)  # publishImage steps
    log_size = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["execution_id", "stage_index", "index"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "stage_index", "index"], name="uniq_step")
        ]


class ControllerNode(models.Model):
    """A controller node and its last heartbeat (written every pass, at most once a second).

    A node whose heartbeat is older than SLIPWAY_NODE_TIMEOUT is considered
    lost: another node may adopt its executions (DESIGN §4, README).
    """

    name = models.CharField(max_length=255, unique=True)
    heartbeat_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name
