"""Exit rules inside the holding window, as plain frozen configs read by the backtest kernel.

Distances are fixed at entry. Percent values are in percent (``2.0`` = 2 %); ATR values are
multiples of the ATR known at the decision time (ATR of the last closed candle).
The time exit at the end of the window always applies.
"""

from __future__ import annotations

from dataclasses import dataclass

from core_engine._config import FrozenConfig, check_choice, check_int, check_number
from core_engine.errors import ConfigError

__all__ = ["STOP_FILLS", "ExitRules"]

#: How a stop reached inside a candle fills (see :class:`ExitRules`).
STOP_FILLS = ("level", "low", "range")
_RULES = ("stop_loss", "take_profit", "trailing")


@dataclass(frozen=True, kw_only=True)
class ExitRules(FrozenConfig):
    """Stop-loss, take-profit and trailing stop for a long position.

    Parameters
    ----------
    stop_loss_pct, take_profit_pct, trailing_pct : float, optional
        Distances in percent of the entry price (trailing: of the highest high since entry).
    stop_loss_atr, take_profit_atr, trailing_atr : float, optional
        Distances in multiples of ATR(``atr_length``) at the decision time.
    atr_length : int
        The ATR period used by the ``*_atr`` rules (Wilder, as TA-Lib).
    stop_fill : {"level", "low", "range"}
        How a stop (fixed or trailing) reached *inside* a candle fills. ``"level"``
        (default): at the stop level. In a crash a stop-market order fills below its level,
        so two conservative options: ``"low"`` fills at the candle's low (the worst price
        traded in that candle), ``"range"`` at ``level − stop_fill_range × (high − low)``,
        never below the low. A candle that *opens* through the stop fills at its open
        whatever the choice. Whichever is chosen, each trade's ``worst_case_return_pct``
        is its return had every such stop filled at the low, and the metrics report the
        spread (``stop_fill_spread_pct``, ``worst_case_total_return_pct``).
    stop_fill_range : float, optional
        The share of the candle's range lost below the level with ``stop_fill="range"``
        (default 0.5 there; only valid with ``"range"``).

    A rule may be given in percent or in ATR, not both. With no rule, positions exit at the
    end of the window. Numbers may be Python or NumPy scalars; unknown or misspelt
    parameters raise :class:`~core_engine.errors.ConfigError` with a did-you-mean.

    Examples
    --------
    >>> ExitRules(stop_loss_pct=2.0, take_profit_pct=4.0).uses_atr
    False
    >>> ExitRules(stop_loss_pct=2.0, stop_fill="range").stop_fill_range
    0.5
    """

    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    trailing_pct: float | None = None
    stop_loss_atr: float | None = None
    take_profit_atr: float | None = None
    trailing_atr: float | None = None
    atr_length: int = 14
    stop_fill: str = "level"
    stop_fill_range: float | None = None

    def __post_init__(self) -> None:
        for rule in _RULES:
            high = 100.0 if rule != "take_profit" else None
            check_number(self, f"{rule}_pct", low=0.0, low_open=True, high=high,
                         high_open=True, optional=True)
            check_number(self, f"{rule}_atr", low=0.0, low_open=True, optional=True)
            if getattr(self, f"{rule}_pct") is not None and getattr(self, f"{rule}_atr") is not None:
                raise ConfigError(f"ExitRules: give '{rule}_pct' or '{rule}_atr', not both.")
        check_int(self, "atr_length", minimum=1)
        check_choice(self, "stop_fill", STOP_FILLS)
        if self.stop_fill == "range":
            if self.stop_fill_range is None:
                object.__setattr__(self, "stop_fill_range", 0.5)
            check_number(self, "stop_fill_range", low=0.0, low_open=True)
        elif self.stop_fill_range is not None:
            raise ConfigError(
                "The 'stop_fill_range' parameter of ExitRules applies to stop_fill='range' "
                f"only. Got stop_fill_range={self.stop_fill_range!r} with "
                f"stop_fill={self.stop_fill!r}."
            )

    @property
    def uses_atr(self) -> bool:
        """Whether any rule is in ATR multiples (the engine then computes ATR)."""
        return any(getattr(self, f"{rule}_atr") is not None for rule in _RULES)

    @property
    def active(self) -> bool:
        """Whether any rule besides the time exit is set."""
        return any(getattr(self, f"{rule}_{unit}") is not None
                   for rule in _RULES for unit in ("pct", "atr"))
