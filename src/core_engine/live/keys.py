"""API keys that never leak: :class:`Secret`, :class:`KeyRing` and a log scrubber.

A :class:`Secret` holds one credential. Its ``repr``, ``str`` and ``format`` show a mask and
the variable it came from, it refuses to be pickled, and it compares in constant time. The
value leaves it only through :meth:`Secret.reveal`, which the exchange adapter calls at the
moment it hands the key to ccxt.

A :class:`KeyRing` reads several keys per exchange from the environment
(``CORE_ENGINE_BINANCE_KEY_1`` / ``CORE_ENGINE_BINANCE_SECRET_1``, ``..._2``, ...; an
unnumbered ``CORE_ENGINE_BINANCE_KEY`` / ``..._SECRET`` pair counts as the first) and rotates
to the next one on rate limits or failures.

Every secret created is registered with :data:`SCRUBBER`, a :class:`logging.Filter` that
replaces registered values in a record's message, arguments, exception text, stack text and
string attributes. :func:`protect_logging` installs it on the root handlers and in the
log-record factory, so records of every logger (ccxt's debug log prints request headers,
which carry the API key) are scrubbed before any handler sees them.

Written by hand: no maintained library does this for the standard logging module.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NoReturn, SupportsIndex

from core_engine._config import keyword_checked
from core_engine._scrub import MASK, SCRUBBER, SecretScrubber, protect_logging
from core_engine._validate import check_instance, check_items
from core_engine.errors import ConfigError

__all__ = [
    "SCRUBBER",
    "ApiKey",
    "KeyRing",
    "Secret",
    "SecretScrubber",
    "protect_logging",
]

_log = logging.getLogger(__name__)


@keyword_checked
class Secret:
    """A credential whose value never shows in a repr, str, format, pickle or log record.

    Parameters
    ----------
    value : str
        The credential. Empty values are refused.
    name : str, optional
        Where it came from (an environment variable name); shown in the repr.

    Examples
    --------
    >>> s = Secret("hunter2-very-secret", name="CORE_ENGINE_BINANCE_SECRET_1")
    >>> s
    Secret('****', name='CORE_ENGINE_BINANCE_SECRET_1')
    >>> f"{s}", str(s)
    ('****', '****')
    >>> s == Secret("hunter2-very-secret")
    True
    """

    __slots__ = ("_value", "name")
    _value: str
    name: str | None

    def __init__(self, value: str, name: str | None = None) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str) or not value:
            raise ConfigError(
                f"A Secret{' ' + repr(name) if name else ''} must be a non-empty string. "
                f"Got {type(value).__name__}{' (empty)' if value == '' else ''}.")
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "name", name)
        SCRUBBER.register(value)

    def reveal(self) -> str:
        """The value itself. Call it only where the credential is handed to a client."""
        return self._value

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError("A Secret is immutable.")

    def __repr__(self) -> str:
        return f"Secret({MASK!r}" + (f", name={self.name!r})" if self.name else ")")

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            other = other.reveal()
        if not isinstance(other, str):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other.encode())

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._value.encode()).digest())

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError(
            f"{self!r} cannot be pickled: a pickle would carry the credential in clear. "
            "Pass the environment variable's name to the other process instead.")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict) -> Secret:
        return self


@keyword_checked
@dataclass(frozen=True)
class ApiKey:
    """One exchange credential set: key, secret and the optional passphrase.

    Raises
    ------
    ConfigError
        ``key``, ``secret`` or ``password`` is not a :class:`Secret` (a plain string is
        refused rather than wrapped: the message names the parameter and the type, never the
        value), or ``label`` is not a string.
    """

    label: str
    key: Secret
    secret: Secret
    password: Secret | None = None

    def __post_init__(self) -> None:
        check_instance(self.label, str, "label", "ApiKey")
        for name in ("key", "secret", "password"):
            check_instance(getattr(self, name), Secret, name, "ApiKey", optional=name == "password",
                           expected="a Secret (Secret(value, name=...))", show_value=False)


def _check_exchange(exchange: object, where: str) -> str:
    """``exchange`` if it is a non-empty exchange id string, else a ConfigError naming it."""
    if not isinstance(exchange, str) or not exchange.strip() or "\x00" in exchange:
        raise ConfigError(f"The 'exchange' parameter of {where} must be an exchange id such as "
                          f"'binance'. Got {type(exchange).__name__} {exchange!r:.80}.")
    return exchange


@keyword_checked
class KeyRing:
    """Several API keys for one exchange, rotated on rate limits or failures.

    Parameters
    ----------
    exchange : str
        Exchange id, e.g. ``"binance"``.
    keys : sequence of ApiKey
        At least one key.

    Examples
    --------
    >>> env = {"CORE_ENGINE_BINANCE_KEY_1": "k1-abcdef", "CORE_ENGINE_BINANCE_SECRET_1": "s1-abcdef",
    ...        "CORE_ENGINE_BINANCE_KEY_2": "k2-abcdef", "CORE_ENGINE_BINANCE_SECRET_2": "s2-abcdef"}
    >>> ring = KeyRing.from_env("binance", environ=env)
    >>> ring
    KeyRing('binance', keys=['binance key 1', 'binance key 2'], current='binance key 1')
    >>> ring.rotate("rate limited").label
    'binance key 2'
    """

    def __init__(self, exchange: str, keys: Iterable[ApiKey]) -> None:
        self.exchange = _check_exchange(exchange, "KeyRing")
        # never shown: a user who passes {key: secret} or raw strings would see them printed
        self._keys = check_items(keys, "keys", "KeyRing", kinds=ApiKey, show_value=False,
                                 expected="a list of ApiKey (or use KeyRing.from_env)")
        if not self._keys:
            raise ConfigError(f"A KeyRing for {exchange!r} needs at least one key. Got none.")
        self._index = 0
        self._lock = threading.Lock()
        self.rotations: list[tuple[float, str, str]] = []
        self.retired: set[str] = set()

    @classmethod
    def from_env(cls, exchange: str, environ: Mapping[str, str] | None = None,
                 prefix: str = "CORE_ENGINE") -> KeyRing:
        """Read ``{prefix}_{EXCHANGE}_KEY[_N]`` / ``_SECRET[_N]`` / ``_PASSWORD[_N]``.

        Raises
        ------
        ConfigError
            No key is set, or a key lacks its secret (or the reverse). The message names the
            variables, never their values.
        """
        _check_exchange(exchange, "KeyRing.from_env")
        check_instance(environ, Mapping, "environ", "KeyRing.from_env", optional=True,
                       expected="a mapping of variable names to values", show_value=False)
        check_instance(prefix, str, "prefix", "KeyRing.from_env")
        env = os.environ if environ is None else environ
        stem = f"{prefix}_{exchange.upper()}"
        pattern = re.compile(rf"^{re.escape(stem)}_(KEY|SECRET|PASSWORD)(?:_(\d+))?$")
        found: dict[int, dict[str, tuple[str, str]]] = {}
        for variable, value in env.items():
            match = pattern.match(variable)
            if match and value:
                number = int(match.group(2) or 1)
                found.setdefault(number, {})[match.group(1)] = (variable, value)
        if not found:
            raise ConfigError(
                f"No API key for {exchange!r} in the environment: expected {stem}_KEY_1 and "
                f"{stem}_SECRET_1 (more keys as _2, _3, ...). Got no such variable.")
        keys = []
        for number in sorted(found):
            parts = found[number]
            for needed, other in (("KEY", "SECRET"), ("SECRET", "KEY")):
                if needed not in parts:
                    raise ConfigError(
                        f"{parts[other][0]} is set but its pair {stem}_{needed}_{number} is not. "
                        "Set both or neither.")
            password = parts.get("PASSWORD")
            keys.append(ApiKey(
                label=f"{exchange} key {number}",
                key=Secret(parts["KEY"][1], parts["KEY"][0]),
                secret=Secret(parts["SECRET"][1], parts["SECRET"][0]),
                password=Secret(password[1], password[0]) if password else None))
        return cls(exchange, keys)

    @property
    def current(self) -> ApiKey:
        """The key in use."""
        return self._keys[self._index]

    @property
    def usable(self) -> int:
        """How many keys are not retired."""
        return sum(1 for k in self._keys if k.label not in self.retired)

    def rotate(self, reason: str) -> ApiKey:
        """Move to the next key not retired (round robin) and record why; returns it."""
        with self._lock:
            old = self.current.label
            for _ in range(len(self._keys)):
                self._index = (self._index + 1) % len(self._keys)
                if self.current.label not in self.retired:
                    break
            self.rotations.append((time.time(), old, reason))
        _log.info("%s: rotated from %s to %s (%s)", self.exchange, old, self.current.label, reason)
        return self.current

    def retire(self, reason: str) -> ApiKey:
        """Stop using the current key (the exchange refused it) and move to the next one.

        Raises
        ------
        ConfigError
            Every key of the ring is retired.
        """
        with self._lock:
            self.retired.add(self.current.label)
        if self.usable == 0:
            raise ConfigError(f"Every API key for {self.exchange!r} was refused by the "
                              f"exchange ({reason}); check the keys and their permissions.")
        return self.rotate(reason)

    def secrets(self) -> list[Secret]:
        """Every secret of the ring (for scrubbers of other channels)."""
        out: list[Secret] = []
        for key in self._keys:
            out += [key.key, key.secret] + ([key.password] if key.password else [])
        return out

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        labels = [k.label for k in self._keys]
        return f"KeyRing({self.exchange!r}, keys={labels!r}, current={self.current.label!r})"

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError(f"{self!r} cannot be pickled: it holds credentials.")
