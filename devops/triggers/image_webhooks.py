"""The one table of image-webhook types (devops.kinds): Rancher's `imageWebHookToken[].imageType`.

name -> label -> the module that receives that registry's push events. The
API's choices are built from it. Only `builtin` (Slipway's own registry,
`registry_events.py`) has a receiver today; the others load() with
KindUnavailable until theirs is written. Django-free.
"""
from __future__ import annotations

from devops.kinds import Kind, KindTable

IMAGE_WEBHOOKS: KindTable[Kind] = KindTable(
    "image webhook type",
    Kind("harbor", "Harbor", "devops.triggers.harbor"),
    Kind("dockerhub", "Docker Hub", "devops.triggers.dockerhub"),
    Kind("aliyun", "Alibaba Cloud Container Registry", "devops.triggers.aliyun"),
    Kind("builtin", "Slipway's built-in registry", "devops.triggers.registry_events"),
)
