"""The data layer: candle frames, providers, the Parquet store, panels and resampling."""

from core_engine.data.candles import (
    CANDLE_COLUMNS,
    DEFAULT_DISCONTINUITY_FACTOR,
    DiscontinuityWarning,
    GapReport,
    RepairReport,
    drop_duplicate_timestamps,
    drop_invalid_rows,
    gap_report,
    repair_candles,
    sort_candles,
    validate_candles,
)
from core_engine.data.discontinuities import SplitReport, split_at_discontinuities
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
from core_engine.data.store import BrokenFile, IngestReport, ParquetStore, StoreWarning
from core_engine.data.timeframes import is_utc, parse_timeframe, timeframe_ns

__all__ = [
    "BrokenFile",
    "CANDLE_COLUMNS",
    "CCXTProvider",
    "DEFAULT_DISCONTINUITY_FACTOR",
    "DiscontinuityWarning",
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
    "SplitReport",
    "StoreWarning",
    "align_to_base",
    "drop_duplicate_timestamps",
    "drop_invalid_rows",
    "gap_report",
    "get_provider",
    "is_utc",
    "load_sample",
    "parse_timeframe",
    "repair_candles",
    "resample",
    "sort_candles",
    "split_at_discontinuities",
    "timeframe_ns",
    "validate_candles",
]
