"""Secrets never show: repr, str, format, pickling, logging (message, args, exceptions)."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest

from core_engine.errors import ConfigError
from core_engine.live.keys import SCRUBBER, KeyRing, Secret, SecretScrubber, protect_logging

VALUE = "s3cr3t-Value-0123456789"


def test_secret_hides_its_value_everywhere():
    secret = Secret(VALUE, name="CORE_ENGINE_BINANCE_SECRET_1")
    shown = [repr(secret), str(secret), f"{secret}", f"{secret:>40}", f"{secret}",
             f"{secret!r}", repr([secret]), repr({"k": secret})]
    assert all(VALUE not in text for text in shown)
    assert "CORE_ENGINE_BINANCE_SECRET_1" in repr(secret)
    assert secret.reveal() == VALUE
    assert copy.deepcopy(secret) is secret
    with pytest.raises(AttributeError):
        secret._value = "x"  # type: ignore[misc]
    assert not hasattr(secret, "__dict__")


def test_secret_refuses_pickling_without_showing_the_value():
    with pytest.raises(TypeError) as info:
        pickle.dumps(Secret(VALUE))
    assert VALUE not in str(info.value)


def test_secret_compares_by_value_in_constant_time(monkeypatch):
    import hmac

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    assert Secret(VALUE) == Secret(VALUE) and Secret(VALUE) == VALUE
    assert Secret(VALUE) != Secret(VALUE + "x")
    assert len(calls) == 3
    assert hash(Secret(VALUE)) == hash(Secret(VALUE))
    assert (Secret(VALUE) == 5) is False


def test_empty_secret_is_refused():
    with pytest.raises(ConfigError, match="non-empty string"):
        Secret("", name="X")


def _env(n):
    env = {}
    for i in range(1, n + 1):
        env[f"CORE_ENGINE_BINANCE_KEY_{i}"] = f"key-{i}-abcdefgh"
        env[f"CORE_ENGINE_BINANCE_SECRET_{i}"] = f"secret-{i}-abcdefgh"
    return env


def test_keyring_reads_numbered_keys_and_rotates_round_robin():
    ring = KeyRing.from_env("binance", environ={**_env(3), "OTHER": "x"})
    assert len(ring) == 3 and ring.current.key == "key-1-abcdefgh"
    assert ring.rotate("rate limited").key == "key-2-abcdefgh"
    assert ring.rotate("timeout").key == "key-3-abcdefgh"
    assert ring.rotate("rate limited").key == "key-1-abcdefgh"
    assert [r[2] for r in ring.rotations] == ["rate limited", "timeout", "rate limited"]
    assert all("abcdefgh" not in text for text in (repr(ring), str(ring.current)))
    with pytest.raises(TypeError):
        pickle.dumps(ring)


def test_retired_keys_are_skipped_by_rotation():
    ring = KeyRing.from_env("binance", environ=_env(3))
    assert ring.retire("refused").key == "key-2-abcdefgh"
    assert ring.rotate("rate limited").key == "key-3-abcdefgh"
    assert ring.rotate("rate limited").key == "key-2-abcdefgh"  # key 1 is skipped
    ring.retire("refused")
    with pytest.raises(ConfigError, match="Every API key for 'binance' was refused"):
        ring.retire("refused")


def test_keyring_unnumbered_pair_and_password():
    ring = KeyRing.from_env("kraken", environ={"CORE_ENGINE_KRAKEN_KEY": "kk-12345",
                                               "CORE_ENGINE_KRAKEN_SECRET": "ks-12345",
                                               "CORE_ENGINE_KRAKEN_PASSWORD": "kp-12345"})
    assert ring.current.password == "kp-12345" and len(ring.secrets()) == 3


def test_keyring_errors_name_variables_never_values():
    with pytest.raises(ConfigError, match="CORE_ENGINE_BINANCE_KEY_1"):
        KeyRing.from_env("binance", environ={})
    env = _env(2)
    del env["CORE_ENGINE_BINANCE_SECRET_2"]
    with pytest.raises(ConfigError, match="CORE_ENGINE_BINANCE_SECRET_2") as info:
        KeyRing.from_env("binance", environ=env)
    assert "key-2-abcdefgh" not in str(info.value)


def test_scrubber_cleans_message_args_exception_and_extras():
    scrubber = SecretScrubber()
    scrubber.register(VALUE)
    scrubber.register("ab")  # too short to scrub: would mask ordinary words
    logger = logging.getLogger("test_keys.scrub")
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(scrubber)
    handler.setFormatter(logging.Formatter("%(message)s %(context)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("key is %s in %r", VALUE, {"k": VALUE}, extra={"context": f"c={VALUE}"})
        try:
            raise RuntimeError(f"server said {VALUE} and %2F {VALUE}")
        except RuntimeError:
            logger.exception("failed with ab", extra={"context": ""})
    finally:
        logger.removeHandler(handler)
    assert len(records) == 2
    assert all(VALUE not in line for line in records)
    assert "****" in records[0] and "RuntimeError: server said ****" in records[1]
    assert "failed with ab" in records[1]


def test_protect_logging_covers_handlers_added_later(caplog):
    secret = Secret("late-handler-secret-987654")
    protect_logging()
    protect_logging()  # idempotent
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("some.library").debug("headers %s", {"X-MBX-APIKEY": secret.reveal()})
    assert caplog.records and all(secret.reveal() not in r.getMessage() for r in caplog.records)
    assert secret.reveal() not in caplog.text
    assert SCRUBBER.scrub(f"a {secret.reveal()} b") == "a **** b"
