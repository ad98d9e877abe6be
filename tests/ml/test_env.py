"""TradingEnv: gymnasium's checker passes; an episode's actions replayed through
walk_forward(mode="portfolio") give the same equity at every decision time and the same
final equity; masks, termination, truncation, penalties and seeded resets; a small linear
agent trained for a few thousand steps beats a random agent on the planted-edge data."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from core_engine.backtest import walk_forward
from core_engine.data import Panel
from core_engine.data.providers import load_sample
from core_engine.errors import ConfigError
from core_engine.features import RSI, Momentum
from core_engine.ml import ScheduledWeights, TradingEnv
from core_engine.risk import ExitRules, MaxATRPct, PortfolioRules
from tests.ml.helpers import planted_panel


@pytest.fixture(scope="module")
def sample():
    return Panel.from_frames(load_sample(["BTC/USDT", "ETH/USDT", "SOL/USDT", "NKN/USDT"],
                                         "2021-03-01", "2021-03-08"), "5m")


@pytest.fixture(scope="module")
def planted():
    return planted_panel(phi=0.3, block_vol=0.015, seed=3)


@pytest.mark.filterwarnings("ignore:.*Box observation space m:UserWarning")  # unbounded features
@pytest.mark.parametrize("action", ["discrete", "weights"])
def test_gymnasium_checker_passes(sample, action):
    env = TradingEnv(sample, [RSI(14), Momentum(12)], shift="1h", action=action,
                     observation_window=3, rules=PortfolioRules(cooldown="2h"),
                     episode_steps=40)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert obs.shape == (3 * 4 * 2 + 4 + 2,)


def _play(env, seed):
    """A random agent's episode: the infos of every step."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    infos = []
    while True:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        infos.append({**info, "reward": reward})
        if terminated or truncated:
            return infos


@pytest.mark.parametrize("action, rules, exits, gates", [
    ("discrete", None, None, ()),
    ("discrete", PortfolioRules(cooldown="3h", max_entries_per_day=4), None, ()),
    ("weights", None, ExitRules(stop_loss_pct=1.0, take_profit_pct=2.0), ()),
    ("weights", PortfolioRules(max_exposure_pct=40, cooldown="2h"), None,
     (MaxATRPct(max_atr_pct=0.6),)),
])
def test_replaying_an_episode_through_walk_forward_gives_the_same_equity(
        sample, action, rules, exits, gates):
    env = TradingEnv(sample, [RSI(14)], shift="1h", action=action, rules=rules, exits=exits,
                     gates=gates, fee_bps=10, slippage_bps=5, episode_steps=100)
    infos = _play(env, seed=7)
    result = walk_forward(sample, ScheduledWeights(env.episode_weights()),
                          **env.walk_forward_kwargs())
    assert len(result.trades) > 10
    assert infos[-1]["final_equity"] == pytest.approx(result.equity["equity"].iloc[-1],
                                                      rel=1e-12)
    marks = result.equity.set_index("time")["equity"]
    for info in infos[:-1]:
        assert info["equity"] == pytest.approx(marks.loc[info["time"]], rel=1e-12)
    blocked = sorted((str(b.decision_time), b.symbol, b.reason)
                     for b in result.blocked.itertuples())
    seen = sorted((str(env.times[env.times.get_loc(i["time"]) - 1]), s, r)
                  for i in infos for s, r in i["blocked"])
    assert seen == blocked
    rewards = np.array([i["reward"] for i in infos])
    assert np.exp(rewards.sum()) * 10_000 == pytest.approx(infos[-1]["final_equity"], rel=1e-9)


def test_masks_name_the_symbols_a_rule_blocks(sample):
    env = TradingEnv(sample, [RSI(14)], shift="1h", rules=PortfolioRules(cooldown="3h"))
    env.reset(seed=0)
    _, _, _, _, info = env.step(1)            # long BTC
    assert info["action_mask"].all()
    _, _, _, _, info = env.step(0)            # flat: BTC sold at this open
    assert info["action_mask"].tolist() == [True, False, True, True, True]
    _, _, _, _, info = env.step(1)            # BTC anyway: the simulator blocks it
    assert info["blocked"] == [("BTC/USDT", "cooldown")]
    _, _, _, _, info = env.step(0)
    _, _, _, _, info = env.step(0)
    assert info["action_mask"].all()          # three hours after the exit


def test_gates_mask_and_weights_are_normalised(sample):
    gate = MaxATRPct(max_atr_pct=0.5)
    env = TradingEnv(sample, [RSI(14)], shift="1h", action="weights", gates=[gate])
    env.reset(seed=0)
    eligible = env._inputs["eligible"]
    masks = []
    for _ in range(30):
        _, _, _, _, info = env.step(np.array([0.9, 0.9, 0.004, 0.2], dtype=np.float32))
        masks.append(info["action_mask"])
        assert info["target"].sum() == pytest.approx(1.0) and info["target"][2] == 0.0
    rows = env.rows[1:31]
    np.testing.assert_array_equal(np.array(masks), eligible[rows])
    assert not np.array(masks).all()


