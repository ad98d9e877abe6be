"""Position sizing primitives for the compounding (portfolio) mode.

Small pure functions on floats, long positions only. Percent values are in percent
(``1.0`` = 1 %). Every function validates its input and raises :class:`ConfigError` naming
the argument; none silently clips a bad value.

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

from core_engine.errors import ConfigError
from core_engine.risk.exits import ExitRules

__all__ = [
    "cap_by_balance",
    "cap_by_exposure",
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
