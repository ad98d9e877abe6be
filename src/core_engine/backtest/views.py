"""Views of a result that live in a higher layer (figures, the HTML report file).

``backtest`` sits below ``research`` (DESIGN.md), so :class:`BacktestResult` cannot import
the functions behind ``result.plot()`` and ``result.report()``. Instead a higher layer
*registers* them here with :func:`register_view` when it is imported, and on first use a
result loads the plugin modules named in :data:`VIEW_PLUGINS` by name — the way pandas finds
its plotting backend (``pandas.options.plotting.backend``) at run time. That name is the one
upward reference of the lower layers, and ``tests/test_architecture.py`` pins it to this
table; no ``import`` statement of a higher layer exists below it.

If the plugin cannot be imported (the package is absent, or matplotlib is not installed)
the call raises :class:`~core_engine.errors.ConfigError` saying so; saving, loading,
``summary()``, ``to_markdown()`` and the notebook HTML of a result never need it.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from core_engine._config import did_you_mean
from core_engine.errors import ConfigError

__all__ = ["VIEW_PLUGINS", "call_view", "register_view"]

#: Modules imported on first use of a view; importing them registers their views.
VIEW_PLUGINS: tuple[str, ...] = ("core_engine.research",)

_VIEWS: dict[str, Callable[..., Any]] = {}


def register_view(name: str, function: Callable[..., Any]) -> None:
    """Make ``function(result, ...)`` the implementation of ``result.<name>(...)``.

    Called by higher layers at import (``research`` registers ``"plot"`` and ``"report"``);
    a later registration replaces an earlier one.
    """
    if not callable(function):
        raise ConfigError(f"register_view needs a function for the view {name!r}. "
                          f"Got {function!r}.")
    _VIEWS[name] = function


def _find(name: str) -> Callable[..., Any]:
    if name not in _VIEWS:
        for module in VIEW_PLUGINS:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ConfigError(
                    f"BacktestResult.{name}() needs the {module} package and matplotlib, and "
                    f"they cannot be imported ({type(exc).__name__}: {exc}). Install "
                    "core_engine with its plotting dependencies; summary(), to_markdown() and "
                    "save() work without them."
                ) from exc
    if name not in _VIEWS:
        raise ConfigError(f"No module registered a {name!r} view of BacktestResult "
                          f"(looked in {list(VIEW_PLUGINS)}).")
    return _VIEWS[name]


def call_view(name: str, result: Any, *args: Any, **kwargs: Any) -> Any:
    """``result.<name>(*args, **kwargs)`` through the registered function.

    Raises
    ------
    ConfigError
        If no function is registered for ``name`` and the plugins cannot provide one, or the
        arguments do not fit its signature (naming the valid keywords, with a did-you-mean).
    """
    function = _find(name)
    signature = inspect.signature(function)
    try:
        signature.bind(result, *args, **kwargs)
    except TypeError as exc:
        valid = [p.name for p in list(signature.parameters.values())[1:]
                 if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
        hint = "".join(did_you_mean(key, valid) for key in kwargs if key not in valid)
        raise ConfigError(f"BacktestResult.{name}() got invalid arguments ({exc}); its "
                          f"arguments are {valid}.{hint}") from None
    return function(result, *args, **kwargs)
