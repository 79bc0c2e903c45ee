r"""The book's neural models: the interest MLP and the recurrent trajectory model.

* :class:`InterestMLP` turns a user's behavior vector :math:`x` (one entry per category) into an
  interest vector :math:`v = \sigma(Wx + b)` and then into scores over the categories of the next
  window. Train it with :func:`soft_cross_entropy` against the next-window distribution.
* :class:`SequenceModel` reads a user's events in order (category, behavior, time gaps) with an
  LSTM or GRU and predicts the category of the next event at every position. Train it with
  :func:`sequence_cross_entropy`.
* :class:`TrajectoryModel` is the same recurrent reader with the request context of the predicted
  event, the user's category counts and an *interest head* (interest components, the user's
  taste, a copy of the last category): chapter 6's model, trained by :func:`fit_trajectory_model`.

Helpers turn per-user event lists into padded tensors (:func:`pad_sequences`) and compute the
time features (:func:`time_gap_features`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

if TYPE_CHECKING:
    from interest_lib.sequences import NextCategoryTask
    from interest_lib.train import TrainingHistory

# --------------------------------------------------------------------------------------------
# the interest MLP
# --------------------------------------------------------------------------------------------


class InterestMLP(nn.Module):
    r"""Behavior vector → interest vector :math:`v = \sigma(Wx + b)` → logits over categories.

    .. math::

        v = \sigma(W x + b) \in (0, 1)^{h}, \qquad z = W' \operatorname{dropout}(v) + b'
        \in \mathbb{R}^{C}

    with :math:`W` of shape ``(hidden, n_categories)``. PyTorch's ``nn.Linear`` stores exactly
    this :math:`W` and computes :math:`xW^\top + b` for a batch of row vectors, which is the same
    formula applied to every user. ``softmax(z)`` is the predicted next-window interest.

    Parameters
    ----------
    n_categories
        Number of categories :math:`C` (input and output size).
    hidden
        Size :math:`h` of the interest vector.
    dropout
        Dropout probability on the interest vector during training.
    activation
        ``"sigmoid"`` (the formula :math:`\sigma`) or ``"relu"``.

    Notes
    -----
    Scale the input first: raw counts are heavy-tailed, so use ``log1p`` counts or row-normalised
    counts (:meth:`interest_lib.features.UserCategoryMatrix.log1p`).
    """

    def __init__(
        self,
        n_categories: int,
        hidden: int = 64,
        dropout: float = 0.1,
        activation: Literal["sigmoid", "relu"] = "sigmoid",
    ) -> None:
        super().__init__()
        if activation not in ("sigmoid", "relu"):
            raise ValueError(f"activation must be 'sigmoid' or 'relu', got {activation!r}")
        self.n_categories = n_categories
        self.hidden_layer = nn.Linear(n_categories, hidden)  # W, b
        self.activation = nn.Sigmoid() if activation == "sigmoid" else nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.output_layer = nn.Linear(hidden, n_categories)

    def interest(self, x: torch.Tensor) -> torch.Tensor:
        r"""The interest vectors :math:`v = \sigma(Wx + b)`, shape ``(batch, hidden)``."""
        return self.activation(self.hidden_layer(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits over categories.

        Parameters
        ----------
        x
            Behavior vectors, float, shape ``(batch, n_categories)``.

        Returns
        -------
        torch.Tensor
            Shape ``(batch, n_categories)``; unnormalised (apply softmax for a distribution).
        """
        return self.output_layer(self.dropout(self.interest(x)))


def soft_cross_entropy(
    logits: torch.Tensor,
    target_distribution: torch.Tensor,
    reduction: Literal["mean", "sum", "none"] = "mean",
) -> torch.Tensor:
    r"""Cross-entropy against a target *distribution* rather than a single class.

    .. math:: \ell(z, y) = -\sum_c y_c \log \operatorname{softmax}(z)_c

    For a one-hot :math:`y` this is the usual cross-entropy; for a next-window interest
    distribution it rewards spreading probability the way the user will. It equals
    ``torch.nn.functional.cross_entropy`` with probability targets.

    Parameters
    ----------
    logits
        Shape ``(batch, n_categories)``.
    target_distribution
        Non-negative, shape ``(batch, n_categories)``; rows normally sum to 1 (an all-zero row
        contributes 0; leave such users out of training).
    reduction
        ``"mean"`` over rows, ``"sum"``, or ``"none"`` for the per-row losses.
    """
    losses = -(target_distribution * F.log_softmax(logits, dim=-1)).sum(dim=-1)
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


# --------------------------------------------------------------------------------------------
# the sequence model
# --------------------------------------------------------------------------------------------


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


