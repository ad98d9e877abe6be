"""The bundled real sample: Binance spot 5m candles, 2021-01-01 to 2021-06-30, nine symbols.

The files live in the package (``core_engine/sample_data``) and are read through
``importlib.resources``, so the sample works from a source checkout and an installed wheel.
Provenance, symbols and known gaps: ``core_engine/sample_data/PROVENANCE.md``
(:meth:`SampleProvider.provenance`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import pandas as pd

from core_engine._validate import check_symbols
from core_engine.data.candles import validate_candles
from core_engine.data.providers.base import Provider, did_you_mean, resolve_range, slice_range
from core_engine.data.providers.files import _parse_timestamps
from core_engine.data.timeframes import format_timeframe, timeframe_ns
from core_engine.errors import ConfigError

__all__ = ["SAMPLE_TIMEFRAME", "SampleProvider", "load_sample", "sample_data_dir"]

SAMPLE_TIMEFRAME = "5m"
_FILE = re.compile(r"^(?P<base>[A-Z0-9]+)_(?P<quote>[A-Z0-9]+)-(?P<tf>\w+)\.parquet$")


def _sample_dir() -> Traversable:
    return resources.files("core_engine").joinpath("sample_data")


def sample_data_dir() -> Path:
    """The folder holding the bundled sample files (``<BASE>_<QUOTE>-5m.parquet``).

    Useful to point a :class:`~core_engine.data.providers.FileProvider` at the sample.

    Raises
    ------
    ConfigError
        If the package is imported from a zip archive, where the files have no folder.

    Examples
    --------
    >>> sorted(p.name for p in sample_data_dir().glob("BTC_*"))
    ['BTC_USDT-5m.parquet']
    """
    folder = Path(str(_sample_dir()))
    if not folder.is_dir():
        raise ConfigError(
            f"The bundled sample has no folder on disk (the package is imported from {folder}); "
            "use SampleProvider or load_sample, which read it in place."
        )
    return folder


class SampleProvider(Provider):
    """Serves the bundled real Binance 5m sample (read-only, offline).

    Symbols: BTC, ETH, ADA, XRP, SOL, DOT, LINK, NKN (illiquid) and AR (listed 2021-05-14),
    all against USDT. Rows are bit-identical to the shared source data; the four exchange
    maintenance gaps of the period are left as gaps.

    Examples
    --------
    >>> SampleProvider().symbols()[:3]
    ['ADA/USDT', 'AR/USDT', 'BTC/USDT']
    >>> len(SampleProvider().fetch_ohlcv("BTC/USDT", "5m", "2021-03-01", "2021-03-02"))
    288
    """

    name = "sample"

    def _files(self) -> dict[str, Traversable]:
        found = {}
        for entry in _sample_dir().iterdir():
            match = _FILE.match(entry.name)
            if match and match.group("tf") == SAMPLE_TIMEFRAME:
                found[f"{match.group('base')}/{match.group('quote')}"] = entry
        return found

    def symbols(self) -> list[str]:
        """The bundled symbols, ``"BASE/QUOTE"``, sorted."""
        return sorted(self._files())

    def provenance(self) -> str:
        """The text of the sample's ``PROVENANCE.md``."""
        return _sample_dir().joinpath("PROVENANCE.md").read_text(encoding="utf-8")

    def fetch_ohlcv(self, symbol: str, timeframe: str = SAMPLE_TIMEFRAME, start=None,
                    end=None) -> pd.DataFrame:
        """Return the sample candles of ``symbol`` with open time in ``[start, end)``.

        ``start``/``end`` default to the whole sample. Only ``"5m"`` is bundled; build higher
        timeframes with :func:`core_engine.data.resample`.

        Raises
        ------
        ConfigError
            Unknown symbol (with a suggestion), a timeframe other than 5m, or a bad range.
        """
        rng = resolve_range(timeframe, start, end, default_start="1970-01-01",
                            default_end="2262-01-01", who="SampleProvider.fetch_ohlcv")
        if rng.timeframe != SAMPLE_TIMEFRAME:
            raise ConfigError(
                f"The 'timeframe' parameter: the bundled sample holds {SAMPLE_TIMEFRAME} candles "
                f"only. Got {format_timeframe(timeframe_ns(timeframe))!r}; resample the 5m "
                "candles with core_engine.data.resample instead."
            )
        files = self._files()
        if symbol not in files:
            raise ConfigError(
                f"The 'symbol' parameter: the bundled sample has {sorted(files)}. "
                f"Got {symbol!r}.{did_you_mean(symbol, files)}"
            )
        with files[symbol].open("rb") as handle:
            frame = pd.read_parquet(io.BytesIO(handle.read()))
        frame["timestamp"] = _parse_timestamps(frame["timestamp"], "auto", files[symbol])
        validate_candles(frame, SAMPLE_TIMEFRAME, symbol=symbol)
        return slice_range(frame, None if start is None else rng.start_ns,
                           None if end is None else rng.end_ns)


def load_sample(
    symbols: Iterable[str] | None = None,
    start=None,
    end=None,
) -> dict[str, pd.DataFrame]:
    """Load the bundled real 5m sample as ``{symbol: candle frame}``.

    Parameters
    ----------
    symbols : iterable of str, optional
        Which symbols (``"BTC/USDT"``); all nine by default.
    start, end : time, optional
        Keep candles with open time in ``[start, end)``; whole sample by default.

    Examples
    --------
    >>> frames = load_sample(["BTC/USDT", "ETH/USDT"], "2021-01-01", "2021-01-02")
    >>> {s: len(f) for s, f in frames.items()}
    {'BTC/USDT': 288, 'ETH/USDT': 288}
    """
    provider = SampleProvider()
    wanted = provider.symbols() if symbols is None else check_symbols(symbols, "symbols",
                                                                        "load_sample")
    return {s: provider.fetch_ohlcv(s, SAMPLE_TIMEFRAME, start, end) for s in wanted}
