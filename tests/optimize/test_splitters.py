"""Splitters: purging by label end and the embargo on hand-made schedules, against a
plain-Python reference, CPCV paths, and the scikit-learn protocol."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.errors import ConfigError
from core_engine.optimize import CombinatorialPurgedCV, PurgedKFold, WalkForward

H = pd.Timedelta("1h")


def hourly(n: int, start: str = "2021-03-01") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="1h", tz="UTC").as_unit("ns")


def roles_of(splitter, times, **kwargs) -> list[str]:
    return list(splitter.roles(times, **kwargs).iloc[:, 0])


# ---------------------------------------------------------------------------- hand-made
def test_walk_forward_purges_the_labels_that_reach_the_test():
    # 24 hourly decisions labelled for 2 h; train 8 h, test 4 h. The first test is
    # 08:00..11:00; the decisions at 06:00 and 07:00 are labelled until 08:00 and 09:00,
    # which reach the first test decision (closed intervals), so they are purged.
    times = hourly(24)
    splits = list(WalkForward(train="8h", test="4h", purge="2h").split(times))
    assert len(splits) == 4
    train, test = splits[0]
    assert test.tolist() == [8, 9, 10, 11]
    assert train.tolist() == [0, 1, 2, 3, 4, 5]
    assert roles_of(WalkForward(train="8h", test="4h", purge="2h"), times)[:12] == \
        ["train"] * 6 + ["purged"] * 2 + ["test"] * 4
    # rolling: the second split trains on 04:00..11:00 less its purge, tests 12:00..15:00
    assert splits[1][0].tolist() == [4, 5, 6, 7, 8, 9]
    assert splits[1][1].tolist() == [12, 13, 14, 15]


def test_walk_forward_embargo_is_a_gap_before_the_test():
    times = hourly(24)
    # embargo 1 h: a label must end more than 1 h before 08:00, so 05:00 (ends 07:00) goes
    roles = roles_of(WalkForward(train="8h", test="4h", purge="2h", embargo="1h"), times)
    assert roles[:12] == ["train"] * 5 + ["embargoed"] + ["purged"] * 2 + ["test"] * 4


def test_walk_forward_anchored_trains_from_the_first_decision():
    times = hourly(24)
    splits = list(WalkForward(train="8h", test="4h", anchored=True, purge="2h").split(times))
    assert [tr.tolist() for tr, _ in splits][:2] == [[0, 1, 2, 3, 4, 5],
                                                     [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]
    assert splits[-1][1].tolist() == [20, 21, 22, 23]


def test_walk_forward_last_test_may_be_shorter():
    splits = list(WalkForward(train="8h", test="5h").split(hourly(20)))
    assert [te.tolist() for _, te in splits] == [[8, 9, 10, 11, 12], [13, 14, 15, 16, 17],
                                                [18, 19]]


def test_purged_kfold_purges_both_sides_and_embargoes_after():
    # 12 hourly decisions, 3 folds of 4; labels last 2 h. Middle fold: test 04:00..07:00,
    # its labels end at 09:00. Purged: 02:00, 03:00 (reach 04:00) and 08:00, 09:00 (start
    # before 09:00). Embargo 2 h: 10:00 and 11:00 (start within 2 h after 09:00).
    times = hourly(12)
    without = PurgedKFold(3, purge="2h").roles(times)["split_1"].tolist()
    assert without == ["train"] * 2 + ["purged"] * 2 + ["test"] * 4 + ["purged"] * 2 + \
        ["train"] * 2
    with_embargo = PurgedKFold(3, purge="2h", embargo="2h").roles(times)["split_1"].tolist()
    assert with_embargo == without[:10] + ["embargoed"] * 2
    # the embargo drops exactly those two rows and nothing else
    changed = [i for i, (a, b) in enumerate(zip(without, with_embargo, strict=True)) if a != b]
    assert changed == [10, 11]


def test_embargo_as_a_fraction_of_the_span():
    times = hourly(12)  # span 11 h; 0.2 of it = 2.2 h, rounded up to the nanosecond
    by_fraction = PurgedKFold(3, purge="2h", embargo=0.2).roles(times)
    by_duration = PurgedKFold(3, purge="2h", embargo=pd.Timedelta("2h12min")).roles(times)
    pd.testing.assert_frame_equal(by_fraction, by_duration)


def test_label_end_given_per_row_wins_when_later():
    times = hourly(12)
    ends = times + pd.to_timedelta([1] * 12, unit="h")
    ends = ends.where(np.arange(12) != 1, times[1] + 5 * H)  # row 1 labelled 5 h
    roles = PurgedKFold(3).roles(times, label_end=ends)["split_1"].tolist()
    # row 1 ends at 06:00, inside the middle test (04:00..07:00): purged; row 3 ends 04:00
    assert roles[:4] == ["train", "purged", "train", "purged"]
    assert roles[8] == "purged"  # starts at 08:00 <= the test's last label end 08:00


def test_rows_sharing_a_time_stay_together():
    times = hourly(9)
    index = pd.MultiIndex.from_product([times, ["BTC", "ETH"]], names=["decision_time", "symbol"])
    X = pd.DataFrame({"x": np.arange(18.0)}, index=index)
    for train, test in PurgedKFold(3, purge="1h").split(X):
        assert set(train // 2).isdisjoint(test // 2)
        assert all((train // 2 == t).sum() in (0, 2) for t in range(9))
        assert len(test) == 6


# ---------------------------------------------------------------------------- reference
def reference_roles(times, ends, test_mask, candidate_mask, embargo, before):
    """Plain-Python purge and embargo (independent of the library)."""
    order = sorted(set(times))
    test_times = [t for t in order if any(tt == t and m for tt, m in zip(times, test_mask,
                                                                         strict=True))]
    blocks, current = [], []
    for t in order:
        if t in test_times:
            current.append(t)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    roles = []
    for t, e, is_test, cand in zip(times, ends, test_mask, candidate_mask, strict=True):
        if is_test:
            roles.append("test")
            continue
        if not cand:
            roles.append("")
            continue
        role = "train"
        for block in blocks:
            b0 = block[0]
            last_end = max(ee for tt, ee, m in zip(times, ends, test_mask, strict=True)
                           if m and block[0] <= tt <= block[-1])
            if t <= last_end and e >= b0:
                role = "purged"
                break
        if role == "train" and embargo:
            for block in blocks:
                b0 = block[0]
                last_end = max(ee for tt, ee, m in zip(times, ends, test_mask, strict=True)
                               if m and block[0] <= tt <= block[-1])
                hit = (t < b0 and e + embargo >= b0) if before else \
                    (last_end < t <= last_end + embargo)
                if hit:
                    role = "embargoed"
                    break
        roles.append(role)
    return roles


@settings(max_examples=25, deadline=None)
@given(n=st.integers(8, 40), k=st.integers(2, 4), label_hours=st.lists(st.integers(0, 6),
       min_size=40, max_size=40), embargo=st.integers(0, 4), n_test=st.integers(1, 2))
def test_cpcv_matches_the_reference_and_never_overlaps(n, k, label_hours, embargo, n_test):
    if n_test >= k:
        n_test = k - 1
    times = hourly(n)
    ends = (times + pd.to_timedelta(label_hours[:n], unit="h")).as_unit("ns")
    cv = CombinatorialPurgedCV(k, n_test, embargo=f"{embargo}h" if embargo else None)
    roles = cv.roles(times, label_end=ends)
    t_ns, e_ns = times.asi8, ends.asi8
    groups = np.repeat(np.arange(k), [len(a) for a in np.array_split(np.arange(n), k)])
    for s, combo in enumerate(combinations(range(k), n_test)):
        test_mask = np.isin(groups, combo)
        expected = reference_roles(list(t_ns), list(e_ns), list(test_mask), [True] * n,
                                   embargo * 3_600 * 10**9, before=False)
        assert roles[f"split_{s}"].tolist() == expected
    for train, test in cv.split(times, label_end=ends):
        for i in train:
            for j in test:  # closed intervals [t, e] never meet
                assert e_ns[i] < t_ns[j] or e_ns[j] < t_ns[i]


@settings(max_examples=25, deadline=None)
@given(n=st.integers(10, 60), train_h=st.integers(2, 12), test_h=st.integers(1, 8),
       label_h=st.integers(0, 5), embargo=st.integers(0, 3), anchored=st.booleans())
def test_walk_forward_matches_the_reference(n, train_h, test_h, label_h, embargo, anchored):
    times = hourly(n)
    wf = WalkForward(train=f"{train_h}h", test=f"{test_h}h", anchored=anchored,
                     purge=f"{label_h}h" if label_h else None,
                     embargo=f"{embargo}h" if embargo else None)
    roles = wf.roles(times)
    t_ns = list(times.asi8)
    e_ns = [t + label_h * 3_600 * 10**9 for t in t_ns]
    expected_splits = []
    start = t_ns[0] + train_h * 3_600 * 10**9
    while start <= t_ns[-1]:
        test = [start <= t < start + test_h * 3_600 * 10**9 for t in t_ns]
        lo = t_ns[0] if anchored else start - train_h * 3_600 * 10**9
        cand = [lo <= t < start for t in t_ns]
        expected = reference_roles(t_ns, e_ns, test, cand, embargo * 3_600 * 10**9, before=True)
        if "train" in expected and any(test):
            expected_splits.append(expected)
        start += test_h * 3_600 * 10**9
    assert [roles[c].tolist() for c in roles.columns] == expected_splits
    assert wf.get_n_splits(times) == len(expected_splits)


# ---------------------------------------------------------------------------- CPCV paths
@pytest.mark.parametrize("n_folds,n_test", [(n, k) for n in range(2, 9) for k in range(1, n)])
def test_cpcv_path_count(n_folds, n_test):
    cv = CombinatorialPurgedCV(n_folds, n_test)
    assert cv.get_n_splits() == math.comb(n_folds, n_test)
    assert cv.get_n_paths() == math.comb(n_folds, n_test) * n_test // n_folds
    table = cv.path_splits()
    assert table.shape == (cv.get_n_paths(), n_folds)
    combos = list(combinations(range(n_folds), n_test))
    for g in range(n_folds):  # each path takes group g from a split that tests g, once
        assert all(g in combos[s] for s in table[:, g])
        assert len(set(table[:, g])) == cv.get_n_paths()
    times = hourly(3 * n_folds)
    for path in cv.backtest_paths(times):
        positions = np.concatenate([pos for _, pos in path])
        assert positions.tolist() == list(range(3 * n_folds))


def test_cpcv_six_two_has_fifteen_splits_and_five_paths():
    cv = CombinatorialPurgedCV(n_folds=6, n_test_folds=2, embargo="1h")
    assert (cv.get_n_splits(), cv.get_n_paths()) == (15, 5)
    assert len(list(cv.split(hourly(60)))) == 15


# ---------------------------------------------------------------------------- protocol
def test_scikit_learn_accepts_them_as_cv():
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV, cross_val_score

    times = hourly(90)
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=90), "b": rng.normal(size=90)}, index=times)
    y = 2 * X["a"] + rng.normal(scale=0.1, size=90)
    for cv in (PurgedKFold(5, purge="3h", embargo="2h"), WalkForward(train="30h", test="15h",
                                                                       purge="3h"),
               CombinatorialPurgedCV(5, 2, purge="3h")):
        scores = cross_val_score(Ridge(), X, y, cv=cv)
        assert len(scores) == cv.get_n_splits(X) and np.all(scores > 0.9)
    search = GridSearchCV(Ridge(), {"alpha": [0.1, 10.0]}, cv=PurgedKFold(4, purge="2h"))
    search.fit(X, y)
    assert search.best_params_ == {"alpha": 0.1}


def test_plot_draws_one_row_per_split():
    cv = PurgedKFold(4, purge="2h", embargo="2h")
    fig = cv.plot(hourly(40))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"split {k}" for k in range(4)]
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"train", "test", "purged",
                                                                    "embargoed"}
    assert "PurgedKFold(n_splits=4, purge='2h', embargo='2h')" == ax.get_title()


def test_repr_and_params():
    wf = WalkForward(train="60d", test="14d", purge="4h")
    assert repr(wf) == "WalkForward(train='60d', test='14d', purge='4h')"
    assert wf.get_params()["embargo"] is None


@pytest.mark.parametrize("make,message", [
    (lambda: WalkForward(train="-1d", test="1d"), "'train' parameter of WalkForward"),
    (lambda: WalkForward(train="2d", test=3), "'test' parameter of WalkForward"),
    (lambda: PurgedKFold(1), "'n_splits' parameter of PurgedKFold must be an integer >= 2"),
    (lambda: PurgedKFold(3, embargo=1.5), "'embargo' parameter of PurgedKFold"),
    (lambda: CombinatorialPurgedCV(4, 4), "'n_test_folds' parameter of CombinatorialPurgedCV"),
    (lambda: WalkForward(train="2d", test="1d", anchored="yes"), "'anchored' parameter"),
])
def test_bad_parameters_name_themselves(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_bad_input_to_split():
    times = hourly(5)
    with pytest.raises(ConfigError, match="needs at least 6 distinct decision times"):
        list(PurgedKFold(6).split(times))
    with pytest.raises(ConfigError, match="A splitter needs the decision times"):
        list(PurgedKFold(2).split(np.arange(5)))
    with pytest.raises(ConfigError, match="label end of row 2"):
        list(PurgedKFold(2).split(times, label_end=times.where(np.arange(5) != 2,
                                                               times[0] - H)))
    with pytest.raises(ConfigError, match="one time per row of X"):
        list(PurgedKFold(2).split(times, label_end=times[:3]))
    with pytest.raises(ConfigError, match="needs X"):
        WalkForward(train="1h", test="1h").get_n_splits()
