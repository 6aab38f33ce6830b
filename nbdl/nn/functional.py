"""``import nbdl.nn.functional as F``: activations, linear, dropout, pad,
softmax and the losses (written in differentiable ops, so their second
derivatives work)."""
import numpy as np

from nbdl.autograd.grad_mode import no_grad
from nbdl.autograd.graph import attach
from nbdl.functional import (dropout, gelu, leaky_relu, linear, log_softmax, one_hot,
                             pad, relu, sigmoid, softmax, tanh, where)
from nbdl.functional.conv import conv1d, conv2d, conv_transpose2d
from nbdl.functional._util import (IndexOutOfRangeError, broadcasts_to, check_tensor, host_tensor,
                                   same_device)
from nbdl.functional.norm import batch_norm, group_norm, instance_norm
from nbdl.functional.pool import adaptive_avg_pool2d, avg_pool2d, interpolate, max_pool2d

__all__ = ["dropout", "gelu", "leaky_relu", "linear", "log_softmax", "one_hot", "pad", "relu",
           "sigmoid", "softmax", "tanh", "cross_entropy", "nll_loss", "mse_loss", "l1_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "logsigmoid",
           "softplus", "conv1d", "conv2d", "conv_transpose2d", "batch_norm", "group_norm", "instance_norm"]

__all__ += ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "interpolate"]
__all__ += ["multi_margin_loss", "hinge_loss", "squared_hinge_loss"]

from nbdl.functional.attention import embedding, layer_norm, scaled_dot_product_attention  # noqa: E402
__all__ += ["scaled_dot_product_attention", "layer_norm", "embedding"]

_REDUCTIONS = ("none", "mean", "sum")


def _reduce(loss, reduction, op):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _check_pair(op, input, target, same_shape=True):
    check_tensor(input, op, "input")
    check_tensor(target, op, "target")
    same_device(op, input, target)
    if same_shape and input.shape != target.shape:
        raise ValueError(f"{op}: input shape {input.shape} and target shape {target.shape} differ")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a float tensor, got {input.dtype}")


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, linear above ``threshold`` (as torch)."""
    z = input * beta
    soft = (z.clamp(max=threshold).exp()).log1p() / beta
    return where(z > threshold, input, soft)


def logsigmoid(input):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), stable for large |x|;
    its gradient sigmoid(-x) is smooth at 0 too."""
    check_tensor(input, "logsigmoid")
    with no_grad():
        out = input.clamp(max=0) - (-input.abs()).exp().log1p()
    return attach(out, "logsigmoid", (input,), lambda g: (g * sigmoid(-input),))


def _check_broadcast(op, arg, t, shape):
    """``t`` (a weight) must broadcast to the input's ``shape``."""
    check_tensor(t, op, arg)
    if not broadcasts_to(t.shape, shape):
        raise ValueError(f"{op}: {arg} of shape {t.shape} does not broadcast to the input's shape {shape}")


