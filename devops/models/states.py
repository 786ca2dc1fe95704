"""Execution, stage and step states, each with its one-line meaning.

The allowed transitions live in devops/controller/actions/transitions.py (`do_*`), not here.
"""
from __future__ import annotations

from django.db import models


class ExecutionState(models.TextChoices):
    WAITING = "Waiting", "Waiting"      # created; not yet admitted by the controller (or a step not yet started)
    QUEUEING = "Queueing", "Queueing"   # over the project's executor-quota; waits for a slot
    BUILDING = "Building", "Building"   # handed to the engine; running
    SUCCESS = "Success", "Success"      # finished, every step passed or was skipped
    FAILED = "Failed", "Failed"         # finished, a step failed or the run could not be carried out
    ABORTED = "Aborted", "Aborted"      # stopped by a user
    DENIED = "Denied", "Denied"         # refused before running (e.g. untrusted pull request)
    SKIPPED = "Skipped", "Skipped"      # stage/step whose `when` did not match

    @classmethod
    def finished(cls) -> frozenset[str]:
        return frozenset({cls.SUCCESS, cls.FAILED, cls.ABORTED, cls.DENIED, cls.SKIPPED})

    @classmethod
    def active(cls) -> frozenset[str]:
        return frozenset({cls.WAITING, cls.QUEUEING, cls.BUILDING})
