"""CCXTSession against the fake exchange: error mapping, bounded jittered backoff, key rotation,
and writes that are never retried."""

from __future__ import annotations

import pytest

from core_engine.errors import (
    BrokerUnavailable,
    ConfigError,
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    RateLimited,
)
from core_engine.live.ccxt_session import CCXTSession, UnknownOutcome, order_status, to_order
from core_engine.live.keys import KeyRing
from core_engine.trading.orders import OrderStatus

from .conftest import API_KEY, API_SECRET


def _ring(*pairs):
    env = {}
    for i, (key, secret) in enumerate(pairs, 1):
        env[f"CORE_ENGINE_BINANCE_KEY_{i}"] = key
        env[f"CORE_ENGINE_BINANCE_SECRET_{i}"] = secret
    return KeyRing.from_env("binance", environ=env)


def _session(fake, ring=None, **kw):
    slept = []
    session = CCXTSession("binance", keys=ring or _ring((API_KEY, API_SECRET)),
                          config={"timeout": 150, "enableRateLimit": False},
                          configure=fake.configure, sleep=slept.append, seed=3, **kw)
    session.exchange.load_markets()
    return session, slept


def _create(session, cid="ce-1", amount=0.01):
    ex = session.exchange
    return session.call("create", ex.create_order, "BTC/USDT", "market", "buy", amount, None,
                        {"newClientOrderId": cid}, write=True)


def _lookup(session, cid="ce-1"):
    ex = session.exchange
    return session.call("fetch_order", ex.fetch_order, None, "BTC/USDT",
                        {"origClientOrderId": cid})


@pytest.mark.parametrize("kind", ["timeout_after", "timeout_before", "drop_after",
                                  "drop_before", "http_503"])
def test_a_write_that_times_out_is_unknown_and_never_retried(fake, kind):
    session, slept = _session(fake)
    fake._rng.seed(0)
    fake.inject(kind, method="POST", path="/api/v3/order")
    with pytest.raises(UnknownOutcome):
        _create(session)
    assert fake.requests["POST /api/v3/order"] == 1 and slept == []


def test_reads_retry_network_errors_a_bounded_number_of_times(fake):
    session, slept = _session(fake, read_retries=2)
    fake.inject("drop_before", method="GET", path="/api/v3/account", times=2)
    assert session.call("balance", session.exchange.fetch_balance)["free"]["USDT"] == 10000
    assert len(slept) == 2
    fake.inject("drop_before", method="GET", path="/api/v3/account", times=3)
    with pytest.raises(BrokerUnavailable):
        session.call("balance", session.exchange.fetch_balance)
    assert fake.requests["GET /api/v3/account"] == 2 + 1 + 3


def test_rate_limits_back_off_with_jitter_at_least_retry_after_and_rotate_keys(fake):
    fake.keys["second-key-123456"] = "second-secret-123456"
    ring = _ring((API_KEY, API_SECRET), ("second-key-123456", "second-secret-123456"))
    session, slept = _session(fake, ring=ring, backoff_base=4.0, backoff_cap=10.0)
    fake.inject("http_429", times=3)
    assert session.call("balance", session.exchange.fetch_balance)["free"]["USDT"] == 10000
    assert len(slept) == 3 and all(1.0 <= s <= 10.0 for s in slept)  # Retry-After: 1
    assert len(set(slept)) == 3  # jittered
    assert [r[2] for r in ring.rotations] == ["rate limited"] * 3
    fake.inject("http_429", times=10)
    with pytest.raises(RateLimited):
        session.call("balance", session.exchange.fetch_balance)
    assert len(slept) == 3 + 4  # bounded: read_retries + 1 waits, then give up


def test_a_rate_limited_write_waits_once_and_is_refused(fake):
    session, slept = _session(fake)
    fake.inject("http_429", method="POST")
    with pytest.raises(RateLimited):
        _create(session)
    assert len(slept) == 1 and fake.client_id_count["ce-1"] == 0


def test_definite_answers_map_to_our_classes(fake):
    session, _ = _session(fake)
    with pytest.raises(OrderNotFound):
        _lookup(session, "ce-missing")
    with pytest.raises(InsufficientFunds):
        _create(session, amount=100.0)
    with pytest.raises(OrderRejected):
        session.call("create", session.exchange.create_order, "BTC/USDT", "market", "sell",
                     0.001, None, {"stopLossPrice": 10 ** 9}, write=True)


def test_auth_failure_rotates_through_keys_then_gives_up(fake):
    ring = _ring(("revoked-key-1234567", "whatever-secret-123"), (API_KEY, API_SECRET))
    session, _ = _session(fake, ring=ring)
    assert session.call("balance", session.exchange.fetch_balance)["free"]["USDT"] == 10000
    assert ring.current.key == API_KEY
    bad = _ring(("revoked-key-1234567", "whatever-secret-123"))
    session, _ = _session(fake, ring=bad)
    with pytest.raises(BrokerUnavailable) as info:
        session.call("balance", session.exchange.fetch_balance)
    assert "whatever-secret-123" not in str(info.value)
    assert "revoked-key" not in repr(session) and "binance key 1" in repr(session)


def test_timed_out_order_is_found_by_client_id(fake):
    session, _ = _session(fake)
    fake.inject("timeout_after", method="POST", path="/api/v3/order")
    with pytest.raises(UnknownOutcome):
        _create(session, "ce-lost")
    found = to_order(_lookup(session, "ce-lost"))
    assert found.client_id == "ce-lost" and found.status is OrderStatus.FILLED


def test_status_mapping():
    assert order_status("open", 0) is OrderStatus.SUBMITTED
    assert order_status("open", 0.5) is OrderStatus.PARTIALLY_FILLED
    assert order_status("closed", 1) is OrderStatus.FILLED
    assert order_status("expired", 0.2) is OrderStatus.CANCELLED
    assert order_status("rejected", 0) is OrderStatus.REJECTED
    assert order_status(None, 0) is OrderStatus.UNKNOWN


def test_sandbox_mode_points_ccxt_at_the_testnet():
    session = CCXTSession("binance", sandbox=True)
    assert "testnet" in session.exchange.urls["api"]["private"]
    assert session.exchange.isSandboxModeEnabled
    with pytest.raises(ConfigError, match="'exchange_id' parameter of CCXTSession must be an "
                                          "exchange ccxt knows.*Got 'nowhere'"):
        CCXTSession("nowhere")


def test_a_ban_longer_than_the_backoff_cap_is_waited_out_without_calling(fake):
    """HTTP 418 with a Retry-After beyond the backoff cap (an IP ban; Binance lengthens it
    for a client that keeps calling): no retry within the call, and no request at all —
    read or write — until the Retry-After has passed."""
    now = [1000.0]
    session, slept = _session(fake, backoff_base=0.5, backoff_cap=10.0, clock=lambda: now[0])
    fake.retry_after = 120
    fake.inject("http_418")
    before = sum(fake.requests.values())
    with pytest.raises(RateLimited, match="118|119|120"):
        session.call("balance", session.exchange.fetch_balance)
    assert sum(fake.requests.values()) == before + 1 and slept == []
    now[0] += 60
    with pytest.raises(RateLimited, match="until"):
        session.call("balance", session.exchange.fetch_balance)
    with pytest.raises(RateLimited, match="until"):
        _create(session)
    assert sum(fake.requests.values()) == before + 1 and fake.client_id_count["ce-1"] == 0
    now[0] += 61
    assert session.call("balance", session.exchange.fetch_balance)["free"]["USDT"] == 10000
    assert sum(fake.requests.values()) == before + 2 and slept == []
