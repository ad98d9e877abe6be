"""The figures of the ml tests, printed (``python -m tests.ml.figures`` from the repository
root): the planted-edge strategy against the random walk, and the linear agent against random
agents, on the synthetic panels of :mod:`tests.ml.helpers`."""

from __future__ import annotations

import numpy as np

from core_engine.backtest import walk_forward
from core_engine.features import Momentum
from core_engine.ml import TradingEnv
from tests.ml.helpers import planted_panel
from tests.ml.test_env import _episode, greedy, random_policy, train_linear_agent
from tests.ml.test_strategy import OOS_START, logistic


def strategy_table() -> None:
    print("SklearnStrategy (scaled logistic regression on Momentum(4)), out of sample "
          f"from {OOS_START}, 10 bp fees per side")
    print(f"{'data':<24}{'seed':>5}{'trades':>8}{'avg/trade %':>13}{'total %':>10}")
    for phi, name in ((0.3, "planted (phi=0.3)"), (0.0, "random walk (phi=0)")):
        for seed in (3, 5):
            panel = planted_panel(phi=phi, block_vol=0.015, seed=seed)
            m = walk_forward(panel, logistic(), window="4h", shift="4h", fee_bps=10,
                             max_positions=1, start=OOS_START).metrics
            print(f"{name:<24}{seed:>5}{m['trades']:>8}{m['avg_return_pct']:>13.3f}"
                  f"{m['total_return_pct']:>10.1f}")


def agent_table() -> None:
    print("\nLinear agent (3,000 training steps on Jan-Feb) vs random agents, March, "
          "final equity from 10,000")
    for seed in (3, 5):
        panel = planted_panel(phi=0.3, block_vol=0.015, seed=seed)
        n = panel.n_symbols
        train = TradingEnv(panel, [Momentum(4)], shift="4h", end="2022-03-01", episode_steps=60)
        theta = train_linear_agent(train)
        test = TradingEnv(panel, [Momentum(4)], shift="4h", start="2022-03-01")
        learned = _episode(test, greedy(theta, n), 0)
        randoms = [_episode(test, random_policy(n, 100 + s), s) for s in range(5)]
        print(f"seed {seed}: agent {learned:,.0f}; random agents "
              f"{', '.join(f'{r:,.0f}' for r in randoms)} (mean {np.mean(randoms):,.0f})")


if __name__ == "__main__":
    strategy_table()
    agent_table()
