"""ReplayResult: a BacktestResult with the event world's orders, fills, notes and blocked picks.

**Trades** are round trips per symbol, from the first buy of a flat position to the sell
that makes it flat again (several fills each side when orders fill partly or a trader adds
to a position, also after it began to sell, as a grid does; :mod:`core_engine.trading.trips`).
``entry_price``/``exit_price`` are the quantity-weighted fill prices
(slippage included), ``quantity`` the base quantity bought, ``entry_value`` its quote value,
``fees`` both sides' fees, ``pnl = sell value − buy value − fees``, and
``return_pct = (sell value − sell fees) / (buy value + buy fees) × 100 − 100``: for one
entry and one exit it equals the backtest's ``exit × (1 − fee) / (entry × (1 + fee)) − 1``.
``exit_reason`` is the closing fill's trigger (``stop_loss``, ``trailing_stop``,
``take_profit``) or the closing order's tag (``window_end`` for a RankingTrader's time
exit); ``max_drawdown``, ``ambiguous``, ``best_return_pct``, ``gaps_in_window`` and
``exit_at_last_close`` follow :mod:`core_engine.backtest.simulate`. ``decision_time``,
``rank``, ``score`` and ``weight`` come from the entry order's ``meta`` when the trader set
them (the RankingTrader does).

**Equity** has one row per candle of the replay, as portfolio mode's: ``time`` (the
candle's close, when the value holds), ``equity`` (the account in quote currency),
``cash``, ``exposure`` (quote value of the holdings), ``positions`` and ``drawdown_pct``
(from the running peak, >= 0). The result's ``config["mode"]`` is ``"portfolio"`` (with
``config["engine"] == "replay"``), so summary, plots, reports and save/load treat it as an
account.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

import core_engine
from core_engine._config import keyword_checked
from core_engine.backtest._kernels import count_missing_2d
from core_engine.backtest.data_quality import discontinuity_quality, trade_rows_from_times
from core_engine.backtest.results import BacktestResult
from core_engine.data.panel import Panel
from core_engine.errors import ConfigError
from core_engine.trading._kernels import account_marks, equity_marks
from core_engine.trading.orders import Order
from core_engine.trading.sim import SimBroker
from core_engine.trading.trader import Records, Trader
from core_engine.trading.trips import FillTable, _Orders, trades_frame

__all__ = ["ReplayResult", "account_metrics", "build_result"]

_YEAR_NS = 365 * 24 * 3600 * 10**9
_DAY_NS = 24 * 3600 * 10**9
_EXTRA = ("orders", "fills", "notes")


@keyword_checked
class ReplayResult(BacktestResult):
    """The outcome of :func:`~core_engine.trading.events.replay` (immutable).

    Besides the :class:`~core_engine.backtest.BacktestResult` attributes:

    Attributes
    ----------
    orders : pandas.DataFrame
        Every order the trader placed, in order, with its final status.
    fills : pandas.DataFrame
        Every execution: trade id, client id, symbol, side, time, price, quantity, fee,
        liquidity, reason, ambiguous.
    notes : pandas.DataFrame
        ``ctx.note`` records: time, text, values (dict), orders (client ids it produced).
    blocked : pandas.DataFrame
        Picks that did not become positions: time, symbol, rank, score, reason.
    """

    __slots__ = ("_orders", "_fills", "_notes")
    _orders: pd.DataFrame
    _fills: pd.DataFrame
    _notes: pd.DataFrame

    def __init__(self, *, trades: pd.DataFrame, equity: pd.DataFrame, metrics: dict,
                 config: dict, data_quality: dict, panel: Any = None,
                 orders: pd.DataFrame | None = None, fills: pd.DataFrame | None = None,
                 notes: pd.DataFrame | None = None, blocked: pd.DataFrame | None = None
                 ) -> None:
        super().__init__(trades=trades, equity=equity, metrics=metrics, config=config,
                         data_quality=data_quality, panel=panel, blocked=blocked)
        for name, value in (("_orders", orders), ("_fills", fills), ("_notes", notes)):
            object.__setattr__(self, name, pd.DataFrame() if value is None else value.copy())

    @classmethod
    def _owning(cls, **parts: Any) -> ReplayResult:
        """The result of :func:`build_result`, holding the frames and dicts it made as they
        are: they are new and nothing else refers to them, so the constructor's defensive
        copies (a year of equity marks, every order and fill) would only cost time."""
        result = object.__new__(cls)
        for name in ("trades", "equity", "metrics", "config", "data_quality", "panel",
                     "blocked", "orders", "fills", "notes"):
            object.__setattr__(result, f"_{name}", parts.pop(name))
        if parts:
            raise TypeError(f"unknown parts of a ReplayResult: {sorted(parts)}")
        return result

    @property
    def orders(self) -> pd.DataFrame:
        return self._orders.copy()

    @property
    def fills(self) -> pd.DataFrame:
        return self._fills.copy()

    @property
    def notes(self) -> pd.DataFrame:
        return self._notes.copy(deep=True)

    def __repr__(self) -> str:
        m = self._metrics
        return (f"ReplayResult({self._config.get('strategy', {}).get('name', '?')}, "
                f"{m.get('trades', 0):,} trades, {m.get('orders', 0):,} orders, total return "
                f"{m.get('total_return_pct', math.nan):+.2f} %)")

    def summary(self) -> str:
        """The headline metrics (as slices mode) plus the account and the order flow."""
        m = self._metrics
        lines = [super().summary(), "",
                 f"  Replay account: {m.get('initial_cash', math.nan):,.2f} -> "
                 f"{m.get('final_equity', math.nan):,.2f} {self._config.get('quote', '')}, "
                 f"CAGR {m.get('cagr_pct', math.nan):+.2f} %, Calmar {m.get('calmar', math.nan):.3f}, "
                 f"fees paid {m.get('fees_paid', 0.0):,.2f}",
                 f"  Orders {m.get('orders', 0):,} ({m.get('rejected_orders', 0):,} rejected, "
                 f"{m.get('cancelled_orders', 0):,} cancelled), fills {m.get('fills', 0):,}, "
                 f"notes {len(self._notes):,}, blocked picks {len(self._blocked):,}"]
        return "\n".join(lines).replace("Walk-forward backtest:", "Replay:", 1)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the run (as :meth:`BacktestResult.save`) plus orders, fills and notes as
        Parquet."""
        folder = super().save(path, overwrite=overwrite)
        for name in _EXTRA:
            frame = getattr(self, f"_{name}").copy()
            for col in frame.columns:
                if frame[col].dtype == object and frame[col].map(
                        lambda v: isinstance(v, (dict, list))).any():
                    frame[col] = frame[col].map(json.dumps)
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        return folder

    @classmethod
    def load(cls, path: str | Path) -> ReplayResult:
        base = BacktestResult.load(path)
        folder = Path(path)
        extra = {}
        for name in _EXTRA:
            file = folder / f"{name}.parquet"
            if not file.is_file():
                raise ConfigError(f"'{folder}' is not a saved replay: missing {file.name}.")
            extra[name] = pd.read_parquet(file)
        return cls(trades=base.trades, equity=base.equity, metrics=base.metrics,
                   config=base.config, data_quality=base.data_quality, blocked=base.blocked,
                   **extra)


