"""One registry table per pluggable kind: name -> label -> dotted path, imported lazily.

Engines (`devops.engines.registry.ENGINES`), step runtimes
(`devops.engines.local.runtimes.RUNTIMES`), SCM provider types
(`devops.scm.providers.PROVIDERS`) and image-webhook types
(`devops.triggers.image_webhooks.IMAGE_WEBHOOKS`) are each one `KindTable`;
model and serializer `choices`, settings validation and system checks are
built from the table, so adding a kind is one row. Django-free (settings.py
imports the tables).

A `Kind` marked `test_only` (the dummy step runtime) is left out of
`names()`/`choices()` unless asked for with `test=True`.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Generic, TypeVar


@dataclass(frozen=True)
class Kind:
    name: str       # stored in the database and in settings; never renamed
    label: str      # shown to people
    path: str       # "package.module.Attribute" (or "package.module"), imported by load()
    test_only: bool = False


K = TypeVar("K", bound=Kind)


class KindNotFound(LookupError):
    """The name is not a row of the table."""


class KindUnavailable(ImportError):
    """The row exists but its module is missing or fails to import."""


class KindTable(Generic[K]):
    """An ordered table of kinds; nothing is imported until `load(name)`."""

    def __init__(self, what: str, *kinds: K) -> None:
        self.what = what  # "engine", "step runtime", ... (for messages)
        self._kinds: dict[str, K] = {}
        for kind in kinds:
            if kind.name in self._kinds:
                raise ValueError(f"{what} {kind.name!r} is in the table twice")
            self._kinds[kind.name] = kind

    def __iter__(self) -> Iterator[K]:
        return iter(self._kinds.values())

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def names(self, *, test: bool = False) -> tuple[str, ...]:
        return tuple(k.name for k in self if test or not k.test_only)

    def choices(self, *, test: bool = False) -> list[tuple[str, str]]:
        """`[(name, label), ...]` for model fields, serializers and forms."""
        return [(k.name, k.label) for k in self if test or not k.test_only]

    def get(self, name: str) -> K:
        try:
            return self._kinds[name]
        except KeyError:
            known = ", ".join(self.names(test=True))
            raise KindNotFound(f"unknown {self.what} {name!r}; known: {known}") from None

    def load(self, name: str) -> Any:
        """Import the row's dotted path and return the attribute (or the module).

        Raises KindNotFound for an unknown name and KindUnavailable (with the
        import error as its cause) when the module is missing or fails to import.
        """
        kind = self.get(name)
        try:
            return import_dotted(kind.path)
        except Exception as exc:
            raise KindUnavailable(
                f"{self.what} {name!r}: cannot import {kind.path} ({type(exc).__name__}: {exc})"
            ) from exc


def import_dotted(path: str) -> Any:
    """`a.b.C` -> attribute C of module a.b; `a.b` (a module) -> the module."""
    try:
        return import_module(path)
    except ModuleNotFoundError as exc:
        module, _, attr = path.rpartition(".")
        # Only "path itself is not a module" falls through to the attribute form;
        # a module that exists but imports something missing is a real error.
        if not module or exc.name != path:
            raise
    obj = import_module(module)
    try:
        return getattr(obj, attr)
    except AttributeError:
        raise ImportError(f"module {module} has no attribute {attr!r}") from None
