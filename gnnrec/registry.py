"""A small name → object registry (models, datasets)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from gnnrec.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps lower_snake names to registered objects; duplicate names raise.

    Entries can be *deferred*: :meth:`defer` records that a module registers some names
    when imported, and that module is imported on first use of one of them (``get``,
    ``meta``, ``in``). Listing (``names``) needs no import. This keeps slow imports (PyG's
    ``torch_geometric`` takes ~2 s) out of runs that never use those entries.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._deferred: dict[str, str] = {}  # name -> module that registers it on import

    def defer(self, module: str, *names: str) -> None:
        """Record that importing ``module`` registers ``names`` (imported on first use)."""
        for name in names:
            if name in self._items or name in self._deferred:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._deferred[name] = module

    def _resolve(self, name: str) -> None:
        module = self._deferred.get(name)
        if module is None:
            return
        import importlib

        importlib.import_module(module)
        if name not in self._items:  # the module does not register what it promised
            raise RuntimeError(f"{self.kind} '{name}': importing {module} did not register it")

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self._deferred.pop(name, None)  # the deferred module is being imported
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._items[name] = obj
            self._meta[name] = dict(meta)
            return obj

        return deco

    def get(self, name: str) -> T:
        self._resolve(name)
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise ConfigError(f"unknown {self.kind} '{name}' (known: {known})") from None

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return self._meta[name]

    def names(self) -> list[str]:
        return sorted({*self._items, *self._deferred})

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._deferred

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
