"""Review 10: the canonical form of configuration values (config_id, Trader.trader_id) is
the same in every process and total: no memory address, no hash-seed order, no recursion
error, no raw pandas error."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core_engine._canonical import canonical
from core_engine.errors import ConfigError
from core_engine.trading import Trader

ROOT = Path(__file__).resolve().parents[1]


class Band:
    def __init__(self, width=0.02):
        self.width = width

    def scale(self, x):
        return x * self.width


class Cyclic:
    def __init__(self):
        self.me = self


class Slotted:
    __slots__ = ("a",)

    def __init__(self, a):
        self.a = a


def among(x):
    return x in {"alpha", "beta", "gamma", "delta", "epsilon"}


def recursive():
    def countdown(n):
        return countdown(n - 1) if n else 0

    return countdown


class Holds(Trader):
    def __init__(self, p=None):
        self.p = p


def _ids():
    return [Holds(p=Band(0.03).scale).trader_id,
            Holds(p=functools.partial(Band(0.03).scale)).trader_id,
            Holds(p=among).trader_id, Holds(p=np.mean).trader_id,
            Holds(p=[Band(), recursive()]).trader_id]


def test_ids_are_the_same_under_another_hash_seed_and_process():
    code = (f"import sys, importlib; sys.path[:0] = {sys.path!r}; "
            f"print(' '.join(importlib.import_module({__name__!r})._ids()))")
    seen = set()
    for seed in ("1", "2", "3"):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                             text=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed})
        seen.add(out.stdout.strip())
    assert len(seen) == 1, seen


@pytest.mark.parametrize("value", [Band().scale, functools.partial(among, "x"), np.mean])
def test_no_address_in_the_canonical_form(value):
    assert " at 0x" not in str(canonical(value))


def test_bound_methods_of_different_objects_differ():
    assert canonical(Band(0.02).scale) != canonical(Band(0.03).scale)
    assert canonical(functools.partial(among, "a")) != canonical(functools.partial(among, "b"))


def test_cycles_are_not_a_recursion_error():
    assert canonical(Cyclic()) == canonical(Cyclic())
    assert canonical(recursive()) == canonical(recursive())
    assert Holds(p=Cyclic()).trader_id == Holds(p=Cyclic()).trader_id


def test_slotted_objects_are_identified_by_their_slots():
    assert canonical(Slotted(1)) != canonical(Slotted(2))
    assert Holds(p=Slotted(1)).trader_id != Holds(p=Slotted(2)).trader_id


@pytest.mark.parametrize("value", [pd.DataFrame({"a": [[1], [2]]}), pd.Series([{"k": 1}])])
def test_pandas_objects_with_unhashable_cells(value):
    try:
        first = canonical(value)
    except ConfigError:
        return
    assert first == canonical(value.copy())


class Shown:
    def __init__(self, w=1.0):
        self.w = w

    def __repr__(self):
        return f"Shown(w={self.w})"

    def scale(self, x):
        return x * self.w


@pytest.mark.parametrize("value", [functools.partial(max, 1), Shown().scale, {"one"}, {3, 1}])
def test_values_whose_repr_names_no_address_keep_their_repr(value):
    """config_id of such values was already the same in every process: it stays."""
    assert canonical(value) == repr(value)
