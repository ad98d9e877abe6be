"""Frozen keyword-only configs, validated in one place (STYLE.md: "Configs are frozen,
keyword-only dataclasses with validation in one place").

A config is a ``@dataclass(frozen=True, kw_only=True)`` deriving from :class:`FrozenConfig`.
The base checks the *names* of the arguments before the dataclass ``__init__`` runs, so a
typo, a missing required argument or a positional argument is a :class:`ConfigError` with
the did-you-mean that strategies give (never Python's ``TypeError``). The subclass's
``__post_init__`` checks the *values* with :func:`check_number`, :func:`check_int` and
:func:`check_choice`, which accept NumPy scalars wherever a number is accepted and store
plain Python values (so ``to_dict()`` is JSON-ready)::

    @dataclass(frozen=True, kw_only=True)
    class MyRules(FrozenConfig):
        limit_pct: float | None = None
        mode: str = "fast"

        def __post_init__(self) -> None:
            check_number(self, "limit_pct", low=0, low_open=True, optional=True)
            check_choice(self, "mode", ("fast", "slow"))

This module sits below every layer (it imports only :mod:`core_engine.errors`), so data,
risk, backtest, portfolio and trading configs can all use it.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

from core_engine.errors import ConfigError

__all__ = ["FrozenConfig", "check_choice", "check_int", "check_number", "did_you_mean",
           "keyword_checked"]


def did_you_mean(name: Any, valid: Sequence[str]) -> str:
    """``" Did you mean 'x'?"`` for the closest valid name, or ``""`` if none is close."""
    close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def _call_message(name: str, sig: inspect.Signature, args: tuple, kwargs: dict) -> str:
    """Why ``name(*args, **kwargs)`` does not fit ``sig``, in the shape of FrozenConfig's."""
    params = [p for p in sig.parameters.values() if p.name != "self"]
    valid = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
    for key in kwargs:
        if key not in valid and not takes_any:
            return (f"{name} has no parameter {key!r}; valid parameters are {valid}."
                    f"{did_you_mean(key, valid)}")
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(args) > len(positional) and not any(p.kind is p.VAR_POSITIONAL for p in params):
        keywords = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
        return (f"{name} takes at most {len(positional)} positional argument(s)"
                f"{f' ({[p.name for p in positional]})' if positional else ''}; pass the others "
                f"by keyword{f', such as {keywords[0]}=...' if keywords else ''}. Got {len(args)}.")
    given = {p.name for p in positional[:len(args)]} | set(kwargs)
    missing = [p.name for p in params if p.default is p.empty and p.name not in given
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if missing:
        return f"{name} needs the parameter(s) {missing}."
    multiple = [p.name for p in positional[:len(args)] if p.name in kwargs]
    return f"{name} got the parameter(s) {multiple} twice (by position and by keyword)."


def keyword_checked(cls: type) -> type:
    """Class decorator: a call that does not fit ``cls.__init__`` (a misspelt keyword, a missing
    or extra argument) is a :class:`ConfigError` with a did-you-mean, not Python's ``TypeError``.

    The check costs nothing on a good call: the signature is only bound after ``__init__``
    raised a ``TypeError``, to tell a wrong call (reported) from a ``TypeError`` raised inside
    ``__init__`` (re-raised unchanged). Put it above ``@dataclass``. A named tuple (whose
    fields are taken by ``__new__``) gets the same check on ``__new__``.
    """
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return _keyword_checked_new(cls)
    init = cls.__init__  # type: ignore[misc]
    sig = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except TypeError:
            try:
                sig.bind(self, *args, **kwargs)
            except TypeError:
                message = _call_message(type(self).__name__, sig, args, kwargs)
                raise ConfigError(message) from None
            raise

    cls.__init__ = __init__  # type: ignore[misc]
    return cls


def _keyword_checked_new(cls: type) -> type:
    """:func:`keyword_checked` for a named tuple: the check wraps ``__new__``."""
    new = cls.__new__
    sig = inspect.signature(new)
    fields = inspect.Signature(list(sig.parameters.values())[1:])  # without ``_cls``

    @functools.wraps(new)
    def __new__(kind: type, *args: Any, **kwargs: Any) -> Any:
        try:
            return new(kind, *args, **kwargs)
        except TypeError:
            try:
                fields.bind(*args, **kwargs)
            except TypeError:
                raise ConfigError(_call_message(kind.__name__, fields, args, kwargs)) from None
            raise

    cls.__new__ = staticmethod(__new__)  # type: ignore[assignment]
    return cls


class FrozenConfig:
    """Base of the frozen keyword-only dataclass configs: argument names are checked here.

    Raises
    ------
    ConfigError
        On a positional argument, an unknown keyword (with a did-you-mean suggestion) or a
        missing required keyword.
    """

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any):
        name = cls.__name__
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{name} must be decorated with @dataclass(frozen=True, kw_only=True).")
        fields = [f for f in dataclasses.fields(cls) if f.init]
        valid = [f.name for f in fields]
        if args:
            raise ConfigError(
                f"{name} takes keyword arguments only, such as {name}({valid[0]}=...). "
                f"Got {len(args)} positional argument(s): {args!r}."
            ) if valid else ConfigError(f"{name} takes no arguments. Got {args!r}.")
        for key in kwargs:
            if key not in valid:
                raise ConfigError(
                    f"{name} has no parameter {key!r}; valid parameters are {valid}."
                    f"{did_you_mean(key, valid)}"
                )
        missing = [f.name for f in fields if f.name not in kwargs
                   and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ConfigError(f"{name} needs the parameter(s) {missing}.")
        return super().__new__(cls)

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (for saving a run's config)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


def _set(config: Any, name: str, value: Any) -> None:
    object.__setattr__(config, name, value)


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts)


def check_number(config: Any, name: str, *, low: float | None = None,
                 high: float | None = None, low_open: bool = False, high_open: bool = False,
                 optional: bool = False) -> float | None:
    """Check ``config.<name>`` is a finite real number inside the bounds; store it as a float.

    ``bool`` is refused; ``int``, ``float`` and NumPy scalars are accepted. ``optional``
    allows ``None``. Returns the stored value.
    """
    value = getattr(config, name)
    if value is None and optional:
        return None
    ok = isinstance(value, Real) and not isinstance(value, bool)
    if ok:
        number = float(value)
        ok = math.isfinite(number)
        ok = ok and (low is None or (number > low if low_open else number >= low))
        ok = ok and (high is None or (number < high if high_open else number <= high))
    if not ok:
        rule = _bounds(low, high, low_open, high_open)
        raise ConfigError(
            f"The {name!r} parameter of {type(config).__name__} must be a finite number"
            f"{' ' + rule if rule else ''}{' or None' if optional else ''}. Got {value!r}."
        )
    _set(config, name, number)
    return number


def check_int(config: Any, name: str, *, minimum: int | None = None,
              maximum: int | None = None, optional: bool = False) -> int | None:
    """Check ``config.<name>`` is an integer (Python or NumPy, not bool) inside the bounds;
    store it as an ``int``. ``optional`` allows ``None``. Returns the stored value."""
    value = getattr(config, name)
    if value is None and optional:
        return None
    ok = isinstance(value, Integral) and not isinstance(value, bool)
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        rule = _bounds(minimum, maximum, False, False)
        raise ConfigError(
            f"The {name!r} parameter of {type(config).__name__} must be an integer"
            f"{' ' + rule if rule else ''}{' or None' if optional else ''}. Got {value!r}."
        )
    _set(config, name, int(value))
    return int(value)


def check_choice(config: Any, name: str, choices: Sequence[str]) -> str:
    """Check ``config.<name>`` is one of ``choices`` (with a did-you-mean on a near miss)."""
    value = getattr(config, name)
    if not isinstance(value, str) or value not in choices:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        raise ConfigError(
            f"The {name!r} parameter of {type(config).__name__} must be one of "
            f"{list(choices)}. Got {value!r}.{hint}"
        )
    return value
