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

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from interest_lib.data.sequences import UserSequences, _ranges

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

    def _packed_inputs(
        self,
        categories: torch.Tensor,
        behaviors: torch.Tensor,
        lengths: torch.Tensor,
        time_features: torch.Tensor | None,
    ) -> torch.nn.utils.rnn.PackedSequence:
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
        inputs = torch.cat(parts, dim=-1)
        return pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)

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
        packed = self._packed_inputs(categories, behaviors, lengths, time_features)
        outputs, _ = self.rnn(packed)
        padded, _ = pad_packed_sequence(outputs, batch_first=True, total_length=categories.shape[1])
        return self.output_layer(self.dropout(padded))

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
        packed = self._packed_inputs(categories, behaviors, lengths, time_features)
        _, state = self.rnn(packed)
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


