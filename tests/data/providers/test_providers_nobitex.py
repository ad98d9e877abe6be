"""NobitexProvider against a real HTTP server on 127.0.0.1 serving recorded-shape UDF answers."""

from __future__ import annotations

import json
import socket

import numpy as np
import pandas as pd
import pytest

from core_engine.data.candles import validate_candles
from core_engine.data.providers import NobitexProvider, SampleProvider
from core_engine.data.providers.nobitex import NOBITEX_RESOLUTIONS, nobitex_symbol
from core_engine.errors import ConfigError, ExchangeError

START, END = "2021-04-19", "2021-04-21"
START_S = 1_618_790_400


@pytest.fixture(scope="module")
def expected() -> pd.DataFrame:
    return SampleProvider().fetch_ohlcv("BTC/USDT", "5m", START, END)


def make(server_url, clock, **kwargs):
    kwargs.setdefault("min_interval", 0.0)
    return NobitexProvider(server_url, sleep=clock.sleep, clock=clock.time, **kwargs)


def assert_bit_identical(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert got["timestamp"].dtype == pd.DatetimeTZDtype("ns", "UTC")
    assert np.array_equal(got["timestamp"].to_numpy(), want["timestamp"].to_numpy())
    for column in ("open", "high", "low", "close", "volume"):
        assert np.array_equal(got[column].to_numpy().view(np.int64),
                              want[column].to_numpy().view(np.int64)), column


def test_fetches_in_time_chunks_over_http(udf_server, clock, expected):
    provider = make(udf_server.url, clock, max_candles_per_request=100)
    got = provider.fetch_ohlcv("BTC/IRT", "5m", START, END)
    assert_bit_identical(got, expected)
    requests = udf_server.requests
    # 576 five-minute slots in chunks of 100 candles (30,000 s): 6 requests.
    assert len(requests) == 6
    assert [int(r["from"]) for r in requests] == [START_S + i * 30_000 for i in range(6)]
    assert [int(r["to"]) for r in requests] == [START_S + (i + 1) * 30_000 - 1 for i in range(5)] + [
        START_S + 576 * 300 - 1]
    assert all(r["path"] == "/market/udf/history" and r["symbol"] == "BTCIRT"
               and r["resolution"] == "5" for r in requests)


def test_a_server_cap_below_the_chunk_loses_nothing(udf_server, clock, expected):
    udf_server.cap = 120  # the server answers at most 120 candles, the client asks for 500
    provider = make(udf_server.url, clock)
    got = provider.fetch_ohlcv("BTC/IRT", "5m", START, END)
    assert_bit_identical(got, expected)
    froms = [int(r["from"]) for r in udf_server.requests]
    # Each request continues right after the last candle received.
    served = expected["timestamp"].astype("int64").to_numpy() // 10**9
    assert froms[0] == START_S
    for before, after in zip(froms, froms[1:], strict=False):
        assert after == served[served >= before][:120][-1] + 300
    assert len(froms) == 5  # 546 candles, 120 per answer


def test_http_429_then_success_waits_and_retries(udf_server, clock, expected):
    udf_server.script = [(429, b'{"detail": "Too many requests"}', {}),
                         (429, b'{"detail": "Too many requests"}', {"Retry-After": "7"})]
    provider = make(udf_server.url, clock, backoff=0.5)
    got = provider.fetch_ohlcv("BTC/IRT", "5m", START, END)
    assert_bit_identical(got, expected)
    # First retry after the 0.5 s backoff; the second after the server's Retry-After of 7 s,
    # which is longer than the 1 s backoff.
    assert clock.sleeps == [0.5, 7.0]
    assert len(udf_server.requests) == 4  # two 429s, then the two chunks
    assert udf_server.requests[0]["from"] == udf_server.requests[2]["from"]


def test_server_errors_exhaust_the_retries(udf_server, clock):
    udf_server.script = [(503, b"<html>Service Unavailable</html>", {})] * 10
    provider = make(udf_server.url, clock, max_retries=2)
    with pytest.raises(ExchangeError) as info:
        provider.fetch_ohlcv("BTC/IRT", "1h", START, END)
    message = str(info.value)
    assert "BTC/IRT" in message and "Nobitex" in message and "1h" in message
    assert "2 retries" in message and "HTTP 503" in message
    assert clock.sleeps == [1.0, 2.0] and len(udf_server.requests) == 3


def test_no_data_gives_an_empty_valid_frame(udf_server, clock):
    provider = make(udf_server.url, clock)
    got = provider.fetch_ohlcv("BTC/IRT", "5m", "2022-01-01", "2022-01-02")
    validate_candles(got, "5m")
    assert len(got) == 0
    assert len(udf_server.requests) == 1  # 288 candles fit in one chunk


def test_no_data_chunk_in_the_middle_is_skipped(udf_server, clock, expected):
    udf_server.script = [(200, json.dumps({"s": "no_data"}).encode(), {})]
    provider = make(udf_server.url, clock, max_candles_per_request=288)
    got = provider.fetch_ohlcv("BTC/IRT", "5m", START, END)
    assert_bit_identical(got, expected[expected.timestamp >= "2021-04-20"].reset_index(drop=True))


def test_error_answer_is_an_exchange_error(udf_server, clock):
    provider = make(udf_server.url, clock)
    with pytest.raises(ExchangeError, match=r"FOO/IRT \(FOOIRT\).*Invalid symbol: FOOIRT"):
        provider.fetch_ohlcv("FOO/IRT", "5m", START, END)
    assert clock.sleeps == [] and len(udf_server.requests) == 1


def test_http_404_is_permanent(udf_server, clock):
    provider = make(udf_server.url + "/wrong-prefix", clock)
    with pytest.raises(ExchangeError, match="HTTP 404"):
        provider.fetch_ohlcv("BTC/IRT", "5m", START, END)
    assert clock.sleeps == [] and len(udf_server.requests) == 1


def test_body_that_is_not_json_is_permanent(udf_server, clock):
    udf_server.script = [(200, b"<html>maintenance</html>", {})]
    provider = make(udf_server.url, clock)
    with pytest.raises(ExchangeError, match="not JSON"):
        provider.fetch_ohlcv("BTC/IRT", "5m", START, END)


def test_malformed_ok_answer_is_an_exchange_error(udf_server, clock):
    udf_server.script = [(200, json.dumps({"s": "ok", "t": [START_S], "o": [1.0]}).encode(), {})]
    provider = make(udf_server.url, clock)
    with pytest.raises(ExchangeError, match=r"missing \['h', 'l', 'c', 'v'\]"):
        provider.fetch_ohlcv("BTC/IRT", "5m", START, END)


def test_timeout_is_retried(udf_server, clock, expected):
    udf_server.script = [("sleep", 1.0)]
    provider = make(udf_server.url, clock, timeout=0.2, max_candles_per_request=600)
    got = provider.fetch_ohlcv("BTC/IRT", "5m", START, END)
    assert_bit_identical(got, expected)
    assert clock.sleeps == [1.0]


def test_connection_refused_is_retried_then_fails(clock):
    with socket.socket() as sock:  # find a free port, then close it so nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = make(f"http://127.0.0.1:{port}", clock, max_retries=2)
    with pytest.raises(ExchangeError, match=r"BTC/IRT.*still failed after 2 retries: URLError"):
        provider.fetch_ohlcv("BTC/IRT", "5m", START, END)
    assert clock.sleeps == [1.0, 2.0]


def test_requests_are_spaced(udf_server, clock):
    provider = make(udf_server.url, clock, min_interval=0.5, max_candles_per_request=100)
    provider.fetch_ohlcv("BTC/IRT", "5m", START, END)
    assert clock.sleeps == [0.5] * 5


def test_drops_the_candle_still_open(udf_server, make_clock, expected):
    clock = make_clock(pd.Timestamp("2021-04-20 10:02:30", tz="UTC").timestamp())
    provider = make(udf_server.url, clock)
    got = provider.fetch_ohlcv("BTC/IRT", "5m", START)
    assert got["timestamp"].iloc[-1] == pd.Timestamp("2021-04-20 09:55", tz="UTC")
    assert_bit_identical(got, expected[expected.timestamp < "2021-04-20 10:00"].reset_index(drop=True))


def test_timeframe_and_symbol_mapping():
    assert NobitexProvider.resolution("5m") == "5"
    assert NobitexProvider.resolution("1h") == "60"
    assert NobitexProvider.resolution("4h") == "240"
    assert NobitexProvider.resolution("1d") == "D"
    assert set(NOBITEX_RESOLUTIONS.values()) == {"1", "5", "15", "30", "60", "180", "240", "360",
                                                  "720", "D"}
    assert nobitex_symbol("BTC/IRT") == "BTCIRT"
    assert nobitex_symbol("BTC/USDT") == "BTCUSDT"
    assert nobitex_symbol("BTCIRT") == "BTCIRT"
    with pytest.raises(ConfigError, match="must look like 'BTC/IRT'"):
        nobitex_symbol("BTC IRT")


def test_unsupported_timeframe_and_bad_settings(clock):
    provider = NobitexProvider(sleep=clock.sleep, clock=clock.time)
    with pytest.raises(ConfigError, match=r"Nobitex serves .* Got '2h'"):
        provider.fetch_ohlcv("BTC/IRT", "2h", START, END)
    with pytest.raises(ConfigError, match=r"Got '12m'\. Did you mean"):
        provider.fetch_ohlcv("BTC/IRT", "12m", START, END)
    with pytest.raises(ConfigError, match="base_url"):
        NobitexProvider("api.nobitex.ir")
    with pytest.raises(ConfigError, match="max_candles_per_request"):
        NobitexProvider(max_candles_per_request=0)
