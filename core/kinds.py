"""Plug-in kinds: config models chosen by their ``kind``, registered by the modules that
own them and by other packages through an entry-point group.

Rules and detectors share this contract. The foundation only knows each family's base
model; a kind's module subclasses it with ``kind: Literal[...]`` and registers itself, so
adding a kind is one new file and the discriminated union is built here from what is
registered (never a hand-kept list).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Annotated, Any, Generic, TypeVar, Union, get_args

from pydantic import BaseModel, Field, TypeAdapter

Model = TypeVar("Model", bound=BaseModel)


def load_plugins(group: str) -> None:
    """Import every module another package names in the entry-point ``group``."""
    for plugin in entry_points(group=group):
        plugin.load()


def import_kinds(package: str, path: Iterable[str]) -> None:
    """Import each module of a kinds package (its ``__name__``, ``__path__``): each
    registers one kind. A module whose name starts with ``_`` holds shared code."""
    for module in pkgutil.iter_modules(path):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package}.{module.name}")


def discriminated(models: tuple[type[BaseModel], ...]) -> Any:
    """One config model, or the union of several told apart by their ``kind``."""
    if len(models) == 1:
        return models[0]
    return Annotated[Union[models], Field(discriminator="kind")]  # noqa: UP007


class KindRegistry(Generic[Model]):
    """The config models of one plug-in family, by kind name."""

    def __init__(self, group: str) -> None:
        self.group = group  # the entry-point group other packages add kinds through
        self._models: dict[str, type[Model]] = {}
        self._adapters: dict[tuple[tuple[type[Model], ...], bool], TypeAdapter[Any]] = {}
        self._loaded = False

    def register(self, model: type[Model], name: str | None = None) -> None:
        """Make a kind known to config validation (called by the kind's module). Its name
        is its ``kind`` Literal, or ``name`` for a family keyed by section name (sinks)."""
        names = (name,) if name else get_args(model.model_fields["kind"].annotation)
        if not names:
            raise TypeError(f"{model.__name__}.kind must be a Literal of the kind's name")
        for name in names:
            self._models[name] = model

    def models(self) -> dict[str, type[Model]]:
        """Kinds by name; loads the family's plug-ins (entry points) on first use."""
        if not self._loaded:
            self._loaded = True
            load_plugins(self.group)
        return self._models

    def distinct(self) -> tuple[type[Model], ...]:
        """Each registered model once (a model may register several names)."""
        return tuple(dict.fromkeys(self.models().values()))

    def adapter(self, many: bool = False) -> TypeAdapter[Any]:
        """Validates one config (or a list) against the kind its ``kind`` names."""
        models = self.distinct()
        adapter = self._adapters.get((models, many))
        if adapter is None:
            item: Any = discriminated(models)
            adapter = TypeAdapter(list[item] if many else item)
            self._adapters[(models, many)] = adapter
        return adapter
