"""The data layer: candle frames, providers, the Parquet store, panels and resampling."""

from core_engine.data.candles import (
    CANDLE_COLUMNS,
    GapReport,
    RepairReport,
    drop_duplicate_timestamps,
    drop_invalid_rows,
    gap_report,
    repair_candles,
    sort_candles,
    validate_candles,
)
from core_engine.data.panel import FIELDS, Panel
from core_engine.data.providers import (
    CCXTProvider,
    FileProvider,
    NobitexProvider,
    Provider,
    SampleProvider,
    SyntheticProvider,
    get_provider,
    load_sample,
)
from core_engine.data.resample import align_to_base, resample
from core_engine.data.store import IngestReport, ParquetStore
from core_engine.data.timeframes import parse_timeframe, timeframe_ns

__all__ = [
    "CANDLE_COLUMNS",
    "CCXTProvider",
    "FIELDS",
    "FileProvider",
    "GapReport",
    "IngestReport",
    "NobitexProvider",
    "Panel",
    "ParquetStore",
    "Provider",
    "SampleProvider",
    "SyntheticProvider",
    "RepairReport",
    "align_to_base",
    "drop_duplicate_timestamps",
    "drop_invalid_rows",
    "gap_report",
    "get_provider",
    "load_sample",
    "parse_timeframe",
    "repair_candles",
    "resample",
    "sort_candles",
    "timeframe_ns",
    "validate_candles",
]
