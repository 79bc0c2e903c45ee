"""Device choice, seeding and the one training loop every chapter uses.

The loop is model-agnostic: a batch is a tuple of tensors and the caller says how to turn a batch
into a loss with ``loss_fn(model, batch) -> scalar tensor``. For the interest MLP::

    def loss_fn(model, batch):
        inputs, targets = batch
        return soft_cross_entropy(model(inputs), targets)

    history = fit(model, (inputs, targets), loss_fn=loss_fn, valid_fn=valid_hr10, epochs=30)

and a sequence model receives ``(categories, behaviors, times, lengths, targets)`` in the same way.
Each optimisation step is :func:`train_step`; its few lines are the whole of the learning.

The same code runs on CPU, CUDA and Apple MPS. :func:`best_device` picks the accelerator, and the
environment variable ``INTEREST_LIB_DEVICE`` overrides the choice without editing a chapter.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

DEVICE_ENV_VAR: str = "INTEREST_LIB_DEVICE"
"""Environment variable that forces a device, e.g. ``cpu``, ``cuda``, ``cuda:1`` or ``mps``."""

Batch = tuple[Any, ...]
LossFn = Callable[[nn.Module, Batch], torch.Tensor]


# --------------------------------------------------------------------------------------------
# device and seeds
# --------------------------------------------------------------------------------------------


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _check_available(dev: torch.device, source: str) -> torch.device:
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"{source} asks for {dev}, but CUDA is not available here")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise RuntimeError(f"{source} asks for {dev}, but only {count} CUDA device(s) exist")
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise RuntimeError(f"{source} asks for {dev}, but Apple MPS is not available here")
        return dev
    backend = getattr(torch, dev.type, None)
    if backend is not None and hasattr(backend, "is_available") and backend.is_available():
        return dev
    raise RuntimeError(f"{source} asks for {dev}, which is not available here")


def best_device(prefer: str | torch.device | None = None) -> torch.device:
    """The device to compute on.

    Order of precedence: the ``prefer`` argument, then the environment variable
    ``INTEREST_LIB_DEVICE``, then the best one present (CUDA, then Apple MPS, then CPU).
    ``"auto"`` or an empty value means the automatic choice.

    Parameters
    ----------
    prefer
        A device such as ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``; ``None`` defers to the
        environment variable and then to the automatic choice.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If the requested name is not a device name.
    RuntimeError
        If the requested device is not available on this machine.
    """
    if prefer is not None:
        requested, source = str(prefer).strip(), "best_device(prefer=...)"
    else:
        requested, source = os.environ.get(DEVICE_ENV_VAR, "").strip(), DEVICE_ENV_VAR
    if requested and requested.lower() != "auto":
        try:
            dev = torch.device(requested)
        except (RuntimeError, ValueError) as error:
            raise ValueError(f"{source}={requested!r} is not a device name: {error}") from None
        return _check_available(dev, f"{source}={requested!r}")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


@contextmanager
def one_cpu_thread(target: torch.device | None = None) -> Iterator[None]:
    """Run a block on one CPU thread, then restore PyTorch's thread count.

    Small models train fastest on one thread, and one thread makes a result the same on every
    machine (a sum split over two threads can round differently).

    Parameters
    ----------
    target
        The device the block computes on: the thread count changes only when it is the CPU;
        ``None`` changes it in any case.
    """
    threads = torch.get_num_threads()
    if target is None or target.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) for a reproducible run.

    cuDNN is also set to deterministic kernels without autotuning, which costs little for the
    book's models. Bit-identical results are guaranteed on CPU; on a GPU a few kernels may still
    differ in the last digits.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CPU, CUDA and MPS generators
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


# --------------------------------------------------------------------------------------------
# batches
# --------------------------------------------------------------------------------------------


def to_device(batch: Any, target: torch.device, non_blocking: bool = False) -> Any:
    """Move a tensor, or the tensors inside a tuple, list or dict, to ``target``.

    Lists come back as tuples, so a batch is always indexable and unpackable.
    """
    if isinstance(batch, torch.Tensor):
        return batch.to(target, non_blocking=non_blocking)
    if isinstance(batch, (tuple, list)):
        return tuple(to_device(item, target, non_blocking) for item in batch)
    if isinstance(batch, dict):
        return {key: to_device(value, target, non_blocking) for key, value in batch.items()}
    return batch


BUCKET_POOL = 32
"""Batches per pool within which :class:`TensorBatches` sorts samples by length."""


class TensorBatches:
    """Mini-batches of aligned tensors, indexed directly (no per-sample collation).

    Parameters
    ----------
    tensors
        Tensors sharing their first dimension (the samples).
    batch_size
        Samples per batch; the last batch may be smaller.
    shuffle
        Draw a new permutation every epoch from ``generator``.
    generator
        Source of the permutations; seed it for reproducible batches.
    pin_memory
        Pin each batch in page-locked memory so that copies to a GPU can overlap computation.
    lengths
        ``(n,)`` valid length of each sample, for padded sequences. Batches are then made of
        samples of similar length — each epoch the shuffled samples are cut into pools of
        :data:`BUCKET_POOL` batches, each pool is sorted by length and cut into batches, and the
        batches are shuffled — and every tensor of ``time_axes`` is cut after the batch's longest
        sample along its dimension 1, so little time is spent on padding.
    time_axes
        With ``lengths``: which tensors have the time steps as dimension 1 (default: those whose
        dimension 1 has the padded length).
    """

    def __init__(
        self,
        tensors: Sequence[torch.Tensor],
        batch_size: int,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
        pin_memory: bool = False,
        lengths: torch.Tensor | None = None,
        time_axes: Sequence[bool] | None = None,
    ) -> None:
        if not tensors:
            raise ValueError("no tensors to batch")
        sizes = {int(t.shape[0]) for t in tensors}
        if len(sizes) != 1:
            raise ValueError(f"tensors differ in their first dimension: {sorted(sizes)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.tensors = tuple(tensors)
        self.n_samples = sizes.pop()
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator
        self.pin_memory = pin_memory
        self.lengths = None if lengths is None else torch.as_tensor(lengths).cpu()
        if self.lengths is not None:
            if self.lengths.shape != (self.n_samples,):
                raise ValueError(f"lengths must have shape ({self.n_samples},), "
                                 f"got {tuple(self.lengths.shape)}")
            padded = max(int(t.shape[1]) for t in self.tensors if t.ndim > 1)
            self.time_axes = (tuple(bool(a) for a in time_axes) if time_axes is not None else
                              tuple(t.ndim > 1 and int(t.shape[1]) == padded
                                    for t in self.tensors))
            if len(self.time_axes) != len(self.tensors):
                raise ValueError("time_axes needs one entry per tensor")

    def __len__(self) -> int:
        return math.ceil(self.n_samples / self.batch_size)

    def _batch_indices(self) -> list[torch.Tensor]:
        if self.shuffle:
            order = torch.randperm(self.n_samples, generator=self.generator)
        else:
            order = torch.arange(self.n_samples)
        if self.lengths is None:
            return list(order.split(self.batch_size))
        pool = self.batch_size * BUCKET_POOL
        batches = []
        for start in range(0, self.n_samples, pool):
            chunk = order[start : start + pool]
            by_length = chunk[torch.argsort(self.lengths[chunk], stable=True)]
            batches.extend(by_length.split(self.batch_size))
        if self.shuffle:
            permutation = torch.randperm(len(batches), generator=self.generator)
            batches = [batches[i] for i in permutation.tolist()]
        return batches

    def __iter__(self) -> Iterator[Batch]:
        for index in self._batch_indices():
            batch = tuple(t[index.to(t.device)] for t in self.tensors)
            if self.lengths is not None:
                longest = int(self.lengths[index].max())
                batch = tuple(t[:, :longest] if cut else t
                              for t, cut in zip(batch, self.time_axes))
            if self.pin_memory:
                batch = tuple(t.pin_memory() if t.device.type == "cpu" else t for t in batch)
            yield batch


TrainData = torch.Tensor | Sequence[torch.Tensor] | Dataset | DataLoader | TensorBatches


def _batches(
    train_data: TrainData,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator,
    pin_memory: bool,
) -> Iterable[Any]:
    if isinstance(train_data, (DataLoader, TensorBatches)):
        return train_data
    if isinstance(train_data, torch.Tensor):
        return TensorBatches((train_data,), batch_size, shuffle, generator, pin_memory)
    if isinstance(train_data, Dataset):
        return DataLoader(
            train_data,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            pin_memory=pin_memory,
        )
    if isinstance(train_data, (tuple, list)) and all(
        isinstance(t, torch.Tensor) for t in train_data
    ):
        return TensorBatches(train_data, batch_size, shuffle, generator, pin_memory)
    raise TypeError(
        "train_data must be a tensor, a tuple of tensors, a Dataset or a DataLoader, "
        f"got {type(train_data).__name__}"
    )


def _batch_size_of(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    if isinstance(batch, (tuple, list)) and batch:
        return _batch_size_of(batch[0])
    if isinstance(batch, dict) and batch:
        return _batch_size_of(next(iter(batch.values())))
    return 1


# --------------------------------------------------------------------------------------------
# the training step and loop
# --------------------------------------------------------------------------------------------


def _grad_scaler(enabled: bool) -> torch.amp.GradScaler:
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)  # torch < 2.3


def train_step(
    model: nn.Module,
    batch: Batch,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None = None,
    max_grad_norm: float | None = None,
) -> torch.Tensor:
    """One optimisation step on one batch; returns the (detached) loss.

    Without ``scaler`` this is the textbook step::

        optimizer.zero_grad()
        loss = loss_fn(model, batch)
        loss.backward()
        optimizer.step()

    An enabled ``GradScaler`` adds mixed precision on CUDA: the forward pass runs under
    ``torch.autocast`` in float16 and the loss is scaled so small gradients do not underflow.
    """
    optimizer.zero_grad(set_to_none=True)
    use_amp = scaler is not None and scaler.is_enabled()
    with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
        loss = loss_fn(model, batch)
    if use_amp:
        scaler.scale(loss).backward()
        if max_grad_norm is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        if max_grad_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
    return loss.detach()


@dataclass
class TrainingHistory:
    """What happened during :func:`fit`, one entry per epoch.

    Attributes
    ----------
    train_loss
        Mean training loss of each epoch (weighted by batch size).
    valid_metric
        Validation metric after each epoch (higher is better); ``NaN`` without ``valid_fn``.
    seconds
        Wall-clock seconds of each epoch, validation included.
    best_epoch
        1-based epoch whose weights the model holds at the end.
    stopped_early
        Whether training stopped before ``epochs`` because validation stopped improving.
    device
        Where the model was trained.
    """

    train_loss: list[float] = field(default_factory=list)
    valid_metric: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    device: str = "cpu"

    @property
    def epochs(self) -> int:
        """Number of epochs run."""
        return len(self.train_loss)

    @property
    def best_valid(self) -> float | None:
        """Validation metric of the best epoch, ``None`` without validation."""
        if self.best_epoch is None or math.isnan(self.valid_metric[self.best_epoch - 1]):
            return None
        return self.valid_metric[self.best_epoch - 1]

    def to_frame(self) -> pd.DataFrame:
        """One row per epoch (index ``epoch``, from 1): train_loss, valid_metric, seconds."""
        frame = pd.DataFrame(
            {
                "train_loss": self.train_loss,
                "valid_metric": self.valid_metric,
                "seconds": self.seconds,
            },
            index=pd.RangeIndex(1, self.epochs + 1, name="epoch"),
        )
        return frame


def _evaluate(model: nn.Module, valid_fn: Callable[[nn.Module], float]) -> float:
    model.eval()
    with torch.no_grad():
        value = valid_fn(model)
    model.train()
    return float(value)


def fit(
    model: nn.Module,
    train_data: TrainData,
    *,
    loss_fn: LossFn,
    valid_fn: Callable[[nn.Module], float] | None = None,
    epochs: int = 20,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    patience: int | None = 3,
    min_delta: float = 0.0,
    device: str | torch.device | None = None,
    amp: bool = False,
    seed: int = 0,
    shuffle: bool = True,
    max_grad_norm: float | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    progress: bool = True,
) -> TrainingHistory:
    """Train ``model`` with mini-batches, AdamW and early stopping on a validation metric.

    Long only through its parameters: the body is the epoch loop; one epoch, the optimisation
    step and early stopping are helpers.

    Parameters
    ----------
    model
        Any ``torch.nn.Module``; it is moved to the device and left there, in eval mode, holding
        the weights of the best epoch.
    train_data
        A tensor, a tuple of tensors sharing their first dimension (samples), a ``Dataset``, or a
        ready ``DataLoader`` or :class:`TensorBatches` (then ``batch_size``, ``shuffle`` and the
        shuffling's seed are its own). Tensors are batched by direct indexing, which is much
        faster than a ``DataLoader`` for in-memory data.
    loss_fn
        ``loss_fn(model, batch) -> scalar tensor``. ``batch`` is a tuple of tensors already on the
        device, in the order of ``train_data``.
    valid_fn
        ``valid_fn(model) -> float``, higher is better (e.g. HR@10 on the validation users). It is
        called after every epoch in eval mode under ``torch.no_grad()``. ``None`` trains for all
        ``epochs`` and keeps the last weights.
    epochs, batch_size
        Maximum number of passes over the training data; samples per mini-batch.
    lr, weight_decay
        Learning rate and decoupled weight decay of ``torch.optim.AdamW``.
    patience, min_delta
        Stop after ``patience`` epochs without an increase of the validation metric by more than
        ``min_delta``; ``patience=None`` never stops early (the best weights are still restored).
    device
        Where to train; ``None`` uses :func:`best_device`.
    amp
        Mixed precision (float16 autocast and gradient scaling) on CUDA; ignored elsewhere.
    seed
        Seeds Python, NumPy and PyTorch (dropout, shuffling) at the start. The model's initial
        weights are drawn when it is built, so call :func:`set_seed` before building it too.
    shuffle
        Reshuffle the samples every epoch.
    max_grad_norm
        Clip the gradient norm to this value; ``None`` does not clip.
    optimizer
        A ready optimizer over ``model``'s parameters (``lr`` and ``weight_decay`` are then
        unused); by default AdamW over the parameters that require a gradient.
    progress
        Show a progress bar over epochs (``tqdm.auto``: a widget in notebooks, text elsewhere).

    Returns
    -------
    TrainingHistory
        Per-epoch loss, metric and time; ``history.to_frame()`` is ready to plot.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be positive, got {epochs}")
    target = best_device(device)
    set_seed(seed)
    batches = _batches(train_data, batch_size, shuffle, torch.Generator().manual_seed(seed),
                       pin_memory=target.type == "cuda")  # fmt: skip
    step = _step_function(model.to(target), loss_fn, optimizer, lr, weight_decay, max_grad_norm,
                          amp=amp and target.type == "cuda")  # fmt: skip
    history = TrainingHistory(device=str(target))
    stopping = _EarlyStopping(patience, min_delta)
    bar = tqdm(range(1, epochs + 1), desc="training", unit="epoch", disable=not progress)
    for epoch in bar:
        started = time.perf_counter()
        epoch_loss = _train_epoch(model, batches, step, target, epoch)
        value = _evaluate(model, valid_fn) if valid_fn is not None else math.nan
        history.train_loss.append(epoch_loss)
        history.valid_metric.append(value)
        history.seconds.append(time.perf_counter() - started)
        bar.set_postfix(loss=f"{epoch_loss:.4f}", valid=f"{value:.4f}")
        if valid_fn is None or stopping.improved(model, value):
            history.best_epoch = epoch
        elif stopping.exhausted:
            history.stopped_early = epoch < epochs
            break
    bar.close()
    if stopping.best_state is not None:
        model.load_state_dict(stopping.best_state)
    model.eval()
    return history


