r"""A plain recurrent sequence model (LSTM or GRU) and the helpers every recurrent model uses.

* :class:`SequenceModel` reads a user's events in order (category, behavior, time gaps) with an
  LSTM or GRU and predicts the category of the next event at every position. Train it with
  :func:`sequence_cross_entropy`.
* :func:`sequence_scores` runs any such model over :class:`~interest_lib.data.sequences.UserSequences`
  and returns the task's score matrix.
* :func:`pad_sequences`, :func:`time_gap_features`, :func:`last_valid` prepare inputs and read
  outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from interest_lib.data.sequences import UserSequences, _ranges

if TYPE_CHECKING:
    import pandas as pd

    from interest_lib.data.tasks import NextCategoryTask
    from interest_lib.models.training import TensorBatches, TrainingHistory

# --------------------------------------------------------------------------------------------
# the sequence model
# --------------------------------------------------------------------------------------------



def sequence_inputs(
    sequences: UserSequences, index: np.ndarray, n_time_features: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The padded inputs of a plain sequence model for the sequences ``index``.

    Parameters
    ----------
    sequences
        From :func:`~interest_lib.data.sequences.user_sequences`.
    index
        ``(b,)`` positions of the sequences in the batch.
    n_time_features
        How many time features the model reads (the first ones of ``sequences.time_features``).

    Returns
    -------
    tuple
        ``(categories, behaviors, lengths, time_features)``: ``(b, T)``, ``(b, T)``, ``(b,)`` and
        ``(b, T, n_time_features)`` (``None`` when the model reads none).
    """
    if n_time_features > sequences.n_time_features:
        raise ValueError(
            f"the model expects {n_time_features} time features, the sequences have "
            f"{sequences.n_time_features}; build them with request_context=True"
        )
    categories, behaviors, times, lengths, _ = sequences.padded(index)
    return categories, behaviors, lengths, times[..., :n_time_features] if n_time_features else None


