"""Position sizing for the compounding (portfolio) mode: sizing objects and small helpers.

**Sizing objects** (what ``walk_forward(mode="portfolio", sizing=...)`` takes) turn a pick at
decision time ``t`` into a target *entry value* in the quote currency, from the account's
equity ``E`` marked at ``t``. Each gives a fraction ``w`` of ``E``; the entry value is
``E × min(w, max_position_pct / 100)``:

* :class:`EqualSlots` — ``w = 1 / slots`` (default ``slots`` = the run's ``max_positions``);
* :class:`FixedFraction` — ``w = pct / 100``;
* :class:`RiskPerTrade` — ``w = risk_pct / 100 × fill / (fill − stop)``: losing the stop
  distance loses ``risk_pct`` % of ``E`` (fees aside). ``fill`` is the entry fill (after
  slippage) and ``stop`` the stop in force on the entry candle (fixed stop or trail from the
  fill, whichever is higher), so it needs a stop-loss or trailing rule in the exits;
* :class:`ConfidenceSizing` — ``w = min(confidence / full_confidence, 1) / slots``, the
  strategy's confidence at ``t`` (``Strategy.confidence``);
* :class:`InverseVolatilitySizing` — ``w = target_volatility_pct / 100 / volatility``, the
  symbol's per-candle return volatility at ``t`` (``ReturnVolatility(length)``), so every
  position carries about the same volatility in quote currency.

A NaN or non-positive ``w`` (missing confidence or volatility, a stop at or above the fill)
gives no position: the pick is recorded as blocked with reason ``sizing``. ``lot_step``
rounds the quantity down to a multiple of the exchange's lot: ``quantity =
floor(value / fill / lot_step) × lot_step``. The portfolio rules then cap the value
(exposure, cash) and skip orders below ``min_order_value``
(:class:`core_engine.risk.rules.PortfolioRules`).

**Helpers** are small pure functions on floats, long positions only. Percent values are in
percent (``1.0`` = 1 %). Every function validates its input and raises :class:`ConfigError`
naming the argument; none silently clips a bad value.

Examples
--------
>>> risk_per_trade_size(equity=10_000, risk_pct=1.0, entry=100.0, stop=95.0)
20.0
>>> position_size(equity=10_000, entry=100.0, stop=95.0, risk_pct=1.0,
...               available_balance=1_500.0)
15.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from core_engine._config import FrozenConfig, check_int, check_number
from core_engine._validate import check_instance
from core_engine.errors import ConfigError
from core_engine.risk.exits import ExitRules

__all__ = [
    "ConfidenceSizing",
    "EqualSlots",
    "FixedFraction",
    "InverseVolatilitySizing",
    "SIZING_NAMES",
    "RiskPerTrade",
    "Sizing",
    "cap_by_balance",
    "cap_by_exposure",
    "parse_sizing",
    "position_size",
    "risk_per_trade_size",
    "stop_price",
]


def _number(name: str, value: float, *, low: float = 0.0, strict: bool = True,
            high: float | None = None) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (value > low if strict else value >= low) and (high is None or value <= high)
    if not ok:
        rule = f"{'>' if strict else '>='} {low:g}" + ("" if high is None else f" and <= {high:g}")
        raise ConfigError(f"The '{name}' argument must be a finite number {rule}. Got {value!r}.")
    return float(value)


def risk_per_trade_size(equity: float, risk_pct: float, entry: float, stop: float) -> float:
    """Quantity such that hitting ``stop`` loses ``risk_pct`` % of ``equity``.

    ``quantity = equity * risk_pct / 100 / (entry - stop)`` (fees and slippage excluded).

    Raises
    ------
    ConfigError
        If ``equity < 0``, ``risk_pct`` is not in ``(0, 100]``, ``entry <= 0`` or the stop
        is not strictly between 0 and ``entry`` (a long stop sits below the entry).
    """
    equity = _number("equity", equity, strict=False)
    risk_pct = _number("risk_pct", risk_pct, high=100.0)
    entry = _number("entry", entry)
    stop = _number("stop", stop)
    if stop >= entry:
        raise ConfigError(f"The 'stop' argument must be below 'entry' for a long position. Got stop={stop!r}, entry={entry!r}.")
    return equity * risk_pct / 100.0 / (entry - stop)


def stop_price(entry: float, rules: ExitRules, atr: float | None = None) -> float | None:
    """Stop price fixed at entry by ``rules`` (percent or ATR multiple), or None if no stop.

    Raises
    ------
    ConfigError
        If the rule is in ATR and ``atr`` is missing or not positive, or the stop would be
        at or below zero.
    """
    check_instance(rules, ExitRules, "rules", "stop_price",
                   expected="an ExitRules such as ExitRules(stop_loss_pct=2)")
    entry = _number("entry", entry)
    if rules.stop_loss_pct is not None:
        return entry * (1.0 - rules.stop_loss_pct / 100.0)
    if rules.stop_loss_atr is None:
        return None
    if atr is None:
        raise ConfigError("stop_price: the rule 'stop_loss_atr' needs the 'atr' argument. Got None.")
    atr = _number("atr", atr)
    stop = entry - rules.stop_loss_atr * atr
    if stop <= 0:
        raise ConfigError(
            f"stop_price: entry {entry:g} minus {rules.stop_loss_atr:g} × ATR {atr:g} is {stop:g}, not a price above 0."
        )
    return stop


def cap_by_balance(quantity: float, price: float, available_balance: float, fee_bps: float = 0.0) -> float:
    """The part of ``quantity`` that ``available_balance`` can pay for, fees included."""
    quantity = _number("quantity", quantity, strict=False)
    price = _number("price", price)
    available_balance = _number("available_balance", available_balance, strict=False)
    fee_bps = _number("fee_bps", fee_bps, strict=False, high=10_000.0)
    affordable = available_balance / (price * (1.0 + fee_bps / 10_000.0))
    return min(quantity, affordable)


def cap_by_exposure(quantity: float, price: float, equity: float, max_exposure_pct: float,
                    current_exposure: float = 0.0) -> float:
    """The part of ``quantity`` that keeps the asset's exposure within ``max_exposure_pct`` %
    of ``equity``, given ``current_exposure`` (quote value already held); never negative."""
    quantity = _number("quantity", quantity, strict=False)
    price = _number("price", price)
    equity = _number("equity", equity, strict=False)
    max_exposure_pct = _number("max_exposure_pct", max_exposure_pct, high=100.0)
    current_exposure = _number("current_exposure", current_exposure, strict=False)
    room = equity * max_exposure_pct / 100.0 - current_exposure
    return max(0.0, min(quantity, room / price))


def position_size(equity: float, entry: float, stop: float, *, risk_pct: float,
                  available_balance: float | None = None, max_exposure_pct: float = 100.0,
                  current_exposure: float = 0.0, fee_bps: float = 0.0) -> float:
    """Risk-based quantity, then capped by the balance and the per-asset exposure limit.

    ``min(risk_per_trade_size, cap_by_balance, cap_by_exposure)``; ``available_balance``
    defaults to ``equity``.
    """
    quantity = risk_per_trade_size(equity, risk_pct, entry, stop)
    balance = equity if available_balance is None else available_balance
    quantity = cap_by_balance(quantity, entry, balance, fee_bps)
    return cap_by_exposure(quantity, entry, equity, max_exposure_pct, current_exposure)


# ---------------------------------------------------------------------- sizing objects
@dataclass(frozen=True, kw_only=True)
class Sizing(FrozenConfig):
    """Base of the sizing objects: the caps every sizing shares.

    Parameters
    ----------
    max_position_pct : float
        Largest entry value of one position, in percent of equity (default 100).
    lot_step : float, optional
        Quantities are rounded down to a multiple of it (the exchange's lot size).
    """

    #: ``"weight"``: the fraction is known at ``t`` (:meth:`weights`); ``"risk"``: it needs
    #: the entry fill and stop (computed by the simulation).
    kind: ClassVar[str] = "weight"
    max_position_pct: float = 100.0
    lot_step: float | None = None

    def __post_init__(self) -> None:
        check_number(self, "max_position_pct", low=0.0, high=100.0, low_open=True)
        check_number(self, "lot_step", low=0.0, low_open=True, optional=True)

    def needs(self) -> tuple[str, ...]:
        """What :meth:`weights` reads: ``"confidence"``, ``"volatility"`` or nothing."""
        return ()

    def features(self) -> list:
        """Feature computers the sizing needs (computed on the whole panel, read at ``t``)."""
        return []

    def weights(self, n_picks: int, max_positions: int, confidence: Any = None,
                volatility: Any = None) -> Any:
        """The fraction ``w`` of equity of each pick (NaN = no size), before
        ``max_position_pct``. ``confidence``/``volatility`` hold the value of each pick's
        symbol at its decision row when :meth:`needs` asks for them."""
        raise NotImplementedError

    def describe(self) -> dict:
        """The parameters and the class name, for a run's saved config."""
        return {"sizing": type(self).__name__, **self.to_dict()}


def _slots(slots: int | None, max_positions: int) -> int:
    return max_positions if slots is None else slots


@dataclass(frozen=True, kw_only=True)
class EqualSlots(Sizing):
    """An equal share of equity per position slot: ``w = 1 / slots``.

    ``slots`` defaults to the run's ``max_positions`` (3 positions → a third of equity each).

    >>> EqualSlots(slots=4).weights(2, 3).tolist()
    [0.25, 0.25]
    """

    slots: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "slots", minimum=1, optional=True)

    def weights(self, n_picks, max_positions, confidence=None, volatility=None):
        return np.full(n_picks, 1.0 / _slots(self.slots, max_positions))


