"""The search space of a sweep: dimensions, grid and random sampling, and how a point of the
space becomes a strategy plus ``walk_forward`` arguments.

Names in a space
----------------
* ``rsi_low`` — a strategy parameter (when the strategy has one of that name), else a
  top-level ``walk_forward`` argument such as ``max_positions`` or ``fee_bps``;
* ``strategy.rsi_low`` — explicitly a strategy parameter;
* ``exits.stop_loss_pct``, ``allocator.n``, ``rules.cooldown``, ``sizing.risk_pct`` — a
  field of a config object passed to ``walk_forward`` under that argument. The sweep's own
  argument (``exits=ExitRules(...)``, ``rules=PortfolioRules(...)``,
  ``sizing=FixedFraction(pct=10)``) is the base, and every point replaces the swept fields
  (``dataclasses.replace`` for frozen dataclasses, so the config validates itself); a
  point that also sets the whole argument (``"sizing": [...]``) is its own base. Without a
  base, ``exits`` starts from ``ExitRules()``, ``rules`` from ``PortfolioRules()`` and
  ``sizing`` from ``EqualSlots()`` (walk_forward's defaults), so ``sizing.pct`` needs a
  ``FixedFraction`` base.

For a :class:`~core_engine.trading.Trader` (a class or an instance) the names are its
parameters (``levels``, ``spacing``) and the keyword arguments of
:func:`~core_engine.trading.replay` (``initial_cash``, ``start``, ...); each point builds a
new trader from the base's parameters and the point's.

Which ``walk_forward`` arguments exist is read from its signature at run time, so the
arguments of a newer engine (e.g. portfolio mode's ``sizing=`` and ``rules=``) are sweepable
as soon as the engine has them.

Values
------
A list or tuple is a set of choices; a string is read like the command line:
``"35:50:5"`` is 35, 40, 45, 50 (inclusive), ``"1,1.5,2"`` three choices, ``"none"`` None,
``"true"``/``"false"`` booleans. :class:`Uniform` and :class:`IntUniform` are continuous
ranges for random and optuna searches (a grid cannot enumerate them).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from core_engine._config import keyword_checked
from core_engine._validate import check_items, check_real
from core_engine.errors import ConfigError

__all__ = ["MAX_GRID", "Choice", "IntUniform", "Space", "Uniform", "parse_value",
           "point_instance", "resolve_names"]

#: The most points a grid is built with: more is a typo (a range of 10**12) that would
#: exhaust memory, not a sweep anyone can run. Random and optuna searches are not bounded.
MAX_GRID = 1_000_000


def parse_value(text: str) -> Any:
    """Read one command-line value: int, float, bool, None, else the string itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


class Dimension:
    """One axis of the space."""

    def grid_values(self, name: str) -> list[Any]:
        raise NotImplementedError

    def size(self, name: str) -> int:
        """The number of grid values, without building them."""
        return len(self.grid_values(name))

    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def optuna_distribution(self) -> Any:
        raise NotImplementedError

    @property
    def discrete(self) -> bool:
        return True


@keyword_checked
class Choice(Dimension):
    """A finite set of values, tried in the given order.

    Examples
    --------
    >>> Choice.parse("35:50:5").values
    [35, 40, 45, 50]
    >>> Choice.parse("1,1.5,2").values
    [1, 1.5, 2]
    """

    def __init__(self, values: Sequence[Any]) -> None:
        values = check_items(values, "values", "Choice", expected="a list of values")
        if not values:
            raise ConfigError("A sweep dimension needs at least one value. Got none.")
        self.values = values

    @classmethod
    def parse(cls, text: str, name: str = "value") -> Choice:
        """Read ``"start:stop:step"`` (inclusive) or ``"a,b,c"`` or one value."""
        if text.count(":") == 2 and "," not in text:
            parts = [parse_value(p) for p in text.split(":")]
            if not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in parts):
                raise ConfigError(
                    f"The range of {name!r} must be numbers start:stop:step, e.g. 35:50:5. "
                    f"Got {text!r}."
                )
            return cls(_inclusive_range(name, *parts))
        return cls([parse_value(p) for p in text.split(",")])

    def grid_values(self, name: str) -> list[Any]:
        return list(self.values)

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]

    def optuna_distribution(self) -> Any:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(self.values)

    def __repr__(self) -> str:
        return f"Choice({self.values!r})"


