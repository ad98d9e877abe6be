"""Public checking helpers: the same scrutiny our own tests apply, for your features and strategies.

* :func:`check_feature` — truncation invariance, no input mutation, ``compute`` ==
  ``compute_panel``, clear errors on empty/short/NaN input.
* :func:`check_trader` — an event trader places the same orders up to ``t`` when the data
  (and its own candle parameters) are cut at ``t``.
* :func:`check_strategy` — scores at sampled times unchanged when the future is replaced by
  garbage, no input mutation, one-off path == vectorised path, parameters survive ``clone``.
"""

from core_engine.testing.features import check_feature
from core_engine.testing.strategies import check_strategy
from core_engine.testing.traders import check_trader

__all__ = ["check_feature", "check_strategy", "check_trader"]
