"""Tests of interest_lib.data.windows on small hand-built event tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from event_tables import make_events
from sklearn.linear_model import LogisticRegression

from interest_lib.data.features import UNIT_WEIGHTS, CategoryVocabulary, UserVocabulary
from interest_lib.data.schema import DAY_S
from interest_lib.data.windows import (
    WindowExamples,
    behavior_features,
    class_scores,
    cosine_similarity_matrix,
    expand_soft_targets,
    next_window_examples,
    similarity_agreement,
    window_ends,
)


@pytest.fixture
def events() -> pd.DataFrame:
    d = DAY_S
    return make_events(
        [
            (1, 100, "pv", 10),
            (1, 100, "buy", 20),
            (1, 200, "pv", d + 5),  # day 1
            (1, 200, "pv", d + 6),
            (1, 100, "cart", 2 * d + 1),  # day 2
            (2, 200, "fav", 30),
            (2, 300, "pv", 2 * d + 7),  # day 2, a category unknown to the vocabulary
            (2, 200, "pv", 2 * d + 8),
            (3, 100, "pv", d + 1),  # no history before day 1
        ]
    )


@pytest.fixture
def vocab() -> CategoryVocabulary:
    return CategoryVocabulary(np.array([100, 200]))


def test_window_ends():
    np.testing.assert_array_equal(window_ends(10 * DAY_S, 3), [7 * DAY_S, 8 * DAY_S, 9 * DAY_S])
    np.testing.assert_array_equal(window_ends(100, 2, horizon=10), [80, 90])
    with pytest.raises(ValueError):
        window_ends(100, 0)
    with pytest.raises(ValueError):
        window_ends(100, 2, horizon=0)


def test_behavior_features_transforms(events, vocab):
    users = [1, 2, 3]
    raw = behavior_features(events, vocab, users, DAY_S, transform="none")
    # user 1: pv (1) + buy (4) in category 100; user 2: fav (2) in 200; user 3: nothing yet
    np.testing.assert_array_equal(raw, [[5, 0], [0, 2], [0, 0]])
    assert raw.dtype == np.float32
    np.testing.assert_allclose(behavior_features(events, vocab, users, DAY_S), np.log1p(raw))
    l1 = behavior_features(events, vocab, users, 2 * DAY_S, transform="l1", weights=UNIT_WEIGHTS)
    np.testing.assert_allclose(l1, [[0.5, 0.5], [0, 1], [1, 0]])
    with pytest.raises(ValueError, match="transform"):
        behavior_features(events, vocab, users, DAY_S, transform="sqrt")


def test_next_window_examples(events, vocab):
    ex = next_window_examples(
        events, vocab, UserVocabulary(np.array([1, 2, 3])), [DAY_S, 2 * DAY_S], transform="none"
    )
    # cut-off 1 day: users 1 and 2 have history (user 3 not); cut-off 2 days: all three
    np.testing.assert_array_equal(ex.user_ids, [1, 2, 1, 2, 3])
    np.testing.assert_array_equal(ex.window_end, [DAY_S, DAY_S, 2 * DAY_S, 2 * DAY_S, 2 * DAY_S])
    # targets: user 1 on day 1 -> all in 200; user 2 on day 1 -> nothing
    np.testing.assert_allclose(ex.targets[0], [0, 1])
    np.testing.assert_allclose(ex.targets[1], [0, 0])
    # day 2: user 1 carts 100; user 2 views 300 (unknown, dropped) and 200; user 3 nothing
    np.testing.assert_allclose(ex.targets[2:], [[1, 0], [0, 1], [0, 0]])
    np.testing.assert_array_equal(ex.active, [True, False, True, True, False])
    np.testing.assert_array_equal(ex.bought, [0, 0, 0, 0, 0])
    # inputs at the 2-day cut-off: user 1 has pv+buy in 100 (1 + 4) and two pv in 200
    np.testing.assert_allclose(ex.inputs[2], [5, 2])
    # behaviour totals (log1p counts of pv, cart, fav, buy) before the cut-off
    np.testing.assert_allclose(ex.behavior_totals[2], np.log1p([3, 0, 0, 1]))
    assert len(ex) == 5 and len(ex.subset(ex.active)) == 3
    kept = ex.subset(np.array([4]))
    assert isinstance(kept, WindowExamples) and kept.user_ids.tolist() == [3]


def test_next_window_examples_never_reads_the_future(events, vocab):
    # events after the last target window do not change anything
    late = pd.concat([events, make_events([(1, 200, "buy", 10 * DAY_S)])], ignore_index=True)
    a = next_window_examples(events, vocab, [1, 2, 3], [DAY_S])
    b = next_window_examples(late, vocab, [1, 2, 3], [DAY_S])
    for name in ("inputs", "targets", "bought", "behavior_totals", "user_ids"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    purchase = next_window_examples(events, vocab, [1], [0], require_history=False)
    assert purchase.bought.tolist() == [1]  # user 1 buys on day 0


def test_expand_soft_targets_gives_the_soft_cross_entropy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3))
    y = rng.random((6, 4)) * (rng.random((6, 4)) > 0.4)
    y[0] = [0, 0, 1, 0]
    y = y / np.maximum(y.sum(axis=1, keepdims=True), 1e-12)
    rows, labels, weight = expand_soft_targets(x, sp.csr_matrix(y))
    assert rows.shape == (int((y > 0).sum()), 3)
    np.testing.assert_allclose(np.bincount(labels, weights=weight, minlength=4), y.sum(axis=0))
    # the weighted hard-label loss equals the soft cross-entropy for any logits
    logits = torch.tensor(rng.normal(size=(6, 4)))
    index = np.repeat(np.arange(6), (y > 0).sum(axis=1))
    hard = F.cross_entropy(logits[index], torch.tensor(labels), reduction="none")
    soft = -(torch.tensor(y) * F.log_softmax(logits, dim=1)).sum()
    torch.testing.assert_close((hard * torch.tensor(weight)).sum(), soft)
    with pytest.raises(ValueError):
        expand_soft_targets(x[:2], y)
    with pytest.raises(ValueError):
        expand_soft_targets(x, -y)


def test_class_scores_fills_unseen_classes():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(x, [0, 0, 2, 2])  # class 1 never seen
    scores = class_scores(model.predict_log_proba(x), model.classes_, 3)
    assert scores.shape == (4, 3)
    assert np.all(scores[:, 1] == -1e9)
    np.testing.assert_allclose(np.exp(scores[:, [0, 2]]).sum(axis=1), 1.0)
    with pytest.raises(ValueError):
        class_scores(model.predict_log_proba(x), model.classes_, 2)
    assert np.isfinite(class_scores(np.array([[-np.inf, 0.0]]), [0, 1], 2)).all()


def test_cosine_similarity_matrix():
    v = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, 0.0], [-1.0, 0.0]])
    s = cosine_similarity_matrix(v)
    np.testing.assert_allclose(s[0], [1, 1, 0, 0, -1])
    assert s[3, 3] == 0.0
    np.testing.assert_allclose(s, s.T)
    with pytest.raises(ValueError):
        cosine_similarity_matrix(np.ones(3))


def test_similarity_agreement():
    rng = np.random.default_rng(1)
    a = cosine_similarity_matrix(rng.normal(size=(8, 3)))
    assert similarity_agreement(a, a) == pytest.approx(1.0)
    assert similarity_agreement(a, -a) == pytest.approx(-1.0)
    assert similarity_agreement(a, a**3, method="spearman") == pytest.approx(1.0)
    with pytest.raises(ValueError):
        similarity_agreement(a, a[:4, :4])
    with pytest.raises(ValueError):
        similarity_agreement(a, a, method="kendall")
