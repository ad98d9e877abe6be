"""``check_trader``: the time rule for event traders, checked by truncation.

A trader may read only what :class:`~core_engine.trading.trader.Context` gives it, which is
causal by construction. What the context cannot stop is a trader that reads data it holds
itself (a DataFrame passed as a parameter, say). :func:`check_trader` replays the trader on
the whole data and again on data cut at sampled times ``t`` — with every candle-holding
parameter of the trader cut at ``t`` too — and requires the same orders up to ``t``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from core_engine._validate import check_instance, check_real
from core_engine.data.panel import FIELDS, Panel
from core_engine.errors import ConfigError, LookaheadError
from core_engine.testing._data import check_options

__all__ = ["check_trader"]

#: The order fields compared (``quantity`` only for orders sized in base units: a quote
#: order's quantity is set when it fills, which may be after ``t``).
COMPARED = ("client_id", "symbol", "side", "type", "quote_quantity", "limit_price",
            "stop_price", "trail_pct", "trail_offset", "tag", "created_at")


def _cut_value(value: Any, t: pd.Timestamp, step_ns: int) -> tuple[Any, bool]:
    if isinstance(value, Panel):
        return value.known_at(t), True
    if isinstance(value, pd.DataFrame) and "timestamp" in value.columns:
        stamps = pd.DatetimeIndex(value["timestamp"])
        if stamps.tz is None:
            stamps = stamps.tz_localize("UTC")
        keep = stamps.asi8 + step_ns <= t.value
        return value.loc[keep].copy(), True
    if isinstance(value, Mapping) and value and all(
            isinstance(v, (pd.DataFrame, Panel)) for v in value.values()):
        out = {k: _cut_value(v, t, step_ns)[0] for k, v in value.items()}
        return out, True
    return value, False


def _cut_trader(trader: Any, t: pd.Timestamp, step_ns: int) -> Any:
    params = trader.get_params()
    changed = False
    for key, value in params.items():
        params[key], cut = _cut_value(value, t, step_ns)
        changed = changed or cut
    if not changed:
        return trader.clone()
    cut = type(trader)(**params)
    # the same trader, its data cut: its client ids (compared) keep the full trader's id,
    # which its cut parameters (another shape, other contents) would change
    cut.__dict__["_trader_id"] = trader.trader_id
    return cut


def _cut_panel(panel: Panel, row: int) -> Panel:
    """Candles before ``row`` and only the open of candle ``row`` (the price at ``t``); the
    later candles stay on the grid as missing ones, so the run keeps its end (a replay ends
    at the data's end: cutting the rows would move it)."""
    if row >= panel.n_times:
        return panel
    fields = {}
    for name in FIELDS:
        values = np.array(getattr(panel, name), dtype=np.float64, order="F")
        values[row + 1:] = np.nan
        if name != "open":
            values[row] = np.nan
        fields[name] = values
    return panel.with_fields(**fields)


def _orders_before(frame: pd.DataFrame, t: pd.Timestamp) -> pd.DataFrame:
    if not len(frame):
        return pd.DataFrame(columns=[*COMPARED, "quantity"])
    created = pd.DatetimeIndex(frame["created_at"])
    keep = created < t
    # at t itself: the orders of the decision at t and of fills at t's open; not those
    # placed in answer to a fill inside candle t (stamped t, they depend on its range,
    # which closes after t: the cut does not have it)
    inside = frame["inside_candle"].to_numpy(dtype=bool) if "inside_candle" in frame \
        else np.zeros(len(frame), dtype=bool)
    keep |= (created == t) & ~inside
    part = frame.loc[keep].copy()
    part["quantity"] = part["quantity"].where(part["quote_quantity"].isna())
    return part[[*COMPARED, "quantity"]].reset_index(drop=True)


def check_trader(trader: Any, data: Any, *, n_times: int = 5, seed: int = 0,
                 broker: Any = None, start: Any = None, end: Any = None,
                 initial_cash: float | None = None) -> list[pd.Timestamp]:
    """Assert that ``trader`` decides the same up to ``t`` whether or not later data exist.

    The trader is replayed on all of ``data``, then, for ``n_times`` sampled times ``t``
    (times at which it placed orders, seeded), on the data cut at ``t``: every candle that
    closed by ``t`` plus the open of the candle starting at ``t`` (the price its market
    orders fill at). Parameters of the trader that hold candles (a DataFrame with a
    ``timestamp`` column, a Panel, a dict of them) are cut at ``t`` as well. The orders
    placed up to ``t`` must be equal (ids, symbols, sides, types, sizes, prices, tags,
    times), but for those placed at ``t`` in answer to a fill inside the candle starting at
    ``t`` (``orders["inside_candle"]``: stamped ``t``, they depend on that candle's range,
    which the cut does not have).

    Parameters
    ----------
    trader : Trader
    data : Panel, dict of candle frames, or (store, symbols, timeframe)
    n_times : int
        How many cut times to check.
    seed : int
        Seed of the sampling.
    broker : SimBroker, optional
        Its fee and fill model is reused (a fresh copy per replay).
    start, end, initial_cash
        As in :func:`~core_engine.trading.events.replay`.

    Returns
    -------
    list of pandas.Timestamp
        The times checked.

    Raises
    ------
    LookaheadError
        When an order placed before ``t`` changes with the data after ``t`` (names the
        trader, the time and the order).
    ConfigError
        If the trader placed no order on ``data`` (nothing to check) or ``n_times < 1``.
    """
    from core_engine.backtest.engine import load_panel
    from core_engine.data.timeframes import to_utc_timestamp
    from core_engine.trading import SimBroker, Trader, replay

    check_instance(trader, Trader, "trader", "check_trader",
                   expected="a Trader instance such as RankingTrader('momentum_rank')")
    check_instance(broker, SimBroker, "broker", "check_trader", optional=True)
    n_times, seed = check_options("check_trader", n_times=n_times, seed=seed)
    check_real(initial_cash, "initial_cash", "check_trader", low=0, optional=True)
    start = None if start is None else to_utc_timestamp(start, name="start")
    end = None if end is None else to_utc_timestamp(end, name="end")
    panel = load_panel(data)
    template = broker if broker is not None else SimBroker()
    run_end = pd.Timestamp(int(panel.index.asi8[-1]) + panel.step_ns, tz="UTC") \
        if end is None else end
    full = replay(trader.clone(), panel, template.clone(), start=start, end=run_end,
                  initial_cash=initial_cash)
    orders = full.orders
    if not len(orders):
        raise ConfigError(f"check_trader: {trader!r} placed no order on these data; nothing "
                          "to compare. Give it data where it trades.")
    times = pd.DatetimeIndex(orders["created_at"]).unique().sort_values()
    rng = np.random.default_rng(seed)
    chosen = times[np.sort(rng.choice(len(times), size=min(n_times, len(times)),
                                      replace=False))]
    index = panel.index.asi8
    for t in chosen:
        row = int(np.searchsorted(index, t.value, "left"))
        cut = replay(_cut_trader(trader, t, panel.step_ns), _cut_panel(panel, row),
                     template.clone(), start=start, end=run_end, initial_cash=initial_cash)
        expected, got = _orders_before(orders, t), _orders_before(cut.orders, t)
        if len(expected) != len(got) or not expected.equals(got):
            n = min(len(expected), len(got))
            diff = next((i for i in range(n) if not expected.iloc[i].equals(got.iloc[i])), n)
            what = (expected.iloc[diff].to_dict() if diff < len(expected)
                    else got.iloc[diff].to_dict())
            raise LookaheadError(
                f"Trader {trader!r} placed different orders up to {t:%Y-%m-%d %H:%M} UTC "
                f"when the data after that time were removed: {len(expected)} orders with all "
                f"data, {len(got)} without; first difference at order {diff}: {what}. It "
                "reads data from after its decision time.")
    return list(chosen)
