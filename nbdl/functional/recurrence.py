"""Recurrent layers as fused ops: one layer and one direction of an Elman RNN
(tanh / relu), an LSTM or a GRU over a whole time-major sequence, with torch's
weight layouts and gate orders (i, f, g, o; r, z, n). Forward and
backpropagation through time each run as one kernel per device
(``rnn_forward`` / ``rnn_backward``, ``lstm_*``, ``gru_*`` in
nbdl.kernels.{cpu,cuda}.recurrence). The ops are once-differentiable:
differentiating their gradients again raises.

Variable lengths: ``lengths`` (B ints in [1, T]) stops row b after its first
lengths[b] steps: later steps leave its state unchanged and output zeros, and
the reverse direction starts at its last valid step (torch's packed sequences).
The cells (``rnn_cell``, ``lstm_cell``, ``gru_cell``) are one-step sequences.
"""
import numpy as np

from nbdl.autograd.function import Function, once_differentiable
from nbdl.dispatch import kernel
from nbdl.functional._util import check_tensor, same_device
from nbdl.tensor import Tensor


def _grads(ctx, arrays):
    """Tensors of the kernel's gradients, None where the input needs none."""
    return tuple(Tensor(a) if a is not None and need else None
                 for a, need in zip(arrays, ctx.needs_input_grad))


def _swap(a, batch_first, device):
    """The (B, T, .) <-> (T, B, .) view of a kernel array when batch_first (the kernels
    run time-major; swapping here keeps the transposes off the tape)."""
    return kernel("permute", device)(a, (1, 0, 2)) if batch_first else a


class _RNN(Function):
    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, relu, batch_first):
        dev = x.device
        out, hn, hprev = kernel("rnn_forward", dev)(
            _swap(x.data, batch_first, dev), h0.data, w_ih.data, w_hh.data,
            None if b_ih is None else b_ih.data, None if b_hh is None else b_hh.data, lengths,
            reverse, relu)
        ctx.save_for_backward(x, w_ih, w_hh)
        ctx.arrays = (out, hprev, lengths, reverse, relu, batch_first)
        return Tensor(_swap(out, batch_first, dev)), Tensor(hn)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out, g_hn):
        x, w_ih, w_hh = ctx.saved_tensors
        out, hprev, lengths, reverse, relu, batch_first = ctx.arrays
        dev = x.device
        gx, gh0, gw_ih, gw_hh, gb = kernel("rnn_backward", dev)(
            _swap(x.data, batch_first, dev), w_ih.data, w_hh.data, out, hprev, lengths, reverse, relu,
            _swap(g_out.data, batch_first, dev), g_hn.data)
        gx = _swap(gx, batch_first, dev)
        return _grads(ctx, (gx, gh0, gw_ih, gw_hh, gb, gb)) + (None, None, None, None)


class _LSTM(Function):
    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, batch_first):
        dev = x.device
        out, hn, cn, saved = kernel("lstm_forward", dev)(
            _swap(x.data, batch_first, dev), h0.data, c0.data, w_ih.data, w_hh.data,
            None if b_ih is None else b_ih.data, None if b_hh is None else b_hh.data, lengths, reverse)
        ctx.save_for_backward(x, w_ih, w_hh)
        ctx.arrays = (saved, lengths, reverse, batch_first)
        return Tensor(_swap(out, batch_first, dev)), Tensor(hn), Tensor(cn)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out, g_hn, g_cn):
        x, w_ih, w_hh = ctx.saved_tensors
        saved, lengths, reverse, batch_first = ctx.arrays
        dev = x.device
        gx, gh0, gc0, gw_ih, gw_hh, gb = kernel("lstm_backward", dev)(
            _swap(x.data, batch_first, dev), w_ih.data, w_hh.data, saved, lengths, reverse,
            _swap(g_out.data, batch_first, dev), g_hn.data, g_cn.data)
        gx = _swap(gx, batch_first, dev)
        return _grads(ctx, (gx, gh0, gc0, gw_ih, gw_hh, gb, gb)) + (None, None, None)


