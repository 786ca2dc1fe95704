"""The CRD-mirroring models (DESIGN §2). Import from here: `from devops.models import Pipeline`."""
from __future__ import annotations

from devops.models.execution import ControllerNode, PipelineExecution, StageStatus, StepStatus
from devops.models.ids import random_id
from devops.models.notify import DeliveryState, NotificationDelivery, Notifier
from devops.models.pipeline import Pipeline
from devops.models.project import (
    DEFAULT_SETTINGS,
    PipelineSetting,
    Project,
    ProjectMember,
    Role,
    Secret,
)
from devops.models.registry import RegistryCredential
from devops.models.scm import (
    CommitStatus,
    SourceCodeCredential,
    SourceCodeProviderConfig,
    SourceCodeRepository,
)
from devops.models.states import ExecutionState
from devops.models.triggers import WebhookDelivery

__all__ = [
    "DEFAULT_SETTINGS",
    "CommitStatus",
    "ControllerNode",
    "DeliveryState",
    "ExecutionState",
    "NotificationDelivery",
    "Notifier",
    "Pipeline",
    "PipelineExecution",
    "PipelineSetting",
    "Project",
    "ProjectMember",
    "RegistryCredential",
    "Role",
    "Secret",
    "SourceCodeCredential",
    "SourceCodeProviderConfig",
    "SourceCodeRepository",
    "StageStatus",
    "StepStatus",
    "WebhookDelivery",
    "random_id",
]