class SequenceModel(nn.Module):
    r"""Recurrent next-category model over a user's event sequence (LSTM or GRU).

    Each event :math:`t` becomes the input

    .. math:: x_t = e^{\mathrm{cat}}_{c_t} \oplus e^{\mathrm{beh}}_{b_t} \oplus \tau_t

    (category embedding, behavior embedding, time features), the recurrent cell reads
    :math:`x_1, \dots, x_t` and the output layer maps its state :math:`h_t` to logits over the
    category of event :math:`t + 1`. Padded batches are packed
    (``torch.nn.utils.rnn.pack_padded_sequence``), so padding never enters the recurrence and a
    sequence gives the same outputs whatever batch it is in.

    Parameters
    ----------
    n_categories
        Number of categories :math:`C`. Input category ``-1`` (outside the vocabulary) has its own
        shared "unknown" embedding; outputs are over the :math:`C` known categories.
    n_behaviors
        Number of behavior codes (4: pv, cart, fav, buy in schema order).
    embedding_dim
        Size of the category embedding.
    hidden
        Size of the recurrent state.
    cell
        ``"lstm"`` or ``"gru"``.
    dropout
        Dropout on the recurrent outputs (and between layers when ``num_layers > 1``).
    time_features
        Number of time features per event (0 for none); see :func:`time_gap_features`.
    behavior_dim
        Size of the behavior embedding.
    num_layers
        Stacked recurrent layers.
    """

    def __init__(
        self,
        n_categories: int,
        n_behaviors: int = 4,
        embedding_dim: int = 32,
        hidden: int = 64,
        cell: Literal["lstm", "gru"] = "lstm",
        dropout: float = 0.1,
        time_features: int = 2,
        behavior_dim: int = 8,
        num_layers: int = 1,
    ) -> None:
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        self.n_categories = n_categories
        self.n_time_features = time_features
        self.cell = cell
        self.category_embedding = nn.Embedding(n_categories + 1, embedding_dim)  # last: unknown
        self.behavior_embedding = nn.Embedding(n_behaviors, behavior_dim)
        recurrent = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = recurrent(
            input_size=embedding_dim + behavior_dim + time_features,
            hidden_size=hidden,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.output_layer = nn.Linear(hidden, n_categories)

    def _inputs(
        self,
        categories: torch.Tensor,
        behaviors: torch.Tensor,
        lengths: torch.Tensor,
        time_features: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if categories.shape != behaviors.shape or categories.ndim != 2:
            raise ValueError(
                f"categories {tuple(categories.shape)} and behaviors {tuple(behaviors.shape)} "
                "must both have shape (batch, max_length)"
            )
        lengths = torch.as_tensor(lengths).to("cpu", torch.int64)  # packing wants CPU lengths
        if lengths.numel() and int(lengths.min()) < 1:
            raise ValueError("every sequence needs at least one event (a length of 0 was given)")
        categories = torch.where(categories < 0, self.n_categories, categories)
        parts = [self.category_embedding(categories), self.behavior_embedding(behaviors)]
        if self.n_time_features:
            if time_features is None:
                raise ValueError(f"the model expects {self.n_time_features} time features")
            expected = (*categories.shape, self.n_time_features)
            if tuple(time_features.shape) != expected:
                raise ValueError(
                    f"time_features has shape {tuple(time_features.shape)}, expected {expected}"
                )
            parts.append(time_features.to(parts[0].dtype))
        elif time_features is not None:
            raise ValueError("time_features given to a model built with time_features=0")
        return torch.cat(parts, dim=-1), lengths

    def forward(
        self,
        categories: torch.Tensor,
        behaviors: torch.Tensor,
        lengths: torch.Tensor,
        time_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Next-category logits at every position.

        Parameters
        ----------
        categories
            Category indices, ``int64``, shape ``(batch, max_length)``; ``-1`` = unknown.
        behaviors
            Behavior codes ``0 .. n_behaviors - 1``, ``int64``, shape ``(batch, max_length)``.
        lengths
            Number of valid events per sequence, shape ``(batch,)``, each at least 1.
        time_features
            Float, shape ``(batch, max_length, time_features)``; ``None`` if the model has none.

        Returns
        -------
        torch.Tensor
            Shape ``(batch, max_length, n_categories)``. Position ``t`` scores the category of
            event ``t + 1``. Positions at or after a sequence's length hold no information.
        """
        inputs, _ = self._inputs(categories, behaviors, lengths, time_features)
        outputs, _ = self.rnn(inputs)  # padding comes after the valid positions: no packing
        return self.output_layer(self.dropout(outputs))

    def batch_inputs(
        self, sequences: UserSequences, index: np.ndarray
    ) -> tuple[torch.Tensor | None, ...]:
        """The arguments of :meth:`forward` for the sequences ``index`` (see :func:`sequence_inputs`)."""
        return sequence_inputs(sequences, index, self.n_time_features)

    def forward_last(
        self,
        categories: torch.Tensor,
        behaviors: torch.Tensor,
        lengths: torch.Tensor,
        time_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits for the event after each sequence's last valid event, shape ``(batch, C)``.

        Same arguments as :meth:`forward`; cheaper, as only the final state is projected. Equal
        to ``last_valid(model(...), lengths)``.
        """
        inputs, lengths = self._inputs(categories, behaviors, lengths, time_features)
        packed = pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)  # packed, so the final state is the last valid position's
        final = state[0] if self.cell == "lstm" else state  # (num_layers, batch, hidden)
        return self.output_layer(self.dropout(final[-1]))


# --------------------------------------------------------------------------------------------
# preparing sequences
# --------------------------------------------------------------------------------------------


def pad_sequences(
    sequences: Sequence[ArrayLike],
    *,
    padding_value: float = 0,
    max_length: int | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length sequences into one padded tensor plus their lengths.

    Parameters
    ----------
    sequences
        One array per user, each of shape ``(length,)`` or ``(length, n_features)``, with equal
        trailing shapes.
    padding_value
        Value written after the end of each sequence (use ``-1`` for targets, see
        :func:`sequence_cross_entropy`).
    max_length
        Keep only the last ``max_length`` entries of longer sequences (the most recent events).
    dtype
        Tensor dtype; by default ``int64`` for integer input and ``float32`` otherwise.

    Returns
    -------
    (padded, lengths)
        ``padded`` of shape ``(n_sequences, T, ...)`` with ``T`` the longest kept length, and
        ``lengths`` (``int64``, shape ``(n_sequences,)``).
    """
    arrays = [np.asarray(s) for s in sequences]
    if max_length is not None:
        if max_length < 1:
            raise ValueError(f"max_length must be positive, got {max_length}")
        arrays = [a[-max_length:] for a in arrays]
    if not arrays:
        return torch.zeros((0, 0)), torch.zeros(0, dtype=torch.int64)
    trailing = {a.shape[1:] for a in arrays}
    if len(trailing) != 1:
        raise ValueError(f"sequences differ in their trailing shapes: {sorted(trailing)}")
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    # an empty list such as ``[]`` is float64 in NumPy; it must not decide the dtype
    kinds = [a.dtype for a in arrays if a.size] or [arrays[0].dtype]
    flat = np.concatenate(arrays).astype(np.result_type(*kinds), copy=False)
    if dtype is None:
        dtype = torch.int64 if np.issubdtype(flat.dtype, np.integer) else torch.float32
    width = int(lengths.max())
    padded = np.full((len(arrays), width, *flat.shape[1:]), padding_value, dtype=flat.dtype)
    rows = np.repeat(np.arange(len(arrays)), lengths)
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    padded[rows, np.arange(flat.shape[0]) - offsets] = flat
    return torch.as_tensor(padded).to(dtype), torch.as_tensor(lengths)


def time_gap_features(timestamps: ArrayLike, groups: ArrayLike | None = None) -> np.ndarray:
    r"""Two time features per event, in log-minutes.

    .. math::

        \tau_{t,1} = \log\!\left(1 + \frac{t_t - t_{t-1}}{60}\right), \qquad
        \tau_{t,2} = \log\!\left(1 + \frac{t_{t+1} - t_t}{60}\right)

    — the gap since the previous event and the gap to the next event, the one being predicted.
    The second is known at prediction time when the question is "what will the user look at
    when they come back at time :math:`t_{t+1}`"; drop it (``time_features=1``) to predict
    without that knowledge. Both are 0 where there is no neighbour in the same group.

    Parameters
    ----------
    timestamps
        Unix seconds, shape ``(n_events,)``, sorted within each group.
    groups
        Group of each event (e.g. ``user_id``), shape ``(n_events,)``; events of one group must
        be contiguous. ``None`` treats all events as one sequence. To have the last input event
        see the gap to its target, compute the features with the target event included, then
        drop the target row.

    Returns
    -------
    numpy.ndarray
        ``float32``, shape ``(n_events, 2)``.
    """
    times = np.asarray(timestamps, dtype=np.float64)
    gaps = np.diff(times)
    if groups is not None:
        group = np.asarray(groups)
        if group.shape != times.shape:
            raise ValueError(f"groups {group.shape} and timestamps {times.shape} differ in shape")
        gaps = np.where(group[1:] == group[:-1], gaps, 0.0)
    if np.any(gaps < 0):
        raise ValueError("timestamps must be sorted within each group")
    features = np.zeros((times.size, 2), dtype=np.float32)
    minutes = np.log1p(gaps / 60.0)
    features[1:, 0] = minutes
    features[:-1, 1] = minutes
    return features


def sequence_scores(
    model: nn.Module,
    sequences: UserSequences,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    softmax: bool = True,
) -> np.ndarray:
    """Run a sequence model over the sequences and keep the outputs at the masked positions.

    The model owns its inputs: ``model(*model.batch_inputs(sequences, index))`` must return
    ``(b, T, C)`` next-category logits, as :class:`SequenceModel` and
    :class:`~interest_lib.models.trajectory.TrajectoryModel` do. Batches hold sequences of similar
    length, padded per batch.

    Parameters
    ----------
    model
        The trained model; it is put in eval mode.
    sequences
        From :func:`user_sequences`.
    batch_size
        Sequences per forward pass.
    device
        Where to run; ``None`` uses :func:`interest_lib.models.training.best_device`.
    softmax
        Return probabilities (``True``) or raw logits.

    Returns
    -------
    numpy.ndarray
        ``float32 (n_predictions, C)`` in mask order (the order of ``task.rows``).
    """
    if device is None:
        from interest_lib.models.training import best_device

        device = best_device()
    out_index = np.cumsum(sequences.mask) - 1
    out = np.zeros((sequences.n_predictions, sequences.n_categories), dtype=np.float32)
    model.eval()
    with torch.no_grad():
        for index in sequences.batches(batch_size):
            inputs = model.batch_inputs(sequences, index)
            offsets = sequences.offsets[index]
            flat = _ranges(offsets, sequences.lengths[index])
            where = np.zeros(tuple(inputs[0].shape), dtype=bool)
            rows = np.repeat(np.arange(index.size), sequences.lengths[index])
            cols = flat - np.repeat(offsets, sequences.lengths[index])
            selected = sequences.mask[flat]
            if not selected.any():
                continue
            where[rows[selected], cols[selected]] = True
            # lengths (the third input) stay on the CPU, where packing wants them
            arguments = [x if x is None or i == 2 else x.to(device) for i, x in enumerate(inputs)]
            logits = model(*arguments)
            picked = logits[torch.from_numpy(where).to(logits.device)].float()
            if softmax:
                picked = torch.softmax(picked, dim=-1)
            # boolean indexing walks (row, col) in row-major order, the order of flat[selected]
            out[out_index[flat[selected]]] = picked.cpu().numpy()
    return out


def last_valid(outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The entry at each sequence's last valid position.

    Parameters
    ----------
    outputs
        Shape ``(batch, max_length, ...)``, e.g. the logits of :meth:`SequenceModel.forward`.
    lengths
        Shape ``(batch,)``, each in ``1 .. max_length``.

    Returns
    -------
    torch.Tensor
        Shape ``(batch, ...)``: ``outputs[i, lengths[i] - 1]``.
    """
    lengths = torch.as_tensor(lengths, device=outputs.device).long()
    rows = torch.arange(outputs.shape[0], device=outputs.device)
    return outputs[rows, lengths - 1]


def sequence_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of next-category predictions over the valid positions.

    Parameters
    ----------
    logits
        Shape ``(batch, max_length, n_categories)``.
    targets
        Category index of the next event, ``int64``, shape ``(batch, max_length)``. Negative
        entries are skipped: pad with ``-1`` (``pad_sequences(..., padding_value=-1)``), and a
        next category outside the vocabulary (``-1``) is skipped too.

    Returns
    -------
    torch.Tensor
        Scalar mean over the positions with a target (0 if there are none).
    """
    valid = targets >= 0
    if not bool(valid.any()):
        return logits.sum() * 0.0  # keeps the graph, contributes no gradient
    return F.cross_entropy(logits[valid], targets[valid])


# --------------------------------------------------------------------------------------------
# training on windows of the training days
# --------------------------------------------------------------------------------------------


def window_batches(
    data: Sequence[torch.Tensor],
    *,
    batch_size: int,
    share: float = 1.0,
    seed: int = 0,
    pin_memory: bool = False,
) -> TensorBatches:
    """Mini-batches of training windows, windows of similar length batched together.

    Parameters
    ----------
    data
        ``UserSequences.tensors()`` (five tensors) or ``tensors(history=True)`` (six): the
        lengths are the fourth.
    batch_size
        Windows per batch.
    share
        Share of the windows to train on, in ``(0, 1]``: a random subset drawn once from ``seed``
        (the same windows every epoch).
    seed
        Seeds the subset and the order of the batches.
    pin_memory
        Pin batches for copies to a GPU.

    Returns
    -------
    TensorBatches
        Each batch cut after its longest window (only the per-position tensors are cut).
    """
    from interest_lib.models.training import TensorBatches

    if not 0.0 < share <= 1.0:
        raise ValueError(f"train_share must be in (0, 1], got {share}")
    data = tuple(data)
    if share < 1.0:
        n_windows = int(data[0].shape[0])
        keep = np.random.default_rng(seed).choice(n_windows, max(1, round(share * n_windows)),
                                                  replace=False)
        data = tuple(t[torch.from_numpy(np.sort(keep))] for t in data)
    # (categories, behaviors, features, lengths, targets[, history]): which have time steps
    time_axes = (True, True, True, False, True, False)[: len(data)]
    return TensorBatches(data, batch_size, generator=torch.Generator().manual_seed(seed),
                         pin_memory=pin_memory, lengths=data[3], time_axes=time_axes)


def validation_ndcg(
    sequences: UserSequences, target: np.ndarray, device: torch.device, batch_size: int = 8
) -> Callable[[nn.Module], float]:
    """``valid_fn`` for :func:`interest_lib.models.training.fit`: NDCG@10 of a model's next-category
    scores at the masked positions of ``sequences`` against ``target`` (``(n,)`` category
    indices, ``-1`` = outside the vocabulary)."""
    from interest_lib.evaluation import metrics

    def valid_ndcg(model: nn.Module) -> float:
        scores = sequence_scores(model, sequences, batch_size=batch_size, device=device)
        return metrics.ndcg_at_k(scores, target, 10)

    return valid_ndcg


def with_defaults(hyper: Mapping[str, object], defaults: Mapping[str, object]) -> dict:
    """``defaults`` updated with ``hyper``, after checking ``hyper`` names only known settings.

    Raises
    ------
    TypeError
        For a name that ``defaults`` lacks (a misspelt setting must not be ignored).
    """
    unknown = set(hyper) - set(defaults)
    if unknown:
        raise TypeError(f"unknown hyper-parameter(s) {sorted(unknown)}")
    return {**defaults, **hyper}


def training_data(
    events: pd.DataFrame,
    category_ids: ArrayLike,
    train_task: NextCategoryTask,
    valid_task: NextCategoryTask,
    *,
    window: int,
    valid_context: int,
    batch_size: int,
    share: float,
    history: bool,
    seed: int,
    device: torch.device,
    valid_batch_size: int = 8,
) -> tuple[TensorBatches, Callable[[nn.Module], float] | None]:
    """A sequence model's training batches and validation function, from the tasks' points.

    Training sequences are windows of at most ``window`` events with the request context
    (``history=True`` adds the counts before each window), batched by :func:`window_batches`;
    the validation function is :func:`validation_ndcg` on sequences with at least
    ``valid_context`` events before each user's first validation point, or ``None`` when
    ``valid_task`` is empty (then :func:`~interest_lib.models.training.fit` keeps the last epoch).
    """
    from interest_lib.data import sequences

    train_seq = sequences.user_sequences(events, category_ids, train_task, max_len=window,
                                         request_context=True)
    batches = window_batches(train_seq.tensors(history=history), batch_size=batch_size,
                             share=share, seed=seed, pin_memory=device.type == "cuda")
    if not len(valid_task):
        return batches, None
    valid_seq = sequences.user_sequences(events, category_ids, valid_task, context=valid_context,
                                         request_context=True)
    return batches, validation_ndcg(valid_seq, valid_task.target, device, valid_batch_size)


PLAIN_DEFAULTS: dict[str, float] = {
    "cell": "gru",
    "hidden": 128,
    "embedding_dim": 64,
    "behavior_dim": 8,
    "dropout": 0.1,
    "window": 64,
    "batch_size": 32,
    "epochs": 3,
    "train_share": 1.0,
    "lr": 0.005,
    "valid_context": 8,
    "patience": 1,
}
"""Hyper-parameters of :func:`fit_sequence_model`, chosen on the validation day of the book's
default log: ``python benchmarks/tune_plain_model.py grid`` trains the cell (GRU, LSTM), the state
(64, 128), the learning rate (0.002, 0.005) and the batch size (32, 64 windows) with up to eight
passes and early stopping, and chooses the setting that trains fastest among those within 0.001
of the best validation NDCG@10 (differences that small are noise); ``epochs`` is that setting's
best epoch. The test day is not read."""


def plain_sequence_model(n_categories: int, settings: Mapping[str, object]) -> SequenceModel:
    """The plain :class:`SequenceModel` with the architecture of ``settings`` (the keys of
    :data:`PLAIN_DEFAULTS`: ``cell``, ``hidden``, ``embedding_dim``, ``behavior_dim``,
    ``dropout``), reading the request context; its weights are drawn from torch's generator."""
    from interest_lib.data.tasks import N_REQUEST_FEATURES

    return SequenceModel(
        n_categories,
        embedding_dim=int(settings["embedding_dim"]),
        hidden=int(settings["hidden"]),
        cell=str(settings["cell"]),  # type: ignore[arg-type]
        dropout=float(settings["dropout"]),
        time_features=N_REQUEST_FEATURES,
        behavior_dim=int(settings["behavior_dim"]),
    )


def plain_loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The training loss of :class:`SequenceModel`: cross-entropy against the *next* category.

    ``batch`` holds rows of ``UserSequences.tensors()``: ``(categories, behaviors,
    time_features, lengths, targets)``, the target at position :math:`t` being the category of
    event :math:`t + 1` (``-1`` where there is none).
    """
    categories, behaviors, features, lengths, targets = batch
    return sequence_cross_entropy(model(categories, behaviors, lengths, features), targets)


def fit_sequence_model(
    events: pd.DataFrame,
    category_ids: ArrayLike,
    train_task: NextCategoryTask,
    valid_task: NextCategoryTask,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = False,
    **hyper: float | str,
) -> tuple[SequenceModel, TrainingHistory]:
    """Train the plain :class:`SequenceModel` on a task's points, early-stopped on validation.

    The practitioner's recurrent model: category and behaviour embeddings and the request
    context (:data:`interest_lib.data.tasks.REQUEST_FEATURE_NAMES`: time gaps, does the next
    event open a session, platform, time of day) as inputs, an LSTM or GRU, and one linear layer
    over all categories, trained with cross-entropy on windows of the training days by
    :func:`interest_lib.models.training.fit` (AdamW), keeping the epoch of best validation
    NDCG@10.

    Parameters
    ----------
    events, category_ids
        The whole log (earlier events are read as input) and the ``(C,)`` training vocabulary.
    train_task, valid_task
        Training targets, and validation points for early stopping (none: every epoch runs and
        the last weights are kept).
    seed, device, progress
        The seed of the weights, the windows and the batches; where to train (``None``:
        :func:`~interest_lib.models.training.best_device`); a progress bar or not.
    **hyper
        Overrides of :data:`PLAIN_DEFAULTS`.

    Returns
    -------
    (model, history)
        The trained :class:`SequenceModel` (best validation epoch, eval mode) and its
        :class:`~interest_lib.models.training.TrainingHistory`.
    """
    from interest_lib.models import training

    h = with_defaults(hyper, PLAIN_DEFAULTS)
    target = training.best_device(device)
    batches, valid_fn = training_data(
        events, category_ids, train_task, valid_task, window=int(h["window"]),
        valid_context=int(h["valid_context"]), batch_size=int(h["batch_size"]),
        share=float(h["train_share"]), history=False, seed=seed, device=target,
        valid_batch_size=64,
    )
    training.set_seed(seed)
    model = plain_sequence_model(len(np.asarray(category_ids)), h)
    history = training.fit(
        model, batches, loss_fn=plain_loss, valid_fn=valid_fn, epochs=int(h["epochs"]),
        batch_size=int(h["batch_size"]), lr=float(h["lr"]), patience=int(h["patience"]),
        device=target, seed=seed, progress=progress,
    )
    return model, history
