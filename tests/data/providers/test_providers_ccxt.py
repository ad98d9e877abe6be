"""CCXTProvider against a fake exchange serving real recorded Binance pages (offline)."""

from __future__ import annotations

import sys

import ccxt
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.data.candles import validate_candles
from core_engine.data.providers import CCXTProvider, ProviderRepairWarning, SampleProvider
from core_engine.errors import ConfigError, DataValidationError, ExchangeError

START, END = "2021-04-19", "2021-04-21"
START_MS = 1_618_790_400_000  # 2021-04-19 00:00 UTC
STEP_MS = 300_000


@pytest.fixture(scope="module")
def expected() -> pd.DataFrame:
    return SampleProvider().fetch_ohlcv("BTC/USDT", "5m", START, END)


def make(fake_exchange_cls, rows, clock, *, script=(), limit=1000, max_retries=5, **kwargs):
    exchange = fake_exchange_cls(rows, clock=clock, script=script)
    provider = CCXTProvider(exchange=exchange, limit=limit, max_retries=max_retries,
                            sleep=clock.sleep, clock=clock.time, **kwargs)
    return provider, exchange


def assert_bit_identical(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert got["timestamp"].dtype == pd.DatetimeTZDtype("ns", "UTC")
    assert np.array_equal(got["timestamp"].to_numpy(), want["timestamp"].to_numpy())
    for column in ("open", "high", "low", "close", "volume"):
        assert got[column].dtype == np.float64
        assert np.array_equal(got[column].to_numpy().view(np.int64),
                              want[column].to_numpy().view(np.int64)), column


def test_paginates_with_since_and_returns_the_real_candles(fake_exchange_cls, btc_rows, clock, expected):
    provider, exchange = make(fake_exchange_cls, btc_rows, clock, limit=100)
    got = provider.fetch_ohlcv("BTC/USDT", "5m", START, END)
    assert len(got) == 546  # 576 five-minute slots minus the 30-candle maintenance gap
    assert_bit_identical(got, expected)
    sinces = [call[2] for call in exchange.calls]
    # 546 candles in pages of 100: 6 pages, each starting one step after the last candle
    # served; after the 6th, 'since' reaches 'end' and no further request is made.
    assert len(sinces) == 6
    assert sinces[0] == START_MS
    for before, after in zip(sinces, sinces[1:], strict=False):
        served = [r for r in btc_rows if r[0] >= before][:100]
        assert after == served[-1][0] + STEP_MS
    assert all(call[:2] == ("BTC/USDT", "5m") and call[3] == 100 for call in exchange.calls)


def test_spaces_calls_by_the_exchange_rate_limit(fake_exchange_cls, btc_rows, clock):
    provider, exchange = make(fake_exchange_cls, btc_rows, clock, limit=200)
    provider.fetch_ohlcv("BTC/USDT", "5m", START, END)
    # rateLimit is 50 ms and the fake clock does not move during a call: one 0.05 s wait
    # before every request but the first.
    assert clock.sleeps == pytest.approx([0.05] * (len(exchange.calls) - 1))


def test_trusts_an_exchange_that_throttles_itself(fake_exchange_cls, btc_rows, clock):
    exchange = fake_exchange_cls(btc_rows, clock=clock)
    exchange.enableRateLimit = True
    provider = CCXTProvider(exchange=exchange, limit=200, sleep=clock.sleep, clock=clock.time)
    provider.fetch_ohlcv("BTC/USDT", "5m", START, END)
    assert len(exchange.calls) > 1 and clock.sleeps == []


@pytest.mark.parametrize("error", [ccxt.NetworkError, ccxt.RequestTimeout, ccxt.DDoSProtection,
                                   ccxt.RateLimitExceeded, ccxt.ExchangeNotAvailable])
def test_retries_transient_errors_with_exponential_backoff(fake_exchange_cls, btc_rows, clock,
                                                           expected, error):
    script = [error("boom 1"), error("boom 2"), error("boom 3")]
    provider, exchange = make(fake_exchange_cls, btc_rows, clock, script=script, backoff=0.5)
    got = provider.fetch_ohlcv("BTC/USDT", "5m", START, END)
    assert_bit_identical(got, expected)
    # Three failed calls then success with the same 'since'; waits 0.5, 1, 2 seconds. The
    # backoff sleeps move the clock past the 50 ms spacing, so no extra spacing sleep.
    assert [c[2] for c in exchange.calls[:4]] == [START_MS] * 4
    assert clock.sleeps[:3] == [0.5, 1.0, 2.0]


def test_backoff_is_capped(fake_exchange_cls, btc_rows, clock):
    script = [ccxt.NetworkError("down")] * 6
    provider, _ = make(fake_exchange_cls, btc_rows, clock, script=script, max_retries=6,
                       backoff=1.0, max_backoff=5.0)
    provider.fetch_ohlcv("BTC/USDT", "5m", START, END)
    assert clock.sleeps[:6] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_gives_up_after_the_last_retry_with_a_message_naming_the_request(fake_exchange_cls,
                                                                          btc_rows, clock):
    script = [ccxt.RequestTimeout("read timed out")] * 10
    provider, exchange = make(fake_exchange_cls, btc_rows, clock, script=script, max_retries=3)
    with pytest.raises(ExchangeError) as info:
        provider.fetch_ohlcv("BTC/USDT", "5m", START, END)
    message = str(info.value)
    for part in ("fakebinance", "BTC/USDT", "5m", "3 retries", "RequestTimeout", "2021-04-19 00:00"):
        assert part in message
    assert len(exchange.calls) == 4
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert isinstance(info.value.__cause__, ccxt.RequestTimeout)


@pytest.mark.parametrize("error", [ccxt.BadSymbol("binance does not have market symbol XYZ/USDT"),
                                   ccxt.AuthenticationError("invalid api key"),
                                   ccxt.ExchangeError("something permanent"),
                                   ccxt.BadRequest("bad request")])
def test_permanent_errors_fail_at_once(fake_exchange_cls, btc_rows, clock, error):
    provider, exchange = make(fake_exchange_cls, btc_rows, clock, script=[error])
    with pytest.raises(ExchangeError) as info:
        provider.fetch_ohlcv("XYZ/USDT", "5m", START, END)
    assert "fakebinance" in str(info.value) and "XYZ/USDT" in str(info.value)
    assert "permanently" in str(info.value) and type(error).__name__ in str(info.value)
    assert len(exchange.calls) == 1 and clock.sleeps == []


def test_unknown_symbol_from_the_exchange_is_an_exchange_error(fake_exchange_cls, btc_rows, clock):
    provider, exchange = make(fake_exchange_cls, btc_rows, clock)
    with pytest.raises(ExchangeError, match=r"5m candles of XYZ/USDT from exchange 'fakebinance'.*BadSymbol"):
        provider.fetch_ohlcv("XYZ/USDT", "5m", START, END)
    assert len(exchange.calls) == 1


def test_programming_errors_are_not_retried_or_wrapped(fake_exchange_cls, btc_rows, clock):
    provider, exchange = make(fake_exchange_cls, btc_rows, clock, script=[TypeError("bug")])
    with pytest.raises(TypeError, match="bug"):
        provider.fetch_ohlcv("BTC/USDT", "5m", START, END)
    assert len(exchange.calls) == 1


def test_drops_the_candle_still_open(fake_exchange_cls, btc_rows, make_clock):
    now = pd.Timestamp("2021-04-20 10:02:30", tz="UTC").timestamp()
    clock = make_clock(now)
    provider, _ = make(fake_exchange_cls, btc_rows, clock)
    got = provider.fetch_ohlcv("BTC/USDT", "5m", START, END)
    # The 10:00 candle closes at 10:05 > now: not returned. The 09:55 candle closed at 10:00.
    assert got["timestamp"].iloc[-1] == pd.Timestamp("2021-04-20 09:55", tz="UTC")
    # end defaults to now
    default_end = provider.fetch_ohlcv("BTC/USDT", "5m", START)
    assert default_end.equals(got)


def test_range_is_half_open_and_may_start_off_grid(fake_exchange_cls, btc_rows, clock, expected):
    provider, _ = make(fake_exchange_cls, btc_rows, clock)
    got = provider.fetch_ohlcv("BTC/USDT", "5m", "2021-04-19 00:02", "2021-04-19 01:00")
    want = expected[(expected.timestamp >= "2021-04-19 00:05") & (expected.timestamp < "2021-04-19 01:00")]
    assert_bit_identical(got, want.reset_index(drop=True))
    assert len(got) == 11


def test_stops_on_a_page_without_progress(fake_exchange_cls, btc_rows, clock):
    class StuckExchange(fake_exchange_cls):
        def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params=None):
            self.calls.append((symbol, timeframe, since, limit))
            return [list(r) for r in self.rows[:limit]]  # ignores 'since'

    exchange = StuckExchange(btc_rows)
    provider = CCXTProvider(exchange=exchange, limit=100, sleep=clock.sleep, clock=clock.time)
    got = provider.fetch_ohlcv("BTC/USDT", "5m", START, END)
    assert len(exchange.calls) == 2  # the second page repeats old candles: stop
    assert len(got) == 100


