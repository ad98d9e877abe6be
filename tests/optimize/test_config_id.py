"""A configuration's id is the same in every process: objects without parameters of their own
(no ``get_params``, not a dataclass) and functions are identified by their state, not by a
``repr`` that carries a memory address (a resumed sweep would never find them, and would
run them again under a new id)."""

from __future__ import annotations

import pytest

from core_engine.errors import ConfigError
from core_engine.optimize.results import canonical, config_id
from tests.fresh import in_fresh_process


class PlainGate:
    """A user's object with attributes and the default repr."""

    def __init__(self, floor=0.5, symbols=("A/USDT",)):
        self.floor = floor
        self.symbols = symbols


def threshold(level):
    def check(x):
        return x > level

    return check


def _ids():
    return [config_id("S", {"gate": PlainGate()}, "fp"),
            config_id("S", {"gate": threshold(0.3)}, "fp"),
            config_id("S", {"gate": len}, "fp")]


def test_equal_objects_and_closures_get_one_id_different_ones_differ():
    assert config_id("S", {"gate": PlainGate()}, "fp") == \
        config_id("S", {"gate": PlainGate()}, "fp")
    assert config_id("S", {"gate": PlainGate()}, "fp") != \
        config_id("S", {"gate": PlainGate(floor=0.6)}, "fp")
    assert config_id("S", {"gate": threshold(0.3)}, "fp") == \
        config_id("S", {"gate": threshold(0.3)}, "fp")
    # the same code capturing another value is another configuration
    assert config_id("S", {"gate": threshold(0.3)}, "fp") != \
        config_id("S", {"gate": threshold(0.4)}, "fp")
    assert "0x" not in str(canonical(PlainGate())) + str(canonical(threshold(0.3)))


def test_the_ids_are_the_same_in_a_fresh_process():
    # this module imported under the name pytest gave it (the classes' ids name it)
    assert in_fresh_process(__name__, "_ids") == _ids()


def test_an_object_with_nothing_to_identify_it_by_is_refused_by_name():
    class Opaque:
        __slots__ = ()

    with pytest.raises(ConfigError, match="Opaque"):
        config_id("S", {"gate": Opaque()}, "fp")


def test_long_arrays_and_frames_that_print_alike_get_different_ids():
    """numpy and pandas elide the middle of a long array in its repr: two arrays differing
    there printed alike, and a resumed sweep took one configuration's result for the
    other's."""
    import numpy as np
    import pandas as pd

    a = np.arange(5_000, dtype=float)
    b = a.copy()
    b[2_500] = -1.0
    assert repr(a) == repr(b)
    assert config_id("S", {"w": a}, "fp") != config_id("S", {"w": b}, "fp")
    assert config_id("S", {"w": a}, "fp") == config_id("S", {"w": a.copy()}, "fp")
    assert config_id("S", {"w": pd.Series(a)}, "fp") != config_id("S", {"w": pd.Series(b)}, "fp")
    assert config_id("S", {"w": pd.DataFrame({"x": a})}, "fp") != \
        config_id("S", {"w": pd.DataFrame({"x": b})}, "fp")
    assert config_id("S", {"w": pd.Series(a)}, "fp") == config_id("S", {"w": pd.Series(a)}, "fp")
