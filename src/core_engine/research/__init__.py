"""core_engine.research: working with results in notebooks.

* :mod:`~core_engine.research.plots` — matplotlib figures of a run (equity and drawdown,
  trades on the price chart, return distribution, per-symbol/per-hour breakdowns, several
  runs compared) and of a factor evaluation; each function returns a ``Figure``.
* :mod:`~core_engine.research.report` — HTML tables for notebooks and a self-contained
  HTML report file.
* :mod:`~core_engine.research.factors` — IC, rank IC, decay, quantile returns and top-N
  turnover of any factor at the decision cadence.
* :mod:`~core_engine.progress` — tqdm progress bars, silent in CI and pipes.

This package sits above ``backtest``: it reads results and panels, never the other way round
(importing it registers ``BacktestResult.plot``/``report`` through
:mod:`core_engine.backtest.views`, which loads it by name on first use).
"""

from core_engine.progress import progress_bar
from core_engine.research.factors import (
    DEFAULT_HORIZONS,
    FactorReport,
    evaluate_factor,
    evaluate_factors,
    factor_table,
    forward_returns,
)
from core_engine.research.plots import (
    plot_breakdown,
    plot_comparison,
    plot_equity,
    plot_factor,
    plot_result,
    plot_return_distribution,
    plot_trades,
)
from core_engine.research.report import metrics_html, result_html, write_report

__all__ = [
    "DEFAULT_HORIZONS",
    "FactorReport",
    "evaluate_factor",
    "evaluate_factors",
    "factor_table",
    "forward_returns",
    "metrics_html",
    "plot_breakdown",
    "plot_comparison",
    "plot_equity",
    "plot_factor",
    "plot_result",
    "plot_return_distribution",
    "plot_trades",
    "progress_bar",
    "result_html",
    "write_report",
]
