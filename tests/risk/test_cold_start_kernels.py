"""Cold start (issue 9 §4, W10): the kernels of a backtest compile no string machinery.

numba compiles the error message of a slice assignment between arrays (``a[i, :] = b``:
the shapes formatted into a string) with every kernel that holds one, which pulls in its
unicode, ``str``, ``repr`` and concatenation implementations: about a second of the first
``core-engine backtest``. Kernels therefore write into their outputs element by element.
The row selection must also equal one selection per row.
"""

from __future__ import annotations

import tempfile

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.risk._kernels import (
    top_n_select_1d,
    top_n_select_rows,
    top_n_select_rows_parallel,
)
from tests.numba_compiles import compiled_in_fresh_process

SCRIPT = """
import numpy as np
from core_engine.risk._kernels import top_n_select_rows, top_n_select_rows_parallel

scores = np.array([[1.0, np.nan, 3.0], [0.5, 0.2, 0.1]])
eligible = np.ones((2, 3), dtype=np.bool_)
rank = np.arange(3, dtype=np.int64)
top_n_select_rows(scores, eligible, rank, 2)
top_n_select_rows_parallel(scores, eligible, rank, 2)
"""

STRING_MACHINERY = ("numba.cpython.unicode", "raise_with_shape_context", "ol_str_generic",
                    "ol_repr_generic")


def test_top_n_kernels_compile_no_string_machinery():
    with tempfile.TemporaryDirectory() as cache:
        compiled = compiled_in_fresh_process(SCRIPT, cache)
    assert any(name.endswith("_top_n_rows") for name in compiled), compiled
    strings = [name for name in compiled if any(s in name for s in STRING_MACHINERY)]
    assert strings == []


score_values = st.one_of(st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1.0, -1.0]),
                         st.floats(-5, 5, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(1, 6), st.integers(1, 8), st.integers(1, 5))
def test_row_selection_equals_one_selection_per_row(data, n_rows, n_cols, n):
    scores = np.array(data.draw(st.lists(score_values, min_size=n_rows * n_cols,
                                         max_size=n_rows * n_cols))).reshape(n_rows, n_cols)
    eligible = np.array(data.draw(st.lists(st.booleans(), min_size=n_rows * n_cols,
                                           max_size=n_rows * n_cols))).reshape(n_rows, n_cols)
    rank = np.array(data.draw(st.permutations(range(n_cols))), dtype=np.int64)
    expected = np.array([top_n_select_1d(scores[i], eligible[i], rank, n)
                         for i in range(n_rows)])
    assert np.array_equal(top_n_select_rows(scores, eligible, rank, n), expected)
    assert np.array_equal(top_n_select_rows_parallel(scores, eligible, rank, n), expected)
