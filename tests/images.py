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
import shutil
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
    """Build (or reuse) the busybox image in the storage under `root`."""
    img = BuiltImage(name, root)
    if img.buildah("inspect", "--type", "image", name, check=False).returncode == 0:
        return img
    ctr = img.buildah("from", "scratch").stdout.strip()
    try:
        mnt = Path(img.buildah("mount", ctr).stdout.strip())
        for d in ("bin", "tmp", "root", "etc"):
            (mnt / d).mkdir(exist_ok=True)
        (mnt / "tmp").chmod(0o1777)
        shutil.copy2(BUSYBOX, mnt / "bin" / "busybox")
        applets = subprocess.run(
            [BUSYBOX, "--list"], capture_output=True, text=True, check=True
        ).stdout.split()
        for applet in applets:
            if applet != "busybox" and not (mnt / "bin" / applet).exists():
                os.symlink("busybox", mnt / "bin" / applet)
        (mnt / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (mnt / "etc" / "group").write_text("root:x:0:\n")
        img.buildah("umount", ctr)
        img.buildah("config", "--env", "PATH=/bin", "--env", "HOME=/root", "--cmd", "/bin/sh", ctr)
        img.buildah("commit", "--quiet", ctr, name)
    finally:
        img.buildah("rm", ctr, check=False)
    return img


@pytest.fixture(scope="session")
def busybox_image(tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    """`localhost/busybox:latest` in a session-wide buildah storage (skips/fails without buildah)."""
    from tests.conftest import require_service, require_tool

    require_tool("buildah")
    require_service(os.path.exists(BUSYBOX), f"{BUSYBOX} (Debian busybox-static)")
    return build_busybox(tmp_path_factory.getbasetemp() / "containers")
