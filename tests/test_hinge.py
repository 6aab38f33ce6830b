"""Hinge losses of nn.functional: multi_margin_loss against torch, the binary
hinge and squared hinge against numpy, gradients, bad input."""
import numpy as np
import pytest
import torch

import nbdl
import nbdl.nn as nn
import nbdl.nn.functional as F


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multi_margin_loss_matches_torch(p, weighted, reduction):
    rng = np.random.default_rng(p + 2 * weighted)
    x, y, w = rng.standard_normal((6, 4)), rng.integers(0, 4, 6), rng.random(4)
    ours_x = nbdl.tensor(x, requires_grad=True)
    torch_x = torch.tensor(x, requires_grad=True)
    ours = F.multi_margin_loss(ours_x, nbdl.tensor(y), p=p, margin=0.8,
                               weight=nbdl.tensor(w) if weighted else None, reduction=reduction)
    theirs = torch.nn.functional.multi_margin_loss(torch_x, torch.tensor(y), p=p, margin=0.8,
                                                   weight=torch.tensor(w) if weighted else None,
                                                   reduction=reduction)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-15)
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(ours_x.grad.numpy(), torch_x.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_multi_margin_loss_one_sample_module_and_gradcheck():
    x, y = nbdl.tensor([0.3, -0.2, 0.9]), nbdl.tensor(2)
    expected = torch.nn.functional.multi_margin_loss(torch.tensor([0.3, -0.2, 0.9]),
                                                     torch.tensor(2))
    assert F.multi_margin_loss(x, y).item() == pytest.approx(expected.item(), rel=1e-6)
    module = nn.MultiMarginLoss(p=2, reduction="sum")
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((5, 3)) * 0.3     # margins away from the kinks
    assert module(nbdl.tensor(xs), nbdl.tensor([0, 1, 2, 0, 1])).item() == pytest.approx(
        torch.nn.functional.multi_margin_loss(torch.tensor(xs), torch.tensor([0, 1, 2, 0, 1]),
                                              p=2, reduction="sum").item())
    assert nbdl.gradcheck(lambda a: F.multi_margin_loss(a, nbdl.tensor([0, 1, 2, 0, 1]), p=2),
                          (nbdl.tensor(xs, requires_grad=True),))


@pytest.mark.parametrize("fn, squared", [(F.hinge_loss, False), (F.squared_hinge_loss, True)])
def test_binary_hinge_losses(fn, squared):
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((4, 3)) * 2, rng.choice([-1.0, 1.0], (4, 3))
    h = np.maximum(0.0, 0.5 - t * x)
    expected = h * h if squared else h
    np.testing.assert_allclose(fn(nbdl.tensor(x), nbdl.tensor(t), margin=0.5, reduction="none")
                               .numpy(), expected, rtol=1e-14)
    assert fn(nbdl.tensor(x), nbdl.tensor(t)).item() == pytest.approx(
        (np.maximum(0, 1 - t * x) ** (2 if squared else 1)).mean())
    x = nbdl.tensor(x, requires_grad=True)
    fn(x, nbdl.tensor(t), margin=0.5, reduction="sum").backward()
    np.testing.assert_allclose(x.grad.numpy(), -t * (2 * h if squared else (h > 0)), rtol=1e-14)


def test_hinge_bad_input():
    x = nbdl.zeros((3, 4))
    with pytest.raises(ValueError, match="-1 or"):
        F.hinge_loss(nbdl.zeros(3), nbdl.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        F.squared_hinge_loss(nbdl.zeros(3), nbdl.ones(4))
    with pytest.raises(ValueError, match="p must be"):
        F.multi_margin_loss(x, nbdl.tensor([0, 1, 2]), p=3)
    with pytest.raises(nbdl.IndexOutOfRangeError):
        F.multi_margin_loss(x, nbdl.tensor([0, 1, 4]))
    with pytest.raises(ValueError, match="target shape"):
        F.multi_margin_loss(x, nbdl.tensor([0, 1]))
    with pytest.raises(ValueError, match="weight"):
        F.multi_margin_loss(x, nbdl.tensor([0, 1, 2]), weight=nbdl.ones(3))
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        F.multi_margin_loss(nbdl.zeros((2, 3, 4)), nbdl.zeros((2, 4), dtype=nbdl.int64))
