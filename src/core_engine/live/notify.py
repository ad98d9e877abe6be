"""Notifications on fills, errors and breaker trips: a hook, a webhook and e-mail.

A notifier is any object with ``notify(event: Notification) -> None``. The runner calls them
through :func:`notify_all`, which never lets a notifier's failure reach the trading loop: a
failure is logged (scrubbed) and journaled as an error of kind ``notify``, and the runner goes
on. Built in: :class:`WebhookNotifier` (JSON POST with the standard library's ``urllib``),
:class:`EmailNotifier` (``smtplib``), :class:`CallbackNotifier` (any callable) and
:class:`MemoryNotifier` (keeps events, for tests and the status page).
"""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

import pandas as pd

from core_engine._config import keyword_checked
from core_engine._validate import check_instance, check_integer, check_items, check_real
from core_engine.errors import ConfigError
from core_engine.live.keys import SCRUBBER, Secret

__all__ = [
    "EVENT_KINDS",
    "CallbackNotifier",
    "EmailNotifier",
    "MemoryNotifier",
    "Notification",
    "Notifier",
    "WebhookNotifier",
    "notify_all",
]

EVENT_KINDS = ("fill", "error", "breaker", "state", "info")
_log = logging.getLogger(__name__)


@keyword_checked
@dataclass(frozen=True)
class Notification:
    """One event worth telling a person about."""

    kind: str
    title: str
    time: pd.Timestamp
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ConfigError(f"A Notification's kind must be one of {EVENT_KINDS}. "
                              f"Got {self.kind!r}.")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, scrubbed of registered secrets."""
        payload = {"kind": self.kind, "title": self.title, "time": self.time.isoformat(),
                   "details": dict(self.details)}
        return json.loads(SCRUBBER.scrub(json.dumps(payload, default=str)))

    def text(self) -> str:
        lines = [f"[{self.kind}] {self.title}", f"time: {self.time.isoformat()}"]
        lines += [f"{key}: {value}" for key, value in self.details.items()]
        return SCRUBBER.scrub("\n".join(lines))


class Notifier(Protocol):
    def notify(self, event: Notification) -> None: ...


@keyword_checked
class WebhookNotifier:
    """POST each event as JSON to ``url`` (Slack/Discord-style incoming webhooks and the like).

    Parameters
    ----------
    url : str or Secret
        Webhook URLs often embed a token: pass a :class:`Secret` to keep it out of reprs.
    kinds : iterable of str, optional
        Only these event kinds are sent (default: all).
    timeout : float, default 5.0
        Seconds; a slow endpoint never blocks the runner longer than this.
    """

    def __init__(self, url: str | Secret, *, kinds: Iterable[str] | None = None,
                 timeout: float = 5.0, headers: Mapping[str, str] | None = None) -> None:
        raw = url.reveal() if isinstance(url, Secret) else url
        if not isinstance(raw, str) or not raw.startswith(("http://", "https://")):
            raise ConfigError("The 'url' of WebhookNotifier must start with http:// or https://. "
                              f"Got {url!r}.")
        self._url = url if isinstance(url, Secret) else Secret(url)
        self.kinds = frozenset(kinds) if kinds is not None else frozenset(EVENT_KINDS)
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", **dict(headers or {})}

    def notify(self, event: Notification) -> None:
        if event.kind not in self.kinds:
            return
        body = json.dumps(event.as_dict()).encode()
        request = urllib.request.Request(self._url.reveal(), data=body, headers=self.headers,
                                         method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            if not 200 <= response.status < 300:
                raise ConnectionError(f"webhook answered HTTP {response.status}")

    def __repr__(self) -> str:
        return f"WebhookNotifier(url={self._url!r}, kinds={sorted(self.kinds)})"


@keyword_checked
class EmailNotifier:
    """Send each event as a plain-text e-mail through an SMTP server.

    Parameters
    ----------
    host, port : str, int
    sender : str
    recipients : sequence of str
    username : str, optional
    password : Secret, optional
    starttls : bool, default False
        Upgrade the connection with STARTTLS before logging in.
    kinds : iterable of str, optional
        Default: errors and breaker trips only (fills would flood a mailbox).
    """

    def __init__(self, host: str, port: int, sender: str, recipients: Sequence[str], *,
                 username: str | None = None, password: Secret | None = None,
                 starttls: bool = False, kinds: Iterable[str] | None = None,
                 timeout: float = 10.0) -> None:
        where = "EmailNotifier"
        for name, value in (("host", host), ("sender", sender)):
            if not isinstance(value, str) or not value.strip() or "\x00" in value:
                raise ConfigError(f"The {name!r} parameter of {where} must be a non-empty "
                                  f"string. Got {value!r}.")
        port = check_integer(port, "port", where, low=1, high=65535)
        recipients = check_items(recipients, "recipients", where, kinds=str,
                                 expected="a list of e-mail addresses")
        if not recipients:
            raise ConfigError("EmailNotifier needs at least one recipient. Got none.")
        if username is not None and not isinstance(username, str):
            raise ConfigError(f"The 'username' parameter of {where} must be a string or None. "
                              f"Got {username!r}.")
        if not isinstance(starttls, bool):
            raise ConfigError(f"The 'starttls' parameter of {where} must be True or False. "
                              f"Got {starttls!r}.")
        if kinds is not None:
            kinds = check_items(kinds, "kinds", where, kinds=str,
                                expected="a list of event kinds such as ['error', 'breaker']")
        timeout = check_real(timeout, "timeout", where, low=0)
        if password is not None and not isinstance(password, Secret):
            raise ConfigError("The 'password' of EmailNotifier must be a Secret "
                              "(core_engine.live.keys.Secret), so it never shows in a log.")
        self.host, self.port, self.sender = host, int(port), sender
        self.recipients = list(recipients)
        self.username, self._password, self.starttls = username, password, starttls
        self.kinds = frozenset(kinds) if kinds is not None else frozenset({"error", "breaker"})
        self.timeout = timeout

    def notify(self, event: Notification) -> None:
        if event.kind not in self.kinds:
            return
        message = EmailMessage()
        message["Subject"] = SCRUBBER.scrub(f"core_engine: {event.title}")
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(event.text())
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username and self._password is not None:
                smtp.login(self.username, self._password.reveal())
            smtp.send_message(message)

    def __repr__(self) -> str:
        return (f"EmailNotifier(host={self.host!r}, port={self.port}, sender={self.sender!r}, "
                f"recipients={self.recipients!r})")


class CallbackNotifier:
    """Call ``function(event)`` for each event."""

    def __init__(self, function: Callable[[Notification], None]) -> None:
        self.function = function

    def notify(self, event: Notification) -> None:
        self.function(event)


class MemoryNotifier:
    """Keep every event in ``self.events``."""

    def __init__(self) -> None:
        self.events: list[Notification] = []

    def notify(self, event: Notification) -> None:
        self.events.append(event)


def notify_all(notifiers: Iterable[Notifier], event: Notification, journal: Any = None) -> int:
    """Send ``event`` to every notifier; returns how many failed. Never raises.

    A failure is logged as a warning and, when a journal is given, journaled as an error of
    kind ``notify`` naming the notifier (its message scrubbed of secrets).
    """
    notifiers = check_items(notifiers, "notifiers", "notify_all",
                            expected="a list of notifiers (objects with notify(event))")
    check_instance(event, Notification, "event", "notify_all")
    failures = 0
    for notifier in notifiers:
        try:
            notifier.notify(event)
        except Exception as exc:  # a notifier must never stop the runner
            failures += 1
            message = SCRUBBER.scrub(f"{type(notifier).__name__} failed to send {event.kind!r} "
                                     f"({event.title}): {type(exc).__name__}: {exc}")
            _log.warning("%s", message)
            if journal is not None:
                try:
                    journal.record_error("notify", type(exc).__name__, message, time=event.time)
                except Exception:  # the journal failing is logged, not raised, here
                    _log.exception("could not journal a notification failure")
    return failures