@dataclass(frozen=True, kw_only=True)
class FixedFraction(Sizing):
    """A fixed share of equity per position: ``w = pct / 100``.

    >>> FixedFraction(pct=10).weights(2, 3).tolist()
    [0.1, 0.1]
    """

    pct: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number(self, "pct", low=0.0, high=100.0, low_open=True)

    def weights(self, n_picks, max_positions, confidence=None, volatility=None):
        return np.full(n_picks, self.pct / 100.0)


@dataclass(frozen=True, kw_only=True)
class RiskPerTrade(Sizing):
    """Risk a fixed share of equity on the stop: ``value = E × risk_pct / 100 × fill /
    (fill − stop)``, so a stop-out loses ``risk_pct`` % of equity before costs.

    Needs a stop-loss or trailing rule in the run's exits (checked by ``walk_forward``).
    """

    kind: ClassVar[str] = "risk"
    risk_pct: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number(self, "risk_pct", low=0.0, high=100.0, low_open=True)

    def weights(self, n_picks, max_positions, confidence=None, volatility=None):
        return np.full(n_picks, np.nan)  # computed from the fill by the simulation


@dataclass(frozen=True, kw_only=True)
class ConfidenceSizing(Sizing):
    """A slot scaled by the strategy's confidence: ``w = min(confidence / full_confidence,
    1) / slots``; a NaN or zero confidence gives no position.

    >>> import numpy as np
    >>> ConfidenceSizing(full_confidence=3).weights(3, 2, confidence=np.array([1, 3, 6.])).tolist()
    [0.16666666666666666, 0.5, 0.5]
    """

    full_confidence: float = 1.0
    slots: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number(self, "full_confidence", low=0.0, low_open=True)
        check_int(self, "slots", minimum=1, optional=True)

    def needs(self) -> tuple[str, ...]:
        return ("confidence",)

    def weights(self, n_picks, max_positions, confidence=None, volatility=None):
        conf = np.asarray(confidence, dtype=np.float64)
        scale = np.minimum(conf / self.full_confidence, 1.0)
        return scale / _slots(self.slots, max_positions)


