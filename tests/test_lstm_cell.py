"""The from-scratch LSTM and GRU: same outputs as nn.LSTM / nn.GRU, and the gates do what they say."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from interest_lib.models.lstm_cell import (
    CellWeights,
    ScratchGRU,
    ScratchLSTM,
    gru_cell_step,
    lstm_cell_step,
)

SIZES = [(1, 1, 1, 1), (3, 5, 4, 7), (2, 12, 6, 3), (5, 3, 9, 16)]  # (batch, time, input, hidden)
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}  # absolute


def _torch_module(kind: type[nn.RNNBase], inputs: int, hidden: int, dtype: torch.dtype, seed: int):
    torch.manual_seed(seed)
    module = kind(inputs, hidden, batch_first=True).to(dtype)
    with torch.no_grad():  # biases of a larger scale than the default, so every term matters
        module.bias_ih_l0.normal_(0.0, 0.5)
        module.bias_hh_l0.normal_(0.0, 0.5)
    return module


def _close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    assert actual.dtype == expected.dtype == dtype
    torch.testing.assert_close(actual, expected, atol=TOLERANCE[dtype], rtol=0.0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("with_state", [False, True])
def test_scratch_lstm_equals_nn_lstm(dtype, size, with_state):
    batch, time, inputs, hidden = size
    lstm = _torch_module(nn.LSTM, inputs, hidden, dtype, seed=sum(size))
    scratch = ScratchLSTM.from_torch(lstm)
    x = torch.randn(batch, time, inputs, dtype=dtype)
    state = None
    if with_state:
        state = (torch.randn(1, batch, hidden, dtype=dtype), torch.randn(1, batch, hidden, dtype=dtype))
    with torch.no_grad():
        expected, (h_expected, c_expected) = lstm(x, state)
        actual, (h, c) = scratch(x, state)
    assert actual.shape == (batch, time, hidden) and h.shape == c.shape == (1, batch, hidden)
    _close(actual, expected, dtype)
    _close(h, h_expected, dtype)
    _close(c, c_expected, dtype)
    _close(actual[:, -1], h[0], dtype)  # the last output is the final hidden state


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("with_state", [False, True])
def test_scratch_gru_equals_nn_gru(dtype, size, with_state):
    batch, time, inputs, hidden = size
    gru = _torch_module(nn.GRU, inputs, hidden, dtype, seed=sum(size) + 1)
    scratch = ScratchGRU.from_torch(gru)
    x = torch.randn(batch, time, inputs, dtype=dtype)
    state = torch.randn(1, batch, hidden, dtype=dtype) if with_state else None
    with torch.no_grad():
        expected, h_expected = gru(x, state)
        actual, h = scratch(x, state)
    assert actual.shape == (batch, time, hidden) and h.shape == (1, batch, hidden)
    _close(actual, expected, dtype)
    _close(h, h_expected, dtype)


def test_gradients_equal_those_of_nn_lstm():
    lstm = _torch_module(nn.LSTM, 3, 5, torch.float64, seed=7)
    scratch = ScratchLSTM.from_torch(lstm)
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    lstm(x)[0].square().sum().backward()
    scratch(x)[0].square().sum().backward()
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        expected = getattr(lstm, f"{name}_l0").grad
        torch.testing.assert_close(getattr(scratch, name).grad, expected, atol=1e-10, rtol=0.0)


def test_from_torch_copies_and_does_not_share():
    lstm = _torch_module(nn.LSTM, 2, 3, torch.float64, seed=0)
    scratch = ScratchLSTM.from_torch(lstm)
    assert scratch.weight_ih.dtype == torch.float64
    with torch.no_grad():
        scratch.weight_ih.zero_()
    assert lstm.weight_ih_l0.abs().sum() > 0


@pytest.mark.parametrize(
    "module",
    [
        nn.LSTM(2, 3, num_layers=2, batch_first=True),
        nn.LSTM(2, 3),  # batch_first=False
        nn.LSTM(2, 3, batch_first=True, bidirectional=True),
        nn.LSTM(2, 3, batch_first=True, bias=False),
        nn.LSTM(2, 3, batch_first=True, proj_size=2),
    ],
)
def test_from_torch_refuses_what_it_does_not_write_out(module):
    with pytest.raises(ValueError, match="cannot copy"):
        ScratchLSTM.from_torch(module)


def test_from_torch_checks_the_kind():
    with pytest.raises(TypeError):
        ScratchLSTM.from_torch(nn.GRU(2, 3, batch_first=True))
    with pytest.raises(TypeError):
        ScratchGRU.from_torch(nn.LSTM(2, 3, batch_first=True))


def test_shapes_are_checked():
    scratch = ScratchLSTM(3, 4)
    with pytest.raises(ValueError, match="expected inputs"):
        scratch(torch.randn(2, 5, 2))
    with pytest.raises(ValueError, match="state must have shape"):
        scratch(torch.randn(2, 5, 3), (torch.zeros(2, 4), torch.zeros(2, 4)))


def _gate_rows(hidden: int, gate: int) -> slice:
    return slice(gate * hidden, (gate + 1) * hidden)


def test_open_forget_gate_and_closed_input_gate_keep_the_cell_state():
    """f = 1 and i = 0 (gate order i, f, g, o): c_t = c_0 at every step, h_t = o_t * tanh(c_0)."""
    batch, time, inputs, hidden = 3, 8, 4, 5
    lstm = _torch_module(nn.LSTM, inputs, hidden, torch.float64, seed=3)
    with torch.no_grad():
        for gate, bias in ((0, -60.0), (1, 60.0)):  # input gate shut, forget gate open
            rows = _gate_rows(hidden, gate)
            lstm.weight_ih_l0[rows] = 0.0
            lstm.weight_hh_l0[rows] = 0.0
            lstm.bias_ih_l0[rows] = bias
            lstm.bias_hh_l0[rows] = 0.0
    scratch = ScratchLSTM.from_torch(lstm)
    x = torch.randn(batch, time, inputs, dtype=torch.float64)
    c0 = 2.0 * torch.randn(1, batch, hidden, dtype=torch.float64)
    h0 = torch.randn(1, batch, hidden, dtype=torch.float64)
    with torch.no_grad():
        outputs, (_, c) = scratch(x, (h0, c0))
        reference, (_, c_reference) = lstm(x, (h0, c0))
    torch.testing.assert_close(c, c0, atol=1e-12, rtol=0.0)
    torch.testing.assert_close(c_reference, c0, atol=1e-12, rtol=0.0)
    # every output is o_t * tanh(c_0), so |h_t| < |tanh(c_0)| with the same sign
    ratio = outputs / torch.tanh(c0[0]).unsqueeze(1)
    assert torch.all((ratio > 0) & (ratio < 1))
    # one step by hand, with the same weights: the cell state passes through
    h1, c1 = lstm_cell_step(x[:, 0], (h0[0], c0[0]), scratch.weights)
    torch.testing.assert_close(c1, c0[0], atol=1e-12, rtol=0.0)


def test_a_shut_forget_gate_forgets():
    """f = 0 and i = 1: the cell state is the candidate g_t alone, whatever c_{t-1} was."""
    hidden = 4
    weights = CellWeights(
        torch.randn(4 * hidden, 3, dtype=torch.float64),
        torch.randn(4 * hidden, hidden, dtype=torch.float64),
        torch.zeros(4 * hidden, dtype=torch.float64),
        torch.zeros(4 * hidden, dtype=torch.float64),
    )
    for gate, bias in ((0, 60.0), (1, -60.0)):
        rows = _gate_rows(hidden, gate)
        weights.weight_ih[rows] = 0.0
        weights.weight_hh[rows] = 0.0
        weights.bias_ih[rows] = bias
    x, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, hidden, dtype=torch.float64)
    g = torch.tanh(x @ weights.weight_ih[_gate_rows(hidden, 2)].T + h @ weights.weight_hh[_gate_rows(hidden, 2)].T)
    for c in (torch.zeros(2, hidden, dtype=torch.float64), 5.0 * torch.ones(2, hidden, dtype=torch.float64)):
        _, c_new = lstm_cell_step(x, (h, c), weights)
        torch.testing.assert_close(c_new, g, atol=1e-12, rtol=0.0)


def test_a_gru_with_update_gate_one_keeps_its_state():
    """z = 1 (gate order r, z, n): h_t = h_{t-1} at every step."""
    batch, time, inputs, hidden = 2, 6, 3, 4
    gru = _torch_module(nn.GRU, inputs, hidden, torch.float64, seed=5)
    with torch.no_grad():
        rows = _gate_rows(hidden, 1)
        gru.weight_ih_l0[rows] = 0.0
        gru.weight_hh_l0[rows] = 0.0
        gru.bias_ih_l0[rows] = 60.0
    scratch = ScratchGRU.from_torch(gru)
    x = torch.randn(batch, time, inputs, dtype=torch.float64)
    h0 = torch.randn(1, batch, hidden, dtype=torch.float64)
    with torch.no_grad():
        outputs, h = scratch(x, h0)
    torch.testing.assert_close(h, h0, atol=1e-12, rtol=0.0)
    torch.testing.assert_close(outputs, h0[0].unsqueeze(1).expand(-1, time, -1), atol=1e-12, rtol=0.0)
    torch.testing.assert_close(gru_cell_step(x[:, 0], h0[0], scratch.weights), h0[0], atol=1e-12, rtol=0.0)


def test_scratch_modules_train():
    """The parameters are ordinary parameters: one optimiser step lowers a loss."""
    torch.manual_seed(0)
    for scratch in (ScratchLSTM(3, 4).double(), ScratchGRU(3, 4).double()):
        x, y = torch.randn(8, 5, 3, dtype=torch.float64), torch.randn(8, 5, 4, dtype=torch.float64)
        optimiser = torch.optim.SGD(scratch.parameters(), lr=0.1)
        losses = []
        for _ in range(2):
            optimiser.zero_grad()
            loss = (scratch(x)[0] - y).square().mean()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        assert losses[1] < losses[0]
