"""The single-position pattern the scalping and breakout bots share: enter at the open on a
signal of the last closed candle, rest the exits as orders the moment the entry fills, wait
(with an optional cooldown) until they close the position, repeat.

A subclass writes :meth:`SignalBot.entry` (the signal and the value to buy) and
:meth:`SignalBot.exit_levels` (stop, target, trail in percent).

Portfolio rules (:class:`~core_engine.risk.PortfolioRules`, parameter ``rules``) stand around
the entry as in portfolio mode: ``cooldown`` after an exit and ``max_entries_per_day`` block
it, ``max_exposure_pct`` and ``max_gross_exposure_pct`` cap its value (one position: both
are shares of the equity marked at the last close), ``min_order_value`` blocks what is left
below it. A blocked entry is a row of ``result.blocked`` named after the rule. The drawdown,
daily-loss and correlation rules belong to the account, not to one bot: the live runner's
breakers play that part, and a bot refuses them (:class:`ConfigError`).
"""

from __future__ import annotations

from typing import Any

from core_engine.data.timeframes import timeframe_ns
from core_engine.errors import ConfigError
from core_engine.risk.rules import PortfolioRules
from core_engine.trading.bots._common import (
    filled_cost,
    filled_proceeds,
    is_done,
    place_exits,
)
from core_engine.trading.orders import Fill, OrderSide
from core_engine.trading.trader import Context, Trader

__all__ = ["SignalBot", "check_rules"]

_DAY_NS = 86_400 * 10**9
_ACCOUNT_RULES = ("daily_loss_limit_pct", "max_drawdown_pct", "max_correlation")


def check_rules(owner: str, rules: Any) -> None:
    """Raise :class:`ConfigError` unless ``rules`` is None or PortfolioRules a bot applies."""
    if rules is None:
        return
    if not isinstance(rules, PortfolioRules):
        raise ConfigError(f"The 'rules' parameter of {owner} must be PortfolioRules(...) or "
                          f"None. Got {rules!r}.")
    account = [n for n in _ACCOUNT_RULES if getattr(rules, n) is not None]
    if account:
        raise ConfigError(f"The 'rules' of {owner} cannot hold {account}: they watch the whole "
                          f"account (the live runner's breakers do). Got {rules!r}.")


def _exit_reason(order: Any) -> str:
    """The exit's name when the fill has none (a live runner's fills: the exchange does not
    say why an order filled): after the order that filled — its take-profit, or its stop
    (``trailing_stop`` when it trails)."""
    if order.tag == "stop":
        return "trailing_stop" if order.trail_pct is not None else "stop_loss"
    return str(order.tag or "exit")


