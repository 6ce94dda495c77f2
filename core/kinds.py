"""Plug-in kinds: config models chosen by their ``kind``, registered by the modules that
own them and by other packages through an entry-point group.

Rules and detectors share this contract. The foundation only knows each family's base
model; a kind's module subclasses it with ``kind: Literal[...]`` and registers itself, so
adding a kind is one new file and the discriminated union is built here from what is
registered (never a hand-kept list).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Annotated, Any, Generic, TypeVar, Union, get_args

from pydantic import BaseModel, Field, TypeAdapter

Model = TypeVar("Model", bound=BaseModel)


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
            for plugin in entry_points(group=self.group):
                plugin.load()
        return self._models

    def adapter(self, many: bool = False) -> TypeAdapter[Any]:
        """Validates one config (or a list) against the kind its ``kind`` names."""
        models = tuple(dict.fromkeys(self.models().values()))
        adapter = self._adapters.get((models, many))
        if adapter is None:
            item: Any = (Annotated[Union[models], Field(discriminator="kind")]  # noqa: UP007
                         if len(models) > 1 else models[0])
            adapter = TypeAdapter(list[item] if many else item)
            self._adapters[(models, many)] = adapter
        return adapter
