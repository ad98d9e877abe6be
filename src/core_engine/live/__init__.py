"""Live and paper trading: journal, idempotent orders, keys, notifications (DESIGN.md §8).

The layer sits above ``trading``: it reuses the trading package's orders, brokers and traders
and adds what touching real money needs — a journal written before every network call,
client order ids that make a create idempotent, keys that never leak, and notifications.
"""

from core_engine.live.client_ids import client_order_id
from core_engine.live.journal import Journal, JournalError
from core_engine.live.keys import KeyRing, Secret, SecretScrubber, protect_logging
from core_engine.live.notify import EmailNotifier, Notification, WebhookNotifier, notify_all
from core_engine.live.state import RunnerState, StateTransitionError

__all__ = [
    "EmailNotifier",
    "Journal",
    "JournalError",
    "KeyRing",
    "Notification",
    "RunnerState",
    "Secret",
    "SecretScrubber",
    "StateTransitionError",
    "WebhookNotifier",
    "client_order_id",
    "notify_all",
    "protect_logging",
]
