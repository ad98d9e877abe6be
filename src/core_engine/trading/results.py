"""ReplayResult: a BacktestResult with the event world's orders, fills, notes and blocked picks.

**Trades** are round trips per symbol, from the first buy of a flat position to the sell
that makes it flat again (several fills each side when orders fill partly or a trader adds
to a position). ``entry_price``/``exit_price`` are the quantity-weighted fill prices
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

import bisect
import copy
import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import core_engine
from core_engine._config import keyword_checked
from core_engine.backtest._kernels import EXIT_REASON_NAMES, count_missing_2d
from core_engine.backtest.data_quality import discontinuity_quality, trade_rows_from_times
from core_engine.backtest.results import BacktestResult
from core_engine.data.panel import Panel
from core_engine.errors import ConfigError
from core_engine.trading._kernels import equity_marks
from core_engine.trading.orders import Fill, Order, OrderSide
from core_engine.trading.sim import SimBroker
from core_engine.trading.trader import Records, Trader

__all__ = ["ReplayResult", "account_metrics", "build_result"]

_YEAR_NS = 365 * 24 * 3600 * 10**9
_DAY_NS = 24 * 3600 * 10**9
TRADE_COLUMNS = ["symbol", "decision_time", "entry_time", "exit_time", "entry_price",
                 "exit_price", "direction", "weight", "return_pct", "best_return_pct",
                 "max_drawdown", "exit_reason", "rank", "score", "ambiguous", "gaps_in_window",
                 "exit_at_last_close", "quantity", "entry_value", "fees", "pnl"]
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


# ---------------------------------------------------------------------------- trades
class FillTable:
    """Every fill of a replay in the order made, as tuples ``(buy, quantity, price, fee,
    client_id, symbol, time_ns, light)`` for the trades (``light``: see
    ``Segment.fill_tuples``); the :class:`Fill` (and its candle row)
    of one fill when a trade row needs it. The declared-orders path's fills are read from
    its columns, never all made objects."""

    def __init__(self, broker: SimBroker) -> None:
        self.broker = broker
        self.rows: list[tuple] = []
        self._parts: list[tuple[int, Any]] = []  # (first index, list of Fill or Segment)
        listed = broker._fills
        done = 0
        for segment in broker._segments:
            self._add_objects(listed[done:segment.fills_at])
            self._parts.append((len(self.rows), segment))
            self.rows.extend(segment.fill_tuples())
            done = segment.fills_at
        self._add_objects(listed[done:])
        self._starts = [start for start, _ in self._parts]

    def _add_objects(self, fills: list[Fill]) -> None:
        if fills:
            self._parts.append((len(self.rows), fills))
            buy = OrderSide.BUY
            self.rows.extend((f.side is buy, f.quantity, f.price, f.fee, f.client_id, f.symbol,
                              f.time.value, None) for f in fills)

    def __len__(self) -> int:
        return len(self.rows)

    def _part(self, i: int) -> tuple[int, Any]:
        start, part = self._parts[bisect.bisect_right(self._starts, i) - 1]
        return i - start, part

    def fill(self, i: int) -> Fill:
        k, part = self._part(i)
        return part[k] if isinstance(part, list) else part.fill_object(k)

    def candle(self, i: int) -> tuple[int, bool]:
        """The row of the fill's candle and whether it filled at the open."""
        k, part = self._part(i)
        if isinstance(part, list):
            return self.broker._fill_rows[part[k].trade_id]
        return int(part.fill_rows[k]), bool(part.fill_open[k])


