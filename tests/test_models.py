"""Tests of interest_lib.models: shapes, the formula, packing, a training step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from interest_lib.models.interest_mlp import InterestMLP, soft_cross_entropy
from interest_lib.models.recurrent import (
    SequenceModel,
    last_valid,
    pad_sequences,
    sequence_cross_entropy,
    time_gap_features,
)
from interest_lib.models.training import fit, set_seed

N_CATEGORIES = 7


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and do not stall when the machine is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------
# InterestMLP
# --------------------------------------------------------------------------------------------


def test_mlp_shapes_and_formula():
    set_seed(0)
    model = InterestMLP(N_CATEGORIES, hidden=5).eval()
    x = torch.rand(4, N_CATEGORIES)
    assert model(x).shape == (4, N_CATEGORIES)
    v = model.interest(x)
    assert v.shape == (4, 5)
    W, b = model.hidden_layer.weight, model.hidden_layer.bias
    assert W.shape == (5, N_CATEGORIES)
    # v = sigma(W x + b), user by user
    for user in range(4):
        torch.testing.assert_close(v[user], torch.sigmoid(W @ x[user] + b))
    assert torch.all((v > 0) & (v < 1))


def test_mlp_relu_option():
    model = InterestMLP(N_CATEGORIES, hidden=5, activation="relu").eval()
    x = torch.rand(3, N_CATEGORIES)
    torch.testing.assert_close(model.interest(x), torch.relu(model.hidden_layer(x)))
    with pytest.raises(ValueError, match="activation"):
        InterestMLP(N_CATEGORIES, activation="tanh")


def test_soft_cross_entropy():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(6, N_CATEGORIES, generator=generator)
    target = torch.rand(6, N_CATEGORIES, generator=generator)
    target = target / target.sum(dim=1, keepdim=True)
    torch.testing.assert_close(soft_cross_entropy(logits, target), F.cross_entropy(logits, target))
    labels = torch.tensor([0, 3, 6, 1, 2, 2])
    one_hot = F.one_hot(labels, N_CATEGORIES).float()
    torch.testing.assert_close(soft_cross_entropy(logits, one_hot), F.cross_entropy(logits, labels))
    assert soft_cross_entropy(logits, target, reduction="none").shape == (6,)
    torch.testing.assert_close(
        soft_cross_entropy(logits, target, reduction="sum"),
        soft_cross_entropy(logits, target, reduction="none").sum(),
    )


def test_mlp_learns_with_fit():
    set_seed(0)
    x = torch.rand(64, N_CATEGORIES)
    target = torch.softmax(3 * x, dim=1)  # next-window interest follows current behavior
    model = InterestMLP(N_CATEGORIES, hidden=16, dropout=0.0)

    def loss_fn(model, batch):
        inputs, targets = batch
        return soft_cross_entropy(model(inputs), targets)

    history = fit(
        model,
        (x, target),
        loss_fn=loss_fn,
        epochs=15,
        batch_size=16,
        lr=0.02,
        device="cpu",
        progress=False,
    )
    assert history.train_loss[-1] < history.train_loss[0]


# --------------------------------------------------------------------------------------------
# sequences
# --------------------------------------------------------------------------------------------


def random_sequences(lengths: list[int], seed: int = 0):
    rng = np.random.default_rng(seed)
    categories = [rng.integers(0, N_CATEGORIES, n) for n in lengths]
    behaviors = [rng.integers(0, 4, n) for n in lengths]
    times = [rng.random((n, 2)).astype(np.float32) for n in lengths]
    return categories, behaviors, times


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sequence_model_shapes(cell):
    lengths = [5, 2, 4]
    categories, behaviors, times = random_sequences(lengths)
    cat, length = pad_sequences(categories)
    beh, _ = pad_sequences(behaviors)
    tim, _ = pad_sequences(times)
    model = SequenceModel(N_CATEGORIES, embedding_dim=6, hidden=8, cell=cell)
    logits = model(cat, beh, length, tim)
    assert logits.shape == (3, 5, N_CATEGORIES)
    assert last_valid(logits, length).shape == (3, N_CATEGORIES)
    assert model.forward_last(cat, beh, length, tim).shape == (3, N_CATEGORIES)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_packing_matches_unpadded_sequences(cell):
    set_seed(0)
    lengths = [5, 2, 4, 1]
    categories, behaviors, times = random_sequences(lengths, seed=1)
    model = SequenceModel(N_CATEGORIES, embedding_dim=6, hidden=8, cell=cell, num_layers=2).eval()
    cat, length = pad_sequences(categories, padding_value=3)  # padding value must not matter
    beh, _ = pad_sequences(behaviors)
    tim, _ = pad_sequences(times, padding_value=9.0)
    with torch.no_grad():
        batched = model(cat, beh, length, tim)
        last = model.forward_last(cat, beh, length, tim)
        for i, n in enumerate(lengths):
            alone = model(
                torch.as_tensor(categories[i])[None],
                torch.as_tensor(behaviors[i])[None],
                torch.tensor([n]),
                torch.as_tensor(times[i])[None],
            )
            torch.testing.assert_close(batched[i, :n], alone[0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(last, last_valid(batched, length), atol=1e-6, rtol=1e-5)


def test_unknown_categories_and_time_feature_checks():
    model = SequenceModel(N_CATEGORIES, time_features=0, embedding_dim=4, hidden=4).eval()
    cat = torch.tensor([[-1, 2, -1]])
    beh = torch.zeros_like(cat)
    logits = model(cat, beh, torch.tensor([3]))
    assert torch.isfinite(logits).all()
    with pytest.raises(ValueError, match="time_features=0"):
        model(cat, beh, torch.tensor([3]), torch.zeros(1, 3, 2))
    timed = SequenceModel(N_CATEGORIES, embedding_dim=4, hidden=4)
    with pytest.raises(ValueError, match="expects 2 time features"):
        timed(cat, beh, torch.tensor([3]))
    with pytest.raises(ValueError, match="shape"):
        timed(cat, beh, torch.tensor([3]), torch.zeros(1, 3, 5))
    with pytest.raises(ValueError, match="length of 0"):
        timed(cat, beh, torch.tensor([0]), torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match="cell"):
        SequenceModel(N_CATEGORIES, cell="transformer")


def test_forward_backward_step_on_cpu():
    set_seed(0)
    lengths = [6, 3, 5]
    categories, behaviors, times = random_sequences(lengths, seed=2)
    next_categories = [np.append(c[1:], -1) for c in categories]  # last target unknown
    cat, length = pad_sequences(categories)
    beh, _ = pad_sequences(behaviors)
    tim, _ = pad_sequences(times)
    targets, _ = pad_sequences(next_categories, padding_value=-1)
    model = SequenceModel(N_CATEGORIES, embedding_dim=8, hidden=16, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = sequence_cross_entropy(model(cat, beh, length, tim), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 2  # it memorises three short sequences
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name


def test_sequence_model_trains_with_fit():
    set_seed(0)
    lengths = [4, 6, 2, 5, 3, 6]
    categories, behaviors, times = random_sequences(lengths, seed=3)
    cat, length = pad_sequences(categories)
    beh, _ = pad_sequences(behaviors)
    tim, _ = pad_sequences(times)
    targets, _ = pad_sequences([np.append(c[1:], -1) for c in categories], padding_value=-1)
    model = SequenceModel(N_CATEGORIES, embedding_dim=8, hidden=16, cell="gru")

    def loss_fn(model, batch):
        categories, behaviors, times, lengths, targets = batch
        return sequence_cross_entropy(model(categories, behaviors, lengths, times), targets)

    history = fit(
        model,
        (cat, beh, tim, length, targets),
        loss_fn=loss_fn,
        epochs=5,
        batch_size=3,
        lr=0.02,
        device="cpu",
        progress=False,
    )
    assert history.epochs == 5 and all(np.isfinite(history.train_loss))


def test_sequence_cross_entropy_skips_negative_targets():
    logits = torch.randn(2, 3, N_CATEGORIES)
    targets = torch.tensor([[1, -1, 4], [-1, -1, -1]])
    expected = F.cross_entropy(torch.stack([logits[0, 0], logits[0, 2]]), torch.tensor([1, 4]))
    torch.testing.assert_close(sequence_cross_entropy(logits, targets), expected)
    empty = sequence_cross_entropy(logits.requires_grad_(), torch.full((2, 3), -1))
    assert empty.item() == 0.0
    empty.backward()


# --------------------------------------------------------------------------------------------
# preparation helpers
# --------------------------------------------------------------------------------------------


def test_pad_sequences():
    padded, lengths = pad_sequences([[1, 2, 3], [4], []])
    assert padded.dtype == torch.int64
    assert padded.tolist() == [[1, 2, 3], [4, 0, 0], [0, 0, 0]]
    assert lengths.tolist() == [3, 1, 0]
    recent, lengths = pad_sequences([[1, 2, 3], [4]], max_length=2, padding_value=-1)
    assert recent.tolist() == [[2, 3], [4, -1]]
    assert lengths.tolist() == [2, 1]
    features, lengths = pad_sequences([np.ones((2, 3)), np.full((1, 3), 2.0)])
    assert features.dtype == torch.float32 and features.shape == (2, 2, 3)
    assert features[1, 1].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="trailing"):
        pad_sequences([np.ones((2, 3)), np.ones((2, 4))])


def test_time_gap_features():
    # user 1 at 0 s, 60 s, 60 s; user 2 at 1000 s, 1180 s
    timestamps = np.array([0, 60, 60, 1000, 1180])
    users = np.array([1, 1, 1, 2, 2])
    features = time_gap_features(timestamps, users)
    assert features.dtype == np.float32 and features.shape == (5, 2)
    since_previous = np.log1p([0, 1, 0, 0, 3])  # minutes, 0 at each user's first event
    until_next = np.log1p([1, 0, 0, 3, 0])
    np.testing.assert_allclose(features[:, 0], since_previous, rtol=1e-6)
    np.testing.assert_allclose(features[:, 1], until_next, rtol=1e-6)
    np.testing.assert_allclose(time_gap_features([0, 120])[:, 0], [0, np.log1p(2)], rtol=1e-6)
    with pytest.raises(ValueError, match="sorted"):
        time_gap_features([10, 0])


# --------------------------------------------------------------------------------------------
# TrajectoryModel (chapter 6)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trajectory_data():
    from interest_lib.data.features import CategoryVocabulary
    from interest_lib.data.simulation import simulate
    from interest_lib.data.split import split_by_time
    from interest_lib.data.tasks import next_category_task

    sim = simulate(n_users=60, seed=5)
    split = split_by_time(sim.events)
    ids = CategoryVocabulary.fit(split.train).ids
    train_task = next_category_task(sim.events, ids, None, split.train_end)
    valid_task = next_category_task(sim.events, ids, split.train_end, split.valid_end)
    test_task = next_category_task(sim.events, ids, split.valid_end, split.test_end)
    return sim.events, ids, train_task, valid_task, test_task


def test_trajectory_model_outputs_log_probabilities(trajectory_data):
    from interest_lib.data.sequences import user_sequences
    from interest_lib.models.trajectory import TrajectoryModel

    events, ids, train_task, _, _ = trajectory_data
    seqs = user_sequences(events, ids, train_task, max_len=12, request_context=True)
    categories, behaviors, times, lengths, targets, history = seqs.tensors(history=True)
    set_seed(0)
    for cell in ("lstm", "gru"):
        model = TrajectoryModel(len(ids), n_components=3, hidden=8, embedding_dim=4, cell=cell)
        out = model(categories, behaviors, lengths, times, history)
        assert out.shape == (*categories.shape, len(ids))
        valid = torch.arange(categories.shape[1])[None] < lengths[:, None]
        torch.testing.assert_close(out.exp().sum(-1)[valid], torch.ones(int(valid.sum())),
                                   atol=1e-4, rtol=0)  # fmt: skip
        # padding after a sequence does not change its outputs (no packing needed)
        longer = [torch.cat([t, t[:, :3]], dim=1) for t in (categories, behaviors, times)]
        out_longer = model(longer[0], longer[1], lengths, longer[2], history)
        torch.testing.assert_close(out_longer[:, : categories.shape[1]][valid], out[valid])
    with pytest.raises(ValueError, match="cell"):
        TrajectoryModel(len(ids), cell="rnn")


def test_trajectory_model_copies_inside_sessions_only():
    from interest_lib.models.trajectory import TrajectoryModel

    set_seed(0)
    model = TrajectoryModel(N_CATEGORIES, n_components=2, hidden=4, embedding_dim=4)
    categories = torch.tensor([[3, 3, 5]])
    times = torch.zeros(1, 3, 7)
    times[..., 6] = 1.0  # every event a fresh choice
    history = torch.zeros(1, 2, N_CATEGORIES)
    with torch.no_grad():
        model.copy.bias.fill_(10.0)  # rho close to 1
        model.copy.weight.zero_()
        inside = model(categories, torch.zeros_like(categories), torch.tensor([3]), times, history)
        times[..., 2] = 1.0  # now every next event opens a session: no copy
        across = model(categories, torch.zeros_like(categories), torch.tensor([3]), times, history)
    assert inside[0, 2].exp()[5] > 0.99  # copies the last category
    assert across[0, 2].exp()[5] < 0.9


def test_session_counts_restart_at_new_sessions():
    from interest_lib.models.trajectory import _session_counts

    choices = torch.tensor([[[1.0, 0], [0, 1], [1, 0], [1, 0]]])
    opens = torch.tensor([[False, False, True, False]])
    out = _session_counts(choices, opens)
    torch.testing.assert_close(out[0], torch.tensor([[1.0, 0], [1, 1], [1, 0], [2, 0]]))


def test_fit_and_score_a_trajectory_model(trajectory_data):
    from interest_lib.models.trajectory import (
        TrajectoryModel,
        fit_trajectory_model,
        trajectory_optimizer,
        trajectory_scores,
    )

    events, ids, train_task, valid_task, test_task = trajectory_data
    model, history = fit_trajectory_model(
        events, ids, train_task, valid_task, cell="gru", device="cpu", hidden=8,
        n_components=3, embedding_dim=4, window=16, epochs=2, batch_size=32,
    )  # fmt: skip
    assert isinstance(model, TrajectoryModel) and not model.training
    assert history.epochs >= 1 and np.isfinite(history.train_loss).all()
    assert np.isfinite(history.valid_metric).all()
    scores = trajectory_scores(model, events, ids, test_task, device="cpu")
    assert scores.shape == (len(test_task), len(ids))
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-4)
    bounded = trajectory_scores(model, events, ids, test_task, context=5, device="cpu")
    assert bounded.shape == scores.shape
    again, _ = fit_trajectory_model(
        events, ids, train_task, valid_task, cell="gru", device="cpu", hidden=8,
        n_components=3, embedding_dim=4, window=16, epochs=2, batch_size=32,
    )  # fmt: skip
    np.testing.assert_allclose(trajectory_scores(again, events, ids, test_task, device="cpu"),
                               scores, atol=1e-6)  # fmt: skip
    with pytest.raises(TypeError, match="unknown hyper-parameter"):
        fit_trajectory_model(events, ids, train_task, valid_task, hiden=8)
    groups = trajectory_optimizer(model, lr=0.01, component_lr=0.05).param_groups
    assert [g["lr"] for g in groups] == [0.01, 0.05]
    assert groups[1]["params"][0] is model.components


def test_fit_and_score_the_plain_sequence_model(trajectory_data):
    from interest_lib.data.tasks import N_REQUEST_FEATURES
    from interest_lib.models.recurrent import SequenceModel, fit_sequence_model
    from interest_lib.models.trajectory import trajectory_scores

    events, ids, train_task, valid_task, test_task = trajectory_data
    small = {"hidden": 8, "embedding_dim": 4, "window": 16, "epochs": 2, "batch_size": 32}
    model, history = fit_sequence_model(events, ids, train_task, valid_task, device="cpu",
                                        cell="lstm", **small)
    assert isinstance(model, SequenceModel) and not model.training and model.cell == "lstm"
    assert model.n_time_features == N_REQUEST_FEATURES  # reads the request context
    assert history.epochs >= 1 and np.isfinite(history.valid_metric).all()
    scores = trajectory_scores(model, events, ids, test_task, context=16, device="cpu")
    assert scores.shape == (len(test_task), len(ids))
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-4)
    again, _ = fit_sequence_model(events, ids, train_task, valid_task, device="cpu",
                                  cell="lstm", **small)
    np.testing.assert_allclose(trajectory_scores(again, events, ids, test_task, context=16,
                                                 device="cpu"), scores, atol=1e-6)
    # without validation points every epoch runs and the last weights are kept
    _, unchecked = fit_sequence_model(events, ids, train_task, valid_task.subset(
        np.zeros(len(valid_task), dtype=bool)), device="cpu", **small)
    assert unchecked.epochs == small["epochs"] and unchecked.best_epoch == small["epochs"]
    with pytest.raises(TypeError, match="unknown hyper-parameter"):
        fit_sequence_model(events, ids, train_task, valid_task, hiden=8)


def test_window_batches_keep_a_share_and_cut_the_padding():
    from interest_lib.models.recurrent import window_batches

    n, width = 40, 12
    lengths = torch.arange(n) % width + 1
    steps = torch.arange(width).expand(n, width)
    data = (steps, steps, steps[..., None].float(), lengths, steps, torch.zeros(n, 3))
    seen = []
    for categories, _, features, batch_lengths, _, history in window_batches(
            data, batch_size=8, share=0.5, seed=1):
        assert categories.shape[1] == int(batch_lengths.max()) == features.shape[1]
        assert history.shape[1] == 3  # not a per-position tensor: never cut
        seen.extend(batch_lengths.tolist())
    assert len(seen) == n // 2
    again = [b[3].tolist() for b in window_batches(data, batch_size=8, share=0.5, seed=1)]
    assert sorted(sum(again, [])) == sorted(seen)  # the same windows every time
    with pytest.raises(ValueError, match="train_share"):
        window_batches(data, batch_size=8, share=0.0)


def test_trajectory_model_parts_are_checked():
    from interest_lib.models.trajectory import PARTS, TrajectoryModel, check_parts

    assert check_parts(PARTS) == frozenset(PARTS)
    with pytest.raises(ValueError, match="unknown part"):
        TrajectoryModel(N_CATEGORIES, parts=("recurrence", "attention"))
    with pytest.raises(ValueError, match="components"):
        TrajectoryModel(N_CATEGORIES, parts=("recurrence", "taste"))
    with pytest.raises(TypeError, match="one string"):
        TrajectoryModel(N_CATEGORIES, parts="copy")


def test_every_part_of_the_trajectory_model_can_be_removed(trajectory_data):
    """Each variant of the ablation gives log-probabilities, and a removed part gets no gradient;
    all parts given is the default model, weight for weight and output for output."""
    from interest_lib.data.sequences import user_sequences
    from interest_lib.models.trajectory import PARTS, TrajectoryModel, trajectory_loss

    events, ids, train_task, _, _ = trajectory_data
    seqs = user_sequences(events, ids, train_task, max_len=12, request_context=True)
    batch = seqs.tensors(history=True)
    categories, behaviors, times, lengths, _, history = batch
    valid = torch.arange(categories.shape[1])[None] < lengths[:, None]
    set_seed(0)
    default = TrajectoryModel(len(ids), n_components=3, hidden=8, embedding_dim=4)
    set_seed(0)
    every_part = TrajectoryModel(len(ids), n_components=3, hidden=8, embedding_dim=4, parts=PARTS)
    torch.testing.assert_close(every_part(categories, behaviors, lengths, times, history),
                               default(categories, behaviors, lengths, times, history))
    unused_when_removed = {"recurrence": "rnn.weight_hh_l0", "copy": "copy.weight",
                           "components": "components", "taste": "log_prior"}
    for removed in PARTS:
        parts = [p for p in PARTS if p != removed and not (removed == "components" and p == "taste")]
        model = TrajectoryModel(len(ids), n_components=3, hidden=8, embedding_dim=4, parts=parts)
        out = model(categories, behaviors, lengths, times, history)
        torch.testing.assert_close(out.exp().sum(-1)[valid], torch.ones(int(valid.sum())),
                                   atol=1e-4, rtol=0)  # fmt: skip
        trajectory_loss(model, batch).backward()
        grads = {name: p.grad for name, p in model.named_parameters()}
        assert grads[unused_when_removed[removed]] is None, removed
        kept = [name for part, name in unused_when_removed.items() if part in parts]
        assert all(grads[name] is not None for name in kept), removed


def test_without_recurrence_earlier_events_reach_the_output_only_through_the_counts():
    from interest_lib.models.trajectory import TrajectoryModel

    set_seed(0)
    model = TrajectoryModel(N_CATEGORIES, n_components=2, hidden=4, embedding_dim=4,
                            parts=("copy", "components", "taste"))
    times = torch.zeros(1, 3, 7)  # no event is a fresh choice: the counts stay empty
    history = torch.zeros(1, 2, N_CATEGORIES)
    zeros = torch.zeros(1, 3, dtype=torch.int64)
    a = model(torch.tensor([[1, 2, 3]]), zeros, torch.tensor([3]), times, history)
    b = model(torch.tensor([[4, 0, 3]]), zeros, torch.tensor([3]), times, history)
    torch.testing.assert_close(a[0, 2], b[0, 2])  # same last event, different earlier ones
    set_seed(0)
    recurrent = TrajectoryModel(N_CATEGORIES, n_components=2, hidden=4, embedding_dim=4)
    a = recurrent(torch.tensor([[1, 2, 3]]), zeros, torch.tensor([3]), times, history)
    b = recurrent(torch.tensor([[4, 0, 3]]), zeros, torch.tensor([3]), times, history)
    assert not torch.allclose(a[0, 2], b[0, 2])
