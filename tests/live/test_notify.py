"""Notifications reach a local webhook and a local SMTP server; failures never raise."""

from __future__ import annotations

import base64
import logging

import pandas as pd
import pytest

from core_engine.errors import ConfigError
from core_engine.live.journal import Journal
from core_engine.live.keys import Secret
from core_engine.live.notify import (
    CallbackNotifier,
    EmailNotifier,
    MemoryNotifier,
    Notification,
    WebhookNotifier,
    notify_all,
)

from .local_servers import SMTPSink, WebhookReceiver

T = pd.Timestamp("2021-03-01 10:00", tz="UTC")
TOKEN = "hook-token-abcdef-123456"


def _event(kind="breaker", **details):
    return Notification(kind, "max drawdown breaker tripped", T,
                        {"drawdown": 0.21, "limit": 0.2, **details})


def test_webhook_posts_json_and_filters_kinds():
    with WebhookReceiver() as hook:
        notifier = WebhookNotifier(Secret(hook.url + "?token=" + TOKEN),
                                   kinds=("breaker", "fill"))
        notifier.notify(_event())
        notifier.notify(_event(kind="error"))  # filtered out
        notifier.notify(Notification("fill", "bought 0.1 BTC/USDT", T, {"price": 30000.0}))
    assert [m["kind"] for m in hook.received] == ["breaker", "fill"]
    assert hook.received[0] == {"kind": "breaker", "title": "max drawdown breaker tripped",
                                "time": "2021-03-01T10:00:00+00:00",
                                "details": {"drawdown": 0.21, "limit": 0.2}}
    assert TOKEN not in repr(notifier)


def test_email_reaches_the_smtp_server_with_login():
    with SMTPSink() as smtp:
        notifier = EmailNotifier("127.0.0.1", smtp.port, "bot@example.org",
                                 ["ops@example.org", "me@example.org"], username="bot",
                                 password=Secret("smtp-password-xyz-987"))
        notifier.notify(_event())
        notifier.notify(Notification("fill", "ignored by default", T))
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["Subject"] == "core_engine: max drawdown breaker tripped"
    assert "drawdown: 0.21" in message.get_payload()
    assert smtp.envelopes[0] == ("bot@example.org", ["ops@example.org", "me@example.org"])
    decoded = base64.b64decode(smtp.logins[0].split()[-1]).decode()
    assert decoded == "\0bot\0smtp-password-xyz-987"
    assert "smtp-password" not in repr(notifier)


def test_failures_are_logged_and_journaled_never_raised(tmp_path, caplog):
    journal = Journal(tmp_path / "j.sqlite")
    secret = Secret("leaky-secret-in-error-555")

    def boom(event):
        raise RuntimeError(f"boom with {secret.reveal()}")

    memory = MemoryNotifier()
    with WebhookReceiver(status=500) as hook, caplog.at_level(logging.WARNING):
        notifiers = [WebhookNotifier(hook.url), CallbackNotifier(boom),
                     EmailNotifier("127.0.0.1", 1, "a@b.c", ["d@e.f"], timeout=0.5), memory]
        failures = notify_all(notifiers, _event(), journal=journal)
    assert failures == 3 and len(memory.events) == 1  # the working one still got it
    kinds = sorted(e["kind"] for e in journal.errors())
    assert kinds == ["ConnectionRefusedError", "HTTPError", "RuntimeError"]
    assert all(e["source"] == "notify" for e in journal.errors())
    text = " ".join(e["message"] for e in journal.errors()) + caplog.text
    assert "boom with ****" in text and secret.reveal() not in text


def test_bad_configuration_is_refused():
    with pytest.raises(ConfigError, match="http:// or https://"):
        WebhookNotifier("ftp://x")
    with pytest.raises(ConfigError, match="at least one recipient"):
        EmailNotifier("h", 25, "a@b", [])
    with pytest.raises(ConfigError, match="must be a Secret"):
        EmailNotifier("h", 25, "a@b", ["c@d"], password="plain")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="kind must be one of"):
        Notification("gossip", "x", T)
