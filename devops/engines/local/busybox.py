"""A busybox image built on this machine, no network: `build_busybox(root)`.

`buildah from scratch`, Debian's static /bin/busybox (package busybox-static)
with one symlink per applet, committed as `localhost/busybox:latest` into the
vfs storage under `root` (the container runtime's `storage_args`). `slipway up`
builds it for the sample pipeline when the container runtime is the one in use,
so the first Run needs no registry; tests/images.py builds the tests' image with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from devops.engines.local.runtimes.container import storage_args

BUSYBOX = "/bin/busybox"
IMAGE = "localhost/busybox:latest"


def buildah(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["buildah", *storage_args(root), *args], capture_output=True, text=True,
                          check=check, timeout=300)


def build_busybox(root: Path, name: str = IMAGE) -> str:
    """Build `name` in the storage under `root` unless it is there already; returns `name`.
    Raises OSError / subprocess.SubprocessError when buildah or /bin/busybox is missing or fails."""
    if buildah(root, "inspect", "--type", "image", name, check=False).returncode == 0:
        return name
    ctr = buildah(root, "from", "scratch").stdout.strip()
    try:
        mnt = Path(buildah(root, "mount", ctr).stdout.strip())
        for d in ("bin", "tmp", "root", "etc"):
            (mnt / d).mkdir(exist_ok=True)
        (mnt / "tmp").chmod(0o1777)
        shutil.copy2(BUSYBOX, mnt / "bin" / "busybox")
        applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
        for applet in applets:
            if applet != "busybox" and not (mnt / "bin" / applet).exists():
                os.symlink("busybox", mnt / "bin" / applet)
        (mnt / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (mnt / "etc" / "group").write_text("root:x:0:\n")
        buildah(root, "umount", ctr)
        buildah(root, "config", "--env", "PATH=/bin", "--env", "HOME=/root", "--cmd", "/bin/sh", ctr)
        buildah(root, "commit", "--quiet", ctr, name)
    finally:
        buildah(root, "rm", ctr, check=False)
    return name