def _inclusive_range(name: str, start: float, stop: float, step: float) -> list[Any]:
    if not step > 0 or stop < start:
        raise ConfigError(
            f"The range of {name!r} needs start <= stop and a positive step. Got "
            f"{start}:{stop}:{step}."
        )
    count = _count(name, start, stop, step)
    if all(isinstance(v, int) for v in (start, stop, step)):
        return [int(start + k * step) for k in range(count)]
    return [float(round(start + k * step, 12)) for k in range(count)]


def _count(name: str, start: float, stop: float, step: float, limit: int | None = MAX_GRID) -> int:
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    if limit is not None and count > limit:
        raise ConfigError(f"The range of {name!r} has {count:,} values; a grid enumerates at "
                          f"most {limit:,}. Got {start}:{stop}:{step}.")
    return count


@keyword_checked
class Uniform(Dimension):
    """A continuous range ``[low, high]`` (log-uniform with ``log=True``) for random and
    optuna searches."""

    def __init__(self, low: float, high: float, *, log: bool = False) -> None:
        low, high = check_real(low, "low", "Uniform"), check_real(high, "high", "Uniform")
        if not (math.isfinite(low) and math.isfinite(high) and low < high) or (log and low <= 0):
            raise ConfigError(f"Uniform needs finite low < high (low > 0 with log=True). Got "
                              f"low={low!r}, high={high!r}, log={log!r}.")
        self.low, self.high, self.log = float(low), float(high), bool(log)

    @property
    def discrete(self) -> bool:
        return False

    def grid_values(self, name: str) -> list[Any]:
        raise ConfigError(
            f"{name!r} is a continuous range ({self!r}); a grid search cannot enumerate it. "
            "Use search='random' or 'optuna', or give a list or 'start:stop:step'."
        )

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def optuna_distribution(self) -> Any:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=self.log)

    def __repr__(self) -> str:
        return f"Uniform({self.low!r}, {self.high!r}{', log=True' if self.log else ''})"


@keyword_checked
class IntUniform(Dimension):
    """Integers ``low, low + step, …, <= high`` for random and optuna searches (a grid
    enumerates them)."""

    def __init__(self, low: int, high: int, step: int = 1) -> None:
        for key, value in (("low", low), ("high", high), ("step", step)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ConfigError(f"IntUniform needs integer {key}. Got {value!r}.")
        low, high, step = int(low), int(high), int(step)
        if step <= 0 or high < low:
            raise ConfigError(f"IntUniform needs low <= high and a positive step. Got "
                              f"low={low}, high={high}, step={step}.")
        count = _count("IntUniform", low, high, step, limit=None)
        # a lazy range: IntUniform(1, 10**12) is a fine random-search space, never a list
        self.values = range(low, low + count * step, step)
        self.low, self.high, self.step = low, self.values[-1], step

    def size(self, name: str) -> int:
        return len(self.values)

    def grid_values(self, name: str) -> list[Any]:
        _count(name, self.low, self.high, self.step)  # refuses a grid of more than MAX_GRID
        return list(self.values)

    def sample(self, rng: np.random.Generator) -> int:
        return int(self.values[int(rng.integers(len(self.values)))])

    def optuna_distribution(self) -> Any:
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high, step=self.step)

    def __repr__(self) -> str:
        return f"IntUniform({self.low}, {self.high}, step={self.step})"


def as_dimension(name: str, spec: Any) -> Dimension:
    """Turn a space value (list, tuple, range, string spec, scalar or Dimension) into a
    :class:`Dimension`."""
    if isinstance(spec, Dimension):
        return spec
    if isinstance(spec, str):
        return Choice.parse(spec, name)
    if isinstance(spec, (list, tuple, range, np.ndarray)):
        return Choice([v.item() if isinstance(v, np.generic) else v for v in spec])
    if isinstance(spec, Mapping):
        raise ConfigError(f"The space value of {name!r} must be a list of values, a "
                          f"'start:stop:step' string or a Dimension. Got a mapping.")
    return Choice([spec])