# ---------------------------------------------------------------------------- equity
def equity_frame(panel: Panel, snapshots: list[tuple[int, float, np.ndarray]], start_row: int,
                 end_row: int, initial_cash: float) -> pd.DataFrame:
    """The account at the close of each row ``start_row..end_row`` (the last snapshot of
    cash and holdings at or before it, valued at the last closes), after a first mark at
    the start time (the open of the first candle), as walk_forward's first mark is its cash
    at the first decision time."""
    snap_rows = np.fromiter((s[0] for s in snapshots), dtype=np.int64, count=len(snapshots))
    cash = np.fromiter((s[1] for s in snapshots), dtype=np.float64, count=len(snapshots))
    holdings = np.array([s[2] for s in snapshots], dtype=np.float64).reshape(
        len(snapshots), panel.n_symbols)
    marks, positions = equity_marks(np.asarray(panel.close, dtype=np.float64), snap_rows, cash,
                                    holdings, start_row, end_row, float(initial_cash))
    index = panel.index.asi8
    times = np.empty(end_row - start_row + 2, dtype=np.int64)
    times[0] = index[start_row]
    np.add(index[start_row:end_row + 1], panel.step_ns, out=times[1:])
    # the kernel's rows are the frame's float block as they are (no copy of a year of marks)
    frame = pd.DataFrame(marks.T, columns=["equity", "cash", "exposure", "drawdown_pct"],
                         copy=False)
    frame.insert(0, "time", pd.DatetimeIndex(times, tz="UTC"))
    frame.insert(4, "positions", positions)
    return frame


