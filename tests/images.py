"""Container images for tests, built locally (nothing can be pulled here): `busybox_image`.

`buildah from scratch`, copy Debian's static /bin/busybox, one symlink per
applet, commit as `localhost/busybox:latest` into a vfs storage root shared
by the whole test session. Use it as

    def test_x(busybox_image):
        opts = LocalOptions(..., container_root=busybox_image.root)

`busybox_image.buildah(*args)` runs buildah against that storage.
Imported by tests/conftest.py (`from tests.images import busybox_image`).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

BUSYBOX = "/bin/busybox"
IMAGE = "localhost/busybox:latest"


@dataclass(frozen=True)
class BuiltImage:
    name: str
    root: Path  # LocalOptions.container_root: storage in root/storage, runroot in root/run

    def storage_args(self) -> list[str]:
        from devops.engines.local.runtimes.container import storage_args

        return storage_args(self.root)

    def buildah(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["buildah", *self.storage_args(), *args], capture_output=True, text=True, check=check
        )


def build_busybox(root: Path, name: str = IMAGE) -> BuiltImage:
    """Build (or reuse) the busybox image in the storage under `root` (the code `slipway up` uses)."""
    from devops.engines.local.busybox import build_busybox as build

    build(root, name)
    return BuiltImage(name, root)


@pytest.fixture(scope="session")
def busybox_image(tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    """`localhost/busybox:latest` in a session-wide buildah storage (skips/fails without buildah)."""
    from tests.conftest import require_service, require_tool

    require_tool("buildah")
    require_service(os.path.exists(BUSYBOX), f"{BUSYBOX} (Debian busybox-static)")
    return build_busybox(tmp_path_factory.getbasetemp() / "containers")