@keyword_checked
class Space:
    """Named dimensions; a point is a ``{name: value}`` dict in the space's key order.

    Examples
    --------
    >>> space = Space({"rsi_low": "35:45:5", "exits.stop_loss_pct": [1.0, 2.0]})
    >>> len(space), space.grid()[1]
    (6, {'rsi_low': 35, 'exits.stop_loss_pct': 2.0})
    """

    def __init__(self, dimensions: Mapping[str, Any] | Space) -> None:
        given: Any = dimensions.dimensions if isinstance(dimensions, Space) else dimensions
        if not isinstance(given, Mapping) or not given:
            raise ConfigError("A sweep's 'space' must be a non-empty dict of name -> values, "
                              f"e.g. {{'rsi_low': [35, 40, 45]}}. Got {given!r}.")
        self.dimensions: dict[str, Dimension] = {str(k): as_dimension(str(k), v)
                                                 for k, v in given.items()}

    @property
    def names(self) -> list[str]:
        return list(self.dimensions)

    @property
    def discrete(self) -> bool:
        return all(d.discrete for d in self.dimensions.values())

    def __len__(self) -> int:
        """Number of grid points (raises for a continuous space)."""
        return math.prod(d.size(n) for n, d in self.dimensions.items())

    def grid(self) -> list[dict[str, Any]]:
        """Every point, the last dimension varying fastest.

        Raises
        ------
        ConfigError
            For a continuous dimension, or a grid of more than :data:`MAX_GRID` points.
        """
        size = len(self)
        if size > MAX_GRID:
            sizes = {n: d.size(n) for n, d in self.dimensions.items()}
            raise ConfigError(f"The sweep space has {size:,} grid points {sizes}; a grid "
                              f"enumerates at most {MAX_GRID:,}. Use search='random' or "
                              "'optuna' with n_trials, or coarser steps.")
        axes = [d.grid_values(n) for n, d in self.dimensions.items()]
        return [dict(zip(self.names, combo, strict=True)) for combo in itertools.product(*axes)]

    def sample(self, n: int, seed: int | None = 0) -> list[dict[str, Any]]:
        """``n`` random points. A discrete space is sampled without replacement (all of it,
        shuffled, when ``n`` reaches its size); a continuous one independently."""
        rng = np.random.default_rng(seed)
        if self.discrete and len(self) <= MAX_GRID:
            grid = self.grid()
            order = rng.permutation(len(grid))[:n]
            return [grid[i] for i in order]
        return [{name: d.sample(rng) for name, d in self.dimensions.items()} for _ in range(n)]

    def optuna_distributions(self) -> dict[str, Any]:
        """The optuna distribution of every dimension (for ``study.ask``)."""
        return {name: d.optuna_distribution() for name, d in self.dimensions.items()}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.grid())

    def __repr__(self) -> str:
        return f"Space({self.dimensions!r})"


# ---------------------------------------------------------------------------- names
def resolve_names(names: Sequence[str], strategy_params: Sequence[str],
                  backtest_params: Sequence[str], base: Mapping[str, Any], *,
                  runner: str = "walk_forward") -> dict[str, tuple[str, str | None]]:
    """Map every space name to ``("strategy", param)``, ``("backtest", argument)`` or
    ``("nested", argument)`` with the field name.

    Raises
    ------
    ConfigError
        For a name that is neither a strategy parameter nor an argument of ``runner``
        (``walk_forward`` or ``replay``; with a did-you-mean), or a nested field the base
        object does not have.
    """
    from core_engine.strategies.base import did_you_mean

    out: dict[str, tuple[str, str | None]] = {}
    for name in names:
        head, dot, field = name.partition(".")
        if not dot and name in strategy_params:
            out[name] = ("strategy", name)
        elif not dot and name in backtest_params:
            out[name] = ("backtest", name)
        elif head == "strategy" and field in strategy_params:
            out[name] = ("strategy", field)
        elif dot and head in backtest_params and field and "." not in field:
            _check_field(name, head, field, base.get(head), runner)
            out[name] = ("nested:" + head, field)
        else:
            valid = [*strategy_params, *backtest_params]
            raise ConfigError(
                f"The space name {name!r} is not a parameter of the strategy "
                f"({list(strategy_params)}) nor a {runner} argument (or 'argument.field' "
                f"of one).{did_you_mean(field if head == 'strategy' else name, valid)}"
            )
    return out


