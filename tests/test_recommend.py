"""Item recommendations from category scores: the catalogue, exact top-N lists, list metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from interest_lib import metrics
from interest_lib.models.recommend import (
    ItemPopularity,
    item_scores,
    list_report,
    recommend_items,
    recommend_popular,
    recommend_reviewed,
    reviewed_scores,
    user_item_history,
)

CATEGORIES = np.array([10, 20, 30])


def tiny_log() -> pd.DataFrame:
    # (user, item, category, time): items 100-102 in category 10, 200-201 in 20, 300 in 30
    rows = [
        (1, 100, 10, 1), (1, 100, 10, 2), (1, 200, 20, 3),
        (2, 101, 10, 1), (2, 100, 10, 2), (2, 201, 20, 3), (2, 300, 30, 4),
        (3, 102, 10, 1), (3, 200, 20, 2),
        (1, 201, 20, 50),  # after the history end (time 10)
        (4, 999, 40, 5),  # category outside the vocabulary
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["user_id", "item_id", "category_id", "timestamp"])


@pytest.fixture(scope="module")
def catalogue():
    events = tiny_log()
    return events, ItemPopularity.fit(events.loc[events["timestamp"] < 10], CATEGORIES)


def test_item_popularity(catalogue):
    _, items = catalogue
    np.testing.assert_array_equal(items.item_ids, [100, 101, 102, 200, 201, 300, 999])
    np.testing.assert_array_equal(items.counts, [3, 1, 1, 2, 1, 1, 1])
    np.testing.assert_array_equal(items.item_category, [0, 0, 0, 1, 1, 2, -1])
    np.testing.assert_array_equal(items.index([200, 555, 100]), [3, -1, 0])
    np.testing.assert_allclose(items.share_in_category(), [0.6, 0.2, 0.2, 2 / 3, 1 / 3, 1.0, 0.0])
    np.testing.assert_array_equal(items.ranking()[:3], [0, 3, 1])  # ties by lower id
    np.testing.assert_array_equal(items.top_by_category(2), [[0, 1], [3, 4], [5, -1]])
    assert len(items) == 7 and "7 items" in repr(items)


def test_user_item_history_respects_end(catalogue):
    events, items = catalogue
    history = user_item_history(events, items, [2, 1, 7], end=10)
    dense = history.toarray()
    np.testing.assert_array_equal(dense[1], [2, 0, 0, 1, 0, 0, 0])  # user 1; item 201 is later
    np.testing.assert_array_equal(dense[0], [1, 1, 0, 0, 1, 1, 0])  # user 2
    np.testing.assert_array_equal(dense[2], 0)  # unknown user
    assert user_item_history(events, items, [1], end=None).toarray()[0, 4] == 1


def test_item_scores_formula(catalogue):
    events, items = catalogue
    history = user_item_history(events, items, [1], end=10)
    s = np.array([[0.5, 0.3, 0.2]])
    got = item_scores(s, items, history, np.array([[0, 1, 3, 5, -1]]), strength=1.0)
    # user 1: n_u,100 = 2, n_u,cat10 = 2; n_u,200 = 1, n_u,cat20 = 1
    expected = [0.5 * (2 + 0.6) / 3, 0.5 * 0.2 / 3, 0.3 * (1 + 2 / 3) / 2, 0.2 * 1.0 / 1]
    np.testing.assert_allclose(got[0, :4], expected)
    assert got[0, 4] == -np.inf


def _random_case(seed: int, n_users: int = 30, n_items: int = 80, n_cat: int = 6):
    rng = np.random.default_rng(seed)
    category_ids = np.arange(n_cat) * 10
    item_ids = np.sort(rng.choice(10_000, n_items, replace=False))
    counts = rng.integers(1, 6, n_items).astype(float)  # small integers: many ties
    items = ItemPopularity(item_ids, rng.integers(0, n_cat, n_items), counts, category_ids)
    history = sp.random(n_users, n_items, density=0.08, random_state=seed, format="csr")
    history.data = np.ceil(history.data * 3)
    scores = rng.dirichlet(np.ones(n_cat), size=n_users)
    return items, history, scores


def _brute_force_top(values: np.ndarray, n: int) -> np.ndarray:
    order = np.lexsort((np.broadcast_to(np.arange(values.shape[1]), values.shape), -values), axis=1)
    return order[:, :n]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("strength", [0.5, 5.0])
def test_recommend_items_is_the_exact_top_n(seed, strength):
    items, history, scores = _random_case(seed)
    n = 7
    got = recommend_items(scores, items.category_ids, items, history, n=n, strength=strength)
    every = np.tile(np.arange(len(items)), (scores.shape[0], 1))
    values = item_scores(scores, items, history, every, strength)
    expected = items.item_ids[_brute_force_top(values, n)]
    # equal as lists up to the order of exactly tied scores
    got_values = np.take_along_axis(values, items.index(got), axis=1)
    exp_values = np.take_along_axis(values, items.index(expected), axis=1)
    np.testing.assert_allclose(got_values, exp_values)
    assert all(len(set(row)) == n for row in got)  # no duplicates


def test_recommend_items_prefers_own_items_then_popular(catalogue):
    events, items = catalogue
    history = user_item_history(events, items, [1, 3], end=10)
    s = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    lists = recommend_items(s, CATEGORIES, items, history, n=3)
    assert lists[0, 0] == 100  # user 1's re-viewed item of category 10
    assert list(lists[0, 1:]) == [101, 102]  # then the category's other items (tie: lower id)
    assert lists[1, 0] == 200  # user 3 viewed 200 in category 20


def test_recommend_items_rejects_bad_input(catalogue):
    _, items = catalogue
    with pytest.raises(ValueError, match="category_ids"):
        recommend_items(np.ones((1, 3)), [1, 2, 3], items, None)
    with pytest.raises(ValueError, match="shape"):
        recommend_items(np.ones((1, 2)), CATEGORIES, items, None)
    with pytest.raises(ValueError, match="non-negative"):
        recommend_items(-np.ones((1, 3)), CATEGORIES, items, None)
    with pytest.raises(ValueError, match="positive"):
        recommend_items(np.ones((1, 3)), CATEGORIES, items, None, n=0)


@pytest.mark.parametrize("seed", [0, 3])
def test_baseline_lists_match_brute_force(seed):
    items, history, _ = _random_case(seed)
    n = 6
    popular = recommend_popular(items, 4, n)
    assert popular.shape == (4, n) and (popular == popular[0]).all()
    np.testing.assert_array_equal(popular[0], items.item_ids[_brute_force_top(items.counts[None], n)[0]])
    reviewed = recommend_reviewed(items, history, n)
    every = np.tile(np.arange(len(items)), (history.shape[0], 1))
    values = reviewed_scores(items, history, every)
    np.testing.assert_array_equal(reviewed, items.item_ids[_brute_force_top(values, n)])


def test_list_report_by_hand():
    lists = np.array([[5, 7, 9], [1, 2, 3], [4, 6, 8]])
    relevant = [np.array([7]), np.array([3, 1, 99]), np.array([], dtype=int)]
    report = list_report(lists, relevant, ks=(1, 3))
    assert report["HR@1"].tolist()[:2] == [0.0, 1.0] and np.isnan(report["HR@1"][2])
    assert report["HR@3"].tolist()[:2] == [1.0, 1.0]
    d = 1 / np.log2(np.arange(3) + 2)
    np.testing.assert_allclose(report["NDCG@3"][:2], [d[1] / d[0], (d[0] + d[2]) / d.sum()])
    np.testing.assert_allclose(report["MRR@3"][:2], [0.5, 1.0])
    single = list_report(lists, np.array([9, 4, 8]), ks=(3,))
    np.testing.assert_allclose(single["NDCG@3"], [d[2], 0.0, d[2]])


@pytest.mark.parametrize("seed", [0, 1])
def test_list_report_equals_full_ranking_metrics(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items, width = 40, 25, 8
    lists = np.array([rng.choice(n_items, width, replace=False) for _ in range(n_users)])
    relevance = (rng.random((n_users, n_items)) < 0.15).astype(float)
    relevance[0] = 0.0  # a user with nothing relevant
    # a full score matrix whose top `width` items are the list, in order
    scores = np.zeros((n_users, n_items))
    np.put_along_axis(scores, lists, np.arange(width, 0, -1, dtype=float)[None], axis=1)
    relevant = [np.flatnonzero(row) for row in relevance]
    report = list_report(lists, relevant, ks=(1, 5, 8))
    for k in (1, 5, 8):
        np.testing.assert_allclose(
            report[f"HR@{k}"], metrics.hit_rate_at_k(scores, relevance, k, per_user=True)
        )
        np.testing.assert_allclose(
            report[f"NDCG@{k}"], metrics.ndcg_at_k(scores, relevance, k, per_user=True)
        )


def test_list_report_rejects_bad_k():
    with pytest.raises(ValueError, match="k"):
        list_report(np.zeros((1, 3), dtype=int), [np.array([1])], ks=(5,))
