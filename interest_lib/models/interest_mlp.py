r"""The interest MLP of chapter 3: :math:`v = \sigma(Wx + b)`, then scores over the categories.

:class:`InterestMLP` turns a user's behavior vector :math:`x` (one entry per category) into an
interest vector :math:`v` and then into scores over the categories of the next window. Train it
with :func:`soft_cross_entropy` against the next-window distribution.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

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
    counts (:meth:`interest_lib.data.features.UserCategoryMatrix.log1p`).
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


