r"""An LSTM and a GRU written out gate by gate, for teaching; they reproduce ``nn.LSTM`` / ``nn.GRU``.

**LSTM.** At step :math:`t`, with input :math:`x_t`, hidden state :math:`h_{t-1}` and cell state
:math:`c_{t-1}` (:math:`\sigma` the logistic function, :math:`\odot` the elementwise product):

.. math::

    i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi})  && \text{input gate} \\
    f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf})  && \text{forget gate} \\
    g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg})   && \text{candidate} \\
    o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho})  && \text{output gate} \\
    c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
    h_t &= o_t \odot \tanh(c_t)

The cell state is carried forward unchanged when :math:`f_t = 1` and :math:`i_t = 0`; this is
what lets an LSTM remember a user's favourite category across a long run of other events.

**GRU.** With a reset gate :math:`r_t` and an update gate :math:`z_t`:

.. math::

    r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
    z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
    n_t &= \tanh\big(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})\big) \\
    h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

(the reset gate multiplies :math:`W_{hn} h_{t-1} + b_{hn}`, as in PyTorch, not :math:`h_{t-1}`
before the product). :math:`z_t = 1` keeps the hidden state.

**Weights.** Both use PyTorch's layout: the gates' input weights are stacked into one matrix
``weight_ih`` of shape ``(G * H, I)`` and likewise ``weight_hh`` ``(G * H, H)``, ``bias_ih`` and
``bias_hh`` ``(G * H,)``, with ``G = 4`` gates in the order ``(i, f, g, o)`` for the LSTM and
``G = 3`` in the order ``(r, z, n)`` for the GRU (``H`` hidden units, ``I`` input features).
:meth:`ScratchLSTM.from_torch` and :meth:`ScratchGRU.from_torch` copy them from a single-layer,
``batch_first`` PyTorch module, and then give the same outputs (``tests/test_lstm_cell.py``).

The loops here run one step at a time in Python: they are for reading, not for speed. The book's
models use ``nn.LSTM`` / ``nn.GRU`` (:mod:`interest_lib.models.recurrent`).
"""

from __future__ import annotations

import math
from typing import NamedTuple, TypeVar

import torch
from torch import nn


class CellWeights(NamedTuple):
    """The stacked weights of one recurrent layer, in PyTorch's layout (see the module docstring).

    Attributes
    ----------
    weight_ih
        ``(G * H, I)`` input-to-gates weights.
    weight_hh
        ``(G * H, H)`` hidden-to-gates weights.
    bias_ih, bias_hh
        ``(G * H,)`` the two biases (PyTorch keeps both; only their sum matters for the LSTM).
    """

    weight_ih: torch.Tensor
    weight_hh: torch.Tensor
    bias_ih: torch.Tensor
    bias_hh: torch.Tensor


