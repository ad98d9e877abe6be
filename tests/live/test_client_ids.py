"""Idempotent client order ids: deterministic, distinct, within each exchange's limits."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.errors import ConfigError
from core_engine.live.client_ids import client_order_id, kraken_userref

BINANCE_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")  # Binance's documented pattern
T = pd.Timestamp("2021-03-01 10:00", tz="UTC")

names = st.text(min_size=1, max_size=30)
times = st.datetimes(min_value=pd.Timestamp("2000-01-01").to_pydatetime(),
                     max_value=pd.Timestamp("2100-01-01").to_pydatetime())


@settings(max_examples=60, deadline=None)
@given(trader=names, when=times, symbol=names, leg=names, attempt=st.integers(0, 5))
def test_ids_are_deterministic_and_within_limits(trader, when, symbol, leg, attempt):
    stamp = pd.Timestamp(when, tz="UTC")
    binance = client_order_id(trader, stamp, symbol, leg, attempt=attempt)
    assert binance == client_order_id(trader, stamp.tz_convert("Asia/Tehran"), symbol, leg,
                                      attempt=attempt)
    assert BINANCE_ID.match(binance) and len(binance) == 26
    kraken = client_order_id(trader, stamp, symbol, leg, attempt=attempt, exchange="kraken")
    assert len(kraken) == 18 and kraken.isalnum()
    assert -(2**31) <= kraken_userref(kraken) < 2**31


def test_every_field_changes_the_id():
    base = client_order_id("t", T, "BTC/USDT", "entry")
    variants = [client_order_id("u", T, "BTC/USDT", "entry"),
                client_order_id("t", T + pd.Timedelta("5min"), "BTC/USDT", "entry"),
                client_order_id("t", T, "ETH/USDT", "entry"),
                client_order_id("t", T, "BTC/USDT", "stop"),
                client_order_id("t", T, "BTC/USDT", "entry", attempt=1)]
    assert len({base, *variants}) == 6
    # no ambiguity from joining: ("ab", "c") differs from ("a", "bc")
    assert client_order_id("ab", T, "c/d", "e") != client_order_id("a", T, "bc/d", "e")


def test_no_collisions_over_a_year_of_decisions():
    times_ = pd.date_range("2021-01-01", periods=8760, freq="h", tz="UTC")
    ids = {client_order_id("macd", t, s, leg) for t in times_[:2000]
           for s in ("BTC/USDT", "ETH/USDT") for leg in ("entry", "stop")}
    assert len(ids) == 2000 * 4


@pytest.mark.parametrize(("args", "fragment"), [
    (("", T, "BTC/USDT", "entry"), "'trader_id'"),
    (("t", T, "", "entry"), "'symbol'"),
    (("t", T, "BTC/USDT", None), "'leg'"),
    (("t", pd.Timestamp("2021-01-01"), "BTC/USDT", "entry"), "timezone-aware"),
    (("t", "not a time", "BTC/USDT", "entry"), "'bar_time'"),
    (("t", pd.NaT, "BTC/USDT", "entry"), "NaT"),
])
def test_bad_input_names_the_parameter(args, fragment):
    with pytest.raises(ConfigError, match=fragment):
        client_order_id(*args)
    with pytest.raises(ConfigError, match="'attempt'"):
        client_order_id("t", T, "BTC/USDT", "entry", attempt=-1)
    with pytest.raises(ConfigError, match="non-empty string"):
        kraken_userref("")


def test_kraken_client_id_takes_short_ids_and_hex_ids_as_uuids():
    import uuid

    from core_engine.live.client_ids import kraken_client_id
    from core_engine.trading.orders import client_order_id as trading_id

    short = client_order_id("t", T, "BTC/USD", "entry", exchange="kraken")
    assert kraken_client_id(short) == short
    long = trading_id("t", T, "BTC/USD", "entry")
    assert str(uuid.UUID(kraken_client_id(long))) == kraken_client_id(long)
    with pytest.raises(ConfigError, match="18 characters or a UUID"):
        kraken_client_id("x" * 30)