# request-context columns of ``time_features`` (interest_lib.sequences.REQUEST_FEATURE_NAMES)
_NEXT_OPENS_SESSION, _NEXT_ON_WEB, _THIS_ON_WEB, _THIS_IS_FRESH = 2, 3, 4, 6
_LOG_SESSION_MINUTES = float(np.log1p(30.0))  # log1p of the 30-minute session gap


class TrajectoryModel(nn.Module):
    r"""An LSTM or GRU over a user's events with an *interest head*: next-category log-probabilities.

    The recurrent cell reads, at event :math:`t`, the category and behaviour embeddings, the
    request context of the event to predict (:data:`interest_lib.sequences.REQUEST_FEATURE_NAMES`:
    time gaps, does it open a session, is it on the web, when is it) and the user's share of
    fresh choices per category so far. Its state :math:`h_t` does not score the categories
    directly; it drives a head with three readable parts:

    * :math:`K` learned **interest components** :math:`E_k` (distributions over categories, like
      the segments of the simulator; the web platform tilts them by a learned exposure);
    * the user's **taste**: with :math:`n_c` fresh choices of category :math:`c` so far and
      :math:`m_c` the number expected from the user's long-term mixture of components,
      :math:`\tau_c = (a + n_c) / (a + m_c)` (a Gamma–Poisson estimate with a learned prior
      :math:`a`); each component is re-weighted by it, :math:`E^u_k \propto E_k \odot \tau`;
    * a **copy** of the last category inside a session (a skip path from the input to the
      output), with probability :math:`\rho_t`, 0 when the next event opens a session:

    .. math::

        P(c_{t+1} = c) = \rho_t\,[c = c_t] + (1 - \rho_t) \sum_k w_{t,k}\, E^u_k(c),
        \qquad w_t = \operatorname{softmax}(W h_t + \log \bar w_t + \gamma L_t),

    where :math:`\bar w_t` is the long-term mixture (from the user's category shares),
    :math:`L_{t,k} = \sum \log E_k(c)` over the fresh choices of the current session is the
    evidence the session gives for component :math:`k` (0 when the next event opens a new
    session), and :math:`W h_t` adds what the recurrent state knows (earlier sessions, time,
    platform). The forward pass returns :math:`\log P`, so :func:`sequence_cross_entropy` and
    :func:`interest_lib.sequences.sequence_scores` work unchanged.

    Padded batches are **not packed**: the recurrence runs left to right, so padding *after* a
    sequence never reaches its valid positions, and the outputs there are the same as with
    packing (only the final state would differ). Skipping the packing is several times faster on
    a CPU.

    Parameters
    ----------
    n_categories
        Number of categories :math:`C`; input category ``-1`` has its own "unknown" embedding.
    n_components
        Number of interest components :math:`K`.
    embedding_dim, behavior_dim
        Sizes of the category and behaviour embeddings.
    hidden
        Size of the recurrent state.
    cell
        ``"lstm"`` or ``"gru"``.
    dropout
        Dropout on the recurrent outputs.
    n_behaviors
        Number of behaviour codes.
    """

    uses_history_counts = True

    def __init__(
        self,
        n_categories: int,
        n_components: int = 8,
        embedding_dim: int = 32,
        hidden: int = 64,
        cell: Literal["lstm", "gru"] = "lstm",
        dropout: float = 0.0,
        behavior_dim: int = 8,
        n_behaviors: int = 4,
    ) -> None:
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        from interest_lib.sequences import N_REQUEST_FEATURES

        c, f = n_categories, N_REQUEST_FEATURES
        self.n_categories = c
        self.n_time_features = f
        self.cell = cell
        self.category_embedding = nn.Embedding(c + 1, embedding_dim)  # last: unknown
        self.behavior_embedding = nn.Embedding(n_behaviors, behavior_dim)
        recurrent = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = recurrent(embedding_dim + behavior_dim + f + c, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.components = nn.Parameter(0.5 * torch.randn(n_components, c))  # log E_k, unnormalised
        self.web_exposure = nn.Parameter(torch.zeros(c))
        self.long_term = nn.Linear(c + hidden + f, n_components)  # -> long-term mixture
        self.current = nn.Linear(hidden + f, n_components)  # -> move towards the session
        self.copy = nn.Linear(hidden + f, 1)  # -> rho, the copy probability
        self.log_prior = nn.Parameter(torch.zeros(()))  # log a of the taste estimate
        self.evidence_weight = nn.Parameter(torch.tensor(0.5))  # gamma of the session evidence

    def forward(
        self,
        categories: torch.Tensor,
        behaviors: torch.Tensor,
        lengths: torch.Tensor,
        time_features: torch.Tensor,
        history_counts: torch.Tensor,
    ) -> torch.Tensor:
        """Next-category log-probabilities at every position, ``(batch, T, C)``.

        Parameters
        ----------
        categories, behaviors
            ``int64 (batch, T)``; category ``-1`` = unknown.
        lengths
            ``(batch,)`` valid positions per sequence (positions after them are ignored).
        time_features
            ``float (batch, T, N_REQUEST_FEATURES)`` from ``user_sequences(...,
            request_context=True)``.
        history_counts
            ``float (batch, 2, C)``: fresh choices before each sequence, all and on the web.
        """
        c = self.n_categories
        known = categories >= 0
        one_hot = F.one_hot(torch.where(known, categories, 0), c).float() * known[..., None]
        x = time_features.float()
        fresh = one_hot * x[..., _THIS_IS_FRESH, None]
        counts = history_counts[:, 0, None, :] + fresh.cumsum(1)  # n_c so far
        web_counts = history_counts[:, 1, None, :] + (fresh * x[..., _THIS_ON_WEB, None]).cumsum(1)
        total, web_total = counts.sum(-1, keepdim=True), web_counts.sum(-1, keepdim=True)
        share = counts / total.clamp(min=1.0)

        inputs = torch.cat([
            self.category_embedding(torch.where(known, categories, c)),
            self.behavior_embedding(behaviors), x, share,
        ], dim=-1)  # fmt: skip
        h, _ = self.rnn(inputs)  # no packing needed: see the class notes
        state = torch.cat([self.dropout(h), x], dim=-1)

        app = F.softmax(self.components, dim=-1)  # (K, C): the components E_k
        web = F.softmax(self.components + self.web_exposure, dim=-1)
        long_mix = F.softmax(self.long_term(torch.cat([share, state], dim=-1)), dim=-1)
        expected = (total - web_total) * (long_mix @ app) + web_total * (long_mix @ web)  # m_c
        a = self.log_prior.exp()
        log_taste = torch.log(a + counts) - torch.log(a + expected)
        log_u = log_taste + x[..., _NEXT_ON_WEB, None] * self.web_exposure
        u = torch.exp(log_u - log_u.amax(-1, keepdim=True))  # taste x exposure, up to a constant
        # log-likelihood of the session so far under each E_k; a new session starts afresh
        in_session = _session_counts(fresh, x[..., 0] > _LOG_SESSION_MINUTES)
        evidence = (in_session @ torch.log(app).T) * (1.0 - x[..., _NEXT_OPENS_SESSION, None])
        mix = F.softmax(  # w_t
            self.current(state) + torch.log(long_mix + 1e-6) + self.evidence_weight * evidence,
            dim=-1,
        )
        # sum_k w_k E_k(c) u_c / Z_k with Z_k = sum_c E_k(c) u_c: two small matrix products
        fresh_choice = u * ((mix / (u @ app.T)) @ app)
        rho = torch.sigmoid(self.copy(state)) * (1.0 - x[..., _NEXT_OPENS_SESSION, None])
        probability = (1.0 - rho) * fresh_choice + rho * one_hot
        return torch.log(probability.clamp(min=1e-10))

    def component_parameters(self) -> list[nn.Parameter]:
        """The interest components; :func:`trajectory_optimizer` gives them a larger step."""
        return [self.components]


def _session_counts(choices: torch.Tensor, opens: torch.Tensor) -> torch.Tensor:
    """Running sums of ``choices`` (b, T, C) that restart where ``opens`` (b, T) is true.

    The first position of every sequence starts a session too (a window may start inside one;
    its earlier events are then left out).
    """
    opens = opens.clone()
    opens[:, 0] = True
    cumulative = choices.cumsum(1)
    before = torch.cat([torch.zeros_like(cumulative[:, :1]), cumulative[:, :-1]], dim=1)
    steps = torch.arange(opens.shape[1], device=opens.device).expand_as(opens)
    start = torch.where(opens, steps, torch.zeros_like(steps)).cummax(dim=1).values
    return cumulative - before.gather(1, start[..., None].expand_as(before))


def trajectory_optimizer(
    model: TrajectoryModel, lr: float = 0.01, component_lr: float = 0.05, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """AdamW with a larger learning rate for the interest components than for the rest.

    The components start random and must move far; a five times larger step lets two epochs
    suffice. Pass the result to :func:`interest_lib.train.fit` as ``optimizer``.
    """
    components = {id(p) for p in model.component_parameters()}
    others = [p for p in model.parameters() if id(p) not in components and p.requires_grad]
    return torch.optim.AdamW(
        [{"params": others}, {"params": model.component_parameters(), "lr": component_lr}],
        lr=lr,
        weight_decay=weight_decay,
    )


TRAJECTORY_DEFAULTS: dict[str, float] = {
    "hidden": 64,
    "n_components": 8,
    "embedding_dim": 32,
    "window": 64,
    "batch_size": 64,
    "epochs": 2,
    "lr": 0.01,
    "component_lr": 0.05,
    "valid_context": 8,
    "patience": 2,
}
"""Hyper-parameters of :func:`fit_trajectory_model` (chapter 6): a budget a laptop CPU trains in
seconds on the default simulated log."""


def trajectory_loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The training loss of :class:`TrajectoryModel`: cross-entropy against the *next* category.

    ``batch`` holds rows of ``UserSequences.tensors(history=True)``: the target at position
    :math:`t` is the category of event :math:`t + 1` (``-1`` where there is none), never the
    input at :math:`t`.
    """
    categories, behaviors, features, lengths, targets, history = batch
    log_probabilities = model(categories, behaviors, lengths, features, history)
    return sequence_cross_entropy(log_probabilities, targets)


def fit_trajectory_model(
    events: pd.DataFrame,
    category_ids: ArrayLike,
    train_task: NextCategoryTask,
    valid_task: NextCategoryTask,
    *,
    cell: Literal["lstm", "gru"] = "lstm",
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = False,
    **hyper: float,
) -> tuple[TrajectoryModel, TrainingHistory]:
    """Train a :class:`TrajectoryModel` on a task's points, early-stopped on validation NDCG@10.

    Parameters
    ----------
    events
        The whole event table (histories before the training points are read as input).
    category_ids
        ``(C,)`` vocabulary fitted on the training events.
    train_task, valid_task
        Prediction points of the training window (each is a training target) and of the
        validation window (for early stopping only).
    cell
        ``"lstm"`` or ``"gru"``.
    seed
        Seeds the weights, the batches and everything else.
    device
        Where to train (:func:`interest_lib.train.device` chooses by default).
    progress
        Show a progress bar.
    **hyper
        Overrides of :data:`TRAJECTORY_DEFAULTS`.

    Returns
    -------
    (model, history)
        The model with the weights of its best validation epoch, in eval mode, and the
        :class:`~interest_lib.train.TrainingHistory`.
    """
    from interest_lib import metrics, sequences, train

    unknown = set(hyper) - set(TRAJECTORY_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown hyper-parameter(s) {sorted(unknown)}")
    h = {**TRAJECTORY_DEFAULTS, **hyper}
    target = train.device(device)
    train_seq = sequences.user_sequences(
        events, category_ids, train_task, max_len=int(h["window"]), request_context=True
    )
    valid_seq = sequences.user_sequences(
        events, category_ids, valid_task, context=int(h["valid_context"]), request_context=True
    )

    def valid_ndcg(net: nn.Module) -> float:
        scores = sequences.sequence_scores(net, valid_seq, batch_size=512, device=target)
        return metrics.ndcg_at_k(scores, valid_task.target, 10)

    train.set_seed(seed)
    model = TrajectoryModel(
        len(np.asarray(category_ids)),
        n_components=int(h["n_components"]),
        embedding_dim=int(h["embedding_dim"]),
        hidden=int(h["hidden"]),
        cell=cell,
    )
    history = train.fit(
        model,
        train_seq.tensors(history=True),
        loss_fn=trajectory_loss,
        valid_fn=valid_ndcg,
        epochs=int(h["epochs"]),
        batch_size=int(h["batch_size"]),
        optimizer=trajectory_optimizer(model, float(h["lr"]), float(h["component_lr"])),
        patience=int(h["patience"]),
        device=target,
        seed=seed,
        progress=progress,
    )
    return model, history


def trajectory_scores(
    model: nn.Module,
    events: pd.DataFrame,
    category_ids: ArrayLike,
    task: NextCategoryTask,
    *,
    context: int | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Next-category probabilities of a trained :class:`TrajectoryModel` for a task's points.

    Parameters
    ----------
    context
        ``None`` (default): each user's whole history is read. A number keeps at least that
        many events before the user's first point; older history still enters through the
        history counts.
    batch_size
        Users per forward pass (sequences of similar length are batched together).

    Returns
    -------
    numpy.ndarray
        ``float32 (len(task), C)`` in the order of ``task.rows``.
    """
    from interest_lib import sequences

    seq = sequences.user_sequences(
        events, category_ids, task, context=context, request_context=True
    )
    return sequences.sequence_scores(model, seq, batch_size=batch_size, device=device)


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
