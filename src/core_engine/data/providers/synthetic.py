"""Seeded synthetic OHLCV: a geometric random walk with volatility regimes, for tests and benchmarks.

Every candle is a pure function of ``(seed, symbol, timeframe, candle index since the epoch)``
and the provider's parameters, so a sub-range is exactly the slice of a larger range, and the
same request gives the same frame on every call.

How it is built (all vectorised NumPy):

* Candles are grouped in blocks of :data:`BLOCK` candles aligned to the epoch. Each block gets
  a volatility regime (calm, normal, stormy; ``regimes=True``) and a block-level log-price
  increment ``drift·B + σ_regime·√B·N(0, 1)``, drawn from a generator keyed by
  ``(seed, symbol, timeframe, chunk of blocks)``.
* Log-price at block starts is the cumulative sum of those increments, counted outwards from
  the ``origin`` (where the price is ``start_price``), always in the same order, so it does not
  depend on the requested range.
* Inside a block the path is a Brownian bridge between the two block-start levels, drawn from a
  generator keyed by ``(seed, symbol, timeframe, block)``: statistically the same random walk,
  but each block computable on its own.
* ``open`` is the previous ``close``; ``high``/``low`` add exponential wicks to
  ``max/min(open, close)``; volume is lognormal and grows with ``|return|``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine.data.candles import empty_candles
from core_engine.data.providers.base import Provider, is_integer, is_number, resolve_range
from core_engine.data.timeframes import to_utc_timestamp
from core_engine.errors import ConfigError

__all__ = ["BLOCK", "SyntheticProvider"]

BLOCK = 4096  # candles per bridge block
CHUNK = 1024  # blocks per generator of block-level draws
_YEAR_NS = 365.25 * 86_400 * 1_000_000_000
_REGIME_LEVELS = np.array([0.55, 1.0, 1.9])
_REGIME_EDGES = np.array([0.35, 0.80])  # P(calm)=0.35, P(normal)=0.45, P(stormy)=0.20
_REGIME_LEVELS = _REGIME_LEVELS / np.sqrt(np.dot(np.diff([0.0, *_REGIME_EDGES, 1.0]), _REGIME_LEVELS**2))
_WICK = 0.6  # mean wick, in units of the candle's sigma
_KIND_CHUNK, _KIND_BLOCK = 1, 2


def _symbol_key(symbol: str) -> int:
    return int.from_bytes(hashlib.blake2b(symbol.encode("utf-8"), digest_size=8).digest(), "little")


@keyword_checked
class SyntheticProvider(Provider):
    """Deterministic synthetic candles for any symbol, timeframe and range.

    Parameters
    ----------
    seed : int
        Non-negative seed; with the symbol and timeframe it fixes every candle.
    start_price : float
        Price at ``origin`` (every symbol starts there).
    drift : float
        Annualised drift of the log price (0.0: no trend).
    volatility : float
        Annualised volatility of log returns (0.8 is typical of crypto majors).
    regimes : bool
        Switch volatility between calm, normal and stormy regimes of :data:`BLOCK` candles
        (about 14 days at 5m); the mean variance stays ``volatility**2``.
    volume : float
        Median volume of a candle with a typical move.
    gaps : float
        Probability in ``[0, 1)`` that a candle is missing (for testing gap handling).
    n_symbols : int
        Size of the universe :meth:`symbols` lists (``SYN000/USDT``, …); any symbol name can
        be fetched.
    origin : time
        Where the log price is anchored at ``start_price``.

    Examples
    --------
    >>> provider = SyntheticProvider(seed=7)
    >>> frame = provider.fetch_ohlcv("BTC/USDT", "5m", "2021-01-01", "2021-01-02")
    >>> len(frame), frame["timestamp"].iloc[0].isoformat()
    (288, '2021-01-01T00:00:00+00:00')
    >>> part = provider.fetch_ohlcv("BTC/USDT", "5m", "2021-01-01 06:00", "2021-01-01 07:00")
    >>> part.equals(frame.iloc[72:84].reset_index(drop=True))
    True
    """

    name = "synthetic"

    def __init__(
        self,
        seed: int = 0,
        *,
        start_price: float = 100.0,
        drift: float = 0.0,
        volatility: float = 0.8,
        regimes: bool = True,
        volume: float = 1000.0,
        gaps: float = 0.0,
        n_symbols: int = 10,
        origin="2020-01-01",
    ) -> None:
        if not is_integer(seed) or seed < 0:
            raise ConfigError(f"The 'seed' parameter must be a non-negative integer. Got {seed!r}.")
        checks = (
            ("start_price", start_price, lambda x: x > 0, "a positive number"),
            ("volatility", volatility, lambda x: x >= 0, "a non-negative number"),
            ("volume", volume, lambda x: x > 0, "a positive number"),
            ("gaps", gaps, lambda x: 0 <= x < 1, "a probability in [0, 1)"),
            ("drift", drift, lambda x: True, "a finite number"),
        )
        for label, value, ok, expected in checks:
            if not is_number(value) or not np.isfinite(value) or not ok(value):
                raise ConfigError(f"The '{label}' parameter must be {expected}. Got {value!r}.")
        if not is_integer(n_symbols) or n_symbols < 1:
            raise ConfigError(f"The 'n_symbols' parameter must be a positive integer. Got {n_symbols!r}.")
        self.seed = int(seed)
        self.start_price = float(start_price)
        self.drift = float(drift)
        self.volatility = float(volatility)
        self.regimes = bool(regimes)
        self.volume = float(volume)
        self.gaps = float(gaps)
        self.n_symbols = int(n_symbols)
        self.origin = to_utc_timestamp(origin, name="origin")
        if self.origin.value < 0:
            raise ConfigError(f"The 'origin' parameter must be after 1970-01-01. Got {origin!r}.")

    def __repr__(self) -> str:
        return (f"SyntheticProvider(seed={self.seed}, volatility={self.volatility}, "
                f"drift={self.drift}, regimes={self.regimes}, gaps={self.gaps})")

    def symbols(self) -> list[str]:
        """A default universe of ``n_symbols`` names, ``SYN000/USDT``, ``SYN001/USDT``, …"""
        return [f"SYN{i:03d}/USDT" for i in range(self.n_symbols)]

    def _generator(self, symbol: str, step: int, kind: int, index: int) -> np.random.Generator:
        sequence = np.random.SeedSequence(
            entropy=[self.seed, _symbol_key(symbol), step], spawn_key=(kind, index)
        )
        return np.random.Generator(np.random.PCG64(sequence))

    def _block_draws(self, symbol: str, step: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Regime multipliers and unit normals of blocks ``lo..hi-1`` (absolute indices)."""
        first, last = lo // CHUNK, (hi - 1) // CHUNK
        multipliers, normals = [], []
        for chunk in range(first, last + 1):
            gen = self._generator(symbol, step, _KIND_CHUNK, chunk)
            uniforms = gen.random(CHUNK)
            normals.append(gen.standard_normal(CHUNK))
            if self.regimes:
                multipliers.append(_REGIME_LEVELS[np.searchsorted(_REGIME_EDGES, uniforms, side="right")])
            else:
                multipliers.append(np.ones(CHUNK))
        offset = lo - first * CHUNK
        take = slice(offset, offset + hi - lo)
        return np.concatenate(multipliers)[take], np.concatenate(normals)[take]

    def _levels(self, symbol: str, step: int, b0: int, b1: int, sigma: float, mu: float):
        """Log-price at the starts of blocks ``b0..b1+1`` and the sigma of blocks ``b0..b1``."""
        anchor = self.origin.value // step // BLOCK
        lo, hi = min(b0, anchor), max(b1 + 1, anchor)
        multipliers, normals = self._block_draws(symbol, step, lo, max(hi, lo + 1))
        block_sigma = sigma * multipliers
        increments = mu * BLOCK + block_sigma * np.sqrt(BLOCK) * normals
        levels = np.empty(hi - lo + 1)
        a = anchor - lo
        levels[a] = 0.0
        levels[a + 1:] = np.cumsum(increments[a:hi - lo])
        levels[:a] = -np.cumsum(increments[:a][::-1])[::-1]
        return levels[b0 - lo:b1 + 2 - lo], block_sigma[b0 - lo:b1 + 1 - lo]

    def _candles(self, symbol: str, step: int, k0: int, k1: int) -> dict[str, np.ndarray]:
        b0, b1 = k0 // BLOCK, (k1 - 1) // BLOCK
        sigma = self.volatility * np.sqrt(step / _YEAR_NS)
        mu = self.drift * step / _YEAR_NS
        levels, block_sigma = self._levels(symbol, step, b0, b1, sigma, mu)
        nb = b1 - b0 + 1
        z, up, down, noise = (np.empty((nb, BLOCK)) for _ in range(4))
        keep = np.ones((nb, BLOCK), dtype=bool)
        for i in range(nb):
            gen = self._generator(symbol, step, _KIND_BLOCK, b0 + i)
            gen.standard_normal(out=z[i])
            gen.standard_exponential(out=up[i])
            gen.standard_exponential(out=down[i])
            gen.standard_normal(out=noise[i])
            if self.gaps > 0:
                keep[i] = gen.random(BLOCK) >= self.gaps
        sig = block_sigma[:, None]
        walk = sig * np.cumsum(z, axis=1)
        frac = np.arange(1, BLOCK + 1) / BLOCK
        path = np.empty((nb, BLOCK + 1))
        path[:, 0] = levels[:-1]
        path[:, 1:] = levels[:-1, None] + walk - frac * (walk[:, -1:] - (levels[1:] - levels[:-1])[:, None])
        path[:, -1] = levels[1:]  # exact, so a block's last close is the next block's open
        log_open, log_close = path[:, :-1], path[:, 1:]
        log_high = np.maximum(log_open, log_close) + _WICK * sig * up
        log_low = np.minimum(log_open, log_close) - _WICK * sig * down
        # The move in units of its sigma, capped so a degenerate sigma (volatility ~ 0)
        # cannot overflow the volume.
        scaled = np.abs(log_close - log_open - mu) / np.where(sig > 0, sig, 1.0)
        log_volume = np.log(self.volume) + 0.5 * noise + 0.8 * (np.minimum(scaled, 6.0) - 0.8)
        lo, hi = k0 - b0 * BLOCK, k1 - b0 * BLOCK
        mask = keep.reshape(-1)[lo:hi]
        out = {"k": np.arange(k0, k1, dtype=np.int64)[mask]}
        for name, values in (("open", log_open), ("high", log_high), ("low", log_low),
                             ("close", log_close)):
            out[name] = self.start_price * np.exp(values.reshape(-1)[lo:hi][mask])
        out["volume"] = np.exp(log_volume.reshape(-1)[lo:hi][mask])
        return out

    def fetch_ohlcv(self, symbol: str, timeframe: str, start=None, end=None) -> pd.DataFrame:
        """Return synthetic candles of ``symbol`` with open time in ``[start, end)``.

        Both bounds are required. The result always passes ``validate_candles``.

        Raises
        ------
        ConfigError
            Bad timeframe or range, or a range before 1970.
        """
        if not isinstance(symbol, str) or not symbol:
            raise ConfigError(f"The 'symbol' parameter must be a non-empty string. Got {symbol!r}.")
        rng = resolve_range(timeframe, start, end, who="SyntheticProvider.fetch_ohlcv")
        step = rng.step
        if rng.start_ns < 0:
            raise ConfigError(f"The 'start' parameter must be after 1970-01-01. Got {rng.start}.")
        k0, k1 = -(-rng.start_ns // step), -(-rng.end_ns // step)
        if k1 <= k0:
            return empty_candles()
        values = self._candles(symbol, step, k0, k1)
        frame = pd.DataFrame({name: values[name] for name in ("open", "high", "low", "close", "volume")})
        frame.insert(0, "timestamp", pd.to_datetime(values["k"] * step, unit="ns", utc=True))
        frame["timestamp"] = frame["timestamp"].astype(pd.DatetimeTZDtype("ns", "UTC"))
        return frame
