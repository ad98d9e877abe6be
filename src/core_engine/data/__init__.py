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
from core_engine.data.resample import align_to_base, resample
from core_engine.data.timeframes import parse_timeframe, timeframe_ns

__all__ = [
    "CANDLE_COLUMNS",
    "FIELDS",
    "GapReport",
    "Panel",
    "RepairReport",
    "align_to_base",
    "drop_duplicate_timestamps",
    "drop_invalid_rows",
    "gap_report",
    "parse_timeframe",
    "repair_candles",
    "resample",
    "sort_candles",
    "timeframe_ns",
    "validate_candles",
]
