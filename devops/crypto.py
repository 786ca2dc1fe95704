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


class Undecryptable:
    """A stored value this SLIPWAY_ENCRYPTION_KEY cannot decrypt (the key changed since).

    Loading the row still works, so one such row does not break every list,
    export or delete that merely passes it; *using* the value (truth test,
    iteration, str, lookup) raises the ValueError that `decrypt` raised, so
    nothing runs with a silently missing secret. Saving the row writes the
    ciphertext back unchanged: restoring the old key recovers it.
    """

    __slots__ = ("error", "stored")

    def __init__(self, stored: str, error: str):
        self.stored, self.error = stored, error

    def _refuse(self, *_args, **_kw):
        raise ValueError(self.error)

    __bool__ = __iter__ = __len__ = __getitem__ = __contains__ = __str__ = _refuse
    keys = values = items = get = encode = _refuse

    def __repr__(self) -> str:
        return "<undecryptable value>"


def _decrypt_or_mark(stored: str) -> str | Undecryptable:
    try:
        return decrypt(stored)
    except ValueError as exc:
        return Undecryptable(stored, str(exc))


class EncryptedTextField(models.TextField):
    """A text column whose value is encrypted in the database.

    Python code sees plain text; the row holds `fernet:v1:...`. Empty strings
    stay empty so "not set" needs no decryption. A value the key cannot
    decrypt loads as an `Undecryptable`, which raises when used.
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return _decrypt_or_mark(value)

    def get_prep_value(self, value):
        if isinstance(value, Undecryptable):
            return value.stored
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)


class EncryptedJSONField(EncryptedTextField):
    """A dict stored as encrypted JSON (e.g. a project Secret's key/value pairs)."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return {}
        plain = _decrypt_or_mark(value)
        return plain if isinstance(plain, Undecryptable) else json.loads(plain)

    def to_python(self, value):
        if isinstance(value, dict | Undecryptable):
            return value
        if not value:
            return {}
        return json.loads(value)

    def get_prep_value(self, value):
        if isinstance(value, Undecryptable):
            return value.stored
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
            token = entry.get(self.KEY) if isinstance(entry, dict) else None
            if isinstance(token, Undecryptable) or (isinstance(token, str) and token):
                entry = {**entry, self.KEY: fn(entry[self.KEY])}
            out.append(entry)
        return out

    def from_db_value(self, value, expression, connection):
        return self._map(super().from_db_value(value, expression, connection), _decrypt_or_mark)

    def get_prep_value(self, value):
        # Already-encrypted tokens (a value read raw and written back) are not encrypted twice.
        return super().get_prep_value(
            self._map(value, lambda t: t.stored if isinstance(t, Undecryptable)
                      else t if t.startswith(PREFIX) else encrypt(t)),
        )