def test_empty_result_before_listing(fake_exchange_cls, btc_rows, clock):
    provider, exchange = make(fake_exchange_cls, btc_rows, clock)
    got = provider.fetch_ohlcv("BTC/USDT", "5m", "2022-01-01", "2022-01-02")
    validate_candles(got, "5m")
    assert len(got) == 0 and len(exchange.calls) == 1


def test_duplicate_and_unsorted_rows_are_repaired_with_a_warning(fake_exchange_cls, btc_rows, clock,
                                                                 expected):
    shuffled = [btc_rows[1], btc_rows[0], btc_rows[2], [*btc_rows[2][:5], 999.0], *btc_rows[3:12]]

    class MessyExchange(fake_exchange_cls):
        def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params=None):
            self.calls.append(since)
            return [list(r) for r in shuffled] if since == START_MS else []

    provider = CCXTProvider(exchange=MessyExchange(btc_rows), sleep=clock.sleep, clock=clock.time)
    with pytest.warns(ProviderRepairWarning, match=r"2 rows were out of order.*dropped 1 duplicate"):
        got = provider.fetch_ohlcv("BTC/USDT", "5m", START, END)
    assert len(got) == 12
    assert got["volume"].iloc[2] == 999.0  # the later (newer) duplicate wins
    assert_bit_identical(got.drop(index=2), expected.iloc[:12].drop(index=2))


