"""Hungarian matching: batched assignment and cluster accuracy against brute
force over permutations, the set-matching loss (value, gradient, invariance),
bad input."""
import itertools

import numpy as np
import pytest

import nbdl
from nbdl.algorithms.hungarian import (SetMatchingLoss, cluster_accuracy, linear_sum_assignment,
                                       set_matching_loss)


def brute_force(cost, maximize=False):
    """The best total cost over every injective assignment of the smaller side."""
    n, m = cost.shape
    if n > m:
        return brute_force(cost.T, maximize)
    totals = [cost[np.arange(n), list(p)].sum() for p in itertools.permutations(range(m), n)]
    return max(totals) if maximize else min(totals)


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (5, 5), (3, 5), (6, 4)])
@pytest.mark.parametrize("maximize", [False, True])
def test_assignment_matches_brute_force(shape, maximize):
    rng = np.random.default_rng(sum(shape) + maximize)
    costs = rng.standard_normal((4, *shape))
    costs[1] = rng.integers(0, 3, shape)           # many ties
    rows, cols = linear_sum_assignment(costs, maximize=maximize)
    k = min(shape)
    assert rows.shape == cols.shape == (4, k) and rows.dtype == np.int64
    for b in range(4):
        assert len(set(cols[b])) == k and len(set(rows[b])) == k    # one-to-one
        got = costs[b, rows[b], cols[b]].sum()
        assert got == pytest.approx(brute_force(costs[b], maximize), abs=1e-12)
    # one matrix: the same as its batch entry; a Tensor works too
    r0, c0 = linear_sum_assignment(nbdl.tensor(costs[0]), maximize=maximize)
    np.testing.assert_array_equal(c0, cols[0])
    np.testing.assert_array_equal(r0, rows[0])


def test_assignment_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        linear_sum_assignment(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"\(B, n, m\)"):
        linear_sum_assignment(np.ones(3))
    with pytest.raises(ValueError, match="batch entry 1"):
        bad = np.ones((2, 2, 2))
        bad[1, 0] = np.inf                       # row 0 cannot be assigned at finite cost
        linear_sum_assignment(bad)
    with pytest.raises(TypeError, match="real"):
        linear_sum_assignment(np.array([["a", "b"], ["c", "d"]]))


def test_cluster_accuracy_against_brute_force():
    rng = np.random.default_rng(0)
    for k_true, k_pred in ((3, 3), (3, 4), (4, 2)):
        y_true = rng.integers(0, k_true, 40)
        y_pred = rng.integers(0, k_pred, 40) + 10      # label values need not be 0..k-1
        best = 0.0
        labels_pred = np.unique(y_pred)
        for perm in itertools.permutations(range(max(k_true, len(labels_pred))),
                                           len(labels_pred)):
            mapping = dict(zip(labels_pred, perm))   # cluster -> class (or nothing)
            best = max(best, np.mean([mapping[c] == t for t, c in zip(y_true, y_pred)]))
        assert cluster_accuracy(y_true, y_pred) == pytest.approx(best)
    y = np.array(["a", "b", "b", "c"])
    assert cluster_accuracy(y, [2, 0, 0, 1]) == 1.0
    with pytest.raises(ValueError, match="same length"):
        cluster_accuracy([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="no labels"):
        cluster_accuracy([], [])


def test_set_matching_loss_value_gradient_and_invariance():
    rng = np.random.default_rng(1)
    B, N, D = 3, 4, 2
    pred = rng.standard_normal((B, N, D))
    target = rng.standard_normal((B, N, D))
    x = nbdl.tensor(pred, requires_grad=True)
    loss = set_matching_loss(x, nbdl.tensor(target))
    # brute force: the best permutation per batch entry
    expected, grad = 0.0, np.zeros_like(pred)
    for b in range(B):
        cost = ((pred[b, :, None] - target[b, None]) ** 2).sum(-1)
        perm = min(itertools.permutations(range(N)), key=lambda p: cost[np.arange(N), p].sum())
        expected += cost[np.arange(N), perm].sum()
        grad[b] = 2 * (pred[b] - target[b, list(perm)])
    assert loss.item() == pytest.approx(expected / (B * N), rel=1e-12)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), grad / (B * N), rtol=1e-12)
    # the order of the targets does not matter; the order of the predictions permutes "none"
    shuffled = target[:, rng.permutation(N)]
    assert set_matching_loss(x, nbdl.tensor(shuffled)).item() == pytest.approx(loss.item())
    per_pair = set_matching_loss(x, nbdl.tensor(target), reduction="none")
    assert per_pair.shape == (B, N)
    assert per_pair.sum().item() == pytest.approx(
        set_matching_loss(x, nbdl.tensor(target), reduction="sum").item())
    l1 = SetMatchingLoss(cost="l1")(x[0], nbdl.tensor(target[0]))
    cost = np.abs(pred[0, :, None] - target[0, None]).sum(-1)
    assert l1.item() == pytest.approx(min(cost[np.arange(N), p].mean()
                                          for p in itertools.permutations(range(N))))
    assert nbdl.gradcheck(lambda a, t: set_matching_loss(a, t),
                          (nbdl.tensor(pred[:1], requires_grad=True),
                           nbdl.tensor(target[:1], requires_grad=True)))


def test_set_matching_loss_bad_input():
    a = nbdl.zeros((2, 3, 2))
    with pytest.raises(ValueError, match="square"):
        set_matching_loss(a, nbdl.zeros((2, 4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        set_matching_loss(nbdl.full((2, 3, 2), float("nan")), a)
    with pytest.raises(ValueError, match="reduction"):
        set_matching_loss(a, a, reduction="max")
    with pytest.raises(ValueError, match="cost"):
        set_matching_loss(a, a, cost="cosine")
    with pytest.raises(ValueError, match="cost"):
        SetMatchingLoss(cost="cosine")
