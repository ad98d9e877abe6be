"""The log scrubber: registered secrets are masked in every log record of every logger.

:data:`SCRUBBER` is a :class:`logging.Filter` that replaces registered values in a record's
message, arguments, exception text, stack text and string attributes;
:func:`protect_logging` installs it on the root handlers and in the log-record factory, so
records of every logger (ccxt's debug log prints request headers, which carry the API key)
are scrubbed before any handler sees them. It lives below the layers so that every layer
that hands a credential to a library (the live brokers, the market-data providers)
registers it; :mod:`core_engine.live.keys` builds its secrets and key rings on it.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from urllib.parse import quote

from core_engine.errors import ConfigError

__all__ = ["MASK", "SCRUBBER", "SecretScrubber", "protect_logging"]

MASK = "****"
_MIN_SCRUB_LENGTH = 4  # shorter values would mask ordinary words in every log line


class SecretScrubber(logging.Filter):
    """A logging filter that replaces every registered secret with ``****``.

    It scrubs the formatted message (then drops ``args``), the exception and stack text, and
    every string attribute a caller attached with ``extra=``. It never drops a record.
    """

    def __init__(self) -> None:
        super().__init__()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def register(self, value: str) -> None:
        """Scrub ``value`` (and its URL-encoded form) from now on."""
        if len(value) < _MIN_SCRUB_LENGTH:
            return
        with self._lock:
            forms = {value, quote(value, safe="")}
            if forms <= self._values:
                return
            self._values |= forms
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def scrub(self, text: str) -> str:
        """``text`` with every registered secret replaced by the mask."""
        pattern = self._pattern
        if pattern is None or not isinstance(text, str):
            return text
        return pattern.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._pattern is None:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = self.scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        for name, value in list(vars(record).items()):
            if isinstance(value, str) and name not in ("msg", "exc_text", "stack_info"):
                setattr(record, name, self.scrub(value))
        return True


SCRUBBER = SecretScrubber()
"""The process-wide scrubber; every :class:`Secret` registers its value here."""

_factory_lock = threading.Lock()
_installed_factory: object = None


def protect_logging(scrubber: SecretScrubber = SCRUBBER) -> SecretScrubber:
    """Scrub secrets from every log record of every logger, now and for handlers added later.

    Installs ``scrubber`` on the root logger's handlers and wraps the log-record factory so each
    record is scrubbed when it is created. Calling it again is harmless.

    Raises
    ------
    ConfigError
        If ``scrubber`` is not a :class:`SecretScrubber` (checked before anything is installed:
        a wrong object would break every later log call of the process).
    """
    global _installed_factory
    if not isinstance(scrubber, SecretScrubber):
        raise ConfigError("The 'scrubber' parameter of protect_logging must be a SecretScrubber. "
                          f"Got {type(scrubber).__name__} {scrubber!r}.")
    for handler in logging.getLogger().handlers:
        if scrubber not in handler.filters:
            handler.addFilter(scrubber)
    with _factory_lock:
        current = logging.getLogRecordFactory()
        if current is _installed_factory:
            return scrubber

        def factory(*args: object, **kwargs: object) -> logging.LogRecord:
            record = current(*args, **kwargs)
            scrubber.filter(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed_factory = factory
    return scrubber
