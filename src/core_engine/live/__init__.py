"""Live and paper trading (DESIGN.md §8): runner, journal, reconciliation, brokers, keys.

The layer sits above ``trading``: it reuses the trading package's orders, brokers and traders
and adds what touching real money needs — a journal written before every network call,
client order ids that make a create idempotent, reconciliation on start, a kill switch and
breakers, keys that never leak, and notifications.
"""

from core_engine.live.ccxt_broker import CCXTBroker, ExchangeFill
from core_engine.live.ccxt_session import CCXTSession, UnknownOutcome
from core_engine.live.client_ids import client_order_id
from core_engine.live.journal import Journal, JournalError
from core_engine.live.journaled import JournaledBroker
from core_engine.live.keys import KeyRing, Secret, SecretScrubber, protect_logging
from core_engine.live.notify import (
    EmailNotifier,
    MemoryNotifier,
    Notification,
    WebhookNotifier,
    notify_all,
)
from core_engine.live.paper import PaperBroker
from core_engine.live.runner import (
    Breakers,
    ReconciliationError,
    Runner,
    SimulatedClock,
    WallClock,
)
from core_engine.live.state import RunnerState, StateTransitionError
from core_engine.live.status import status_text, write_status_page

__all__ = [
    "Breakers",
    "CCXTBroker",
    "CCXTSession",
    "EmailNotifier",
    "ExchangeFill",
    "Journal",
    "JournalError",
    "JournaledBroker",
    "KeyRing",
    "MemoryNotifier",
    "Notification",
    "PaperBroker",
    "ReconciliationError",
    "Runner",
    "RunnerState",
    "Secret",
    "SecretScrubber",
    "SimulatedClock",
    "StateTransitionError",
    "UnknownOutcome",
    "WallClock",
    "WebhookNotifier",
    "client_order_id",
    "notify_all",
    "protect_logging",
    "status_text",
    "write_status_page",
]
