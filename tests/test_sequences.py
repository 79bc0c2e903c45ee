"""The next-category task and the sequence tensors built for recurrent models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from interest_lib.data.schema import DAY_S
from interest_lib.data.sequences import user_sequences
from interest_lib.data.simulation import simulate
from interest_lib.data.tasks import NextCategoryTask, condition_on_change, next_category_task
from interest_lib.models.recurrent import sequence_inputs, sequence_scores

S = 10 * DAY_S  # start of the task window in the hand-built log
CATEGORIES = np.array([10, 20, 30])


def tiny_log() -> pd.DataFrame:
    """Three users; the window [S, S + 1 day) holds five known points and one unknown target."""
    rows = [
        (1, 10, S - 5 * DAY_S), (1, 10, S - 5 * DAY_S + 60), (1, 20, S - 5 * DAY_S + 120),
        (2, 20, S - 3 * DAY_S), (2, 30, S - 3 * DAY_S + 60), (2, 20, S - 500), (2, 20, S - 400),
        (1, 30, S + 100), (1, 10, S + 200),
        (2, 30, S + 5000), (2, 30, S + 5100),
        (3, 10, S + 100), (3, 20, S + 200), (3, 99, S + 300),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["user_id", "category_id", "timestamp"])
    frame["item_id"] = np.arange(len(frame)) + 1000
    frame["behavior_type"] = pd.Categorical(
        ["pv", "cart"] * 7, categories=["pv", "cart", "fav", "buy"]
    )
    frame["platform"] = pd.Categorical(["app", "web"] * 7, categories=["app", "web"])
    order = np.lexsort((frame["timestamp"], frame["user_id"]))
    return frame.iloc[order].reset_index(drop=True)


@pytest.fixture(scope="module")
def small_sim():
    return simulate(n_users=150, seed=3)


@pytest.fixture(scope="module")
def model_sim():
    """Few users, so that recurrent models run fast on a CPU."""
    return simulate(n_users=40, seed=4)


def sim_task(sim, changed: bool = False) -> NextCategoryTask:
    cats = np.unique(sim.events["category_id"])
    return next_category_task(
        sim.events, cats, sim.truth.end - DAY_S, sim.truth.end, changed=changed
    )


# --- the task -------------------------------------------------------------------------------------


def test_task_points_targets_and_context():
    events = tiny_log()
    task = next_category_task(events, CATEGORIES, S, S + DAY_S)
    times = events["timestamp"].to_numpy()
    assert len(task) == 5 and task.n_unknown_target == 1
    np.testing.assert_array_equal(task.user_id, [1, 1, 2, 2, 3])
    np.testing.assert_array_equal(task.time, [S + 100, S + 200, S + 5000, S + 5100, S + 200])
    np.testing.assert_array_equal(times[task.rows], task.time)
    np.testing.assert_array_equal(task.target, [2, 0, 2, 2, 1])
    np.testing.assert_array_equal(task.prev_category, [1, 2, 1, 2, 0])
    np.testing.assert_array_equal(task.prev_time, [S - 5 * DAY_S + 120, S + 100, S - 400,
                                                   S + 5000, S + 100])  # fmt: skip
    np.testing.assert_array_equal(task.new_session, [True, False, True, False, False])
    assert list(task.platform) == list(events["platform"].to_numpy()[task.rows])


def test_changed_task_keeps_only_migrations():
    task = next_category_task(tiny_log(), CATEGORIES, S, S + DAY_S, changed=True)
    np.testing.assert_array_equal(task.time, [S + 100, S + 200, S + 5000, S + 200])
    assert np.all(task.target != task.prev_category)
    assert task.changed and task.n_unknown_target == 1


def test_task_rows_are_positions_whatever_the_row_order():
    events = tiny_log()
    shuffled = events.sample(frac=1.0, random_state=0)
    shuffled.index = np.arange(100, 100 + len(shuffled))  # labels that are not positions
    a = next_category_task(events, CATEGORIES, S, S + DAY_S)
    b = next_category_task(shuffled, CATEGORIES, S, S + DAY_S)
    np.testing.assert_array_equal(a.target, b.target)
    np.testing.assert_array_equal(a.time, b.time)
    np.testing.assert_array_equal(shuffled["timestamp"].to_numpy()[b.rows], b.time)


def test_open_window_and_empty_window():
    events = tiny_log()
    task = next_category_task(events, CATEGORIES, None, None)
    # every event but the first of each user, less the unknown one
    assert len(task) == len(events) - 3 - 1
    with pytest.raises(ValueError, match="empty window"):
        next_category_task(events, CATEGORIES, S, S)


def test_subset():
    task = next_category_task(tiny_log(), CATEGORIES, S, S + DAY_S)
    sub = task.subset(task.user_id != 2)
    np.testing.assert_array_equal(sub.user_id, [1, 1, 3])
    assert len(sub.platform) == 3


def test_condition_on_change():
    task = next_category_task(tiny_log(), CATEGORIES, S, S + DAY_S, changed=True)
    scores = np.tile([0.2, 0.5, 0.3], (len(task), 1))
    out = condition_on_change(scores, task)
    np.testing.assert_allclose(out[0], [0.2 / 0.5, 0.0, 0.3 / 0.5])  # previous category 20
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    assert np.all(out[np.arange(len(task)), task.prev_category] == 0)
    plain = next_category_task(tiny_log(), CATEGORIES, S, S + DAY_S)
    same = np.tile([0.2, 0.5, 0.3], (len(plain), 1))
    assert condition_on_change(same, plain) is same


# --- sequence tensors -------------------------------------------------------------------------------


def test_user_sequences_layout_on_the_tiny_log():
    events = tiny_log()
    task = next_category_task(events, CATEGORIES, S, S + DAY_S)
    seqs = user_sequences(events, CATEGORIES, task)
    np.testing.assert_array_equal(seqs.user_id, [1, 2, 3])
    np.testing.assert_array_equal(seqs.lengths, [5, 6, 3])
    first = slice(0, 5)
    np.testing.assert_array_equal(seqs.category[first], [0, 0, 1, 2, 0])
    np.testing.assert_array_equal(seqs.target[first], [0, 1, 2, 0, -1])
    np.testing.assert_array_equal(seqs.mask[first], [False, False, True, True, False])
    np.testing.assert_array_equal(seqs.category[11:], [0, 1, -1])  # 99 is unknown
    np.testing.assert_array_equal(seqs.mask[11:], [True, False, False])  # its target is dropped
    minutes_since = np.log1p(np.array([0, 60, 60, 5 * DAY_S - 120 + 100, 100]) / 60)
    np.testing.assert_allclose(seqs.time_features[first, 0], minutes_since, rtol=1e-6)
    np.testing.assert_allclose(seqs.time_features[first, 1], np.r_[minutes_since[1:], 0], rtol=1e-6)
    np.testing.assert_array_equal(seqs.predicted_rows, task.rows)

    categories, behaviors, times, lengths, targets = seqs.tensors()
    assert categories.shape == (3, 6) and times.shape == (3, 6, 2)
    np.testing.assert_array_equal(lengths.numpy(), [5, 6, 3])
    assert (targets >= 0).sum() == len(task)  # targets outside the task are masked out
    assert int(targets[0, 4]) == -1 and int(targets[2, 2]) == -1
    packed = nn.utils.rnn.pack_padded_sequence(
        categories, lengths, batch_first=True, enforce_sorted=False
    )
    assert packed.data.shape[0] == 14


def test_sequences_without_task_and_with_end():
    events = tiny_log()
    seqs = user_sequences(events, CATEGORIES, end=S)
    np.testing.assert_array_equal(seqs.lengths, [3, 4])  # user 3 starts in the window
    np.testing.assert_array_equal(seqs.mask, seqs.target >= 0)


@pytest.mark.parametrize(("max_len", "stride"), [(2, 1), (2, 2), (3, 2), (50, 20), (7, 7)])
def test_windows_predict_every_point_once_in_task_order(small_sim, max_len, stride):
    for changed in (False, True):
        task = sim_task(small_sim, changed)
        seqs = user_sequences(small_sim.events, task.category_ids, task,
                              max_len=max_len, stride=stride)  # fmt: skip
        assert seqs.lengths.max() <= max_len
        np.testing.assert_array_equal(seqs.predicted_rows, task.rows)
        # every position is a real slice of the user's events
        offsets = seqs.offsets
        for i in range(0, len(seqs), max(1, len(seqs) // 20)):
            rows = seqs.event_row[offsets[i] : offsets[i + 1]]
            assert np.all(np.diff(rows) == 1)  # the simulator's events are sorted by user, time


def test_context_keeps_recent_history_only(small_sim):
    task = sim_task(small_sim)
    full = user_sequences(small_sim.events, task.category_ids, task)
    short = user_sequences(small_sim.events, task.category_ids, task, context=5)
    np.testing.assert_array_equal(short.predicted_rows, task.rows)
    assert short.lengths.sum() < full.lengths.sum()
    first_masked = [np.flatnonzero(short.mask[a:b])[0] for a, b in
                    zip(short.offsets[:-1], short.offsets[1:], strict=True)]  # fmt: skip
    assert max(first_masked) <= 5


class RepeatModel(nn.Module):
    """Scores the input category highest: the repeat-last rule as a 'sequence model'."""

    n_time_features = 2

    def __init__(self, n_categories: int) -> None:
        super().__init__()
        self.n_categories = n_categories
        self.bias = nn.Parameter(torch.zeros(n_categories))

    def batch_inputs(self, sequences, index):
        return sequence_inputs(sequences, index, 2)

    def forward(self, categories, behaviors, lengths, time_features):
        one_hot = nn.functional.one_hot(categories.clamp(min=0), self.n_categories).float()
        return 10 * one_hot + self.bias + 0 * time_features.sum(-1, keepdim=True)


def test_sequence_scores_follow_task_order(model_sim):
    task = sim_task(model_sim)
    seqs = user_sequences(model_sim.events, task.category_ids, task, max_len=30, stride=10)
    scores = sequence_scores(RepeatModel(task.n_categories), seqs, batch_size=7, device="cpu")
    assert scores.shape == (len(task), task.n_categories)
    known = task.prev_category >= 0
    np.testing.assert_array_equal(scores.argmax(axis=1)[known], task.prev_category[known])
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)


def test_sequence_model_scores_do_not_depend_on_batching(model_sim):
    from interest_lib.models.recurrent import SequenceModel

    task = sim_task(model_sim)
    seqs = user_sequences(model_sim.events, task.category_ids, task)
    torch.manual_seed(0)
    model = SequenceModel(task.n_categories, hidden=16, embedding_dim=8)
    one = sequence_scores(model, seqs, batch_size=1, device="cpu")
    many = sequence_scores(model, seqs, batch_size=64, device="cpu")
    np.testing.assert_allclose(one, many, atol=1e-5)
    # windows longer than every history are the full history
    windowed = user_sequences(model_sim.events, task.category_ids, task,
                              max_len=int(seqs.lengths.max()))  # fmt: skip
    np.testing.assert_allclose(sequence_scores(model, windowed, device="cpu"), many, atol=1e-5)


def test_training_tensors_work_with_fit(model_sim):
    from interest_lib.models.recurrent import SequenceModel, sequence_cross_entropy
    from interest_lib.models.training import fit

    events = model_sim.events
    cats = np.unique(events["category_id"])
    train_task = next_category_task(events, cats, None, model_sim.truth.end - DAY_S)
    seqs = user_sequences(events, cats, train_task, max_len=40)
    assert seqs.n_predictions == len(train_task)

    def loss_fn(model, batch):
        categories, behaviors, times, lengths, targets = batch
        return sequence_cross_entropy(model(categories, behaviors, lengths, times), targets)

    torch.manual_seed(0)
    model = SequenceModel(len(cats), hidden=8, embedding_dim=8)
    history = fit(model, seqs.tensors(), loss_fn=loss_fn, epochs=1, batch_size=64,
                  device="cpu", progress=False)  # fmt: skip
    assert np.isfinite(history.train_loss[0])


# --- request context, history counts, one table for many methods ---------------------------------


def test_request_context_features_on_the_tiny_log():
    from interest_lib.data.tasks import N_REQUEST_FEATURES, REQUEST_FEATURE_NAMES

    events = tiny_log()
    task = next_category_task(events, CATEGORIES, S, S + DAY_S)
    seqs = user_sequences(events, CATEGORIES, task, request_context=True)
    assert seqs.time_features.shape == (14, N_REQUEST_FEATURES) == (14, len(REQUEST_FEATURE_NAMES))
    plain = user_sequences(events, CATEGORIES, task)
    np.testing.assert_array_equal(seqs.time_features[:, :2], plain.time_features)
    np.testing.assert_array_equal(seqs.mask, plain.mask)
    user1 = seqs.time_features[0:5]
    np.testing.assert_array_equal(user1[:, 2], [0, 0, 1, 0, 0])  # the next event opens a session
    np.testing.assert_array_equal(user1[:, 3], [1, 0, 1, 0, 0])  # the next event is on the web
    np.testing.assert_array_equal(user1[:, 4], [0, 1, 0, 1, 0])  # this event is on the web
    np.testing.assert_array_equal(user1[:, 6], [1, 0, 1, 1, 1])  # fresh: new session or change
    origin = S - 5 * DAY_S  # the earliest timestamp of the log
    np.testing.assert_allclose(user1[:4, 5], (np.array([60, 120, 5 * DAY_S + 100, 5 * DAY_S + 200])
                                              / (10 * DAY_S)), rtol=1e-6)  # fmt: skip
    assert user1[4, 5] == 0  # no next event
    shifted = user_sequences(events, CATEGORIES, task, request_context=True, origin=origin - DAY_S)
    np.testing.assert_allclose(shifted.time_features[:4, 5], user1[:4, 5] + 0.1, rtol=1e-6)
    # without a platform column the web flags are 0
    no_platform = user_sequences(events.drop(columns="platform"), CATEGORIES,
                                 next_category_task(events.drop(columns="platform"), CATEGORIES,
                                                    S, S + DAY_S), request_context=True)  # fmt: skip
    assert not no_platform.time_features[:, 3:5].any()


def test_history_counts_keep_what_windows_and_context_cut_off():
    events = tiny_log()
    task = next_category_task(events, CATEGORIES, None, None)
    full = user_sequences(events, CATEGORIES, task, request_context=True)
    assert full.history_counts.shape == (3, 2, 3)
    assert not full.history_counts.any()  # nothing before a whole history
    windows = user_sequences(events, CATEGORIES, task, max_len=2, request_context=True)
    np.testing.assert_array_equal(windows.user_id, [1, 1, 1, 2, 2, 2, 3, 3])
    # user 1: fresh choices 10 (app) before [1, 3); 10, 20 (app) before [3, 5)
    np.testing.assert_array_equal(windows.history_counts[:3, 0], [[0, 0, 0], [1, 0, 0], [1, 1, 0]])
    assert not windows.history_counts[:3, 1].any()
    # user 2 (20 web, 30 app, 20 web in a new session, 20 repeated): before its last window
    np.testing.assert_array_equal(windows.history_counts[5], [[0, 2, 1], [0, 2, 0]])
    # user 3's unknown category 99 is never counted
    assert windows.history_counts[7].sum() == 2
    trimmed = user_sequences(events, CATEGORIES, next_category_task(events, CATEGORIES, S, S + DAY_S),
                             context=1, request_context=True)  # fmt: skip
    # user 1's first point is predicted at position 2: context=1 keeps positions 1.., counts 0's
    np.testing.assert_array_equal(trimmed.history_counts[0], [[1, 0, 0], [0, 0, 0]])
    assert trimmed.lengths[0] == 4
    categories, behaviors, times, lengths, targets, history = windows.tensors(history=True)
    assert history.shape == (8, 2, 3) and times.shape[-1] == 7
    with pytest.raises(ValueError, match="request_context"):
        user_sequences(events, CATEGORIES, task).tensors(history=True)


def test_sequence_scores_pass_history_counts(model_sim):
    from interest_lib.models.trajectory import TrajectoryModel

    task = sim_task(model_sim)
    seqs = user_sequences(model_sim.events, task.category_ids, task, request_context=True)
    torch.manual_seed(0)
    model = TrajectoryModel(task.n_categories, hidden=8, embedding_dim=4, n_components=3)
    one = sequence_scores(model, seqs, batch_size=1, device="cpu")
    many = sequence_scores(model, seqs, batch_size=64, device="cpu")
    np.testing.assert_allclose(one, many, atol=1e-5)
    np.testing.assert_allclose(many.sum(axis=1), 1.0, rtol=1e-4)
    # windows with their history counts give the same taste as the whole history
    windowed = user_sequences(model_sim.events, task.category_ids, task, max_len=40, stride=20,
                              request_context=True)  # fmt: skip
    assert sequence_scores(model, windowed, device="cpu").shape == many.shape
    with pytest.raises(ValueError, match="request_context=True"):
        sequence_scores(model, user_sequences(model_sim.events, task.category_ids, task),
                        device="cpu")  # fmt: skip
