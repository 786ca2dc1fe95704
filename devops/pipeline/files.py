"""Where a repository keeps its pipeline file."""
from __future__ import annotations

import pathlib

# Search order: Slipway's own name first, then Rancher's two names in the order
# Rancher's GitHub and Bitbucket providers tried them (`.yaml`, then `.yml`).
# The controller (scm.git.find_file) and `pipeline lint DIR` both use this tuple.
PIPELINE_FILENAMES = (".devops.yml", ".rancher-pipeline.yaml", ".rancher-pipeline.yml")


def find_pipeline_file(root: pathlib.Path) -> pathlib.Path | None:
    """The first of PIPELINE_FILENAMES that is a regular file in `root`, else None.

    Symlinks are not followed (a checkout could point one outside itself).
    """
    root = pathlib.Path(root)
    for name in PIPELINE_FILENAMES:
        candidate = root / name
        if candidate.is_file() and not candidate.is_symlink():
            return candidate
    return None
