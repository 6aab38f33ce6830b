"""Recurrent layers: RNN, LSTM, GRU and their cells, with torch's constructor
arguments, parameter names (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0,
..._reverse), shapes, gate orders and default init (uniform(-1/sqrt(H), 1/sqrt(H))),
so a torch state_dict loads by name.

Variable-length batches: ``forward(input, hx=None, lengths=None)`` takes the
B sequence lengths (any order, each in [1, T]) instead of a packed sequence;
positions past a row's length do not touch its state and output zeros (as
torch's pack_padded_sequence / pad_packed_sequence round trip).
"""
import math

import numpy as np

import nbdl.functional as _ops
from nbdl.creation import empty, zeros
from nbdl.functional import recurrence as _rec
from nbdl.functional._util import check_tensor
from nbdl.nn import init
from nbdl.nn.module import Module
from nbdl.nn.parameter import Parameter

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _positive(name, arg, v):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
        raise ValueError(f"{name}: {arg} must be a positive int, got {v!r}")
    return int(v)


class RNNBase(Module):
    """What RNN, LSTM and GRU share: parameters, init, the layer/direction loop."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=None):
        super().__init__()
        name = type(self).__name__
        self.mode = mode
        self.input_size = _positive(name, "input_size", input_size)
        self.hidden_size = _positive(name, "hidden_size", hidden_size)
        self.num_layers = _positive(name, "num_layers", num_layers)
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout must be a number in [0, 1], got {dropout!r}")
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        self.dropout, self.bidirectional = float(dropout), bool(bidirectional)
        gates = _GATES[mode]
        for layer in range(self.num_layers):
            n_in = self.input_size if layer == 0 else self.hidden_size * self.num_directions
            for suffix in ("", "_reverse")[:self.num_directions]:
                s = f"_l{layer}{suffix}"
                setattr(self, "weight_ih" + s, Parameter(empty(gates * hidden_size, n_in, dtype=dtype)))
                setattr(self, "weight_hh" + s, Parameter(empty(gates * hidden_size, hidden_size, dtype=dtype)))
                if self.bias:
                    setattr(self, "bias_ih" + s, Parameter(empty(gates * hidden_size, dtype=dtype)))
                    setattr(self, "bias_hh" + s, Parameter(empty(gates * hidden_size, dtype=dtype)))
        self.reset_parameters()

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _layer_params(self, layer, direction):
        s = f"_l{layer}" + ("_reverse" if direction else "")
        p = self._parameters
        return (p["weight_ih" + s], p["weight_hh" + s], p["bias_ih" + s] if self.bias else None,
                p["bias_hh" + s] if self.bias else None)

    def _input(self, input, hx, lengths):
        """(input (T, B, I), hx tuple of (L*D, B, H) or None, lengths, batched) checked."""
        name = type(self).__name__
        check_tensor(input, name, "input")
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: input must be 3-D (batched) or 2-D (unbatched), got shape {input.shape}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input has {input.shape[-1]} features (shape {input.shape}), "
                             f"expected input_size={self.input_size}")
        batched = input.ndim == 3
        if not batched:
            input = input.unsqueeze(1)
        n_t, n_b = input.shape[:2]
        if batched and self.batch_first:
            n_t, n_b = n_b, n_t
        n_states = 2 if self.mode == "LSTM" else 1
        if hx is not None:
            states = hx if self.mode == "LSTM" else (hx,)
            if not isinstance(states, tuple) or len(states) != n_states:
                raise ValueError(f"{name}: hx must be a tuple (h_0, c_0)" if n_states == 2
                                 else f"{name}: hx must be a Tensor")
            want = (self.num_layers * self.num_directions, n_b, self.hidden_size)
            checked = []
            for arg, s in zip(("h_0", "c_0"), states):
                check_tensor(s, name, arg)
                shape = s.shape if batched else s.shape[:1] + (1,) + s.shape[1:]
                if s.ndim != (3 if batched else 2) or shape != want:
                    raise ValueError(f"{name}: {arg} must have shape "
                                     f"{want if batched else (want[0], want[2])}, got {s.shape}")
                checked.append(s if batched else s.unsqueeze(1))
            hx = tuple(checked)
        if lengths is not None:          # (None: the ops run every row to the end)
            lengths = _rec.check_lengths(name, lengths, n_t, n_b)
        return input, hx, lengths, batched

    def forward(self, input, hx=None, lengths=None):
        """input (T, B, I) ((B, T, I) if batch_first; (T, I) unbatched), hx (L*D, B, H)
        (LSTM: a tuple (h_0, c_0)), lengths B ints. Returns (output (T, B, D*H) (or
        (B, T, D*H)), h_n) (LSTM: (output, (h_n, c_n)))."""
        x, hx, lengths, batched = self._input(input, hx, lengths)
        batch_first = batched and self.batch_first        # passed to the ops: no transposes here
        n_b, dev, dt = x.shape[0 if batch_first else 1], x.device, x.dtype
        lstm = self.mode == "LSTM"
        h_n, c_n = [], []
        zero = zeros(n_b, self.hidden_size, dtype=dt, device=dev) if hx is None else None   # read-only
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                w_ih, w_hh, b_ih, b_hh = self._layer_params(layer, d)
                h0 = hx[0][k] if hx is not None else zero
                reverse = d == 1
                if lstm:
                    c0 = hx[1][k] if hx is not None else zero
                    out, h, c = _rec.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse,
                                          batch_first)
                    c_n.append(c)
                elif self.mode == "GRU":
                    out, h = _rec.gru(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, batch_first)
                else:
                    out, h = _rec.rnn(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse,
                                      "relu" if self.mode == "RNN_RELU" else "tanh", batch_first)
                outs.append(out)
                h_n.append(h)
            x = outs[0] if len(outs) == 1 else _ops.cat(outs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = _ops.dropout(x, self.dropout, training=True)
        if not batched:
            x = x.squeeze(1)
        states = [s[0].unsqueeze(0) if len(s) == 1 else _ops.stack(s, 0) for s in ((h_n, c_n) if lstm else (h_n,))]
        if not batched:
            states = [s.squeeze(1) for s in states]
        return (x, tuple(states)) if lstm else (x, states[0])

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for arg, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                             ("bidirectional", False)):
            if getattr(self, arg) != default:
                s += f", {arg}={getattr(self, arg)}"
        return s


class RNN(RNNBase):
    """Elman RNN, h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) (or relu)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_" + nonlinearity.upper(), input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory (gates i, f, g, o, as torch); forward returns (output, (h_n, c_n))."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype)