def mse_loss(input, target, reduction="mean"):
    _check_pair("mse_loss", input, target)
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(input, target, reduction="mean"):
    _check_pair("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction, "l1_loss")


def _class_targets(op, input, target, ignore_index, weight):
    """Check (N, C, *) scores against (N, *) integer classes in [0, C) (or ignore_index)
    and the (C,) class ``weight``. Returns (class dim, host classes, valid mask or None
    when every class is valid)."""
    check_tensor(input, op, "input")
    check_tensor(target, op, "target")
    same_device(op, input, target)
    if input.ndim < 1:
        raise ValueError(f"{op}: input must have a class dimension, got shape {input.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got {target.dtype}")
    c_dim = 0 if input.ndim == 1 else 1
    expected = input.shape[:c_dim] + input.shape[c_dim + 1:]
    if target.shape != expected:
        raise ValueError(f"{op}: target shape {target.shape} does not match input {input.shape} "
                         f"(expected {expected})")
    t = target.numpy()
    n_cls = input.shape[c_dim]
    valid = None
    if t.size:
        lo, hi = t.min(), t.max()
        if ignore_index is not None and lo <= ignore_index <= hi:   # (else all are classes)
            valid = t != ignore_index
            if valid.any():
                lo, hi = t[valid].min(), t[valid].max()
        if (valid is None or valid.any()) and (lo < 0 or hi >= n_cls):
            raise IndexOutOfRangeError(f"{op}: target classes must be in [0, {n_cls}), "
                                       f"got [{lo}, {hi}]")
    if weight is not None:
        check_tensor(weight, op, "weight")
        if weight.shape != (n_cls,):
            raise ValueError(f"{op}: weight must have shape ({n_cls},), got {weight.shape}")
    return c_dim, t, valid


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """-input[n, target[n]] * weight[target[n]]; input holds log-probabilities (N, C, *)."""
    checked = _class_targets("nll_loss", input, target, ignore_index, weight)
    return _nll(input, target, weight, reduction, *checked)


def _nll(input, target, weight, reduction, c_dim, t, valid):
    """nll_loss on arguments _class_targets checked (it gave c_dim, t, valid)."""
    if weight is None and valid is None:   # the common case: a plain mean of picked entries
        picked = input.gather(c_dim, target.long().unsqueeze(c_dim)).squeeze(c_dim)
        return _reduce(-picked, reduction, "nll_loss")
    if valid is None:
        valid = np.ones(t.shape, bool)
    safe = host_tensor(np.where(valid, t, 0).astype(np.int64), input.device)
    picked = input.gather(c_dim, safe.unsqueeze(c_dim)).squeeze(c_dim)
    w = host_tensor(valid.astype(input.dtype), input.device)
    if weight is not None:
        w = w * weight[safe]
    loss = -picked * w
    if reduction == "mean":
        return loss.sum() / w.sum()
    return _reduce(loss, reduction, "nll_loss")


def _cross_entropy_rows(input, t, reduction):
    """cross_entropy of (N, C) scores against N classes in [0, C) (no weight, no
    smoothing, none ignored) as one tape node instead of five (log_softmax, gather,
    squeeze, neg, the reduction): its gradient is (softmax(input) - one_hot(t)) times
    the loss's gradient (over N for the mean), written in ops for higher derivatives."""
    n, n_cls = input.shape
    with no_grad():
        loss = _reduce(-log_softmax(input, 1).gather(
            1, host_tensor(t.reshape(n, 1).astype(np.int64), input.device)).squeeze(1),
            reduction, "cross_entropy")
    onehot = np.zeros((n, n_cls), input.dtype)
    onehot[np.arange(n), t] = 1

    def backward(g):
        diff = softmax(input, 1) - host_tensor(onehot, input.device)
        if reduction == "none":
            return (diff * g.unsqueeze(1),)
        return (diff * (g / n if reduction == "mean" else g),)

    return attach(loss, "cross_entropy", (input,), backward)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """log_softmax + nll_loss over class indices, with torch's ``label_smoothing``."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    c_dim, t, valid = _class_targets("cross_entropy", input, target, ignore_index, weight)
    if input.ndim == 2 and weight is None and valid is None and label_smoothing == 0.0:
        return _cross_entropy_rows(input, t, reduction)
    logp = log_softmax(input, c_dim)
    nll = _nll(logp, target, weight, reduction, c_dim, t, valid)
    if label_smoothing == 0.0:
        return nll
    n_cls = input.shape[c_dim]
    if valid is None:
        valid = np.ones(t.shape, bool)
    mask = host_tensor(valid.astype(input.dtype), input.device)
    if weight is not None:
        shape = [1] * input.ndim
        shape[c_dim] = n_cls
        smooth = -(logp * weight.reshape(shape)).sum(c_dim) * mask
    else:
        smooth = -logp.sum(c_dim) * mask
    if reduction == "mean":
        if weight is not None:
            safe = host_tensor(np.where(valid, t, 0).astype(np.int64), input.device)
            smooth = smooth.sum() / (weight[safe] * mask).sum()
        else:
            smooth = smooth.sum() / mask.sum()
    else:
        smooth = _reduce(smooth, reduction, "cross_entropy")
    return (1 - label_smoothing) * nll + (label_smoothing / n_cls) * smooth


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)) on probabilities; logs clamped at -100 (as torch)."""
    _check_pair("binary_cross_entropy", input, target)
    p = input.numpy()
    if p.size and (np.nanmin(p) < 0 or np.nanmax(p) > 1):
        raise ValueError("binary_cross_entropy: input must hold probabilities in [0, 1]")
    if weight is not None:
        _check_broadcast("binary_cross_entropy", "weight", weight, input.shape)
    loss = -(target * input.log().clamp(min=-100) + (1 - target) * (1 - input).log().clamp(min=-100))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None):
    """BCE on logits, stable for large |x|: (1 - t) x + (1 + (pw - 1) t) softplus(-x)."""
    _check_pair("binary_cross_entropy_with_logits", input, target)
    for arg, w in (("weight", weight), ("pos_weight", pos_weight)):
        if w is not None:
            _check_broadcast("binary_cross_entropy_with_logits", arg, w, input.shape)
    log_sig_neg = logsigmoid(-input)    # log(1 - sigmoid(x))
    if pos_weight is None:
        loss = -(target * logsigmoid(input) + (1 - target) * log_sig_neg)
    else:
        loss = -(pos_weight * target * logsigmoid(input) + (1 - target) * log_sig_neg)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def kl_div(input, target, reduction="mean", log_target=False):
    """KL(target || exp(input)) pointwise: input holds log-probabilities.
    ``reduction='batchmean'`` divides the sum by the batch size (the true KL)."""
    _check_pair("kl_div", input, target)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        t = target.numpy()
        safe_log = host_tensor(np.log(np.where(t > 0, t, 1)).astype(t.dtype), input.device)
        loss = target * (safe_log - input) if not target.requires_grad else \
            where(target > 0, target * ((target.clamp(min=1e-45)).log() - input), 0.0)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, "kl_div")


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    """The multi-class hinge loss (torch's): for scores x (N, C) or (C,) and classes
    y, sum_{i != y} max(0, margin - x[y] + x[i])^p * weight[y] / C; p is 1 or 2
    (squared hinge)."""
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: p must be 1 or 2, got {p!r}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"multi_margin_loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    # no ignore_index here: None matches no class, so every target is checked
    _class_targets("multi_margin_loss", input, target, None, weight)
    if input.ndim > 2:
        raise ValueError(f"multi_margin_loss: input must be (N, C) or (C,), got {input.shape}")
    x, y = (input, target) if input.ndim == 2 else (input.unsqueeze(0), target.reshape(1))
    n_cls = x.shape[1]
    picked = x.gather(1, y.long().unsqueeze(1))                     # (N, 1): x[y]
    h = relu(margin - picked + x)
    if p == 2:
        h = h * h
    if weight is not None:
        h = h * weight[y].unsqueeze(1)
    others = 1 - one_hot(y.long(), n_cls).to(dtype=x.dtype)         # drop the i == y term
    loss = (h * others).sum(1) / n_cls
    return _reduce(loss if input.ndim == 2 else loss.reshape(()), reduction, "multi_margin_loss")


def _binary_hinge(op, input, target, margin, reduction, squared):
    _check_pair(op, input, target)
    t = target.numpy()
    if t.size and not np.isin(t, (-1, 1)).all():
        raise ValueError(f"{op}: target must hold -1 or +1 labels")
    h = relu(margin - target * input)
    return _reduce(h * h if squared else h, reduction, op)


def hinge_loss(input, target, margin=1.0, reduction="mean"):
    """The (linear SVM's) hinge loss max(0, margin - t x) of scores x against
    labels t in {-1, +1} of the same shape."""
    return _binary_hinge("hinge_loss", input, target, margin, reduction, squared=False)


def squared_hinge_loss(input, target, margin=1.0, reduction="mean"):
    """max(0, margin - t x)^2 for labels t in {-1, +1}: the hinge loss made
    differentiable at the margin (scikit-learn's LinearSVC default)."""
    return _binary_hinge("squared_hinge_loss", input, target, margin, reduction, squared=True)