@dataclass(frozen=True, kw_only=True)
class InverseVolatilitySizing(Sizing):
    """Equal volatility per position: ``w = target_volatility_pct / 100 / volatility``,
    with the symbol's per-candle log-return volatility over ``length`` candles at ``t``
    (``ReturnVolatility``); a NaN or zero volatility (warm-up, flat prices) gives no
    position.

    >>> import numpy as np
    >>> InverseVolatilitySizing(target_volatility_pct=0.1).weights(
    ...     2, 3, volatility=np.array([0.002, 0.004])).tolist()
    [0.5, 0.25]
    """

    target_volatility_pct: float = 0.1
    length: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number(self, "target_volatility_pct", low=0.0, low_open=True)
        check_int(self, "length", minimum=2)

    def _computer(self):
        from core_engine.features import ReturnVolatility

        return ReturnVolatility(length=self.length)

    def needs(self) -> tuple[str, ...]:
        return ("volatility",)

    def features(self) -> list:
        return [self._computer()]

    @property
    def column(self) -> str:
        """The feature column read as the volatility."""
        return str(self._computer().columns[0])

    def weights(self, n_picks, max_positions, confidence=None, volatility=None):
        vol = np.asarray(volatility, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(vol > 0, self.target_volatility_pct / 100.0 / vol, np.nan)


#: Short names of the sizing objects for the command line (``--sizing risk:1``).
SIZING_NAMES = {"equal": (EqualSlots, "slots"), "fixed": (FixedFraction, "pct"),
                "risk": (RiskPerTrade, "risk_pct"),
                "confidence": (ConfidenceSizing, "full_confidence"),
                "invvol": (InverseVolatilitySizing, "target_volatility_pct")}


def parse_sizing(text: str) -> Sizing:
    """A sizing object from ``NAME[:VALUE]`` (``equal``, ``equal:5``, ``fixed:10``,
    ``risk:1``, ``confidence:3``, ``invvol:0.1``), as the ``--sizing`` option reads it.

    >>> parse_sizing("risk:1")
    RiskPerTrade(max_position_pct=100.0, lot_step=None, risk_pct=1.0)
    """
    name, _, value = str(text).partition(":")
    if name not in SIZING_NAMES:
        import difflib

        close = difflib.get_close_matches(name, list(SIZING_NAMES), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"The sizing {text!r} is unknown; expected one of "
                          f"{sorted(SIZING_NAMES)}, optionally with ':VALUE' (e.g. 'risk:1')."
                          + hint)
    cls, param = SIZING_NAMES[name]
    if not value:
        return cls()
    try:
        number: float | int = int(value) if param == "slots" else float(value)
    except ValueError:
        raise ConfigError(f"The sizing {text!r} needs a number after ':' ({param}). "
                          f"Got {value!r}.") from None
    return cls(**{param: number})
