"""Live and paper trading (DESIGN.md §8): runner, journal, reconciliation, brokers, keys.

The layer sits above ``trading``: it reuses the trading package's orders, brokers and traders
and adds what touching real money needs — a journal written before every network call,
client order ids that make a create idempotent, reconciliation on start, a kill switch and
breakers, keys that never leak, and notifications.
"""

from core_engine._lazy import lazy_attributes

# Names resolve on first use (PEP 562), as in core_engine.trading: the command line imports
# core_engine.live.cli to register its subcommands, and must not pay for the runner, the
# brokers and their imports on every ``core-engine backtest``.
_WHERE = {
    "CCXTBroker": "ccxt_broker", "ExchangeFill": "ccxt_broker", "CCXTSession": "ccxt_session",
    "UnknownOutcome": "ccxt_session", "client_order_id": "client_ids", "Journal": "journal",
    "JournalError": "journal", "JournaledBroker": "journaled", "KeyRing": "keys",
    "Secret": "keys", "SecretScrubber": "keys", "protect_logging": "keys",
    "EmailNotifier": "notify", "MemoryNotifier": "notify", "Notification": "notify",
    "WebhookNotifier": "notify", "notify_all": "notify", "PaperBroker": "paper",
    "Breakers": "runner", "ReconciliationError": "runner", "Runner": "runner",
    "SimulatedClock": "clock", "WallClock": "clock", "RunnerState": "state",
    "StateTransitionError": "state", "status_text": "status", "write_status_page": "status",
}


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

__getattr__, __dir__ = lazy_attributes(__name__, _WHERE, globals(), __all__)
