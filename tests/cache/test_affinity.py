"""Node affinity for cache locality: pure functions, and the shape validated by kubernetes-validate."""
from __future__ import annotations

import pytest

from devops.cache.affinity import pod_affinity, preferred_node_affinity, record_node


def test_record_node_newest_first_dedupe_bounded():
    info: list[str] = []
    for node in ["n1", "n2", "n1", "n3"]:
        info = record_node(info, node)
    assert info == ["n3", "n1", "n2"]
    assert record_node(info, "") == info  # unscheduled run: unchanged
    for i in range(20):
        info = record_node(info, f"m{i}")
    assert info == [f"m{i}" for i in range(19, 9, -1)]  # 10 newest
    assert record_node(None, "a") == ["a"]


def test_weights_100_minus_10i():
    nodes = [f"node-{i}" for i in range(12)]
    terms = preferred_node_affinity(nodes)
    assert [t["weight"] for t in terms] == [100, 90, 80, 70, 60, 50, 40, 30, 20, 10]
    assert terms[0]["preference"]["matchExpressions"] == [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-0"]}]
    assert pod_affinity([]) == {}


def test_affinity_validates_in_a_pod_spec_strict():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "jenkins-agent-1", "namespace": "p-abcde-pipeline"},
        "spec": {
            "affinity": pod_affinity(record_node(["node-b", "node-a"], "node-c")),
            "containers": [{"name": "step-1", "image": "busybox:latest",
                            "volumeMounts": [{"name": "cache-0", "mountPath": "/root/.ccache"}]}],
            "volumes": [{"name": "cache-0", "hostPath": {"path": "/var/lib/slipway/cache/x",
                                                         "type": "DirectoryOrCreate"}}],
        },
    }
    kubernetes_validate.validate(pod, "1.32", strict=True)
    bad = {**pod, "spec": {**pod["spec"], "affinity": {"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": "high", "preference": {}}]}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.32", strict=True)
