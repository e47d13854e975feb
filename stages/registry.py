"""The stage table: every stage's declaration, read from the stage classes themselves.

Each module of this package that defines a stage (a `Stage` subclass with a `name`) is found
by importing the package's modules, so adding a stage is adding its module: its name, output
folder, config section (the type of its `cfg`), place in the default order and how it is
built are declared on the class. Config validation (curation/engine/config.py), the pipeline
(curation/engine/pipeline.py) and, through the folders each run records in its run.json, browse
and the report read this table and nothing else.

A stage defined outside the package (a plugin, or a test's throw-away stage) joins with
`register()` and leaves with `unregister()`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager

from stages.base import Stage

_found: dict[str, type[Stage]] | None = None
_extra: dict[str, type[Stage]] = {}
# Changes whenever the table does, so that what is built from it (the config's model) is
# rebuilt; a plain counter, read by curation/engine/config.py.
version = 0


def _discover() -> dict[str, type[Stage]]:
    """The stage classes defined in this package's modules, by name (imported once)."""
    global _found
    if _found is None:
        found: dict[str, type[Stage]] = {}
        package = importlib.import_module(__package__ or "stages")
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for obj in vars(module).values():
                if _declares_stage(obj) and obj.__module__ == module.__name__:
                    _add(found, obj)
        _found = found
    return _found


def _declares_stage(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, Stage) and "name" in vars(obj)


def _add(table: dict[str, type[Stage]], cls: type[Stage]) -> None:
    other = table.get(cls.name)
    if other is not None and other is not cls:
        raise ValueError(
            f"two stages are named {cls.name!r}: {other.__module__}.{other.__qualname__} and "
            f"{cls.__module__}.{cls.__qualname__}"
        )
    table[cls.name] = cls


def stage_classes() -> dict[str, type[Stage]]:
    """Every known stage by name: the package's, then registered ones."""
    table = dict(_discover())
    for cls in _extra.values():
        _add(table, cls)
    return table


def stage_class(name: str) -> type[Stage]:
    table = stage_classes()
    if name not in table:
        raise KeyError(f"unknown stage {name!r}; known: {sorted(table)}")
    return table[name]


def default_order() -> list[str]:
    """The stages of `make curate` for a config without `stages:`, in order."""
    placed = [c for c in stage_classes().values() if c.curate and c.order is not None]
    return [c.name for c in sorted(placed, key=lambda c: (c.order, c.name))]


def folders() -> dict[str, str]:
    """Stage name -> the folder it writes under a run."""
    return {name: cls.output_folder for name, cls in stage_classes().items()}


def default_folders() -> list[tuple[str, str]]:
    """(stage, folder) in the default order: what browse shows for a run without run.json."""
    table = folders()
    return [(name, table[name]) for name in default_order()]


def register(cls: type[Stage]) -> None:
    """Add a stage defined outside this package (its config section comes with it)."""
    global version
    if not _declares_stage(cls):
        raise TypeError(f"{cls!r} is not a Stage subclass with a name")
    _add({**_discover(), **_extra}, cls)  # the same name twice is an error
    _extra[cls.name] = cls
    version += 1


def unregister(name: str) -> None:
    global version
    if _extra.pop(name, None) is not None:
        version += 1


@contextmanager
def registered(cls: type[Stage]) -> Iterator[type[Stage]]:
    """The stage is known inside the block only."""
    register(cls)
    try:
        yield cls
    finally:
        unregister(cls.name)
