"""The examples in the bots' docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["core_engine.trading.bots", "core_engine.trading.bots.grid",
           "core_engine.trading.bots.dca", "core_engine.trading.bots.cycle",
           "core_engine.trading.bots.triggers", "core_engine.trading.bots.scalp",
           "core_engine.trading.bots.breakout"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
