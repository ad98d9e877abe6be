"""A wrong exchange set-up (keys, config, session) is a ConfigError naming the parameter,
raised before any ccxt object is built, and its message never carries a credential
(issue 9 §2: one error shape, everywhere)."""

from __future__ import annotations

import traceback

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.errors import ConfigError
from core_engine.live import CCXTBroker, CCXTSession, KeyRing, Secret
from core_engine.live.keys import ApiKey

SECRET = "hostile-Secret-Value-0123456789"
KEY = "hostile-Api-Key-abcdefghijklmn"


def _ring() -> KeyRing:
    return KeyRing.from_env("binance", environ={"CORE_ENGINE_BINANCE_KEY_1": KEY,
                                                "CORE_ENGINE_BINANCE_SECRET_1": SECRET})


def _shown(exc: BaseException) -> str:
    """Everything a user may see of the error: message, repr and formatted traceback."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


@pytest.fixture
def no_exchange_built(monkeypatch):
    """Building any ccxt exchange fails the test: the checks must come first."""
    import ccxt

    def refuse(*args, **kwargs):
        raise AssertionError("a ccxt exchange was built before the arguments were checked")

    for name in ("binance", "kraken"):
        monkeypatch.setattr(ccxt, name, refuse)


# -- KeyRing / ApiKey -------------------------------------------------------------------------

@pytest.mark.parametrize("exchange", [None, 3, "", "a\x00b", ["binance"]])
def test_keyring_exchange_must_be_an_exchange_id(exchange):
    with pytest.raises(ConfigError, match="'exchange' parameter of KeyRing"):
        KeyRing(exchange, [ApiKey(label="k1", key=Secret(KEY), secret=Secret(SECRET))])
    with pytest.raises(ConfigError, match="'exchange' parameter of KeyRing.from_env"):
        KeyRing.from_env(exchange, environ={})


@pytest.mark.parametrize("keys", [
    None, 7, {KEY: SECRET}, {"apiKey": KEY, "secret": SECRET}, [KEY, SECRET], [(KEY, SECRET)],
    KEY + SECRET, [Secret(SECRET)]])
def test_keyring_keys_of_the_wrong_shape_are_named_never_shown(keys):
    with pytest.raises(ConfigError, match="'keys' parameter of KeyRing") as info:
        KeyRing("binance", keys)
    assert SECRET not in _shown(info.value) and KEY not in _shown(info.value)


def test_apikey_refuses_plain_strings_without_showing_them():
    with pytest.raises(ConfigError, match="'key' parameter of ApiKey must be a Secret") as info:
        ApiKey(label="k1", key=KEY, secret=Secret(SECRET))
    assert KEY not in _shown(info.value)
    with pytest.raises(ConfigError, match="'secret' parameter of ApiKey") as info:
        ApiKey(label="k1", key=Secret(KEY), secret=SECRET)
    assert SECRET not in _shown(info.value)
    with pytest.raises(ConfigError, match="'password' parameter of ApiKey") as info:
        ApiKey(label="k1", key=Secret(KEY), secret=Secret(SECRET), password=SECRET)
    assert SECRET not in _shown(info.value)
    assert ApiKey(label="k1", key=Secret(KEY), secret=Secret(SECRET)).password is None


def test_keyring_from_env_environ_must_be_a_mapping():
    with pytest.raises(ConfigError, match="'environ' parameter of KeyRing.from_env") as info:
        KeyRing.from_env("binance", environ=[("CORE_ENGINE_BINANCE_KEY_1", KEY)])
    assert KEY not in _shown(info.value)


# -- CCXTSession ------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "parameter"), [
    ({"exchange_id": None}, "exchange_id"),
    ({"exchange_id": "binanse"}, "exchange_id"),
    ({"keys": "yesterday"}, "keys"),
    ({"keys": {"apiKey": KEY, "secret": SECRET}}, "keys"),
    ({"keys": [KEY, SECRET]}, "keys"),
    ({"config": "yesterday"}, "config"),
    ({"config": -1}, "config"),
    ({"config": [("apiKey", KEY), ("secret", SECRET)]}, "config"),
    ({"config": {1: SECRET}}, "config"),
    ({"configure": "a-file.txt"}, "configure"),
    ({"sleep": None}, "sleep"),
    ({"clock": 3.0}, "clock"),
    ({"seed": object()}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"read_retries": -1}, "read_retries"),
    ({"read_retries": 10**12}, "read_retries"),
    ({"backoff_base": float("nan")}, "backoff_base"),
    ({"backoff_cap": -1.0}, "backoff_cap"),
    ({"sandbox": "no"}, "sandbox"),
])
def test_session_set_up_errors_name_the_parameter_before_any_exchange(
        kwargs, parameter, no_exchange_built):
    kwargs = {"exchange_id": "binance", **kwargs}
    with pytest.raises(ConfigError, match=f"'{parameter}' parameter of CCXTSession") as info:
        CCXTSession(**kwargs)
    assert SECRET not in _shown(info.value) and KEY not in _shown(info.value)


def test_session_accepts_numpy_seed_and_a_ring():
    import numpy as np

    session = CCXTSession("binance", keys=_ring(), seed=np.int64(3), config={"timeout": 500})
    assert session.exchange.timeout == 500 and session.exchange.apiKey == KEY


# -- CCXTBroker -------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "parameter"), [
    ({"exchange_id": None}, "exchange_id"),
    ({"exchange_id": float("nan")}, "exchange_id"),
    ({"exchange_id": "bybit"}, "exchange_id"),  # ccxt knows it, its order parameters are not written
    ({"keys": "yesterday"}, "keys"),
    ({"keys": {KEY: SECRET}}, "keys"),
    ({"session": "yesterday"}, "session"),
    ({"session": 10**12}, "session"),
    ({"symbols": ["BTCUSDT"]}, "symbols"),
    ({"symbols": "BTC/USDT\x00"}, "symbols"),
    ({"clock": "now"}, "clock"),
    ({"price_timeframe": "soon"}, "price_timeframe"),
])
def test_broker_set_up_errors_name_the_parameter_before_any_exchange(
        kwargs, parameter, no_exchange_built):
    kwargs = {"exchange_id": "binance", "keys": _ring(), "symbols": ["BTC/USDT"], **kwargs}
    with pytest.raises(ConfigError, match=f"'{parameter}' parameter") as info:
        CCXTBroker(**kwargs)
    assert SECRET not in _shown(info.value) and KEY not in _shown(info.value)


def test_broker_refuses_a_session_of_another_exchange():
    session = CCXTSession("kraken")
    with pytest.raises(ConfigError, match="'session' parameter of CCXTBroker is a session of "
                                          "'kraken', not of 'binance'"):
        CCXTBroker("binance", session=session, symbols=["BTC/USDT"])


def test_broker_refuses_session_settings_beside_a_session():
    """keys, sandbox and session options configure the session CCXTBroker builds; beside a
    ready session they were silently ignored (a user's keys not used, a sandbox flag lost)."""
    session = CCXTSession("binance")
    for extra, named in (({"keys": _ring()}, "keys"), ({"sandbox": True}, "sandbox"),
                         ({"read_retries": 2}, "read_retries")):
        with pytest.raises(ConfigError, match=f"'{named}'.*cannot go with a 'session'") as info:
            CCXTBroker("binance", session=session, symbols=["BTC/USDT"], **extra)
        assert SECRET not in _shown(info.value) and KEY not in _shown(info.value)


# -- property: no shape of a wrong key set-up prints the credential ----------------------------

_WRONG_KEY_SHAPES = (
    lambda s: s, lambda s: {s: s}, lambda s: {"apiKey": s, "secret": s}, lambda s: [s, s],
    lambda s: [(s, s)], lambda s: (s,), lambda s: {"k": [s]},
)


@settings(max_examples=60, deadline=None)
@given(secret=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF),
                      min_size=12, max_size=40),
       shape=st.sampled_from(range(len(_WRONG_KEY_SHAPES))),
       where=st.sampled_from(["KeyRing", "CCXTSession.keys", "CCXTSession.config",
                              "CCXTBroker.keys"]))
def test_no_wrong_key_set_up_prints_the_credential(secret, shape, where):
    # a marked secret: hypothesis also draws the string constants of the code under test
    # ('check_instan...'), which a traceback's source lines show whatever the value
    secret = "SECRET-KEY-" + secret
    value = _WRONG_KEY_SHAPES[shape](secret)
    calls = {
        "KeyRing": lambda: KeyRing("binance", value),
        "CCXTSession.keys": lambda: CCXTSession("binance", keys=value),
        "CCXTSession.config": lambda: CCXTSession("binance", config=value),
        "CCXTBroker.keys": lambda: CCXTBroker("binance", keys=value, symbols=["BTC/USDT"]),
    }
    if where == "CCXTSession.config" and isinstance(value, dict) and all(
            isinstance(k, str) for k in value):
        return  # a dict of options is a valid config (ccxt reads apiKey/secret from it)
    with pytest.raises(ConfigError) as info:
        calls[where]()
    assert secret not in _shown(info.value)