def _step_function(
    model: nn.Module,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer | None,
    lr: float,
    weight_decay: float,
    max_grad_norm: float | None,
    amp: bool,
) -> Callable[[nn.Module, Batch], torch.Tensor]:
    """:func:`train_step` bound to its optimizer (by default AdamW over the parameters that need a
    gradient), gradient scaler and clipping: ``step(model, batch) -> loss``."""
    if optimizer is None:
        parameters = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    return partial(
        train_step,
        loss_fn=loss_fn,
        optimizer=optimizer,
        scaler=_grad_scaler(enabled=amp),
        max_grad_norm=max_grad_norm,
    )


def _train_epoch(
    model: nn.Module,
    batches: Iterable[Any],
    step: Callable[[nn.Module, Batch], torch.Tensor],
    target: torch.device,
    epoch: int,
) -> float:
    """One pass over the batches in train mode; the mean loss, weighted by batch size.

    Raises ``ValueError`` when there are no batches and ``FloatingPointError`` when the loss is
    not finite.
    """
    model.train()
    total_loss = torch.zeros((), device=target)
    n_seen = 0
    for batch in batches:
        batch = to_device(batch, target, non_blocking=target.type == "cuda")
        loss = step(model, batch)
        size = _batch_size_of(batch)
        total_loss += loss.float() * size  # stays on the device: no sync per batch
        n_seen += size
    if n_seen == 0:
        raise ValueError("train_data yielded no batches")
    epoch_loss = float(total_loss) / n_seen
    if not math.isfinite(epoch_loss):
        raise FloatingPointError(
            f"training loss is {epoch_loss} at epoch {epoch}; try a lower learning rate"
        )
    return epoch_loss


class _EarlyStopping:
    """The best validation value so far, the weights that reached it, and the epochs since."""

    def __init__(self, patience: int | None, min_delta: float) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.best_value = -math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.epochs_without_improvement = 0

    def improved(self, model: nn.Module, value: float) -> bool:
        """Record one epoch's value; keep a copy of the weights if it beats the best by more than
        ``min_delta`` (the first epoch always counts, even with a ``NaN`` value)."""
        if value > self.best_value + self.min_delta or self.best_state is None:
            if not math.isnan(value):
                self.best_value = value
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self.epochs_without_improvement = 0
            return True
        self.epochs_without_improvement += 1
        return False

    @property
    def exhausted(self) -> bool:
        """Whether ``patience`` epochs in a row brought no improvement."""
        return self.patience is not None and self.epochs_without_improvement >= self.patience
