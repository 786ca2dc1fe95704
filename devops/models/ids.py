from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits


def random_id(prefix: str = "p-", length: int = 5) -> str:
    """Rancher-style object names: `p-` + 5 random lowercase letters/digits."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))
