"""parse -> dump -> parse is the identity; apply_edit keeps comments and order."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from devops.pipeline import dump, load
from tests.pipeline.strategies import pipeline

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(pipeline)
def test_dump_then_load_is_identity(config):
    text = dump(config)
    result = load(text)
    assert result.errors == (), text
    assert result.warnings == ()
    assert result.config == config
    assert dump(result.config) == text  # stable