def test_termination_truncation_penalties_and_seeds(planted):
    env = TradingEnv(planted, [Momentum(4)], shift="4h", ruin_pct=99.5)
    env.reset(seed=0)
    for _ in range(200):
        _, _, terminated, truncated, info = env.step(1)
        if terminated or truncated:
            break
    assert terminated and not truncated and info["equity"] <= 9_950
    with pytest.raises(ConfigError, match="finished episode"):
        env.step(0)
    breaker = TradingEnv(planted, [Momentum(4)], shift="4h",
                         rules=PortfolioRules(max_drawdown_pct=3.0))
    breaker.reset(seed=0)
    steps = 0
    while True:
        steps += 1
        _, _, terminated, truncated, info = breaker.step(2)
        if terminated or truncated:
            break
    assert terminated and steps < len(breaker.rows) - 1
    short = TradingEnv(planted, [Momentum(4)], shift="4h", episode_steps=5)
    starts = set()
    for seed in range(6):
        obs_a, info_a = short.reset(seed=seed)
        obs_b, info_b = short.reset(seed=seed)
        assert info_a["time"] == info_b["time"] and np.array_equal(obs_a, obs_b)
        starts.add(info_a["time"])
        flags = [short.step(0)[3] for _ in range(5)]
        assert flags == [False] * 4 + [True]
    assert len(starts) == 6
    plain = TradingEnv(planted, [Momentum(4)], shift="4h", action="weights")
    taxed = TradingEnv(planted, [Momentum(4)], shift="4h", action="weights",
                       turnover_penalty=0.01, drawdown_penalty=0.5)
    actions = np.random.default_rng(2).uniform(0, 0.5, (20, 4)).astype(np.float32)
    for env_ in (plain, taxed):
        env_.reset(seed=0)
    held, peak = np.zeros(4), 10_000.0
    for a in actions:
        _, r0, _, _, i0 = plain.step(a)
        _, r1, _, _, _ = taxed.step(a)
        peak = max(peak, i0["equity"])
        expected = 0.01 * np.abs(i0["target"] - held).sum() + 0.5 * (1 - i0["equity"] / peak)
        assert r0 - r1 == pytest.approx(expected, rel=1e-9, abs=1e-12)
        held = plain._held


def test_bad_parameters(sample):
    with pytest.raises(ConfigError, match="'action' parameter of TradingEnv"):
        TradingEnv(sample, [RSI(14)], action="continuous")
    with pytest.raises(ConfigError, match="at least one"):
        TradingEnv(sample, [])
    with pytest.raises(ConfigError, match="multiple of the panel's 5m"):
        TradingEnv(sample, [RSI(14)], shift="7min")
    with pytest.raises(ConfigError, match="episode_steps"):
        TradingEnv(sample, [RSI(14)], episode_steps=0)
    env = TradingEnv(sample, [RSI(14)], shift="1h")
    env.reset(seed=0)
    with pytest.raises(ConfigError, match=r"action must be in \[0, 4\]"):
        env.step(9)


def test_missing_gymnasium_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium", None)
    monkeypatch.delitem(sys.modules, "core_engine.ml.env", raising=False)
    with pytest.raises(ConfigError, match=r"pip install 'core-engine\[ml\]'"):
        importlib.import_module("core_engine.ml.env")


def _features(obs, n):
    return np.stack([np.ones(n), obs[:n] / 0.01], axis=1)


def _episode(env, policy, seed):
    obs, _ = env.reset(seed=seed)
    while True:
        obs, _, terminated, truncated, info = env.step(policy(obs))
        if terminated or truncated:
            return info["final_equity"]


def train_linear_agent(env, steps=3_000, seed=0):
    """A contextual-bandit agent: one linear value of each symbol's features (an intercept
    and its last-4h return, shared by the symbols), fitted by least squares on the rewards
    of the actions it took, epsilon-greedy (0.2). Returns the coefficients."""
    n = env.panel.n_symbols
    rng = np.random.default_rng(seed)
    gram, moment, theta = np.eye(2), np.zeros(2), np.zeros(2)
    obs, _ = env.reset(seed=seed)
    for _ in range(steps):
        x = _features(obs, n)
        action = int(rng.integers(0, n + 1)) if rng.random() < 0.2 else greedy(theta, n)(obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        if action:
            gram += np.outer(x[action - 1], x[action - 1])
            moment += reward * 100 * x[action - 1]
            theta = np.linalg.solve(gram, moment)
        if terminated or truncated:
            obs, _ = env.reset()
    return theta


def greedy(theta, n):
    """The agent's policy: the symbol of highest positive value, else flat."""
    def policy(obs):
        q = _features(obs, n) @ theta
        return int(np.argmax(q)) + 1 if q.max() > 0 else 0
    return policy


def random_policy(n, seed):
    pick = np.random.default_rng(seed)
    return lambda obs: int(pick.integers(0, n + 1))


def test_a_linear_agent_beats_a_random_agent_on_the_planted_edge(planted):
    """The linear agent trained for 3,000 steps on the first two months, then greedy on the
    third month it never saw, against random agents on that month."""
    n = planted.n_symbols
    train = TradingEnv(planted, [Momentum(4)], shift="4h", end="2022-03-01", episode_steps=60)
    theta = train_linear_agent(train)
    assert theta[1] > 0.1  # it learned that the last four hours' return carries on
    test = TradingEnv(planted, [Momentum(4)], shift="4h", start="2022-03-01")
    learned = _episode(test, greedy(theta, n), 0)
    randoms = [_episode(test, random_policy(n, 100 + seed), seed) for seed in range(5)]
    assert learned > 1.3 * 10_000 and learned > 1.5 * max(randoms)
