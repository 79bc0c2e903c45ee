"""Tests of interest_lib.models.training: device choice, seeding and the training loop (on CPU)."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from interest_lib.models import training
from interest_lib.models.training import (
    DEVICE_ENV_VAR,
    TensorBatches,
    TrainingHistory,
    best_device,
    fit,
    set_seed,
    to_device,
)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and do not stall when the machine is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------
# device
# --------------------------------------------------------------------------------------------


@pytest.fixture
def no_accelerator(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV_VAR, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(training, "_mps_available", lambda: False)


def test_device_falls_back_to_cpu(no_accelerator):
    assert best_device() == torch.device("cpu")


def test_device_prefers_cuda_then_mps(no_accelerator, monkeypatch):
    monkeypatch.setattr(training, "_mps_available", lambda: True)
    assert best_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert best_device() == torch.device("cuda")


def test_environment_variable_forces_a_device(no_accelerator, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv(DEVICE_ENV_VAR, "cpu")
    assert best_device() == torch.device("cpu")
    monkeypatch.setenv(DEVICE_ENV_VAR, "cuda:1")
    assert best_device() == torch.device("cuda:1")
    monkeypatch.setenv(DEVICE_ENV_VAR, "auto")
    assert best_device() == torch.device("cuda")
    monkeypatch.setenv(DEVICE_ENV_VAR, "cpu")
    assert best_device("cuda") == torch.device("cuda")  # an explicit argument wins


def test_forced_unavailable_device_raises(no_accelerator, monkeypatch):
    monkeypatch.setenv(DEVICE_ENV_VAR, "cuda")
    with pytest.raises(RuntimeError, match="INTEREST_LIB_DEVICE='cuda'.*CUDA is not available"):
        best_device()
    monkeypatch.setenv(DEVICE_ENV_VAR, "mps")
    with pytest.raises(RuntimeError, match="MPS is not available"):
        best_device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv(DEVICE_ENV_VAR, "cuda:3")
    with pytest.raises(RuntimeError, match="only 1 CUDA device"):
        best_device()
    monkeypatch.setenv(DEVICE_ENV_VAR, "quantum")
    with pytest.raises(ValueError, match="not a device name"):
        best_device()


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def separable_data(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=generator)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x, y


def classification_loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    inputs, labels = batch
    return F.cross_entropy(model(inputs), labels)


def accuracy_of(x: torch.Tensor, y: torch.Tensor):
    def valid_fn(model: nn.Module) -> float:
        return float((model(x).argmax(dim=1) == y).float().mean())

    return valid_fn


def new_model(seed: int = 0) -> nn.Module:
    set_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))


def test_set_seed_repeats_random_draws():
    set_seed(3)
    first = torch.rand(3)
    set_seed(3)
    assert torch.equal(first, torch.rand(3))


def test_tensor_batches_cover_every_sample_once():
    x = torch.arange(10)
    batches = TensorBatches((x, x * 2), batch_size=4, generator=torch.Generator().manual_seed(0))
    assert len(batches) == 3
    seen = [batch for batch in batches]
    assert [len(b[0]) for b in seen] == [4, 4, 2]
    assert sorted(torch.cat([b[0] for b in seen]).tolist()) == list(range(10))
    assert all(torch.equal(b[1], b[0] * 2) for b in seen)
    with pytest.raises(ValueError, match="first dimension"):
        TensorBatches((x, x[:3]), batch_size=2)


def test_to_device_handles_nested_batches():
    batch = [torch.zeros(2), {"a": torch.ones(1)}, 3]
    moved = to_device(batch, torch.device("cpu"))
    assert isinstance(moved, tuple)
    assert moved[2] == 3 and torch.equal(moved[1]["a"], torch.ones(1))


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------


def test_tiny_model_learns_a_separable_problem():
    x, y = separable_data()
    x_valid, y_valid = separable_data(200, seed=1)
    model = new_model()
    history = fit(
        model,
        (x, y),
        loss_fn=classification_loss,
        valid_fn=accuracy_of(x_valid, y_valid),
        epochs=30,
        batch_size=32,
        lr=0.02,
        patience=None,
        device="cpu",
        progress=False,
    )
    assert isinstance(history, TrainingHistory)
    assert history.train_loss[-1] < history.train_loss[0] / 3
    assert history.best_valid >= 0.95
    assert accuracy_of(x_valid, y_valid)(model) == history.best_valid  # best weights kept
    assert not model.training
    frame = history.to_frame()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["train_loss", "valid_metric", "seconds"]
    assert frame.index.name == "epoch" and frame.index[0] == 1
    assert len(frame) == history.epochs == 30
    assert history.device == "cpu"


def test_early_stopping_restores_the_best_weights():
    x, y = separable_data()
    model = new_model()
    scripted = iter([0.1, 0.5, 0.4, 0.3, 0.2, 0.9, 0.9])
    snapshots: list[dict[str, torch.Tensor]] = []

    def valid_fn(m: nn.Module) -> float:
        assert not m.training  # evaluated in eval mode
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return next(scripted)

    history = fit(
        model,
        (x, y),
        loss_fn=classification_loss,
        valid_fn=valid_fn,
        epochs=7,
        patience=3,
        lr=0.05,
        device="cpu",
        progress=False,
    )
    assert history.epochs == 5  # epochs 3, 4, 5 do not improve on epoch 2
    assert history.stopped_early
    assert history.best_epoch == 2
    assert history.best_valid == 0.5
    assert history.valid_metric == [0.1, 0.5, 0.4, 0.3, 0.2]
    for name, value in model.state_dict().items():
        assert torch.equal(value, snapshots[1][name])
    assert not torch.equal(snapshots[1]["0.weight"], snapshots[4]["0.weight"])


def test_without_validation_all_epochs_run():
    x, y = separable_data(64)
    history = fit(
        new_model(), (x, y), loss_fn=classification_loss, epochs=3, device="cpu", progress=False
    )
    assert history.epochs == 3 and history.best_epoch == 3 and history.best_valid is None
    assert not history.stopped_early


def test_same_seed_gives_the_same_history():
    x, y = separable_data()
    x_valid, y_valid = separable_data(100, seed=1)

    def run(seed: int) -> TrainingHistory:
        return fit(
            new_model(seed),
            (x, y),
            loss_fn=classification_loss,
            valid_fn=accuracy_of(x_valid, y_valid),
            epochs=4,
            batch_size=16,
            device="cpu",
            seed=seed,
            progress=False,
        )

    first, second, other = run(0), run(0), run(1)
    assert first.train_loss == second.train_loss
    assert first.valid_metric == second.valid_metric
    assert first.train_loss != other.train_loss


def test_amp_on_cpu_is_ignored_silently():
    x, y = separable_data(128)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with_amp = fit(
            new_model(),
            (x, y),
            loss_fn=classification_loss,
            epochs=2,
            amp=True,
            device="cpu",
            progress=False,
        )
    without = fit(
        new_model(),
        (x, y),
        loss_fn=classification_loss,
        epochs=2,
        amp=False,
        device="cpu",
        progress=False,
    )
    assert with_amp.train_loss == without.train_loss


def test_dataset_and_dataloader_inputs():
    x, y = separable_data(100)
    from_dataset = fit(
        new_model(),
        TensorDataset(x, y),
        loss_fn=classification_loss,
        epochs=2,
        batch_size=25,
        device="cpu",
        progress=False,
    )
    loader = DataLoader(TensorDataset(x, y), batch_size=50, shuffle=False)
    from_loader = fit(
        new_model(), loader, loss_fn=classification_loss, epochs=2, device="cpu", progress=False
    )
    assert from_dataset.epochs == from_loader.epochs == 2

    def single_tensor_loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        (inputs,) = batch
        return model(inputs).pow(2).mean()

    fit(new_model(), x, loss_fn=single_tensor_loss, epochs=1, device="cpu", progress=False)
    with pytest.raises(TypeError, match="train_data"):
        fit(
            new_model(),
            [1, 2, 3],
            loss_fn=single_tensor_loss,
            epochs=1,
            device="cpu",
            progress=False,
        )


def test_non_finite_loss_stops_with_a_clear_error():
    x, y = separable_data(32)

    def broken_loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return classification_loss(model, batch) * float("nan")

    with pytest.raises(FloatingPointError, match="epoch 1"):
        fit(new_model(), (x, y), loss_fn=broken_loss, epochs=2, device="cpu", progress=False)


def test_frozen_parameters_stay_fixed():
    x, y = separable_data(64)
    model = new_model()
    model[0].weight.requires_grad_(False)
    frozen = model[0].weight.clone()
    fit(model, (x, y), loss_fn=classification_loss, epochs=2, device="cpu", progress=False)
    assert torch.equal(model[0].weight, frozen)


def test_tensor_batches_by_length_cover_every_sample_once_and_cut_the_padding():
    from interest_lib.models.training import BUCKET_POOL, TensorBatches

    n, width = 300, 20
    lengths = torch.randint(1, width + 1, (n,), generator=torch.Generator().manual_seed(0))
    padded = torch.arange(n)[:, None].repeat(1, width)  # each row holds its sample's index
    per_sample = torch.arange(n) * 10
    history = torch.zeros(n, 2, 5)
    batches = TensorBatches((padded, lengths, per_sample, history), batch_size=8,
                            generator=torch.Generator().manual_seed(1), lengths=lengths)
    assert batches.time_axes == (True, False, False, False)  # only dimension 1 of length `width`
    seen = []
    for rows, batch_lengths, values, hist in batches:
        assert rows.shape[1] == int(batch_lengths.max())  # cut after the longest sample
        assert hist.shape == (len(rows), 2, 5)
        index = rows[:, 0]
        torch.testing.assert_close(values, index * 10)
        torch.testing.assert_close(batch_lengths, lengths[index])
        seen.extend(index.tolist())
    assert sorted(seen) == list(range(n))
    # samples of similar length travel together: less padding than random batches
    waste = sum(int(b[1].max()) * len(b[1]) - int(b[1].sum()) for b in batches)
    random = TensorBatches((padded, lengths), batch_size=8, generator=torch.Generator().manual_seed(1))
    random_waste = sum(int(lengths[b[0][:, 0]].max()) * len(b[0]) - int(b[1].sum())
                       for b in random)
    assert waste < random_waste / 4
    assert BUCKET_POOL >= 1
    with pytest.raises(ValueError, match="lengths must have shape"):
        TensorBatches((padded,), batch_size=8, lengths=lengths[:-1])