def _round_trips(fills: FillTable, orders: dict[str, Order]) -> list[tuple[list[int], tuple]]:
    """Group fills per symbol into flat-to-flat round trips (an unfinished one is dropped:
    the position is still open and counts in the equity), each with the position's cost
    basis ``(quantity, buy value, buy fees)`` at its close. A sell of an order tagged
    ``rebalance`` that leaves part of the position is a trip of its own (portfolio mode's
    partial trade, average cost: the position's value and fees shrink by its share). The
    basis carries the position's weight too: the ``weight`` its buy orders noted (entry or
    rebalancing value / equity), shrunk by each partial sale's share. Trips list the
    indexes of their fills in ``fills``."""
    rows = fills.rows

    def light(i: int) -> tuple[dict, float, str]:
        known = rows[i][7]
        return _light(orders, rows[i][4]) if known is None else known

    def weight_of(i: int) -> float:
        meta, filled, _ = light(i)
        if meta.get("weight") is None or not filled:
            return math.nan
        return float(meta["weight"]) * rows[i][1] / float(filled)

    by_symbol: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_symbol.setdefault(row[5], []).append(i)
    trips = []
    for symbol_fills in by_symbol.values():
        held, bought, value, fees, weight = 0.0, 0.0, 0.0, 0.0, 0.0
        current: list[int] = []
        basis: tuple | None = None
        for i in symbol_fills:
            buy, quantity, price, fee = rows[i][:4]
            if buy:
                current.append(i)
                held += quantity
                bought += quantity
                value += quantity * price
                fees += fee
                weight += weight_of(i)
                continue
            if light(i)[2] == "rebalance" and current \
                    and held - quantity > bought * 1e-9:
                share = quantity / held
                buys = [k for k in current if rows[k][0]]
                trips.append((buys + [i], (quantity, value * share, fees * share,
                                           weight * share)))
                held -= quantity
                value *= 1.0 - share
                fees *= 1.0 - share
                weight *= 1.0 - share
                continue
            if basis is None:  # the cost basis of what the closing sells close
                basis = (held, value, fees, weight)
            current.append(i)
            held -= quantity
            if held <= bought * 1e-9:
                if any(rows[k][0] for k in current):
                    trips.append((current, basis))
                held, bought, value, fees, weight, current, basis = (0.0, 0.0, 0.0, 0.0, 0.0,
                                                                     [], None)
    trips.sort(key=lambda trip: (rows[trip[0][0]][6], rows[trip[0][0]][5],
                                 rows[trip[0][-1]][6]))
    return trips


def _trade_row(trip: list[int], basis: tuple, fills: FillTable, orders: dict[str, Order],
               broker: SimBroker, panel: Panel) -> dict:
    rows = fills.rows
    buys = [i for i in trip if rows[i][0]]
    sells = [i for i in trip if not rows[i][0]]
    qty, buy_value, buy_fees, weight = basis
    sell_qty = sum(rows[i][1] for i in sells)
    sell_value = sum(rows[i][1] * rows[i][2] for i in sells)
    sell_fees = sum(rows[i][3] for i in sells)
    entry_price, exit_price = buy_value / qty, sell_value / sell_qty
    first = fills.fill(buys[0])
    last = fills.fill(sells[-1])
    closing = orders.get(last.client_id)
    entry_order = orders.get(first.client_id)
    meta = entry_order.meta if entry_order is not None else {}
    reason = last.reason
    if reason not in EXIT_REASON_NAMES:
        tag = closing.tag if closing is not None else ""
        reason = tag if tag else ("window_end" if reason == "last_close" else reason)
    ret = ((sell_value - sell_fees) / (buy_value + buy_fees) - 1.0) * 100.0
    best = ret
    if last.ambiguous and closing is not None and closing.group is not None:
        target = next((o for o in orders.values() if o.group == closing.group
                       and o.limit_price is not None and o.side is OrderSide.SELL), None)
        if target is not None and target.limit_price is not None:
            fee = broker.maker_fee
            best = ((target.limit_price * (1 - broker.slippage)) * (1 - fee)
                    / (entry_price * (1 + broker.taker_fee)) - 1.0) * 100.0
    entry_row, _ = fills.candle(buys[0])
    exit_row, exit_at_open = fills.candle(sells[-1])
    j = panel.column(first.symbol)
    raw_exit = last.price / (1.0 - broker.slippage)
    lows = panel.low[entry_row:exit_row, j]
    worst = min(float(np.nanmin(lows)) if np.isfinite(lows).any() else math.inf, entry_price,
                raw_exit)
    if not exit_at_open and (reason == "take_profit" or last.reason == "last_close"):
        # held through the exit candle: a take-profit inside it, or its close (an exit
        # capped by max_exit_delay, the end of the data)
        worst = min(worst, float(panel.low[exit_row, j]))
    due_row = exit_row
    if closing is not None and closing.type.value == "market" and closing.created_at is not None:
        # the gaps of the window up to the due time (also when a capped exit left earlier,
        # at the last close before them)
        due_row = int(np.searchsorted(panel.index.asi8, closing.created_at.value))
    gaps = int(np.isnan(panel.open[entry_row:due_row, j]).sum())
    return {
        "symbol": first.symbol,
        "decision_time": pd.Timestamp(meta.get("decision_time", first.time)),
        "entry_time": first.time, "exit_time": last.time,
        "entry_price": entry_price, "exit_price": exit_price, "direction": "long",
        "weight": weight, "return_pct": ret,
        "best_return_pct": best,
        "max_drawdown": max((1.0 - worst / entry_price) * 100.0, 0.0),
        "exit_reason": reason, "rank": int(meta.get("rank", 0)),
        "score": float(meta.get("score", math.nan)), "ambiguous": bool(last.ambiguous),
        "gaps_in_window": gaps, "exit_at_last_close": last.reason == "last_close",
        "quantity": qty, "entry_value": buy_value, "fees": buy_fees + sell_fees,
        "pnl": sell_value - buy_value - buy_fees - sell_fees,
    }