def lstm_cell_step(
    x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], weights: CellWeights
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One LSTM step: :math:`(x_t, h_{t-1}, c_{t-1}) \mapsto (h_t, c_t)`.

    Parameters
    ----------
    x
        ``(B, I)`` inputs of step :math:`t`.
    state
        ``(h, c)``, each ``(B, H)``: the hidden and cell state after step :math:`t - 1`.
    weights
        The layer's weights, gates in the order ``(i, f, g, o)``.

    Returns
    -------
    tuple of torch.Tensor
        ``(h, c)``, each ``(B, H)``, after step :math:`t`.
    """
    h, c = state
    gates = x @ weights.weight_ih.T + weights.bias_ih + h @ weights.weight_hh.T + weights.bias_hh
    i, f, g, o = gates.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g
    h = o * torch.tanh(c)
    return h, c


def gru_cell_step(x: torch.Tensor, h: torch.Tensor, weights: CellWeights) -> torch.Tensor:
    r"""One GRU step: :math:`(x_t, h_{t-1}) \mapsto h_t`.

    Parameters
    ----------
    x
        ``(B, I)`` inputs of step :math:`t`.
    h
        ``(B, H)`` hidden state after step :math:`t - 1`.
    weights
        The layer's weights, gates in the order ``(r, z, n)``.

    Returns
    -------
    torch.Tensor
        ``(B, H)`` hidden state after step :math:`t`.
    """
    x_r, x_z, x_n = (x @ weights.weight_ih.T + weights.bias_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = (h @ weights.weight_hh.T + weights.bias_hh).chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1.0 - z) * n + z * h


_Scratch = TypeVar("_Scratch", bound="_ScratchRecurrent")


class _ScratchRecurrent(nn.Module):
    """Shared parameters and checks of :class:`ScratchLSTM` and :class:`ScratchGRU`."""

    n_gates: int = 1
    torch_class: type[nn.RNNBase] = nn.RNNBase

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"sizes must be positive, got {input_size=}, {hidden_size=}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        rows = self.n_gates * self.hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, self.input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, self.hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(rows))
        self.bias_hh = nn.Parameter(torch.empty(rows))
        bound = 1.0 / math.sqrt(self.hidden_size)  # PyTorch's initialisation
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    @property
    def weights(self) -> CellWeights:
        """The parameters as :class:`CellWeights` (the tensors themselves: gradients flow)."""
        return CellWeights(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)

    @classmethod
    def _copy_from(cls: type[_Scratch], module: nn.RNNBase) -> _Scratch:
        if not isinstance(module, cls.torch_class):
            raise TypeError(f"expected a {cls.torch_class.__name__}, got {type(module).__name__}")
        problems = [
            text
            for bad, text in (
                (module.num_layers != 1, f"num_layers={module.num_layers} (only 1 is written out)"),
                (not module.batch_first, "batch_first=False (inputs here are (batch, time, features))"),
                (module.bidirectional, "bidirectional=True"),
                (not module.bias, "bias=False"),
                (getattr(module, "proj_size", 0) != 0, "proj_size != 0"),
            )
            if bad
        ]
        if problems:
            raise ValueError(f"cannot copy this {cls.torch_class.__name__}: " + "; ".join(problems))
        scratch = cls(module.input_size, module.hidden_size)
        reference = module.weight_ih_l0
        scratch.to(dtype=reference.dtype, device=reference.device)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(scratch, name).copy_(getattr(module, f"{name}_l0"))
        return scratch

    def _initial(self, x: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        """A ``(B, H)`` state from PyTorch's ``(1, B, H)`` form, zeros when ``None``."""
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(
                f"expected inputs (batch, time, {self.input_size}), got shape {tuple(x.shape)}"
            )
        if state is None:
            return x.new_zeros(x.shape[0], self.hidden_size)
        if state.shape != (1, x.shape[0], self.hidden_size):
            raise ValueError(
                f"a state must have shape (1, {x.shape[0]}, {self.hidden_size}) as in PyTorch, "
                f"got {tuple(state.shape)}"
            )
        return state[0]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class ScratchLSTM(_ScratchRecurrent):
    r"""A single-layer, ``batch_first`` LSTM that runs :func:`lstm_cell_step` over time.

    Called like ``nn.LSTM(input_size, hidden_size, batch_first=True)``; the equations are in the
    module docstring.

    Parameters
    ----------
    input_size
        ``I``, features per step.
    hidden_size
        ``H``, hidden units.

    Examples
    --------
    >>> lstm = nn.LSTM(4, 8, batch_first=True)
    >>> scratch = ScratchLSTM.from_torch(lstm)
    >>> outputs, (h, c) = scratch(torch.randn(2, 5, 4))  # equal to lstm(x)
    """

    n_gates = 4
    torch_class = nn.LSTM

    @classmethod
    def from_torch(cls, lstm: nn.LSTM) -> ScratchLSTM:
        """A copy of a single-layer, ``batch_first`` ``nn.LSTM`` (its ``*_l0`` weights, same dtype).

        Raises
        ------
        ValueError
            For several layers, ``batch_first=False``, a bidirectional LSTM, no bias or a projection.
        """
        return cls._copy_from(lstm)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Run the whole sequence.

        Parameters
        ----------
        x
            ``(B, T, I)`` inputs.
        state
            ``(h0, c0)``, each ``(1, B, H)`` as for ``nn.LSTM``; zeros when ``None``.

        Returns
        -------
        tuple
            ``(outputs, (h_n, c_n))``: ``outputs`` ``(B, T, H)`` holds :math:`h_t` of every step,
            ``h_n`` and ``c_n`` ``(1, B, H)`` the states after the last step.
        """
        h = self._initial(x, None if state is None else state[0])
        c = self._initial(x, None if state is None else state[1])
        weights = self.weights
        outputs = []
        for t in range(x.shape[1]):
            h, c = lstm_cell_step(x[:, t], (h, c), weights)
            outputs.append(h)
        out = torch.stack(outputs, dim=1) if outputs else x.new_zeros(x.shape[0], 0, self.hidden_size)
        return out, (h.unsqueeze(0), c.unsqueeze(0))


class ScratchGRU(_ScratchRecurrent):
    r"""A single-layer, ``batch_first`` GRU that runs :func:`gru_cell_step` over time.

    Called like ``nn.GRU(input_size, hidden_size, batch_first=True)``; the equations are in the
    module docstring.

    Parameters
    ----------
    input_size
        ``I``, features per step.
    hidden_size
        ``H``, hidden units.
    """

    n_gates = 3
    torch_class = nn.GRU

    @classmethod
    def from_torch(cls, gru: nn.GRU) -> ScratchGRU:
        """A copy of a single-layer, ``batch_first`` ``nn.GRU`` (its ``*_l0`` weights, same dtype).

        Raises
        ------
        ValueError
            For several layers, ``batch_first=False``, a bidirectional GRU or no bias.
        """
        return cls._copy_from(gru)

    def forward(
        self, x: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the whole sequence.

        Parameters
        ----------
        x
            ``(B, T, I)`` inputs.
        state
            ``h0`` ``(1, B, H)`` as for ``nn.GRU``; zeros when ``None``.

        Returns
        -------
        tuple
            ``(outputs, h_n)``: ``outputs`` ``(B, T, H)`` holds :math:`h_t` of every step, ``h_n``
            ``(1, B, H)`` the state after the last step.
        """
        h = self._initial(x, state)
        weights = self.weights
        outputs = []
        for t in range(x.shape[1]):
            h = gru_cell_step(x[:, t], h, weights)
            outputs.append(h)
        out = torch.stack(outputs, dim=1) if outputs else x.new_zeros(x.shape[0], 0, self.hidden_size)
        return out, h.unsqueeze(0)