class SignalBot(Trader):
    """Base of :class:`ScalpTrader` and :class:`BreakoutTrader` (one position at a time)."""

    symbol: str
    cooldown: str | None = None
    rules: Any = None

    def entry(self, ctx: Context) -> dict | None:
        """``{"value": quote to buy, "note": {...}, "meta": {...}}`` to enter now, else None."""
        raise NotImplementedError

    def exit_levels(self) -> dict:
        """``stop_loss_pct``, ``take_profit_pct``, ``trailing_pct`` (None: not used)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ hooks
    def on_start(self, ctx: Context) -> None:
        self.state = {"pending": None, "position": None, "last_exit": None, "entries": 0,
                      "exits": {}, "wins": 0, "realized": 0.0, "fees": 0.0}

    def on_bar(self, ctx: Context) -> None:
        st = self.state
        if st["position"] is not None or self._waiting(ctx) or self._cooling(ctx):
            return
        decision = self.entry(ctx)
        if decision is None:
            return
        value, blocked = self._apply_rules(ctx, float(decision["value"]))
        if blocked is not None:
            ctx.block(self.symbol, blocked)
            ctx.note("entry blocked", rule=blocked, **decision.get("note", {}))
            return
        order = ctx.buy(self.symbol, value=value, leg="entry", tag="entry",
                        time_in_force="ioc", meta=decision.get("meta"))
        st["pending"] = order.client_id
        ctx.note("entry", value=value, **decision.get("note", {}))

    def _apply_rules(self, ctx: Context, value: float) -> tuple[float, str | None]:
        """The entry value the rules allow, or the rule that blocks it."""
        rules = self.rules
        if rules is None:
            return value, None
        now = ctx.now.value
        last = self.state["last_exit"]
        if rules.cooldown is not None and last is not None \
                and now < last + rules.duration_ns("cooldown"):
            return value, "cooldown"
        if rules.max_entries_per_day is not None and \
                self.state.get("per_day", {}).get(str(now // _DAY_NS), 0) \
                >= rules.max_entries_per_day:
            return value, "max_entries_per_day"
        for name in ("max_exposure_pct", "max_gross_exposure_pct"):
            pct = getattr(rules, name)
            if pct is not None:
                value = min(value, ctx.mark_equity * pct / 100.0)
        if value < rules.min_order_value or value <= 0:
            return value, "min_order_value"
        return value, None

    def _waiting(self, ctx: Context) -> bool:
        cid = self.state["pending"]
        if cid is None:
            return False
        order = ctx.broker.fetch_order(cid)
        if order.is_open:
            return True
        self.state["pending"] = None  # rejected or cancelled (ioc): the decision is void
        return False

    def _cooling(self, ctx: Context) -> bool:
        last = self.state["last_exit"]
        if self.cooldown is None or last is None:
            return False
        return ctx.now.value < last + timeframe_ns(self.cooldown, name="cooldown")

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        st = self.state
        order = ctx.broker.fetch_order(fill.client_id)
        if order.side is OrderSide.BUY:
            if not self._own_entry(order) or order.is_open:
                return
            st["pending"] = None
            quantity = float(order.filled_quantity)
            entry = float(order.average_price)
            st["position"] = {"group": order.client_id, "quantity": quantity, "entry": entry,
                              "cost": filled_cost(order)}
            st["entries"] += 1
            st["fees"] += float(order.fees)
            day = str(ctx.now.value // _DAY_NS)
            st.setdefault("per_day", {})[day] = st.get("per_day", {}).get(day, 0) + 1
            place_exits(ctx, self.symbol, quantity, entry, group=order.client_id,
                        **self.exit_levels())
            return
        pos = st["position"]
        if pos is None or order.group != pos["group"] or not is_done(order):
            return
        profit = filled_proceeds(order) - pos["cost"]
        st["realized"] += profit
        st["fees"] += float(order.fees)
        st["wins"] += int(profit > 0)
        reason = fill.reason or _exit_reason(order)
        st["exits"][reason] = st["exits"].get(reason, 0) + 1
        st["position"] = None
        st["last_exit"] = int(fill.time.value)
        ctx.note("exit", reason=reason, price=float(order.average_price), profit=profit)

    def _own_entry(self, order: Any) -> bool:
        """Whether a buy is this bot's entry: the pending one, or — when the saved state
        knows of none (a restart from the state of the tick before the entry was sent) — an
        entry order of this symbol. The runner hands its fill over again at the fill's time,
        so the exits placed here get the ids of those already resting: none is sent twice."""
        st = self.state
        if order.client_id == st["pending"]:
            return True
        return (st["pending"] is None and st["position"] is None and order.tag == "entry"
                and order.symbol == self.symbol)

    def report(self) -> dict[str, Any]:
        """``entries``, ``wins``, ``exits`` by reason, ``realized_pnl``, ``fees`` and the
        open ``position`` (None when flat)."""
        st = self.state
        return {"entries": st.get("entries", 0), "wins": st.get("wins", 0),
                "exits": dict(st.get("exits", {})), "realized_pnl": st.get("realized", 0.0),
                "fees": st.get("fees", 0.0), "position": st.get("position")}
