"""Shared code of the randomized parity checks (issue 11): draw a configuration, run
``walk_forward(s, mode="portfolio", ...)`` and ``replay(RankingTrader(s, ...))`` on it, and
compare the two trade for trade, blocked pick for blocked pick and mark for mark.

Used by the normal-suite property test (``test_parity_random.py``), by the soak CLI
(``python -m tests.trading.fuzz_parity``) and by the paper-vs-replay comparison
(``tests/live/test_paper_parity_random.py``). A configuration is drawn from a
:class:`random.Random`, so a seed reproduces it and :meth:`Config.code` prints it as the
Python of a regression test.

The data are windows of the real candles of ``tests/data_files`` and of the bundled sample
(Binance 2021 with its maintenance outages, Bittrex 2018 with its no-trade gaps, a listing
mid-sample), optionally with a hole cut into one symbol.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core_engine.backtest import walk_forward
from core_engine.data import Panel
from core_engine.data.providers import load_sample
from core_engine.errors import ConfigError
from core_engine.risk import (
    ConfidenceSizing,
    ConfidenceWeighted,
    EqualSlots,
    ExitRules,
    FixedFraction,
    InverseVolatility,
    InverseVolatilitySizing,
    MaxATRPct,
    MaxSpreadProxy,
    MinQuoteVolume,
    PortfolioRules,
    RiskPerTrade,
    ScoreProportional,
    TopNEqual,
)
from core_engine.strategies import get_strategy
from core_engine.trading import RankingTrader, SimBroker, replay

DATA = Path(__file__).parents[1] / "data_files"
DAY = pd.Timedelta("1D")

# pool name -> (file names or sample symbols, timeframe)
POOLS: dict[str, tuple[tuple[str, ...], str]] = {
    "feb": (tuple(f"{b}_USDT-5m-2021feb" for b in ("BTC", "ETH", "SOL", "NKN")), "5m"),
    "may": (tuple(f"{b}_USDT-5m-2021may" for b in ("BTC", "ETH", "SOL", "NKN")), "5m"),
    "may2w": (tuple(f"{b}_USDT-5m-2021may-2w" for b in ("ADA", "BTC", "ETH", "NKN", "SOL",
                                                          "XRP")), "5m"),
    "bittrex": (tuple(f"{b}_BTC-5m" for b in ("ADA", "DASH", "ETC", "ETH", "LTC", "NXT", "TRX",
                                                "XLM", "XMR", "ZEC")), "5m"),
    "btc_1h": (("BTC_USDT-1h",), "1h"),
    "nkn_20k": (("NKN_USDT-5m-20k", "BTC_USDT-5m"), "5m"),
    "sample": (("ADA/USDT", "AR/USDT", "BTC/USDT", "DOT/USDT", "ETH/USDT", "LINK/USDT",
                "NKN/USDT", "SOL/USDT", "XRP/USDT"), "5m"),
}


@functools.cache
def _frames(pool: str) -> dict[str, pd.DataFrame]:
    names, _ = POOLS[pool]
    if pool == "sample":
        return load_sample(list(names))
    frames = {}
    for name in names:
        base, quote = name.split("-")[0].split("_")
        frames[f"{base}/{quote}"] = pd.read_parquet(DATA / f"{name}.parquet")
    return frames


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """A window ``[first, first + days)`` of some symbols of a pool, maybe with a hole
    (``hole = (symbol, from, to)``: that symbol's candles in ``[from, to)`` removed)."""

    pool: str
    symbols: tuple[str, ...]
    first: str
    days: float
    hole: tuple[str, str, str] | None = None

    def panel(self) -> Panel:
        frames = _frames(self.pool)
        lo = pd.Timestamp(self.first)
        lo = lo.tz_localize("UTC") if lo.tz is None else lo
        hi = lo + self.days * DAY
        out = {}
        for symbol in self.symbols:
            f = frames[symbol]
            keep = (f["timestamp"] >= lo) & (f["timestamp"] < hi)
            if self.hole is not None and self.hole[0] == symbol:
                keep &= ~((f["timestamp"] >= pd.Timestamp(self.hole[1]))
                          & (f["timestamp"] < pd.Timestamp(self.hole[2])))
            out[symbol] = f[keep].reset_index(drop=True)
        return Panel.from_frames(out, POOLS[self.pool][1])


@dataclasses.dataclass(frozen=True)
class Config:
    """One drawn run: the data, the trader's and the engine's common arguments, the
    broker's costs and the run bounds."""

    data: DataSpec
    strategy: str
    params: dict
    trader: dict  # gates, allocator, exits, sizing, rules, window, shift, hold, ...
    fee_bps: float = 10.0
    slippage_bps: float = 0.0
    maker_taker: bool = False  # give the SimBroker maker_bps = taker_bps = fee_bps
    start: str | None = None
    end: str | None = None
    initial_cash: float = 10_000.0
    max_volume_share: float | None = None  # the SimBroker's cap (paper comparisons only)

    def strategy_obj(self) -> Any:
        return get_strategy(self.strategy, **self.params)

    def code(self) -> str:
        """The configuration as Python (for a regression test)."""
        fields = ", ".join(f"{k}={v!r}" for k, v in self.trader.items())
        return (f"Config(data={self.data!r},\n       strategy={self.strategy!r}, "
                f"params={self.params!r},\n       trader=dict({fields}),\n"
                f"       fee_bps={self.fee_bps!r}, slippage_bps={self.slippage_bps!r}, "
                f"maker_taker={self.maker_taker!r}, start={self.start!r}, end={self.end!r}, "
                f"initial_cash={self.initial_cash!r}, "
                f"max_volume_share={self.max_volume_share!r})")

    def broker(self, cls: type = SimBroker, *args: Any, **extra: Any) -> Any:
        exits = self.trader.get("exits")
        kw: dict[str, Any] = {"slippage_bps": self.slippage_bps,
                              "initial_cash": self.initial_cash,
                              "max_volume_share": self.max_volume_share}
        if self.maker_taker:
            kw.update(maker_bps=self.fee_bps, taker_bps=self.fee_bps)
        else:
            kw["fee_bps"] = self.fee_bps
        if exits is not None:
            kw.update(stop_fill=exits.stop_fill, stop_fill_frac=exits.stop_fill_range or 0.0)
        return cls(*args, **kw, **extra)

    def run_walk_forward(self, panel: Panel) -> Any:
        return walk_forward(panel, self.strategy_obj(), mode="portfolio", start=self.start,
                            end=self.end, fee_bps=self.fee_bps,
                            slippage_bps=self.slippage_bps, initial_cash=self.initial_cash,
                            **self.trader)

    def run_replay(self, panel: Panel) -> Any:
        return replay(RankingTrader(self.strategy_obj(), **self.trader), panel, self.broker(),
                      start=self.start, end=self.end)


# ---------------------------------------------------------------------------- drawing
def _maybe(rng: random.Random, p: float, value: Any) -> Any:
    return value() if rng.random() < p else None


def draw_data(rng: random.Random) -> DataSpec:
    pool = rng.choice(sorted(POOLS))
    frames = _frames(pool)
    names = sorted(frames)
    symbols = tuple(sorted(rng.sample(names, rng.randint(1, min(5, len(names))))))
    lo = max(frames[s]["timestamp"].iloc[0] for s in symbols)
    hi = min(frames[s]["timestamp"].iloc[-1] for s in symbols)
    span_days = (hi - lo) / DAY
    days = round(min(rng.choice([0.5, 1, 2, 3, 4, 6, 8, 12]), max(span_days, 0.25)), 3)
    if POOLS[pool][1] == "1h":
        days = min(span_days, rng.choice([5, 10, 20, 40]))
    room = max(span_days - days, 0.0)
    first = (lo + rng.random() * room * DAY).floor("1h")
    hole = None
    if rng.random() < 0.2:
        symbol = rng.choice(symbols)
        a = first + rng.random() * days * DAY
        hole = (symbol, str(a.floor("5min")),
                str((a + pd.Timedelta(minutes=rng.choice([5, 15, 60, 300, 900]))).floor("5min")))
    return DataSpec(pool, symbols, str(first), float(days), hole)


def draw_params(rng: random.Random, name: str) -> dict:
    if name == "momentum_rank":
        slow = rng.randint(6, 30)
        return {"length": rng.randint(3, 48), "volume_fast": rng.randint(2, slow - 1),
                "volume_slow": slow, "min_volume_trend": rng.choice([0.0, -0.5, 0.2]),
                "min_return": rng.choice([0.0, -1.0, 0.1])}
    if name == "breakout":
        fast = rng.randint(3, 15)
        return {"length": rng.randint(5, 40), "ema_fast": fast,
                "ema_slow": rng.randint(fast + 1, 40), "rsi_length": rng.randint(3, 20),
                "rsi_overbought": rng.choice([60.0, 70.0, 80.0]),
                "volume_length": rng.randint(5, 30), "volume_spike": rng.choice([1.2, 2.0]),
                "min_confirmations": rng.randint(0, 3),
                "scale_by_confidence": rng.random() < 0.5}
    if name == "ma_crossover":
        fast = rng.randint(2, 20)
        return {"kind": rng.choice(["ema", "sma"]), "fast": fast,
                "slow": rng.randint(fast + 1, 60),
                "fresh_within": rng.choice([None, 1, 3, 12])}
    fast = rng.randint(3, 15)
    low = rng.choice([30.0, 40.0, 50.0])
    return {"rsi_length": rng.randint(3, 20), "rsi_low": low,
            "rsi_high": low + rng.choice([15.0, 25.0, 40.0]), "macd_fast": fast,
            "macd_slow": rng.randint(fast + 1, 35), "macd_signal": rng.randint(2, 12),
            "atr_length": rng.randint(3, 20), "max_atr_pct": rng.choice([0.8, 1.5, 5.0]),
            "momentum_length": rng.randint(3, 36), "volume_length": rng.randint(3, 30),
            "momentum_weight": rng.choice([0.0, 0.5, 1.0])}


def draw_exits(rng: random.Random) -> ExitRules | None:
    if rng.random() < 0.15:
        return None
    pct = rng.random() < 0.7
    def level(a: float, b: float) -> float:
        return round(rng.uniform(a, b), 3)
    kw: dict[str, Any] = {}
    if pct:
        kw["stop_loss_pct"] = _maybe(rng, 0.6, lambda: level(0.3, 4))
        kw["take_profit_pct"] = _maybe(rng, 0.6, lambda: level(0.3, 6))
        kw["trailing_pct"] = _maybe(rng, 0.5, lambda: level(0.2, 3))
    else:
        kw["stop_loss_atr"] = _maybe(rng, 0.6, lambda: level(0.5, 4))
        kw["take_profit_atr"] = _maybe(rng, 0.6, lambda: level(0.5, 6))
        kw["trailing_atr"] = _maybe(rng, 0.5, lambda: level(0.5, 4))
        kw["atr_length"] = rng.randint(3, 30)
    kw = {k: v for k, v in kw.items() if v is not None}
    fill = rng.choice(["level", "level", "low", "range"])
    kw["stop_fill"] = fill
    if fill == "range":
        kw["stop_fill_range"] = round(rng.uniform(0.001, 1.0), 3)
    return ExitRules(**kw)


def draw_rules(rng: random.Random, window_hours: float) -> PortfolioRules | None:
    if rng.random() < 0.3:
        return None
    kw: dict[str, Any] = {
        "cooldown": _maybe(rng, 0.3, lambda: rng.choice(["5min", "1h", "2h", "6h"])),
        "max_entries_per_day": _maybe(rng, 0.3, lambda: rng.randint(1, 10)),
        "daily_loss_limit_pct": _maybe(rng, 0.3, lambda: round(rng.uniform(0.2, 3), 2)),
        "max_drawdown_pct": _maybe(rng, 0.3, lambda: round(rng.uniform(0.5, 6), 2)),
        "max_exposure_pct": _maybe(rng, 0.3, lambda: rng.choice([10, 25, 40, 100])),
        "max_gross_exposure_pct": _maybe(rng, 0.3, lambda: rng.choice([30, 60, 90, 100])),
        "max_correlation": _maybe(rng, 0.2, lambda: rng.choice([0.3, 0.6, 0.9])),
        "min_order_value": rng.choice([0.0, 0.0, 10.0, 500.0, 3000.0]),
    }
    if kw["daily_loss_limit_pct"] is not None:
        kw["liquidate_on_daily_loss"] = rng.random() < 0.5
    if kw["max_drawdown_pct"] is not None:
        kw["liquidate_on_drawdown"] = rng.random() < 0.5
        kw["drawdown_halt_for"] = rng.choice([None, "1h", "6h", "1D"])
    if kw["max_correlation"] is not None:
        kw["correlation_lookback"] = rng.choice([12, 48, 288])
    return PortfolioRules(**{k: v for k, v in kw.items() if v is not None})


def draw_sizing(rng: random.Random, confidence: bool, stop: bool) -> Any:
    """A sizing object; one that needs a confidence (a stop) only where the strategy has
    one (the exits have one), bar a few draws that both runs must refuse alike."""
    lot = rng.choice([None, None, 0.001, 0.1, 1.0])
    cap = rng.choice([100.0, 100.0, 30.0, 60.0])
    kinds = ["default", "slots", "fixed", "invvol"]
    kinds += ["confidence"] * (3 if confidence else 0) + ["risk"] * (2 if stop else 0)
    kind = rng.choice(kinds) if rng.random() < 0.97 else rng.choice(["confidence", "risk"])
    if kind == "slots":
        return EqualSlots(slots=rng.choice([None, 1, 2, 4]), max_position_pct=cap, lot_step=lot)
    if kind == "fixed":
        return FixedFraction(pct=rng.choice([5.0, 20.0, 40.0, 100.0]), max_position_pct=cap,
                             lot_step=lot)
    if kind == "risk":
        return RiskPerTrade(risk_pct=rng.choice([0.2, 1.0, 3.0]), max_position_pct=cap,
                            lot_step=lot)
    if kind == "confidence":
        return ConfidenceSizing(full_confidence=rng.choice([0.5, 1.0, 3.0]),
                                slots=rng.choice([None, 2]), max_position_pct=cap)
    if kind == "invvol":
        return InverseVolatilitySizing(target_volatility_pct=rng.choice([0.05, 0.15, 0.5]),
                                       length=rng.randint(3, 30), max_position_pct=cap)
    return None


def draw_trader(rng: random.Random, timeframe: str, strategy: str) -> dict:
    if timeframe == "1h":
        window = rng.choice(["2h", "4h", "8h", "1D"])
        shift = rng.choice(["1h", "2h", "4h"])
    else:
        window = rng.choice(["30min", "1h", "2h", "4h", "6h", "8h"])
        shift = rng.choice(["15min", "30min", "1h", "2h", "4h"])
    n = rng.randint(1, 5)
    gates = []
    if rng.random() < 0.2:
        gates.append(MaxATRPct(max_atr_pct=rng.choice([0.5, 1.0, 3.0]),
                               length=rng.randint(3, 20)))
    if rng.random() < 0.15:
        gates.append(MinQuoteVolume(min_quote_volume=rng.choice([0.01, 1e3, 1e5]),
                                    lookback=rng.choice([12, 48, 288])))
    if rng.random() < 0.15:
        gates.append(MaxSpreadProxy(max_pct=rng.choice([0.3, 1.0, 3.0]),
                                    length=rng.randint(3, 20)))
    confidence = strategy == "breakout"
    alloc = rng.choice(["none", "top", "score", "invvol"] + ["confidence"] * (2 * confidence))
    allocator = {"none": None, "top": TopNEqual(n=n), "score": ScoreProportional(n=n),
                 "invvol": InverseVolatility(n=n, length=rng.randint(3, 30)),
                 "confidence": ConfidenceWeighted(n=n)}[alloc]
    hours = pd.Timedelta(window) / pd.Timedelta("1h")
    hold = "until_dropped" if strategy == "ma_crossover" and rng.random() < 0.7 else \
        rng.choice(["window", "until_dropped"])
    exits = draw_exits(rng)
    stop = exits is not None and any(getattr(exits, f) is not None for f in (
        "stop_loss_pct", "trailing_pct", "stop_loss_atr", "trailing_atr"))
    return {"gates": tuple(gates), "allocator": allocator, "exits": exits,
            "sizing": draw_sizing(rng, confidence, stop), "rules": draw_rules(rng, hours), "window": window,
            "shift": shift, "hold": hold, "rebalance": rng.random() < 0.3,
            "max_positions": n,
            "max_exit_delay": rng.choice([None, None, None, 0, 2, 6, "1h", "3h"])}


def draw_bounds(rng: random.Random, data: DataSpec) -> tuple[str | None, str | None]:
    first = pd.Timestamp(data.first)
    last = first + data.days * DAY
    start = end = None
    if rng.random() < 0.35:
        start = first + rng.random() * data.days * DAY
        start = start.floor(rng.choice(["1min", "5min", "1h"]))
    if rng.random() < 0.35:
        lo = start if start is not None else first
        end = lo + rng.uniform(0.1, 1.4) * (last - lo)  # inside the data, or past them
        end = end.floor(rng.choice(["1min", "5min", "1h"]))
    return (None if start is None else str(start), None if end is None else str(end))


def draw_config(rng: random.Random) -> Config:
    data = draw_data(rng)
    strategy = rng.choice(["macd_rsi_confluence", "momentum_rank", "breakout", "ma_crossover"])
    params = draw_params(rng, strategy)
    trader = draw_trader(rng, POOLS[data.pool][1], strategy)
    start, end = draw_bounds(rng, data)
    return Config(data=data, strategy=strategy, params=params, trader=trader,
                  fee_bps=rng.choice([0.0, 5.0, 10.0, 25.0]),
                  slippage_bps=rng.choice([0.0, 2.0, 5.0, 20.0]),
                  maker_taker=rng.random() < 0.2, start=start, end=end,
                  initial_cash=rng.choice([10_000.0, 10_000.0, 750.0, 123_456.78]))


# ---------------------------------------------------------------------------- comparing
@dataclasses.dataclass
class Outcome:
    """What one comparison checked: ``rejected`` when both refused the configuration with
    the same :class:`ConfigError`-family error (counted, not compared further)."""

    trades: int = 0
    blocked: int = 0
    marks: int = 0
    fills: int = 0
    rejected: str | None = None


def _run(fn: Any, panel: Panel) -> tuple[Any, BaseException | None]:
    try:
        return fn(panel), None
    except Exception as exc:  # compared below: both must refuse alike
        return None, exc


def compare(wf: Any, rp: Any, *, initial_cash: float = 10_000.0) -> Outcome:
    """Raise AssertionError at the first difference between a walk_forward result and a
    replay result of the same configuration."""
    order = ["decision_time", "rank", "exit_time"]
    want = wf.trades.sort_values(order).reset_index(drop=True)
    got = rp.trades.sort_values(order).reset_index(drop=True)
    assert len(got) == len(want), f"trades: replay {len(got)}, walk_forward {len(want)}"
    for col in ("symbol", "decision_time", "entry_time", "exit_time", "exit_reason",
                "exit_at_last_close", "rank", "direction", "ambiguous", "gaps_in_window"):
        diff = got[col].to_numpy() != want[col].to_numpy()
        assert not diff.any(), (f"{col} differs at trade {int(np.argmax(diff))}: replay "
                                f"{got[col][diff].iloc[0]!r}, walk_forward "
                                f"{want[col][diff].iloc[0]!r}")
    for col in ("quantity", "entry_price", "exit_price", "entry_value", "return_pct", "pnl",
                "fees", "weight", "score", "best_return_pct", "max_drawdown"):
        np.testing.assert_allclose(got[col].astype(float), want[col].astype(float), rtol=1e-9,
                                   atol=1e-9, err_msg=col)
    for col in ("decision_time", "symbol", "rank", "reason"):
        assert list(rp.blocked[col]) == list(wf.blocked[col]), f"blocked {col}"
    mine = rp.equity.set_index("time")
    theirs = wf.equity.set_index("time")
    missing = theirs.index[~theirs.index.isin(mine.index)]
    assert not len(missing), f"engine marks absent from the replay: {list(missing[:3])}"
    for col in ("equity", "cash", "exposure"):
        np.testing.assert_allclose(mine.loc[theirs.index, col], theirs[col], rtol=1e-9,
                                   atol=1e-6, err_msg=col)
    np.testing.assert_array_equal(mine.loc[theirs.index, "positions"], theirs["positions"])
    assert rp.equity["positions"].iloc[-1] == 0 and (rp.equity["cash"] >= 0).all()
    final = initial_cash + rp.trades["pnl"].sum()
    assert abs(rp.metrics["final_equity"] - final) <= 1e-9 * abs(final) + 1e-6, "final equity"
    return Outcome(trades=len(got), blocked=len(rp.blocked), marks=len(theirs))


def check(config: Config) -> Outcome:
    """Run both on ``config`` and compare (AssertionError at the first difference)."""
    panel = config.data.panel()
    wf, wf_err = _run(config.run_walk_forward, panel)
    rp, rp_err = _run(config.run_replay, panel)
    if wf_err is not None or rp_err is not None:
        if wf_err is not None and rp_err is not None and isinstance(wf_err, ConfigError) \
                and isinstance(rp_err, ConfigError):
            return Outcome(rejected=type(wf_err).__name__)
        raise AssertionError(f"walk_forward raised {wf_err!r}; replay raised {rp_err!r}")
    return compare(wf, rp, initial_cash=config.initial_cash)
