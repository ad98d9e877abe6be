"""Candle providers behind one interface: ``fetch_ohlcv(symbol, timeframe, start, end)``.

Built in: :class:`CCXTProvider` (any CCXT exchange), :class:`NobitexProvider`,
:class:`FileProvider` (CSV, Parquet, Feather, freqtrade JSON), :class:`SampleProvider` (the
bundled real Binance sample) and :class:`SyntheticProvider` (seeded, any size).
:func:`get_provider` builds one from a name such as ``"ccxt:binance"``.
"""

from __future__ import annotations

from typing import Any

from core_engine.data.providers.base import (
    Provider,
    ProviderRepairWarning,
    candles_from_rows,
    did_you_mean,
)
from core_engine.data.providers.ccxt import CCXTProvider
from core_engine.data.providers.files import FileProvider, read_candle_file
from core_engine.data.providers.nobitex import NobitexProvider
from core_engine.data.providers.sample import SampleProvider, load_sample, sample_data_dir
from core_engine.data.providers.synthetic import SyntheticProvider
from core_engine.errors import ConfigError

__all__ = [
    "CCXTProvider",
    "FileProvider",
    "NobitexProvider",
    "PROVIDER_NAMES",
    "Provider",
    "ProviderRepairWarning",
    "SampleProvider",
    "SyntheticProvider",
    "candles_from_rows",
    "get_provider",
    "load_sample",
    "read_candle_file",
    "sample_data_dir",
]

PROVIDER_NAMES = ("ccxt", "nobitex", "file", "sample", "synthetic")
_CLASSES = {
    "nobitex": NobitexProvider,
    "file": FileProvider,
    "sample": SampleProvider,
    "synthetic": SyntheticProvider,
}


def get_provider(name: str, **kwargs: Any) -> Provider:
    """Build a provider from its name.

    Parameters
    ----------
    name : str
        ``"ccxt:<exchange id>"`` (e.g. ``"ccxt:binance"``; plain ``"ccxt"`` means Binance),
        ``"nobitex"``, ``"file"`` (needs ``path_or_dir=``), ``"sample"`` or ``"synthetic"``.
    **kwargs
        Passed to the provider's constructor.

    Raises
    ------
    ConfigError
        Unknown name (with a suggestion) or bad constructor arguments.

    Examples
    --------
    >>> get_provider("synthetic", seed=3)
    SyntheticProvider(seed=3, volatility=0.8, drift=0.0, regimes=True, gaps=0.0)
    """
    if not isinstance(name, str):
        raise ConfigError(f"The 'name' parameter of get_provider must be a string such as 'ccxt:binance'. Got {name!r}.")
    kind, _, rest = name.strip().partition(":")
    kind = kind.lower()
    if kind == "ccxt":
        return CCXTProvider(rest or kwargs.pop("exchange_id", "binance"), **kwargs)
    if kind not in _CLASSES or rest:
        raise ConfigError(
            f"The 'name' parameter of get_provider must be one of 'ccxt:<exchange>', 'nobitex', "
            f"'file', 'sample', 'synthetic'. Got {name!r}.{did_you_mean(kind, PROVIDER_NAMES)}"
        )
    try:
        return _CLASSES[kind](**kwargs)
    except TypeError as exc:
        raise ConfigError(f"get_provider({name!r}) got arguments its provider does not take: {exc}") from exc