class _GRU(Function):
    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, batch_first):
        dev = x.device
        out, hn, saved = kernel("gru_forward", dev)(
            _swap(x.data, batch_first, dev), h0.data, w_ih.data, w_hh.data,
            None if b_ih is None else b_ih.data, None if b_hh is None else b_hh.data, lengths, reverse)
        ctx.save_for_backward(x, w_ih, w_hh)
        ctx.arrays = (saved, lengths, reverse, batch_first)
        return Tensor(_swap(out, batch_first, dev)), Tensor(hn)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out, g_hn):
        x, w_ih, w_hh = ctx.saved_tensors
        saved, lengths, reverse, batch_first = ctx.arrays
        dev = x.device
        gx, gh0, gw_ih, gw_hh, gb_ih, gb_hh = kernel("gru_backward", dev)(
            _swap(x.data, batch_first, dev), w_ih.data, w_hh.data, saved, lengths, reverse,
            _swap(g_out.data, batch_first, dev), g_hn.data)
        gx = _swap(gx, batch_first, dev)
        return _grads(ctx, (gx, gh0, gw_ih, gw_hh, gb_ih, gb_hh)) + (None, None, None)


# ---- validation ------------------------------------------------------------------------
def check_lengths(op, lengths, n_t, n_b):
    """``lengths`` (None, a sequence, numpy array or Tensor of B ints in [1, T]) as an
    int64 numpy array; a ValueError naming ``op`` otherwise."""
    if lengths is None:
        return np.full(n_b, n_t, np.int64)
    if isinstance(lengths, Tensor):
        lengths = lengths.numpy()
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
        raise ValueError(f"{op}: lengths must be integers, got dtype {arr.dtype}")
    if arr.shape != (n_b,):
        raise ValueError(f"{op}: lengths must have shape ({n_b},) (one per batch row), got {arr.shape}")
    if n_b and (arr.min() < 1 or arr.max() > n_t):
        raise ValueError(f"{op}: lengths must lie in [1, {n_t}] (the sequence length), got "
                         f"min {arr.min()}, max {arr.max()}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _check(op, gates, input, states, w_ih, w_hh, b_ih, b_hh, batch_first):
    """Shapes, dtypes and devices of one layer's operands: input (T, B, I) ((B, T, I)
    if batch_first), states (B, H). Returns (T, B)."""
    if (b_ih is None) != (b_hh is None):
        raise ValueError(f"{op}: give both bias_ih and bias_hh or neither")
    named = (("input", input), *states, ("weight_ih", w_ih), ("weight_hh", w_hh))
    if b_ih is not None:
        named += (("bias_ih", b_ih), ("bias_hh", b_hh))
    tensors = [check_tensor(t, op, arg) for arg, t in named]
    same_device(op, *tensors)
    dtypes = {t.dtype for t in tensors}
    for dt in dtypes:
        if dt.kind != "f":
            raise TypeError(f"{op}: expects float tensors, got {dt}")
    if len(dtypes) != 1:
        raise TypeError(f"{op}: expects one float dtype, got {sorted(str(dt) for dt in dtypes)}")
    if input.ndim != 3:
        raise ValueError(f"{op}: input must be 3-D ({'B, T' if batch_first else 'T, B'}, input_size), "
                         f"got shape {input.shape}")
    n_t, n_b, n_in = input.shape
    if batch_first:
        n_t, n_b = n_b, n_t
    if n_t == 0:
        raise ValueError(f"{op}: input has an empty sequence dimension, shape {input.shape}")
    if w_hh.ndim != 2 or w_hh.shape[0] != gates * w_hh.shape[1]:
        raise ValueError(f"{op}: weight_hh must have shape ({gates}*H, H), got {w_hh.shape}")
    n_h = w_hh.shape[1]
    if w_ih.shape != (gates * n_h, n_in):
        raise ValueError(f"{op}: weight_ih must have shape ({gates * n_h}, {n_in}) for input "
                         f"{input.shape} and hidden size {n_h}, got {w_ih.shape}")
    for arg, b in (("bias_ih", b_ih), ("bias_hh", b_hh)):
        if b is not None and b.shape != (gates * n_h,):
            raise ValueError(f"{op}: {arg} must have shape ({gates * n_h},), got {b.shape}")
    for arg, s in states:
        if s.shape != (n_b, n_h):
            raise ValueError(f"{op}: {arg} must have shape ({n_b}, {n_h}) for input {input.shape}, "
                             f"got {s.shape}")
    return n_t, n_b


def _flag(op, arg, v):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{op}: {arg} must be a bool, got {v!r}")
    return bool(v)


# ---- public entries --------------------------------------------------------------------
def rnn(input, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, lengths=None, reverse=False,
        nonlinearity="tanh", batch_first=False):
    """One Elman RNN layer and direction: h' = act(W_ih x + b_ih + W_hh h + b_hh).
    input (T, B, I) ((B, T, I) if batch_first), h0 (B, H), weight_ih (H, I),
    weight_hh (H, H), biases (H,) or None. Returns (output (T, B, H) (or (B, T, H)), h_n (B, H))."""
    op = "rnn"
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"{op}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    batch_first = _flag(op, "batch_first", batch_first)
    n_t, n_b = _check(op, 1, input, (("h0", h0),), weight_ih, weight_hh, bias_ih, bias_hh, batch_first)
    return _RNN.apply(input, h0, weight_ih, weight_hh, bias_ih, bias_hh,
                      check_lengths(op, lengths, n_t, n_b), _flag(op, "reverse", reverse),
                      nonlinearity == "relu", batch_first)


def lstm(input, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, lengths=None, reverse=False,
         batch_first=False):
    """One LSTM layer and direction (gates i, f, g, o): input (T, B, I) ((B, T, I) if
    batch_first), h0, c0 (B, H), weight_ih (4H, I), weight_hh (4H, H), biases (4H,) or
    None. Returns (output (T, B, H) (or (B, T, H)), h_n, c_n (B, H))."""
    op = "lstm"
    batch_first = _flag(op, "batch_first", batch_first)
    n_t, n_b = _check(op, 4, input, (("h0", h0), ("c0", c0)), weight_ih, weight_hh, bias_ih, bias_hh,
                      batch_first)
    return _LSTM.apply(input, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh,
                       check_lengths(op, lengths, n_t, n_b), _flag(op, "reverse", reverse), batch_first)


def gru(input, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, lengths=None, reverse=False,
        batch_first=False):
    """One GRU layer and direction (gates r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn))):
    input (T, B, I) ((B, T, I) if batch_first), h0 (B, H), weight_ih (3H, I),
    weight_hh (3H, H), biases (3H,) or None. Returns (output (T, B, H) (or (B, T, H)), h_n (B, H))."""
    op = "gru"
    batch_first = _flag(op, "batch_first", batch_first)
    n_t, n_b = _check(op, 3, input, (("h0", h0),), weight_ih, weight_hh, bias_ih, bias_hh, batch_first)
    return _GRU.apply(input, h0, weight_ih, weight_hh, bias_ih, bias_hh,
                      check_lengths(op, lengths, n_t, n_b), _flag(op, "reverse", reverse), batch_first)


def _step(op, input):
    """A cell's input (B, I) as a one-step sequence (1, B, I)."""
    check_tensor(input, op, "input")
    if input.ndim != 2:
        raise ValueError(f"{op}: input must be 2-D (B, input_size), got shape {input.shape}")
    return input.unsqueeze(0)


def rnn_cell(input, hx, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh"):
    """One step of ``rnn``: input (B, I), hx (B, H) -> h' (B, H)."""
    return rnn(_step("rnn_cell", input), hx, weight_ih, weight_hh, bias_ih, bias_hh,
               nonlinearity=nonlinearity)[1]


def lstm_cell(input, hx, cx, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One step of ``lstm``: input (B, I), hx, cx (B, H) -> (h', c')."""
    _, h, c = lstm(_step("lstm_cell", input), hx, cx, weight_ih, weight_hh, bias_ih, bias_hh)
    return h, c


def gru_cell(input, hx, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One step of ``gru``: input (B, I), hx (B, H) -> h' (B, H)."""
    return gru(_step("gru_cell", input), hx, weight_ih, weight_hh, bias_ih, bias_hh)[1]
