"""Lazy public surfaces for the project's packages (PEP 562), shared by every ``__init__.py``.

A package lists its public names in ``__all__``, imports them under ``if TYPE_CHECKING:`` (what
mypy and IDEs read) and, at run time, takes its ``__getattr__`` and ``__dir__`` from
``lazy_exports``: ``import orchestrator`` then imports nothing else, and the first
``orchestrator.Frontdoor`` imports ``orchestrator.runtime``. That matters because entry points
import the package before gevent patches the process (ssl, threading, pykka must come after).
It lives in ``backends``, the bottom layer, so ``actors`` and ``orchestrator`` may use it too
(imports go orchestrator -> actors -> backends). Standard library only, on purpose.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping


def lazy_exports(
    package: str, names: Mapping[str, Iterable[str]], *, modules: Iterable[str] = ()
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``.

    ``names`` maps a submodule (relative: ``"system"`` for ``actors.system``) to the public
    names it defines; ``modules`` are public submodules, exported as modules. A name is
    imported on first access and then stored on the package, so later look-ups are plain
    attribute reads. Anything else is an ``AttributeError``, which lets
    ``from package import submodule`` fall back to importing the submodule as usual.
    """
    submodules = frozenset(modules)
    where: dict[str, str] = {}
    for submodule, exported in names.items():
        for name in exported:
            if name in where or name in submodules:
                raise ValueError(f"{package}: {name!r} is exported twice")
            where[name] = submodule

    def lazy_getattr(name: str) -> object:
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        try:
            submodule = where[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(f"{package}.{submodule}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def lazy_dir() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where, *submodules})

    return lazy_getattr, lazy_dir