def _ratio(a: float, b: float) -> float:
    return a / b if b and math.isfinite(b) else math.nan


def _daily_returns(times_ns: np.ndarray, value: np.ndarray, initial_cash: float
                   ) -> np.ndarray:
    """The returns of the last value of each UTC day (NaN values skipped), the first from
    ``initial_cash``: ``Series(value, times).resample("1D").last().dropna()`` after the
    initial cash, ``pct_change().dropna()`` (the same values; tested)."""
    value = np.asarray(value, dtype=np.float64)
    return account_marks(np.asarray(times_ns, dtype=np.int64), value, np.zeros(len(value)),
                         np.zeros(len(value)), float(initial_cash))[0]


def account_metrics(equity: pd.DataFrame, trades: pd.DataFrame, initial_cash: float,
                    step_ns: int) -> dict:
    """Metrics of the account (CAGR, daily Sharpe/Sortino, Calmar, drawdown and its
    duration, exposure, turnover, fees) and of its trades (count, win rate, returns,
    profit factor, holding time, exit reasons)."""
    value = equity["equity"].to_numpy()
    times = pd.DatetimeIndex(equity["time"])
    n = len(value)
    years = n * step_ns / _YEAR_NS
    final = float(value[-1]) if n else initial_cash
    total = _ratio(final, initial_cash) - 1.0
    dd = equity["drawdown_pct"].to_numpy()
    exposure = equity["exposure"].to_numpy()
    # one pass: the daily returns, the longest run of candles below the peak, the exposure
    daily_ret, longest, exposure_sum, exposure_n = account_marks(
        times.asi8, np.asarray(value, dtype=np.float64), np.asarray(dd, dtype=np.float64),
        np.asarray(exposure, dtype=np.float64), float(initial_cash))
    sd = float(np.std(daily_ret, ddof=1)) if len(daily_ret) > 1 else math.nan
    down = float(np.sqrt(np.mean(np.minimum(daily_ret, 0.0) ** 2))) if len(daily_ret) else math.nan
    mean = float(np.mean(daily_ret)) if len(daily_ret) else math.nan
    max_dd = float(dd.max()) if n else 0.0
    cagr = (_ratio(final, initial_cash) ** (1.0 / years) - 1.0) * 100.0 \
        if years > 0 and final > 0 else math.nan
    returns = trades["return_pct"].to_numpy(dtype=float)
    n_trades = int(returns.size)
    gains, losses = returns[returns > 0].sum(), -returns[returns < 0].sum()
    holding = (trades["exit_time"] - trades["entry_time"]).dt.total_seconds().to_numpy() / 60.0 \
        if n_trades else np.empty(0)
    reasons = trades["exit_reason"].value_counts()
    exposure_share = exposure_sum / exposure_n if exposure_n else math.nan
    traded = float(trades["entry_value"].sum() + (trades["quantity"] * trades["exit_price"]).sum())
    return {
        "trades": n_trades,
        "win_rate": _ratio(float((returns > 0).sum()), n_trades),
        "avg_return_pct": float(returns.mean()) if n_trades else math.nan,
        "median_return_pct": float(np.median(returns)) if n_trades else math.nan,
        "profit_factor": (math.inf if gains > 0 else math.nan) if losses == 0
        else float(gains / losses),
        "avg_trade_max_drawdown_pct": float(trades["max_drawdown"].mean()) if n_trades else math.nan,
        "max_trade_drawdown_pct": float(trades["max_drawdown"].max()) if n_trades else math.nan,
        "total_return_pct": total * 100.0,
        "cagr_pct": cagr,
        "equity_max_drawdown_pct": max_dd,
        "max_drawdown_duration_days": longest * step_ns / _DAY_NS,
        "sharpe": _ratio(mean, sd) * math.sqrt(365.0),
        "sortino": _ratio(mean, down) * math.sqrt(365.0),
        "calmar": _ratio(cagr, max_dd),
        "exposure": exposure_share,
        "avg_holding_minutes": float(holding.mean()) if n_trades else math.nan,
        "turnover_per_year": _ratio(traded / initial_cash, years) if initial_cash else math.nan,
        "fees_paid": float(trades["fees"].sum()),
        "ambiguous_trades": int(trades["ambiguous"].sum()),
        "trades_with_gaps": int((trades["gaps_in_window"] > 0).sum()),
        "initial_cash": float(initial_cash),
        "final_equity": final,
        "exit_reasons": {str(k): int(v) for k, v in reasons.items()},
    }


