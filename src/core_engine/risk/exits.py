"""Exit rules inside the holding window, as plain frozen configs read by the backtest kernel.

Distances are fixed at entry. Percent values are in percent (``2.0`` = 2 %); ATR values are
multiples of the ATR known at the decision time (ATR of the last closed candle).
The time exit at the end of the window always applies.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from core_engine.errors import ConfigError

__all__ = ["ExitRules"]


@dataclass(frozen=True, kw_only=True)
class ExitRules:
    """Stop-loss, take-profit and trailing stop for a long position.

    Parameters
    ----------
    stop_loss_pct, take_profit_pct, trailing_pct : float, optional
        Distances in percent of the entry price (trailing: of the highest high since entry).
    stop_loss_atr, take_profit_atr, trailing_atr : float, optional
        Distances in multiples of ATR(``atr_length``) at the decision time.
    atr_length : int
        The ATR period used by the ``*_atr`` rules (Wilder, as TA-Lib).

    A rule may be given in percent or in ATR, not both. With no rule, positions exit at the
    end of the window.

    Examples
    --------
    >>> ExitRules(stop_loss_pct=2.0, take_profit_pct=4.0).uses_atr
    False
    """

    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    trailing_pct: float | None = None
    stop_loss_atr: float | None = None
    take_profit_atr: float | None = None
    trailing_atr: float | None = None
    atr_length: int = 14

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name == "atr_length":
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise ConfigError(
                        f"The 'atr_length' parameter of ExitRules must be a positive integer. Got {value!r}."
                    )
                continue
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or value <= 0
            ):
                raise ConfigError(
                    f"The '{name}' parameter of ExitRules must be a positive number or None. Got {value!r}."
                )
        for rule in ("stop_loss", "take_profit", "trailing"):
            if getattr(self, f"{rule}_pct") is not None and getattr(self, f"{rule}_atr") is not None:
                raise ConfigError(
                    f"ExitRules: give '{rule}_pct' or '{rule}_atr', not both."
                )
        if self.stop_loss_pct is not None and self.stop_loss_pct >= 100:
            raise ConfigError(
                f"The 'stop_loss_pct' parameter of ExitRules must be below 100. Got {self.stop_loss_pct!r}."
            )
        if self.trailing_pct is not None and self.trailing_pct >= 100:
            raise ConfigError(
                f"The 'trailing_pct' parameter of ExitRules must be below 100. Got {self.trailing_pct!r}."
            )

    @property
    def uses_atr(self) -> bool:
        """Whether any rule is in ATR multiples (the engine then computes ATR)."""
        return any(v is not None for v in (self.stop_loss_atr, self.take_profit_atr, self.trailing_atr))

    @property
    def active(self) -> bool:
        """Whether any rule besides the time exit is set."""
        return any(v is not None for k, v in asdict(self).items() if k != "atr_length")

    def to_dict(self) -> dict:
        """The parameters as a plain dict (for saving a run's config)."""
        return asdict(self)
