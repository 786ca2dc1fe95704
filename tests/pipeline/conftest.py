from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def rancher_dir(fixtures_dir) -> Path:
    return fixtures_dir / "rancher-pipelines"


@pytest.fixture(scope="session")
def rancher_file(rancher_dir):
    """`rancher_file("013")` -> the bytes of that fixture, byte-exact."""

    def read(number: str) -> bytes:
        (path,) = rancher_dir.glob(f"{number}-*.yml")
        return path.read_bytes()

    return read
