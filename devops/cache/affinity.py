"""Cache locality for the Kubernetes engine (DESIGN §6): pure functions, no Django, no I/O.

A Jenkins agent pod keeps its caches on a hostPath under `devops-cache-dir`,
so the next run is faster on a node that ran the pipeline before. After each
run the node is recorded in the pipeline's `executionScheduledInfo` (newest
first, no duplicates, bounded); the next pod gets *preferred* node affinity
for the 10 most recent nodes with weight `100 - 10*i` (100, 90, ..., 10):
the scheduler favours warm nodes but never waits for one.
"""
from __future__ import annotations

from typing import Any

MAX_NODES = 10
HOSTNAME_LABEL = "kubernetes.io/hostname"


def record_node(scheduled_info: list[str] | None, node: str, *, limit: int = MAX_NODES) -> list[str]:
    """`scheduled_info` with `node` moved to the front (newest first), deduplicated, at most `limit`.

    Returns a new list; an empty node name (run not scheduled) changes nothing.
    """
    current = [n for n in (scheduled_info or []) if isinstance(n, str) and n]
    if not node:
        return current[:limit]
    return ([node] + [n for n in current if n != node])[:limit]


def preferred_node_affinity(scheduled_info: list[str] | None, *, label: str = HOSTNAME_LABEL,
                            limit: int = MAX_NODES) -> list[dict[str, Any]]:
    """`preferredDuringSchedulingIgnoredDuringExecution` terms: node i (0 = newest) gets 100 - 10*i."""
    nodes = record_node(scheduled_info, "", limit=limit)
    return [
        {
            "weight": 100 - 10 * i,
            "preference": {"matchExpressions": [{"key": label, "operator": "In", "values": [node]}]},
        }
        for i, node in enumerate(nodes)
    ]


def pod_affinity(scheduled_info: list[str] | None, **kwargs: Any) -> dict[str, Any]:
    """A Pod spec `affinity` value ({} when no node ran the pipeline yet)."""
    terms = preferred_node_affinity(scheduled_info, **kwargs)
    if not terms:
        return {}
    return {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": terms}}
