"""The bots on the command line (``core-engine replay --bot ...``) and :func:`make_bot`."""

from __future__ import annotations

import pytest

from core_engine.cli import main
from core_engine.errors import ConfigError
from core_engine.strategies import Breakout
from core_engine.trading.bots import BreakoutTrader, GridTrader, PriceTriggerTrader, make_bot
from core_engine.trading.bots.cli import bot_from_args, parse_params


def test_replay_grid_bot_from_the_command_line(tmp_path, capsys):
    code = main(["replay", "--bot", "grid", "--symbol", "BTC/USDT", "--param", "low=20000",
                 "--param", "high=40000", "--param", "levels=21", "--param",
                 "amount_per_level=400", "--start", "2021-01-01", "--end", "2021-01-08",
                 "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0
    assert "Replay: grid" in out and "'low': 20000" in out and "Orders" in out
    assert (tmp_path / "run" / "orders.parquet").is_file()


def test_bot_arguments():
    bot, symbols = bot_from_args("grid", ["low=20000", "high=4e4", "spacing=geometric"],
                                 ["ETH/USDT"])
    assert isinstance(bot, GridTrader) and symbols == ["ETH/USDT"]
    assert (bot.symbol, bot.low, bot.high, bot.spacing) == ("ETH/USDT", 20000, 40000.0,
                                                            "geometric")
    bot, symbols = bot_from_args(
        "triggers", ['triggers={"BTC/USDT": {"buy": 30000, "amount": 100}}'], None)
    assert isinstance(bot, PriceTriggerTrader) and symbols == ["BTC/USDT"]
    assert parse_params(["trend_lookbacks=[\"1h\", \"2h\"]", "stop_loss_pct=none"]) == {
        "trend_lookbacks": ("1h", "2h"), "stop_loss_pct": None}
    with pytest.raises(ConfigError, match="--bot grid trades one pair"):
        bot_from_args("grid", ["low=1", "high=2"], ["BTC/USDT", "ETH/USDT"])
    with pytest.raises(ConfigError, match="--param must look like name=value"):
        parse_params(["low"])


def test_make_bot_names_and_breakout_parameters():
    bot = make_bot("breakout", length=30, min_confirmations=3, stop_loss_pct=1.0)
    assert isinstance(bot, BreakoutTrader)
    assert bot.strategy == Breakout(length=30, min_confirmations=3) and bot.stop_loss_pct == 1.0
    with pytest.raises(ConfigError, match="Unknown bot 'gird'.*Did you mean 'grid'"):
        make_bot("gird")
    with pytest.raises(ConfigError, match="DCATrader has no parameter 'amout'"):
        make_bot("dca", amout=10)
