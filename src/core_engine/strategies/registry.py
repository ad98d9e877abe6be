"""Look strategies up by short name or by module path; register your own.

Examples
--------
>>> from core_engine.strategies import get_strategy
>>> get_strategy("macd_rsi_confluence", rsi_high=70)
MacdRsiConfluence(rsi_high=70)
>>> get_strategy("core_engine.strategies.ma_crossover:Strategy", fast=5).fast
5
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from core_engine.errors import ConfigError
from core_engine.strategies.base import Strategy, did_you_mean

__all__ = [
    "get_strategy",
    "get_strategy_class",
    "list_strategies",
    "register",
    "register_strategy",
]

_REGISTRY: dict[str, type[Strategy]] = {}


def register_strategy(cls: type[Strategy], name: str | None = None, *,
                      replace: bool = False) -> type[Strategy]:
    """Register ``cls`` under ``name`` (default: ``cls.name``) and return it.

    Raises
    ------
    ConfigError
        If ``cls`` is not a Strategy subclass, the name is empty, or the name is taken by
        another class and ``replace`` is False.
    """
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"register_strategy expects a Strategy subclass. Got {cls!r}.")
    key = cls.name if name is None else name
    if not isinstance(key, str) or not key.strip():
        raise ConfigError(f"A strategy must be registered under a non-empty name. Got {key!r}.")
    if name is not None:
        cls.name = name
    existing = _REGISTRY.get(key)
    if existing is not None and existing is not cls and not replace:
        raise ConfigError(
            f"The strategy name {key!r} is already registered to "
            f"{existing.__module__}.{existing.__qualname__}; pass replace=True to override."
        )
    _REGISTRY[key] = cls
    return cls


def register(name: str | None = None, *, replace: bool = False) -> Callable[[type[Strategy]], type[Strategy]]:
    """Class decorator: ``@register("my_strategy")`` registers the class under that name."""

    def decorate(cls: type[Strategy]) -> type[Strategy]:
        return register_strategy(cls, name, replace=replace)

    return decorate


def _ensure_builtins() -> None:
    importlib.import_module("core_engine.strategies")


def list_strategies() -> list[str]:
    """Return the registered strategy names, sorted."""
    _ensure_builtins()
    return sorted(_REGISTRY)


def get_strategy_class(name_or_path: str) -> type[Strategy]:
    """Return the class for a registered name or a ``"package.module:Attribute"`` path."""
    if isinstance(name_or_path, type) and issubclass(name_or_path, Strategy):
        return name_or_path
    if not isinstance(name_or_path, str) or not name_or_path:
        raise ConfigError(f"A strategy is named by a string such as 'macd_rsi_confluence'. Got {name_or_path!r}.")
    if ":" in name_or_path:
        return _import_path(name_or_path)
    _ensure_builtins()
    try:
        return _REGISTRY[name_or_path]
    except KeyError:
        raise ConfigError(
            f"Unknown strategy {name_or_path!r}; registered strategies are {sorted(_REGISTRY)}."
            f"{did_you_mean(name_or_path, sorted(_REGISTRY))} A module path "
            "'package.module:ClassName' also works."
        ) from None


def get_strategy(name_or_path: str, **params: Any) -> Strategy:
    """Return a new strategy instance from a registered name or a module path.

    Parameters
    ----------
    name_or_path : str
        A registered name (``"macd_rsi_confluence"``) or ``"package.module:Attribute"``
        (``"core_engine.strategies.macd_rsi_confluence:Strategy"``).
    **params
        Constructor parameters; unknown ones raise :class:`ConfigError` with a suggestion.
    """
    return get_strategy_class(name_or_path)(**params)


def _import_path(path: str) -> type[Strategy]:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"A strategy path must look like 'package.module:ClassName'. Got {path!r}.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"Cannot import module {module_name!r} for strategy {path!r}: {exc}.") from exc
    try:
        obj = getattr(module, attr)
    except AttributeError:
        names = [n for n in dir(module) if not n.startswith("_")]
        raise ConfigError(
            f"Module {module_name!r} has no attribute {attr!r}.{did_you_mean(attr, names)}"
        ) from None
    if not (isinstance(obj, type) and issubclass(obj, Strategy)):
        raise ConfigError(f"{path!r} is {obj!r}, not a Strategy subclass.")
    return obj
