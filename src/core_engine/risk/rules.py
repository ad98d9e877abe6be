"""Portfolio rules: what may block an entry in portfolio mode (DESIGN.md §5).

A rule never raises inside a run: it blocks an entry (or caps its size) and the result
records which rule blocked which pick (``result.blocked``, reason = the parameter's name).
Every rule reads only what is known at the decision time ``t``. In the order they are
checked for a new entry at ``t`` (the first that fails names the block):

1. ``max_drawdown_pct`` — at each candle close the equity is compared with its running
   peak (the initial cash included); at or beyond ``max_drawdown_pct`` % below it, entries
   halt for ``drawdown_halt_for`` (a duration; ``None`` = for good), the peak restarts at
   that equity (so a new trigger needs a new drop of that size), and with
   ``liquidate_on_drawdown`` every position is closed at the next open.
2. ``daily_loss_limit_pct`` — at or beyond that loss from the day's opening equity (the
   equity marked at the first candle close of the UTC day, 00:00, or the initial cash on
   the run's first day), no new entry until the next UTC day; with
   ``liquidate_on_daily_loss`` every position is closed at the next open.
3. ``cooldown`` — a symbol may not re-enter before ``exit time + cooldown``.
4. ``max_entries_per_day`` — at most that many new positions per UTC day (of ``t``).
5. ``max_correlation`` — the Pearson correlation of the candidate's 1-candle close-to-close
   returns with those of any held (or already entered at ``t``) symbol, over the last
   ``correlation_lookback`` returns ending with the candle that closes at ``t`` (pairs with
   a missing close skipped; fewer than 2 pairs or a flat series: no correlation, no
   block), must not exceed ``max_correlation``.
6. then the size: the sizing's value is capped by ``max_exposure_pct`` (of equity, per
   asset), by the room left under ``max_gross_exposure_pct`` (held positions at their
   last mark plus this decision's entries at their fill value) and by the cash
   (fees included); an order whose quantity is 0 or whose value is below
   ``min_order_value`` is skipped, named after the last cap that bound (``cash``,
   ``max_gross_exposure_pct``, ``max_exposure_pct``) or ``min_order_value`` if none did.
   A cap binds when it cuts the value by more than ``1e-9 × equity``: one that cuts less
   only matches an earlier one up to float rounding (with ``max_gross_exposure_pct=100``
   and no fee, the room and the cash of a fully invested account are the same number).

Re-picks of a held symbol are not entries: only the halts and the caps apply to the extra
quantity that ``rebalance=True`` buys.

Examples
--------
>>> PortfolioRules(cooldown="1h", max_entries_per_day=5).active
('cooldown', 'max_entries_per_day')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core_engine._config import FrozenConfig, check_int, check_number
from core_engine.errors import ConfigError

__all__ = ["RULE_NAMES", "PortfolioRules", "rule_params"]

#: The rules that can block an entry, as they appear in ``result.blocked["reason"]``.
RULE_NAMES = ("max_drawdown_pct", "daily_loss_limit_pct", "cooldown", "max_entries_per_day",
              "max_correlation", "max_exposure_pct", "max_gross_exposure_pct",
              "min_order_value")


def _duration_ns(name: str, value: Any) -> int:
    from core_engine.data.timeframes import timeframe_ns

    try:
        return int(timeframe_ns(value, name=name))
    except ConfigError:
        raise ConfigError(f"The '{name}' parameter of PortfolioRules must be a positive "
                          f"duration such as '4h' or None. Got {value!r}.") from None


@dataclass(frozen=True, kw_only=True)
class PortfolioRules(FrozenConfig):
    """The portfolio rules of a run (all off by default); see the module docstring.

    Parameters
    ----------
    cooldown : str, optional
        Duration after an exit before the same symbol may re-enter (e.g. ``"2h"``).
    max_entries_per_day : int, optional
        New positions per UTC day.
    daily_loss_limit_pct : float, optional
        Loss from the day's opening equity, in percent, that halts entries for the day.
    liquidate_on_daily_loss : bool
        Also close every position at the next open when the daily limit trips.
    max_drawdown_pct : float, optional
        Drawdown from the equity peak, in percent, that halts entries.
    drawdown_halt_for : str, optional
        How long the drawdown halt lasts; ``None`` = for good.
    liquidate_on_drawdown : bool
        Also close every position at the next open when the drawdown halt trips.
    max_exposure_pct : float, optional
        Largest value of one position, in percent of equity.
    max_gross_exposure_pct : float, optional
        Largest value of all positions together, in percent of equity (at most 100: spot,
        no leverage).
    max_correlation : float, optional
        Highest return correlation allowed with a held symbol, in ``(-1, 1]``.
    correlation_lookback : int
        Returns in that correlation (default 288: one day of 5m candles).
    min_order_value : float
        Smallest order value in the quote currency (the exchange's minimum notional).

    Raises
    ------
    ConfigError
        On an unknown parameter (with a did-you-mean hint) or a bad value.
    """

    cooldown: str | None = None
    max_entries_per_day: int | None = None
    daily_loss_limit_pct: float | None = None
    liquidate_on_daily_loss: bool = False
    max_drawdown_pct: float | None = None
    drawdown_halt_for: str | None = None
    liquidate_on_drawdown: bool = False
    max_exposure_pct: float | None = None
    max_gross_exposure_pct: float | None = None
    max_correlation: float | None = None
    correlation_lookback: int = 288
    min_order_value: float = 0.0

    def __post_init__(self) -> None:
        for name in ("cooldown", "drawdown_halt_for"):
            if getattr(self, name) is not None:
                _duration_ns(name, getattr(self, name))
        check_int(self, "max_entries_per_day", minimum=1, optional=True)
        for name in ("daily_loss_limit_pct", "max_drawdown_pct"):
            check_number(self, name, low=0.0, high=100.0, low_open=True, high_open=True,
                         optional=True)
        for name in ("max_exposure_pct", "max_gross_exposure_pct"):
            check_number(self, name, low=0.0, high=100.0, low_open=True, optional=True)
        check_number(self, "max_correlation", low=-1.0, high=1.0, low_open=True,
                     optional=True)
        check_int(self, "correlation_lookback", minimum=2)
        check_number(self, "min_order_value", low=0.0)
        for name in ("liquidate_on_daily_loss", "liquidate_on_drawdown"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"The '{name}' parameter of PortfolioRules must be True or "
                                  f"False. Got {getattr(self, name)!r}.")
        if self.liquidate_on_daily_loss and self.daily_loss_limit_pct is None:
            raise ConfigError("PortfolioRules: 'liquidate_on_daily_loss' needs "
                              "'daily_loss_limit_pct'.")
        if (self.liquidate_on_drawdown or self.drawdown_halt_for is not None) \
                and self.max_drawdown_pct is None:
            raise ConfigError("PortfolioRules: 'liquidate_on_drawdown' and "
                              "'drawdown_halt_for' need 'max_drawdown_pct'.")

    @property
    def active(self) -> tuple[str, ...]:
        """Names of the rules that are switched on."""
        on = []
        for name in ("cooldown", "max_entries_per_day", "daily_loss_limit_pct",
                     "max_drawdown_pct", "max_exposure_pct", "max_gross_exposure_pct",
                     "max_correlation"):
            if getattr(self, name) is not None:
                on.append(name)
        if self.min_order_value > 0:
            on.append("min_order_value")
        return tuple(on)

    def duration_ns(self, name: str) -> int:
        """``cooldown`` or ``drawdown_halt_for`` in nanoseconds (-1 when None)."""
        value = getattr(self, name)
        return -1 if value is None else _duration_ns(name, value)


def rule_params(rules: PortfolioRules | None, sizing: Any, fee_rate: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """The rules and the sizing packed as the risk kernels read them (``fp``, ``ip``).

    Parameters
    ----------
    rules : PortfolioRules or None
        None = every rule off.
    sizing : Sizing
        Its ``max_position_pct``, ``lot_step`` and, for ``RiskPerTrade``, ``risk_pct``.
    fee_rate : float
        The fee per side as a fraction (0.001 = 10 bps).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        float64 ``fp`` indexed by ``RF_*`` (NaN = off) and int64 ``ip`` indexed by ``RI_*``
        (-1 = off) of :mod:`core_engine.risk._kernels`. The backtest's portfolio kernel
        and the event world's ``RankingTrader`` both start from these two arrays.
    """
    from core_engine.risk import _kernels as k

    rules = rules if rules is not None else PortfolioRules()

    def frac(value: float | None) -> float:
        return np.nan if value is None else float(value) / 100.0

    fp = np.full(k.N_RULE_FPARAMS, np.nan)
    ip = np.full(k.N_RULE_IPARAMS, -1, dtype=np.int64)
    fp[k.RF_FEE] = float(fee_rate)
    fp[k.RF_MAX_POS] = float(sizing.max_position_pct) / 100.0
    fp[k.RF_LOT] = np.nan if sizing.lot_step is None else float(sizing.lot_step)
    fp[k.RF_MIN_ORDER] = float(rules.min_order_value)
    fp[k.RF_RISK] = frac(getattr(sizing, "risk_pct", None)) if sizing.kind == "risk" else np.nan
    fp[k.RF_DAILY_LOSS] = frac(rules.daily_loss_limit_pct)
    fp[k.RF_MAX_DD] = frac(rules.max_drawdown_pct)
    fp[k.RF_MAX_EXPOSURE] = frac(rules.max_exposure_pct)
    fp[k.RF_MAX_GROSS] = frac(rules.max_gross_exposure_pct)
    fp[k.RF_MAX_CORR] = np.nan if rules.max_correlation is None else float(rules.max_correlation)
    ip[k.RI_COOLDOWN_NS] = rules.duration_ns("cooldown")
    ip[k.RI_HALT_NS] = rules.duration_ns("drawdown_halt_for")
    ip[k.RI_MAX_ENTRIES] = -1 if rules.max_entries_per_day is None else rules.max_entries_per_day
    ip[k.RI_CORR_LOOKBACK] = rules.correlation_lookback
    ip[k.RI_LIQ_DAILY] = int(rules.liquidate_on_daily_loss)
    ip[k.RI_LIQ_DD] = int(rules.liquidate_on_drawdown)
    return fp, ip
