"""The examples in the ml docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["labels", "dataset", "strategy", "replay", "env"])
def test_docstring_examples(name):
    module = importlib.import_module(f"core_engine.ml.{name}")
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
