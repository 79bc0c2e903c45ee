r"""Chapter 6's trajectory model: a recurrent reader with the request context and an interest head.

:class:`TrajectoryModel` is :class:`~interest_lib.models.recurrent.SequenceModel`'s LSTM or GRU
with the request context of the predicted event, the user's category counts and an *interest head*
(interest components, the user's taste, a copy of the last category). Trained by
:func:`fit_trajectory_model`; scored by :func:`trajectory_scores`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import nn

from interest_lib.data.sequences import UserSequences
from interest_lib.models.recurrent import sequence_cross_entropy, sequence_inputs

if TYPE_CHECKING:
    from interest_lib.data.tasks import NextCategoryTask
    from interest_lib.models.training import TrainingHistory


# request-context columns of ``time_features`` (interest_lib.data.tasks.REQUEST_FEATURE_NAMES)
_NEXT_OPENS_SESSION, _NEXT_ON_WEB, _THIS_ON_WEB, _THIS_IS_FRESH = 2, 3, 4, 6
_LOG_SESSION_MINUTES = float(np.log1p(30.0))  # log1p of the 30-minute session gap


class TrajectoryModel(nn.Module):
    r"""An LSTM or GRU over a user's events with an *interest head*: next-category log-probabilities.

    The recurrent cell reads, at event :math:`t`, the category and behaviour embeddings, the
    request context of the event to predict (:data:`interest_lib.data.tasks.REQUEST_FEATURE_NAMES`:
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
    :func:`interest_lib.models.recurrent.sequence_scores` work unchanged.

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
    parts
        The parts the model has, a subset of :data:`PARTS` (default: all of them), for the
        ablation of chapter 6. Without ``"components"`` the head is the plain one, a linear
        layer from :math:`(h_t, \text{request context})` to logits over the categories, and
        ``"taste"`` (which re-weights the components) is not allowed; without ``"copy"``
        :math:`\rho_t = 0`; without ``"taste"`` :math:`\tau = 1`; without ``"recurrence"`` the
        state :math:`h_t` is zero at every position, so the head sees only the current request
        context and the category counts.
    """

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
        parts: Collection[str] | None = None,
    ) -> None:
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        self.parts = check_parts(PARTS if parts is None else parts)
        from interest_lib.data.tasks import N_REQUEST_FEATURES

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
        if "components" not in self.parts:  # the plain head; the unused ones stay, untrained
            self.output_layer = nn.Linear(hidden + f, c)

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
        share = counts / counts.sum(-1, keepdim=True).clamp(min=1.0)

        inputs = torch.cat([
            self.category_embedding(torch.where(known, categories, c)),
            self.behavior_embedding(behaviors), x, share,
        ], dim=-1)  # fmt: skip
        if "recurrence" in self.parts:
            h, _ = self.rnn(inputs)  # no packing needed: see the class notes
        else:
            h = inputs.new_zeros(*inputs.shape[:2], self.rnn.hidden_size)
        state = torch.cat([self.dropout(h), x], dim=-1)
        fresh_choice = (self._interest_head(state, x, fresh, counts, web_counts, share)
                        if "components" in self.parts
                        else F.softmax(self.output_layer(state), dim=-1))
        if "copy" not in self.parts:
            return torch.log(fresh_choice.clamp(min=1e-10))
        rho = torch.sigmoid(self.copy(state)) * (1.0 - x[..., _NEXT_OPENS_SESSION, None])
        probability = (1.0 - rho) * fresh_choice + rho * one_hot
        return torch.log(probability.clamp(min=1e-10))

    def _interest_head(
        self,
        state: torch.Tensor,
        x: torch.Tensor,
        fresh: torch.Tensor,
        counts: torch.Tensor,
        web_counts: torch.Tensor,
        share: torch.Tensor,
    ) -> torch.Tensor:
        """The components, re-weighted by the taste: the fresh-choice distribution ``(b, T, C)``."""
        total, web_total = counts.sum(-1, keepdim=True), web_counts.sum(-1, keepdim=True)
        app = F.softmax(self.components, dim=-1)  # (K, C): the components E_k
        web = F.softmax(self.components + self.web_exposure, dim=-1)
        long_mix = F.softmax(self.long_term(torch.cat([share, state], dim=-1)), dim=-1)
        expected = (total - web_total) * (long_mix @ app) + web_total * (long_mix @ web)  # m_c
        a = self.log_prior.exp()
        log_taste = (torch.log(a + counts) - torch.log(a + expected) if "taste" in self.parts
                     else torch.zeros_like(counts))
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
        return u * ((mix / (u @ app.T)) @ app)

    def batch_inputs(
        self, sequences: UserSequences, index: np.ndarray
    ) -> tuple[torch.Tensor | None, ...]:
        """The arguments of :meth:`forward` for the sequences ``index``: the plain model's inputs
        (:func:`~interest_lib.models.recurrent.sequence_inputs`) and the history counts."""
        return (*sequence_inputs(sequences, index, self.n_time_features),
                sequences.history_tensor(index))

    def component_parameters(self) -> list[nn.Parameter]:
        """The interest components; :func:`trajectory_optimizer` gives them a larger step."""
        return [self.components]


PARTS: tuple[str, ...] = ("recurrence", "copy", "components", "taste")
"""The parts of :class:`TrajectoryModel` an ablation can remove: the recurrent state, the copy of
the last category, the interest components (without them the head is a plain linear layer) and
the taste that re-weights the components."""


def check_parts(parts: Collection[str]) -> frozenset[str]:
    """``parts`` as a frozen set, after checking it names only :data:`PARTS`, consistently.

    Raises
    ------
    ValueError
        For an unknown part, or ``"taste"`` without ``"components"`` (the taste re-weights them).
    """
    if isinstance(parts, str):
        raise TypeError("parts must be a collection of part names, not one string")
    chosen = frozenset(parts)
    unknown = chosen - set(PARTS)
    if unknown:
        raise ValueError(f"unknown part(s) {sorted(unknown)}; the parts are {PARTS}")
    if "taste" in chosen and "components" not in chosen:
        raise ValueError("'taste' re-weights the interest components: add 'components' too")
    return chosen


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

    The components start random and must move far; a five times larger step lets one or two
    epochs suffice. Pass the result to :func:`interest_lib.models.training.fit` as ``optimizer``.
    """
    components = {id(p) for p in model.component_parameters()}
    others = [p for p in model.parameters() if id(p) not in components and p.requires_grad]
    return torch.optim.AdamW(
        [{"params": others}, {"params": model.component_parameters(), "lr": component_lr}],
        lr=lr,
        weight_decay=weight_decay,
    )


TRAJECTORY_DEFAULTS: dict[str, float] = {
    "hidden": 32,
    "n_components": 8,
    "embedding_dim": 32,
    "window": 64,
    "batch_size": 16,
    "epochs": 1,
    "train_share": 0.5,
    "lr": 0.01,
    "component_lr": 0.05,
    "valid_context": 8,
    "patience": 2,
}
"""Hyper-parameters of :func:`fit_trajectory_model` (chapter 6): a budget a laptop CPU trains in
well under a minute on the default simulated log (500 categories). On the validation day one pass
in batches of 16 windows scores about as well as two passes in batches of 64, in less time (the
head's ``(batch, T, C)`` tensors of a small batch stay in the CPU's cache); a state of 64 scores
slightly higher there but trains a third slower. ``train_share`` is the share of the training
windows an epoch passes over (a random subset drawn once from the seed): half of them scores
within 0.002 of all of them on the validation day, in half the time
(``python benchmarks/trajectory_budget.py`` prints the comparison)."""


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
    parts: Collection[str] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = False,
    **hyper: float,
) -> tuple[TrajectoryModel, TrainingHistory]:
    """Train a :class:`TrajectoryModel` on a task's points, early-stopped on validation NDCG@10.

    Over 80 lines with its documentation; the body builds the sequences, the model and the
    optimiser and hands them to :func:`~interest_lib.models.training.fit`, one step each.

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
    parts
        The model's parts, a subset of :data:`PARTS` (default: all).
    seed
        Seeds the weights, the batches and everything else.
    device
        Where to train (:func:`interest_lib.models.training.best_device` chooses by default).
    progress
        Show a progress bar.
    **hyper
        Overrides of :data:`TRAJECTORY_DEFAULTS`.

    Returns
    -------
    (model, history)
        The model with the weights of its best validation epoch, in eval mode, and the
        :class:`~interest_lib.models.training.TrainingHistory`.
    """
    from interest_lib.models import recurrent, training

    h = recurrent.with_defaults(hyper, TRAJECTORY_DEFAULTS)
    target = training.best_device(device)
    batches, valid_fn = recurrent.training_data(
        events, category_ids, train_task, valid_task, window=int(h["window"]),
        valid_context=int(h["valid_context"]), batch_size=int(h["batch_size"]),
        share=float(h["train_share"]), history=True, seed=seed, device=target,
    )  # windows of similar length batched together, each batch cut after its longest window
    training.set_seed(seed)
    model = TrajectoryModel(
        len(np.asarray(category_ids)),
        n_components=int(h["n_components"]),
        embedding_dim=int(h["embedding_dim"]),
        hidden=int(h["hidden"]),
        cell=cell,
        parts=parts,
    )
    history = training.fit(
        model,
        batches,
        loss_fn=trajectory_loss,
        valid_fn=valid_fn,
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
    batch_size: int = 8,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Next-category probabilities of a trained sequence model for a task's points.

    For a :class:`TrajectoryModel` or a
    :class:`~interest_lib.models.recurrent.SequenceModel`: any model that reads the request
    context (``user_sequences(..., request_context=True)``).

    Parameters
    ----------
    context
        ``None`` (default): each user's whole history is read. A number keeps at least that
        many events before the user's first point; older history still enters through the
        history counts.
    batch_size
        Users per forward pass (sequences of similar length are batched together). The head
        makes several ``(users, T, C)`` tensors; with hundreds of categories and whole histories,
        small batches keep them in the CPU's cache (8 scores the default log several times
        faster than 256, with the same result). A plain model, without the head, is faster
        with larger batches (64).

    Returns
    -------
    numpy.ndarray
        ``float32 (len(task), C)`` in the order of ``task.rows``.
    """
    from interest_lib.data import sequences
    from interest_lib.models import recurrent

    seq = sequences.user_sequences(
        events, category_ids, task, context=context, request_context=True
    )
    return recurrent.sequence_scores(model, seq, batch_size=batch_size, device=device)