def test_invalid_candle_from_the_exchange_is_rejected(fake_exchange_cls, btc_rows, clock):
    bad = [list(r) for r in btc_rows[:20]]
    bad[7][2] = bad[7][3] - 1.0  # high below low
    provider, _ = make(fake_exchange_cls, bad, clock)
    with pytest.raises(DataValidationError, match=r"Candle 7 of BTC/USDT \(2021-04-19 00:35 UTC\) has high"):
        provider.fetch_ohlcv("BTC/USDT", "5m", START, END)


def test_timeframe_the_exchange_does_not_serve(fake_exchange_cls, btc_rows, clock):
    provider, exchange = make(fake_exchange_cls, btc_rows, clock)
    with pytest.raises(ConfigError, match=r"does not serve '15m'"):
        provider.fetch_ohlcv("BTC/USDT", "15m", START, END)
    with pytest.raises(ConfigError, match="'start' parameter"):
        provider.fetch_ohlcv("BTC/USDT", "5m", None, END)
    with pytest.raises(ConfigError, match="before 'end'"):
        provider.fetch_ohlcv("BTC/USDT", "5m", END, START)
    assert exchange.calls == []


def test_unknown_exchange_id_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"Got 'binanse'\. Did you mean 'binance'\?"):
        CCXTProvider("binanse")


def test_missing_ccxt_is_a_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ccxt", None)
    with pytest.raises(ConfigError, match=r"pip install 'core-engine\[exchanges\]'"):
        CCXTProvider("binance")


def test_builds_a_real_ccxt_exchange_offline_with_its_own_throttle_off():
    provider = CCXTProvider("kraken", api_key="KEY-123", secret="SECRET-456")
    assert isinstance(provider.exchange, ccxt.kraken)
    assert provider.exchange.enableRateLimit is False
    assert provider._spacer.interval == provider.exchange.rateLimit / 1000 > 0
    assert provider.name == "ccxt:kraken"
    assert "KEY-123" not in repr(provider) and "SECRET-456" not in repr(provider)
    assert "SECRET-456" not in str(vars(provider))


@settings(max_examples=30, deadline=None)
@given(limit=st.integers(1, 300), first=st.integers(0, 575), length=st.integers(1, 576))
def test_any_page_size_and_range_gives_the_same_candles(btc_rows, expected, fake_exchange_cls,
                                                        make_clock, limit, first, length):
    clock = make_clock(1_700_000_000.0)
    provider, _ = make(fake_exchange_cls, btc_rows, clock, limit=limit)
    lo = START_MS + first * STEP_MS
    hi = lo + length * STEP_MS
    got = provider.fetch_ohlcv("BTC/USDT", "5m", lo, hi)
    ns = expected["timestamp"].astype("int64")
    want = expected[(ns >= lo * 1_000_000) & (ns < hi * 1_000_000)].reset_index(drop=True)
    assert_bit_identical(got, want)


@pytest.mark.parametrize("config", ["yesterday", -1, float("nan"), [("apiKey", "KEY-hostile-1")],
                                    {1: "SECRET-hostile-2"}, object()])
def test_config_of_the_wrong_type_is_named_without_its_values(config, monkeypatch):
    built = []
    monkeypatch.setattr(ccxt, "binance", lambda options: built.append(options))
    with pytest.raises(ConfigError, match="'config' parameter of CCXTProvider must be a dict") as info:
        CCXTProvider("binance", config=config)
    assert built == []  # refused before an exchange object is built
    assert "hostile" not in str(info.value)  # a config may carry credentials: never shown


def test_credentials_given_to_the_provider_never_show_in_a_log(caplog):
    """api_key/secret/password and credentials inside ``config`` are registered with the log
    scrubber when the provider hands them to ccxt (whose debug log prints request headers),
    as a KeyRing's are; a record of any logger shows the mask instead."""
    import logging

    key, secret, password = "pk-live-9f3a7c21", "sk-live-5e8d2b94c0", "pw-0d7e3fa2"
    uid = "uid-77ab31c9"
    CCXTProvider("binance", api_key=key, secret=secret, password=password,
                 config={"uid": uid, "timeout": 10_000})
    with caplog.at_level(logging.DEBUG, logger="ccxt.base.exchange"):
        logging.getLogger("ccxt.base.exchange").debug(
            "GET https://api.binance.com/api/v3/account headers %s",
            {"X-MBX-APIKEY": key, "signature-of": secret, "pass": password, "uid": uid})
    text = caplog.text
    assert "****" in text
    for value in (key, secret, password, uid):
        assert value not in text, value