def trades_frame(fills: FillTable, orders: dict[str, Order], broker: SimBroker,
                 panel: Panel) -> pd.DataFrame:
    rows = [_trade_row(trip, basis, fills, orders, broker, panel)
            for trip, basis in _round_trips(fills, orders)]
    if not rows:
        return _no_trades().copy()
    return pd.DataFrame(rows, columns=TRADE_COLUMNS)


@functools.cache
def _no_trades() -> pd.DataFrame:
    """The trades frame of a replay without a round trip (its dtypes), made once."""
    frame = pd.DataFrame([], columns=TRADE_COLUMNS)
    frame = frame.astype({"return_pct": float, "best_return_pct": float,
                          "max_drawdown": float, "weight": float, "score": float,
                          "quantity": float, "entry_value": float, "fees": float,
                          "pnl": float, "rank": np.int64, "gaps_in_window": np.int64,
                          "ambiguous": bool, "exit_at_last_close": bool})
    for col in ("decision_time", "entry_time", "exit_time"):
        frame[col] = pd.DatetimeIndex([], tz="UTC")
    return frame


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
    initial cash, ``pct_change().dropna()``, in numpy (the same values; tested)."""
    ok = ~np.isnan(value)
    days = times_ns[ok] // _DAY_NS
    kept = value[ok]
    if not len(kept):
        return np.empty(0)
    last = np.flatnonzero(np.diff(days) != 0)
    daily = np.concatenate([[initial_cash], kept[last], kept[-1:]])
    with np.errstate(invalid="ignore", divide="ignore"):
        returns = daily[1:] / daily[:-1] - 1
    return returns[~np.isnan(returns)]


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
    daily_ret = _daily_returns(times.asi8, value, initial_cash)
    sd = float(np.std(daily_ret, ddof=1)) if len(daily_ret) > 1 else math.nan
    down = float(np.sqrt(np.mean(np.minimum(daily_ret, 0.0) ** 2))) if len(daily_ret) else math.nan
    mean = float(np.mean(daily_ret)) if len(daily_ret) else math.nan
    dd = equity["drawdown_pct"].to_numpy()
    max_dd = float(dd.max()) if n else 0.0
    # the longest run of candles below the peak
    edges = np.flatnonzero(np.diff(np.concatenate(([0], (dd > 0).astype(np.int8), [0]))))
    longest = int((edges[1::2] - edges[::2]).max()) if len(edges) else 0
    cagr = (_ratio(final, initial_cash) ** (1.0 / years) - 1.0) * 100.0 \
        if years > 0 and final > 0 else math.nan
    returns = trades["return_pct"].to_numpy(dtype=float)
    n_trades = int(returns.size)
    gains, losses = returns[returns > 0].sum(), -returns[returns < 0].sum()
    holding = (trades["exit_time"] - trades["entry_time"]).dt.total_seconds().to_numpy() / 60.0 \
        if n_trades else np.empty(0)
    reasons = trades["exit_reason"].value_counts()
    exposure = equity["exposure"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        exposure_share = float(np.nanmean(np.where(value > 0, exposure / value, np.nan))) \
            if n else math.nan
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
    fills = FillTable(broker)
    orders = _Orders(broker)
    orders.update((o.client_id, o) for o in records.orders)
    for cid, order in broker._orders.items():
        orders.setdefault(cid, order)
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
    return ReplayResult(trades=trades, equity=equity, metrics=metrics, config=full_config,
                        data_quality=data_quality, panel=panel, orders=orders_df,
                        fills=fills_df, notes=records.notes_frame(),
                        blocked=records.blocked_frame())


def _light(orders: dict[str, Order], client_id: str) -> tuple[dict, float, str]:
    """``(meta, filled_quantity, tag)`` of an order (empty for an unknown one), without
    making an object of an order the declared-orders path kept as columns."""
    order = dict.get(orders, client_id)
    if order is not None:
        return order.meta, order.filled_quantity, order.tag
    if isinstance(orders, _Orders):
        index = orders.broker._segment_of
        found = index.get(client_id) if index else None
        if found is not None:
            return found[0].light(found[1])
    return {}, 0.0, ""


class _Orders(dict):
    """Client id -> order; ``get`` also finds the orders replay's declared-orders path
    kept as columns (made objects when asked)."""

    def __init__(self, broker: SimBroker) -> None:
        super().__init__()
        self.broker = broker

    def get(self, client_id: Any, default: Any = None) -> Any:
        order = dict.get(self, client_id)
        if order is None and self.broker._segments:
            order = self.broker._segment_order(client_id)
        return default if order is None else order


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
                columns[key] = [v for c in chunks for v in c]
        return pd.DataFrame(columns)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)