def build_result(trader: Trader, panel: Panel, broker: SimBroker, records: Records,
                 snapshots: list, *, start_row: int, end_row: int, config: dict,
                 calls: int = 0) -> ReplayResult:
    # the order the broker holds under each client id (not one refused for reusing it),
    # then the trader's orders the broker never took
    orders = _Orders(broker)
    orders.update(broker._orders)
    for order in records.orders:
        orders.setdefault(order.client_id, order)
    fills = FillTable(broker, orders)
    trades = trades_frame(fills, orders, broker, panel)
    initial = float(snapshots[0][1])
    equity = equity_frame(panel, snapshots, start_row, end_row, initial)
    metrics = account_metrics(equity, trades, initial, panel.step_ns)
    orders_df = _orders_frame(records, orders, broker)
    statuses = orders_df["status"].value_counts() if len(orders_df) else pd.Series(dtype=int)
    fills_df = _fills_frame(broker)
    fees_all = float(fills_df["fee"].sum()) if len(fills_df) else 0.0
    metrics.update({"decisions": int(calls), "orders": len(orders_df), "fills": len(fills),
                    "rejected_orders": int(statuses.get("rejected", 0)),
                    "cancelled_orders": int(statuses.get("cancelled", 0)),
                    "fees_paid": fees_all})
    missing = count_missing_2d(np.asarray(panel.close))
    index = panel.index
    data_quality = {
        "symbols": list(panel.symbols), "n_symbols": panel.n_symbols,
        "timeframe": panel.timeframe, "candles": panel.n_times,
        "start": str(index[start_row]), "end": str(index[end_row]),
        "missing_candles": int(missing[0].sum()), "gap_candles": int(missing[1].sum()),
        "candles_replayed": int(end_row - start_row + 1),
    }
    # as in walk_forward: every symbol's price discontinuities, and the positions held
    # across one (partial rebalancing sales aside)
    data_quality.update(discontinuity_quality(
        panel, *trade_rows_from_times(panel, trades[trades["exit_reason"] != "rebalance"])))
    params = {k: _jsonable(v) for k, v in trader.get_params().items()}
    full_config = {
        "strategy": {"name": str(getattr(trader, "name", type(trader).__name__)),
                     "class": f"{type(trader).__module__}:{type(trader).__qualname__}",
                     "params": params, "repr": repr(trader)},
        "mode": "portfolio", "engine": "replay", "quote": broker.quote,
        "fee_bps": broker.taker_fee * 1e4, "maker_bps": broker.maker_fee * 1e4,
        "slippage_bps": broker.slippage * 1e4, "max_volume_share": broker.max_volume_share,
        "initial_cash": initial, "timeframe": panel.timeframe,
        "symbols": list(panel.symbols), "library_version": core_engine.__version__,
        **copy.deepcopy(config),
    }
    return ReplayResult._owning(trades=trades, equity=equity, metrics=metrics,
                                config=full_config, data_quality=data_quality, panel=panel,
                                orders=orders_df, fills=fills_df, notes=records.notes_frame(),
                                blocked=records.blocked_frame())


def _fills_frame(broker: SimBroker) -> pd.DataFrame:
    """One row per fill (``Fill.to_record``); the declared-orders path's from its columns."""
    segments = broker._segments
    if not segments:
        return pd.DataFrame([f.to_record() for f in broker._fills])
    table = _Table(("time",), ("price", "quantity", "fee"))
    table.interleave(broker._fills, [(s.fills_at, s.fill_records) for s in segments])
    return table.frame()


