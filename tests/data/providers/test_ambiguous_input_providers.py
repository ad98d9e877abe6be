"""Ambiguous input read silently (issue 9), providers: a candle without an open time is
refused, never dropped; NumPy integers are integers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core_engine.data.providers import CCXTProvider, NobitexProvider
from core_engine.errors import DataValidationError


def test_ambiguous_input_ccxt_row_without_timestamp_is_refused(fake_exchange_cls, btc_rows, clock):
    class Holed(fake_exchange_cls):
        def fetch_ohlcv(self, *args, **kwargs):
            page = super().fetch_ohlcv(*args, **kwargs)
            page[7][0] = None  # an exchange row without its open time
            return page

    exchange = Holed(btc_rows, clock=clock)
    provider = CCXTProvider(exchange=exchange, limit=20, sleep=clock.sleep, clock=clock.time)
    with pytest.raises(DataValidationError,
                       match=r"Row 7 of the 5m candles of BTC/USDT that exchange 'fakebinance' "
                             r"returned for since=1618790400000 .*has no usable open time: \[None"):
        provider.fetch_ohlcv("BTC/USDT", "5m", "2021-04-19", "2021-04-20")


def test_ambiguous_input_nobitex_row_without_timestamp_is_refused(udf_server, clock):
    answer = {"s": "ok", **{k: udf_server.udf[k][:10] for k in "tohlcv"}}
    answer["t"][3] = None
    udf_server.script.append((200, json.dumps(answer).encode(), {}))
    provider = NobitexProvider(udf_server.url, sleep=clock.sleep, clock=clock.time,
                               min_interval=0.0, max_candles_per_request=100)
    with pytest.raises(DataValidationError, match="row 3 has no usable open time"):
        provider.fetch_ohlcv("BTC/IRT", "5m", "2021-04-19", "2021-04-20")


def test_ambiguous_input_numpy_integers_are_integers(fake_exchange_cls, btc_rows, clock):
    exchange = fake_exchange_cls(btc_rows, clock=clock)
    assert CCXTProvider(exchange=exchange, limit=np.int64(20)).limit == 20
    nobitex = NobitexProvider(max_candles_per_request=np.int32(50), timeout=np.float64(5))
    assert nobitex.max_candles_per_request == 50
