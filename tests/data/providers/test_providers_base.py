"""The Provider interface, the shared row normalisation, retries and get_provider."""

from __future__ import annotations

import socket
import warnings

import numpy as np
import pandas as pd
import pytest

from core_engine.data.candles import validate_candles
from core_engine.data.providers import (
    CCXTProvider,
    FileProvider,
    NobitexProvider,
    Provider,
    ProviderRepairWarning,
    SampleProvider,
    SyntheticProvider,
    candles_from_rows,
    get_provider,
)
from core_engine.data.providers._retry import CallSpacer, RetryPolicy
from core_engine.data.providers.base import resolve_range
from core_engine.errors import ConfigError, DataValidationError


def test_rows_become_a_valid_frame_bit_for_bit(btc_rows):
    frame = candles_from_rows(btc_rows, "5m", symbol="BTC/USDT")
    validate_candles(frame, "5m")
    assert frame["timestamp"].dtype == pd.DatetimeTZDtype("ns", "UTC")
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2021-04-19", tz="UTC")
    assert np.array_equal(frame["close"].to_numpy(), np.array([r[4] for r in btc_rows]))
    array = candles_from_rows(np.array(btc_rows), "5m")
    pd.testing.assert_frame_equal(array, frame, check_exact=True)
    assert len(candles_from_rows([], "5m")) == 0


def test_sorted_unique_rows_raise_no_warning(btc_rows):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        candles_from_rows(btc_rows, "5m")


def test_reversed_rows_are_sorted_with_a_warning(btc_rows):
    with pytest.warns(ProviderRepairWarning, match=r"rows were out of order"):
        frame = candles_from_rows(btc_rows[::-1], "5m", source="kraken")
    pd.testing.assert_frame_equal(frame, candles_from_rows(btc_rows, "5m"), check_exact=True)


def test_bad_rows_are_named():
    with pytest.raises(DataValidationError, match=r"Row 1 from kraken for X/Y must be"):
        candles_from_rows([[0, 1, 1, 1, 1, 1], [300000, 1, 1]], "5m", symbol="X/Y", source="kraken")
    with pytest.raises(DataValidationError, match="volume nan"):  # never read as 0
        candles_from_rows([[0, 1, 1, 1, 1, None]], "5m")
    with pytest.raises(DataValidationError, match="could not be read as a number"):
        candles_from_rows([[0, 1, "1.5x", 1, 1, 1]], "5m")
    with pytest.raises(DataValidationError, match=r"Row 0 .* no timestamp"):
        candles_from_rows([[float("nan"), 1, 1, 1, 1, 1]], "5m")
    with pytest.raises(DataValidationError, match="off the 5m grid"):
        candles_from_rows([[60_000, 1, 1, 1, 1, 1]], "5m")


def test_resolve_range():
    rng = resolve_range("60m", "2021-01-01", 1_609_462_800_000)
    assert rng.timeframe == "1h" and rng.step == 3_600 * 10**9
    assert rng.end == pd.Timestamp("2021-01-01 01:00", tz="UTC")
    with pytest.raises(ConfigError, match="'end' parameter of f is required"):
        resolve_range("5m", "2021-01-01", None, who="f")
    with pytest.raises(ConfigError, match="'start' parameter must be a time"):
        resolve_range("5m", "not a date", "2021-01-02")


def test_retry_policy_and_spacer():
    policy = RetryPolicy(max_retries=4, backoff=0.25, max_backoff=1.5)
    assert [policy.delay(k) for k in range(5)] == [0.25, 0.5, 1.0, 1.5, 1.5]
    assert policy.delay(0, hint=10.0) == 1.5 and policy.delay(2, hint=0.1) == 1.0
    with pytest.raises(ConfigError, match="'max_retries'"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ConfigError, match="'factor'"):
        RetryPolicy(factor=0.5)
    now = [100.0]
    slept = []
    spacer = CallSpacer(1.0, clock=lambda: now[0], sleep=lambda s: (slept.append(s), now.__setitem__(0, now[0] + s)))
    spacer.wait()
    now[0] += 0.25
    spacer.wait()
    now[0] += 5.0
    spacer.wait()
    assert slept == [0.75]


def test_every_provider_is_a_provider(tmp_path):
    providers = [CCXTProvider("binance"), NobitexProvider(), FileProvider(tmp_path),
                 SampleProvider(), SyntheticProvider()]
    assert all(isinstance(p, Provider) for p in providers)
    assert [p.name for p in providers] == ["ccxt:binance", "nobitex", "file", "sample", "synthetic"]
    with pytest.raises(NotImplementedError, match="'nobitex' provider cannot list"):
        NobitexProvider().symbols()


def test_get_provider(tmp_path):
    assert isinstance(get_provider("sample"), SampleProvider)
    synthetic = get_provider("synthetic", seed=4, volatility=0.3)
    assert isinstance(synthetic, SyntheticProvider) and synthetic.seed == 4
    assert get_provider("ccxt:kraken").exchange_id == "kraken"
    assert get_provider("ccxt").exchange_id == "binance"
    assert isinstance(get_provider("nobitex", timeout=5), NobitexProvider)
    assert get_provider("file", path_or_dir=tmp_path).path == tmp_path
    with pytest.raises(ConfigError, match=r"Got 'sampel'\. Did you mean 'sample'\?"):
        get_provider("sampel")
    with pytest.raises(ConfigError, match=r"Did you mean 'binance'\?"):
        get_provider("ccxt:binanse")
    with pytest.raises(ConfigError, match=r"has no parameter 'sede'.*Did you mean 'seed'\?"):
        get_provider("synthetic", sede=1)


def test_the_suite_cannot_reach_the_network():
    with socket.socket() as sock, pytest.raises(RuntimeError, match="must not use the network"):
        sock.connect(("203.0.113.7", 443))  # TEST-NET-3, never routed


@pytest.mark.parametrize("rows", [None, -1, 10**12, float("nan"), True, object(), "yesterday"])
def test_rows_that_are_not_a_list_of_rows_name_the_parameter(rows):
    with pytest.raises(DataValidationError, match="'rows' parameter of candles_from_rows"):
        candles_from_rows(rows, "5m")


@pytest.mark.parametrize("row", [1, "abcdefgh", None, {"t": 0}, np.zeros((2, 6))])
def test_a_row_that_is_not_a_sequence_is_named_by_position(row):
    with pytest.raises(DataValidationError, match="Row 1 from the provider must be"):
        candles_from_rows([[0, 1, 1, 1, 1, 1], row], "5m")


@pytest.mark.parametrize("timeframe", [None, 5, "soon"])
def test_timeframe_is_required_and_checked(timeframe):
    with pytest.raises(ConfigError, match="'timeframe' parameter"):
        candles_from_rows([[0, 1, 1, 1, 1, 1]], timeframe)