def _orders_frame(records: Records, orders: dict[str, Order], broker: SimBroker
                  ) -> pd.DataFrame:
    """One row per order in placement order (``Order.to_record``); the declared-orders
    path's orders are read from its columns, at the place they were made. ``inside_candle``:
    placed in answer to a fill inside the candle opening at ``created_at`` (it depends on
    that candle; :func:`~core_engine.testing.check_trader` reads it)."""
    segments = broker._segments
    inside = records.inside
    if not segments:
        frame = pd.DataFrame([o.to_record() for o in orders.values()])
        if len(frame):
            frame["inside_candle"] = np.fromiter(
                (cid in inside for cid in orders), dtype=bool, count=len(frame))
        return frame
    table = _Table(("created_at", "updated_at"),
                   ("quantity", "quote_quantity", "limit_price", "stop_price", "trail_pct",
                    "trail_offset", "filled_quantity", "average_price", "fees"))
    listed = records.orders
    seen: set[str] = set()

    def once(part: list[Order]) -> Any:
        # as the dict ``orders``: a client id listed twice (an order refused for reusing
        # it) takes its first place and the last order listed under it
        for order in part:
            if order.client_id not in seen:
                seen.add(order.client_id)
                yield dict.__getitem__(orders, order.client_id)

    table.interleave(listed, [(s.orders_at, s.order_records) for s in segments], once)
    table.add_objects(o for cid, o in orders.items() if cid not in seen)
    ids = [cid for chunk in table.chunks["client_id"] for cid in chunk]
    table.add_columns({"inside_candle": np.fromiter((cid in inside for cid in ids), dtype=bool,
                                                    count=len(ids))})
    return table.frame()


class _Table:
    """Columns gathered from records of objects (``to_record``) and from the columns of
    the declared-orders path, in order, as chunks: times as epoch nanoseconds (``None``:
    NaT) and the float columns as arrays, so the frame gets the dtypes a frame of the
    records alone gets."""

    _NAT = np.iinfo(np.int64).min

    def __init__(self, times: tuple[str, ...], floats: tuple[str, ...]) -> None:
        self.times = times
        self.floats = floats
        self.chunks: dict[str, list] = {}

    def add_objects(self, objects: Any) -> None:
        records = [item.to_record() for item in objects]
        if not records:
            return
        nat = self._NAT
        for key in records[0]:
            values = [r[key] for r in records]
            if key in self.times:
                values = [nat if v is None else v.value for v in values]
            self.chunks.setdefault(key, []).append(values)

    def interleave(self, listed: list, blocks: list[tuple[int, Any]],
                   pick: Any = None) -> None:
        """The objects of ``listed`` (those ``pick`` yields of each part, all by default)
        with each block's columns (``(position, make)``: the columns ``make()`` returns go
        before ``listed[position]``)."""
        done = 0
        for at, make in blocks:
            part = listed[done:at]
            self.add_objects(part if pick is None else pick(part))
            self.add_columns(make())
            done = at
        part = listed[done:]
        self.add_objects(part if pick is None else pick(part))

    def add_columns(self, values: dict[str, Any]) -> None:
        for key, column in values.items():
            self.chunks.setdefault(key, []).append(column)

    def frame(self) -> pd.DataFrame:
        columns: dict[str, Any] = {}
        for key, chunks in self.chunks.items():
            if key in self.times:
                ns = np.concatenate([np.asarray(c, dtype=np.int64) for c in chunks])
                columns[key] = pd.DatetimeIndex(ns, tz="UTC")
            elif key in self.floats:
                columns[key] = np.concatenate([np.asarray(c, dtype=np.float64) for c in chunks])
            else:
                columns[key] = _cells([v for c in chunks for v in c])
        return pd.DataFrame(columns)


@functools.cache
def _str_dtype() -> Any:
    """The dtype pandas gives a column of Python strings (``str`` on Arrow in pandas 3,
    ``object`` before)."""
    return pd.Series(["a", None]).dtype


def _cells(values: list) -> Any:
    """A column of cells as ``pd.DataFrame`` infers it; strings (and None among them) go
    through Arrow, a third of the time pandas' own inference takes for the client ids and
    the like of a year of orders."""
    dtype = _str_dtype()
    if not isinstance(dtype, pd.StringDtype) or not values or type(values[0]) is not str:
        return values
    try:
        array = pa.array(values, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return values  # not all strings: pandas decides
    return pd.array(array, dtype=dtype)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)
