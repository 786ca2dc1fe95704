"""SLIPWAY_LOG_STORE URLs and their system checks (stable ids)."""
from __future__ import annotations

import pytest
from django.core.checks import run_checks

from devops.logs.s3config import LogStoreURLError, parse_s3_url


def test_s3_url_defaults_to_https_and_no_region():
    cfg = parse_s3_url("s3://AKIA:se%2Fcret@minio.example:9000/ci-logs")
    assert (cfg.endpoint, cfg.access_key, cfg.secret_key, cfg.bucket) == (
        "minio.example:9000", "AKIA", "se/cret", "ci-logs")
    assert cfg.secure is True and cfg.region is None
    assert "se/cret" not in repr(cfg)


def test_s3_url_options():
    cfg = parse_s3_url("s3://a:b@127.0.0.1:9000/logs?secure=false&region=eu-west-1")
    assert cfg.secure is False and cfg.region == "eu-west-1"
    assert parse_s3_url("s3://a:b@s3.amazonaws.com/logs").endpoint == "s3.amazonaws.com"


@pytest.mark.parametrize("url,check_id", [
    ("s3://127.0.0.1:9000/logs", "slipway.E012"),
    ("s3://key@127.0.0.1:9000/logs", "slipway.E012"),
    ("s3://a:b@127.0.0.1:9000/", "slipway.E013"),
    ("s3://a:b@127.0.0.1:9000/x/y", "slipway.E013"),
    ("s3://a:b@127.0.0.1:port/logs", "slipway.E011"),
    ("s3://a:b@127.0.0.1:9000/logs?secure=maybe", "slipway.E011"),
    ("s3://a:b@127.0.0.1:9000/logs?colour=blue", "slipway.E011"),
])
def test_bad_s3_urls_name_the_problem(url, check_id):
    with pytest.raises(LogStoreURLError) as exc:
        parse_s3_url(url)
    assert exc.value.check_id == check_id


@pytest.mark.parametrize("url,check_id", [
    ("ftp://x/y", "slipway.E001"),
    ("file://relative/path", "slipway.E010"),
    ("s3://127.0.0.1:9000/logs", "slipway.E012"),
    ("s3://a:TOPSECRET@127.0.0.1:9000/", "slipway.E013"),
])
def test_system_check_reports_a_bad_log_store_without_leaking_the_secret(settings, url, check_id):
    settings.SLIPWAY_LOG_STORE = url
    errors = [e for e in run_checks() if e.id.startswith("slipway.E0") and "LOG_STORE" in e.msg]
    assert [e.id for e in errors] == [check_id]
    assert "TOPSECRET" not in errors[0].msg


def test_good_urls_pass_the_check(settings, tmp_path):
    for url in (f"file://{tmp_path}", "s3://a:b@127.0.0.1:9000/logs?secure=false"):
        settings.SLIPWAY_LOG_STORE = url
        assert not [e for e in run_checks() if "LOG_STORE" in e.msg]
