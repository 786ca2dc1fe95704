"""Encryption at rest for credentials and secret values (Fernet, AES-128-CBC + HMAC).

The key comes from settings.ENCRYPTION_KEY (SLIPWAY_ENCRYPTION_KEY). Stored
values carry a version prefix so the scheme can change without a guess.
"""
from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models

PREFIX = "fernet:v1:"


@lru_cache(maxsize=4)
def _fernet(key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


def encrypt(plain: str) -> str:
    return PREFIX + _fernet(settings.ENCRYPTION_KEY).encrypt(plain.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise ValueError("value is not encrypted with a known scheme")
    try:
        return _fernet(settings.ENCRYPTION_KEY).decrypt(stored[len(PREFIX):].encode()).decode()
    except InvalidToken:
        raise ValueError(
            "cannot decrypt a stored credential: SLIPWAY_ENCRYPTION_KEY differs from the one used to store it"
        ) from None


class EncryptedTextField(models.TextField):
    """A text column whose value is encrypted in the database.

    Python code sees plain text; the row holds `fernet:v1:...`. Empty strings
    stay empty so "not set" needs no decryption.
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)


class EncryptedJSONField(EncryptedTextField):
    """A dict stored as encrypted JSON (e.g. a project Secret's key/value pairs)."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return {}
        return json.loads(decrypt(value))

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        if not value:
            return {}
        return json.loads(value)

    def get_prep_value(self, value):
        if value is None:
            value = {}
        return encrypt(json.dumps(value, sort_keys=True))


class EncryptedTokensJSONField(models.JSONField):
    """A JSON list of objects whose `token` values are encrypted in the database.

    For Rancher's `imageWebHookToken` entries: the other keys (image,
    branches) stay plain JSON so triggers can still look entries up, while
    the row holds `"token": "fernet:v1:..."`. Python code sees plain tokens.
    """

    KEY = "token"

    def _map(self, value, fn):
        if not isinstance(value, list):
            return value
        out = []
        for entry in value:
            if isinstance(entry, dict) and isinstance(entry.get(self.KEY), str) and entry[self.KEY]:
                entry = {**entry, self.KEY: fn(entry[self.KEY])}
            out.append(entry)
        return out

    def from_db_value(self, value, expression, connection):
        return self._map(super().from_db_value(value, expression, connection), decrypt)

    def get_prep_value(self, value):
        # Already-encrypted tokens (a value read raw and written back) are not encrypted twice.
        return super().get_prep_value(
            self._map(value, lambda t: t if t.startswith(PREFIX) else encrypt(t))
        )
