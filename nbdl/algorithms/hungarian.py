"""Hungarian matching: batched ``scipy.optimize.linear_sum_assignment``, the
cluster-accuracy metric and a differentiable set-matching loss."""
import numpy as np

from nbdl.nn.module import Module
from nbdl.tensor import Tensor

_COSTS = ("sqeuclidean", "l1")


def _cost_array(cost, op):
    arr = cost.numpy() if isinstance(cost, Tensor) else np.asarray(cost)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{op}: cost matrices must be real numbers, got dtype {arr.dtype}")
    if np.isnan(arr).any():
        raise ValueError(f"{op}: the cost matrix of shape {arr.shape} contains NaN")
    return arr


def linear_sum_assignment(cost, maximize=False):
    """The assignment of least (``maximize``: greatest) total cost, for one
    (n, m) cost matrix or a batch (B, n, m) (a numpy array or a Tensor).

    Returns (rows, cols), int64 arrays of shape (k,) or (B, k), k = min(n, m):
    row rows[..., i] is assigned to column cols[..., i], rows ascending (as
    scipy's). Raises ValueError for NaN entries and for matrices with no
    assignment of finite cost.
    """
    from scipy.optimize import linear_sum_assignment as lsa
    op = "linear_sum_assignment"
    arr = _cost_array(cost, op)
    if arr.ndim not in (2, 3):
        raise ValueError(f"{op}: cost must be (n, m) or (B, n, m), got shape {arr.shape}")
    batch = arr if arr.ndim == 3 else arr[None]
    k = min(batch.shape[1:])
    rows = np.empty((batch.shape[0], k), np.int64)
    cols = np.empty((batch.shape[0], k), np.int64)
    for b, matrix in enumerate(batch):
        try:
            rows[b], cols[b] = lsa(matrix, maximize=maximize)
        except ValueError as e:   # infeasible: +-inf leave no finite assignment
            where = f" (batch entry {b})" if arr.ndim == 3 else ""
            raise ValueError(f"{op}: {e}{where}") from None
    return (rows, cols) if arr.ndim == 3 else (rows[0], cols[0])


def cluster_accuracy(y_true, y_pred):
    """Accuracy of cluster labels ``y_pred`` under the best one-to-one mapping
    of clusters to classes (Hungarian on the contingency table): 1.0 when the
    clustering equals the classes up to renaming. Labels: 1-D, any values."""
    op = "cluster_accuracy"
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise ValueError(f"{op}: y_true and y_pred must be 1-D of the same length, got shapes "
                         f"{y_true.shape} and {y_pred.shape}")
    if y_true.size == 0:
        raise ValueError(f"{op}: got no labels")
    _, t = np.unique(y_true, return_inverse=True)
    _, p = np.unique(y_pred, return_inverse=True)
    table = np.zeros((t.max() + 1, p.max() + 1), np.int64)
    np.add.at(table, (t, p), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / y_true.size)


def pairwise_cost(input, target, cost="sqeuclidean"):
    """(B, N, M) costs between the points of input (B, N, D) and target (B, M, D):
    ``"sqeuclidean"`` sum_d (x - y)^2 or ``"l1"`` sum_d |x - y|, differentiable."""
    if cost not in _COSTS:
        raise ValueError(f"pairwise_cost: cost must be one of {_COSTS}, got {cost!r}")
    diff = input.unsqueeze(2) - target.unsqueeze(1)
    return (diff * diff).sum(-1) if cost == "sqeuclidean" else diff.abs().sum(-1)


def set_matching_loss(input, target, cost="sqeuclidean", reduction="mean"):
    """A loss between two unordered sets of N points each, per batch entry.

    input: predictions (B, N, D) (or (N, D)); target: (B, N, D) (or (N, D)),
    the same sizes. The costs between every prediction and every target
    (``pairwise_cost``) are matched by the Hungarian method (no gradient
    through the matching itself), and the loss is the matched costs:
    reduction "mean" (over all B N pairs), "sum", or "none" ((B, N), the cost
    of each prediction's match, or (N,) for 2-D inputs). Gradients flow
    through the matched costs to the predictions (and the targets).
    """
    from nbdl.functional._util import check_tensor, same_device
    op = "set_matching_loss"
    check_tensor(input, op, "input")
    check_tensor(target, op, "target")
    same_device(op, input, target)
    if input.ndim not in (2, 3) or input.shape != target.shape:
        raise ValueError(f"{op}: input and target must both be (B, N, D) or (N, D) with the same "
                         f"shape (the same number of points: the cost matrix must be square), "
                         f"got {input.shape} and {target.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a float tensor, got {input.dtype}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    squeeze = input.ndim == 2
    if squeeze:
        input, target = input.unsqueeze(0), target.unsqueeze(0)
    costs = pairwise_cost(input, target, cost)          # (B, N, N)
    B, N, _ = costs.shape
    rows, cols = linear_sum_assignment(costs.detach(), maximize=False)
    flat = (np.arange(B)[:, None] * N * N + rows * N + cols).ravel()
    matched = costs.reshape(B * N * N)[flat].reshape(B, N)
    if reduction == "mean":
        return matched.mean()
    if reduction == "sum":
        return matched.sum()
    return matched[0] if squeeze else matched


class SetMatchingLoss(Module):
    """``set_matching_loss`` as a module: ``SetMatchingLoss(cost, reduction)(input, target)``."""

    def __init__(self, cost="sqeuclidean", reduction="mean"):
        super().__init__()
        if cost not in _COSTS:
            raise ValueError(f"SetMatchingLoss: cost must be one of {_COSTS}, got {cost!r}")
        self.cost, self.reduction = cost, reduction

    def forward(self, input, target):
        return set_matching_loss(input, target, self.cost, self.reduction)

    def extra_repr(self):
        return f"cost={self.cost!r}, reduction={self.reduction!r}"