class GRU(RNNBase):
    """Gated recurrent unit (gates r, z, n, torch's formula with b_hn inside r *)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype)


class RNNCellBase(Module):
    def __init__(self, input_size, hidden_size, bias, gates, dtype):
        super().__init__()
        name = type(self).__name__
        self.input_size = _positive(name, "input_size", input_size)
        self.hidden_size = _positive(name, "hidden_size", hidden_size)
        self.bias = bool(bias)
        self.weight_ih = Parameter(empty(gates * hidden_size, input_size, dtype=dtype))
        self.weight_hh = Parameter(empty(gates * hidden_size, hidden_size, dtype=dtype))
        if self.bias:
            self.bias_ih = Parameter(empty(gates * hidden_size, dtype=dtype))
            self.bias_hh = Parameter(empty(gates * hidden_size, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _states(self, input, hx, n):
        """(input (B, I), n states (B, H), batched); zeros for a missing hx."""
        name = type(self).__name__
        check_tensor(input, name, "input")
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: input must be 2-D (batched) or 1-D (unbatched), got shape {input.shape}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input has {input.shape[-1]} features (shape {input.shape}), "
                             f"expected input_size={self.input_size}")
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        if hx is None:
            z = zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
            return x, (z,) * n, batched
        states = hx if n == 2 else (hx,)
        if not isinstance(states, tuple) or len(states) != n:
            raise ValueError(f"{name}: hx must be a tuple (h, c)" if n == 2 else f"{name}: hx must be a Tensor")
        out = []
        for s in states:
            check_tensor(s, name, "hx")
            if s.ndim != input.ndim:
                raise ValueError(f"{name}: hx must be {input.ndim}-D like input {input.shape}, got {s.shape}")
            out.append(s if batched else s.unsqueeze(0))
        return x, tuple(out), batched

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(RNNCellBase):
    """One step of RNN: forward(input (B, I), hx (B, H) = zeros) -> h' (B, H)."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, 1, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, (h,), batched = self._states(input, hx, 1)
        h = _rec.rnn_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                          self.nonlinearity)
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One step of LSTM: forward(input (B, I), (h, c) = zeros) -> (h', c')."""

    def __init__(self, input_size, hidden_size, bias=True, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, dtype)

    def forward(self, input, hx=None):
        x, (h, c), batched = self._states(input, hx, 2)
        h, c = _rec.lstm_cell(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One step of GRU: forward(input (B, I), hx (B, H) = zeros) -> h' (B, H)."""

    def __init__(self, input_size, hidden_size, bias=True, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, dtype)

    def forward(self, input, hx=None):
        x, (h,), batched = self._states(input, hx, 1)
        h = _rec.gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h if batched else h.squeeze(0)