def _default_base(argument: str) -> Any:
    if argument == "exits":
        from core_engine.risk import ExitRules

        return ExitRules()
    if argument == "rules":
        from core_engine.risk import PortfolioRules

        return PortfolioRules()
    if argument == "sizing":
        from core_engine.risk import EqualSlots

        return EqualSlots()
    return None


def _field_names(base: Any) -> list[str] | None:
    if dataclasses.is_dataclass(base) and not isinstance(base, type):
        return [f.name for f in dataclasses.fields(base)]
    if isinstance(base, Mapping):
        return [str(k) for k in base]
    if hasattr(base, "get_params") and hasattr(base, "set_params"):
        return list(base.get_params())
    return None


def _check_field(name: str, argument: str, field: str, base: Any,
                 runner: str = "walk_forward") -> None:
    from core_engine.strategies.base import did_you_mean

    given = base is not None
    base = base if given else _default_base(argument)
    if base is None:
        raise ConfigError(
            f"The space name {name!r} sets the field {field!r} of the {runner} argument "
            f"{argument!r}, which the sweep does not give. Pass a base object, e.g. "
            f"{argument}=..., to the Sweep."
        )
    fields = _field_names(base)
    if fields is None:
        raise ConfigError(
            f"The space name {name!r} needs the {argument!r} argument to be a dataclass, a "
            f"dict or an object with get_params/set_params. Got {type(base).__name__}."
        )
    if field not in fields and not isinstance(base, Mapping):
        hint = "" if given or argument != "sizing" else (
            f" ({type(base).__name__}() is walk_forward's default sizing; pass a base that "
            "has the field to the Sweep, e.g. sizing=FixedFraction(pct=10) for 'sizing.pct'.)")
        raise ConfigError(
            f"The space name {name!r}: {type(base).__name__} has no field {field!r}; it has "
            f"{fields}.{did_you_mean(field, fields)}{hint}"
        )


def apply_point(strategy: Any, backtest: Mapping[str, Any], point: Mapping[str, Any],
                names: Mapping[str, tuple[str, str | None]]) -> tuple[Any, dict[str, Any]]:
    """The strategy instance and ``walk_forward`` arguments of one point of the space.

    ``strategy`` is the base instance (cloned, never changed) or, for a trader, a Trader
    class or instance; ``backtest`` the sweep's arguments. Invalid values raise the
    :class:`ConfigError` of the object that rejects them (the strategy's, the trader's or
    the config's own validation).
    """
    strategy_params: dict[str, Any] = {}
    kwargs = dict(backtest)
    nested: dict[str, dict[str, Any]] = {}
    for name, value in point.items():
        kind, target = names[name]
        if kind == "strategy":
            strategy_params[str(target)] = value
        elif kind == "backtest":
            kwargs[str(target)] = value
        else:
            nested.setdefault(kind.split(":", 1)[1], {})[str(target)] = value
    for argument, fields in nested.items():
        base = kwargs.get(argument)  # the point's own value of the argument, else the sweep's
        kwargs[argument] = _replace(base if base is not None else _default_base(argument), fields)
    return point_instance(strategy, strategy_params), kwargs


def point_instance(strategy: Any, params: Mapping[str, Any]) -> Any:
    """A new strategy or trader: the base with ``params`` replaced.

    A class is built from ``params`` alone; a strategy instance is cloned and
    ``set_params``; a trader instance (no ``set_params``) is rebuilt from its
    ``get_params()`` and ``params`` (so its constructor validates the whole)."""
    if isinstance(strategy, type):
        return strategy(**params)
    if hasattr(strategy, "set_params"):
        instance = strategy.clone()
        if params:
            instance.set_params(**params)
        return instance
    return type(strategy)(**{**copy.deepcopy(strategy.get_params()), **params})


def _replace(base: Any, fields: dict[str, Any]) -> Any:
    if dataclasses.is_dataclass(base) and not isinstance(base, type):
        try:
            return dataclasses.replace(base, **fields)
        except TypeError as exc:
            raise ConfigError(f"{type(base).__name__}: {exc}.") from None
    if isinstance(base, Mapping):
        return {**base, **fields}
    clone = base.clone() if hasattr(base, "clone") else copy.deepcopy(base)
    clone.set_params(**fields)
    return clone

