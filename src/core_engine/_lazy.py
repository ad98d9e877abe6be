"""Package attributes that import their module on first use (PEP 562).

``core_engine.trading`` and ``core_engine.live`` name their public objects in a table
(name → submodule) so that importing the package, as the command line does to register its
subcommands, does not import the runner, the brokers and everything below them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_attributes(package: str, where: Mapping[str, str], namespace: dict[str, Any],
                    names: list[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: ``where`` maps each public name to
    its submodule; a resolved name is stored in ``namespace`` (the package's globals), so the
    submodule is looked up once."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
