"""The one table of image-webhook types (devops.kinds): Rancher's `imageWebHookToken[].imageType`.

name -> label -> the module that receives that registry's push events. The
API's choices are built from it. Each external type's module has
`parse(payload) -> list[ImagePush]` (devops/triggers/images.py routes
`/api/v1/hooks/image/<type>/<pipeline>/<token>` to it); `builtin` is
Slipway's own registry, whose notifications (`registry_events.py`) reach
images.py through the `image_pushed` signal. Django-free.
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
