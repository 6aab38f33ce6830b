"""The losses of nbdl.nn.functional against torch (values, gradients, gradcheck,
gradgradcheck, dtypes: the registry ``opinfo.LOSSES``), the loss modules and
bad input."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import nbdl
import nbdl.nn as nn
import nbdl.nn.functional as F
from opinfo import (DEVICES, LOSSES, check_dtype, check_grad, check_gradcheck, check_gradgradcheck,
                    check_value, gradcheck_samples, gradgrad_samples, params)

# torch announces that kl_div's reduction='mean' will change; nbdl matches today's torch
pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("info,sample", params(LOSSES, "value"))
def test_value(info, sample, device):
    check_value(info, sample, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("info,sample", params(LOSSES, "grad"))
def test_grad_vs_torch(info, sample, device):
    check_grad(info, sample, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("info,sample", params(LOSSES, "gradcheck", gradcheck_samples))
def test_gradcheck(info, sample, device):
    check_gradcheck(info, sample, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("info,sample", params(LOSSES, "gradgradcheck", gradgrad_samples))
def test_gradgradcheck(info, sample, device):
    check_gradgradcheck(info, sample, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("info,sample", params(LOSSES, "dtype"))
def test_dtype(info, sample, dtype, device):
    check_dtype(info, sample, dtype, device)


def test_bce_with_logits_is_stable_for_huge_logits():
    x = nbdl.tensor([-1e4, -200.0, 200.0, 1e4], requires_grad=True)
    t = nbdl.tensor([1.0, 0.0, 1.0, 0.0])
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [1e4, 0.0, 0.0, 1e4], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [-1.0, 0.0, 0.0, 1.0])


def test_loss_modules_match_functional():
    rng = np.random.default_rng(0)
    x = nbdl.tensor(rng.standard_normal((4, 3)))
    y = nbdl.tensor(rng.integers(0, 3, 4))
    p = nbdl.tensor(rng.uniform(0.1, 0.9, (4, 3)))
    w = nbdl.tensor([1.0, 2.0, 0.5], dtype=nbdl.float64)
    pairs = [(nn.CrossEntropyLoss(weight=w, label_smoothing=0.1), (x, y),
              F.cross_entropy(x, y, weight=w, label_smoothing=0.1)),
             (nn.NLLLoss(reduction="sum"), (x, y), F.nll_loss(x, y, reduction="sum")),
             (nn.MSELoss(), (x, p), F.mse_loss(x, p)), (nn.L1Loss(reduction="none"), (x, p), F.l1_loss(x, p, reduction="none")),
             (nn.BCELoss(), (p, p), F.binary_cross_entropy(p, p)),
             (nn.BCEWithLogitsLoss(pos_weight=w), (x, p), F.binary_cross_entropy_with_logits(x, p, pos_weight=w)),
             (nn.KLDivLoss(reduction="batchmean", log_target=True), (x, x), F.kl_div(x, x, "batchmean", True))]
    for module, args, want in pairs:
        np.testing.assert_array_equal(module(*args).numpy(), want.numpy())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_cross_entropy_all_ignored_is_nan_like_torch():
    x = torch.randn(2, 3, dtype=torch.float64)
    t = torch.tensor([-100, -100])
    want = TF.cross_entropy(x, t)
    got = F.cross_entropy(nbdl.tensor(x.numpy()), nbdl.tensor(t.numpy()))
    assert np.isnan(want.item()) and np.isnan(got.item())


def test_hessian_vector_product_of_cross_entropy_matches_torch():
    rng = np.random.default_rng(0)
    a, v = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    y = np.array([0, 3, 1])
    x = nbdl.tensor(a, requires_grad=True)
    (g,) = nbdl.grad(F.cross_entropy(x, nbdl.tensor(y), label_smoothing=0.1), x, create_graph=True)
    (hv,) = nbdl.grad((g * nbdl.tensor(v)).sum(), x)
    tx = torch.tensor(a, requires_grad=True)
    (tg,) = torch.autograd.grad(TF.cross_entropy(tx, torch.tensor(y), label_smoothing=0.1), tx, create_graph=True)
    (thv,) = torch.autograd.grad((tg * torch.tensor(v)).sum(), tx)
    np.testing.assert_allclose(hv.numpy(), thv.numpy(), rtol=1e-10, atol=1e-12)


# ---- bad input ----------------------------------------------------------
def test_bad_class_targets():
    x = nbdl.randn(4, 3)
    for f in (F.cross_entropy, F.nll_loss):
        name = f.__name__
        with pytest.raises(nbdl.IndexOutOfRangeError, match=rf"{name}: target classes must be in \[0, 3\), got \[0, 3\]"):
            f(x, nbdl.tensor([0, 1, 2, 3]))
        with pytest.raises(ValueError, match=rf"{name}: target classes"):
            f(x, nbdl.tensor([0, -1, 2, 1]))
        with pytest.raises(ValueError, match=rf"{name}: target shape \(3,\) does not match input \(4, 3\) \(expected \(4,\)\)"):
            f(x, nbdl.tensor([0, 1, 2]))
        with pytest.raises(TypeError, match=rf"{name}: target must hold integer class indices, got float32"):
            f(x, nbdl.zeros(4))
        with pytest.raises(ValueError, match=rf"{name}: weight must have shape \(3,\), got \(4,\)"):
            f(x, nbdl.tensor([0, 1, 2, 1]), weight=nbdl.ones(4))
        with pytest.raises(ValueError, match=rf"{name}: reduction must be one of"):
            f(x, nbdl.tensor([0, 1, 2, 1]), reduction="avg")
    with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be in \[0, 1\]"):
        F.cross_entropy(x, nbdl.tensor([0, 1, 2, 1]), label_smoothing=1.5)


def test_bad_pairs():
    a, b = nbdl.ones(2, 3), nbdl.ones(3, 2)
    for f in (F.mse_loss, F.l1_loss, F.binary_cross_entropy, F.binary_cross_entropy_with_logits, F.kl_div):
        with pytest.raises(ValueError, match=rf"{f.__name__}: input shape \(2, 3\) and target shape \(3, 2\) differ"):
            f(a * 0.5, b)
        with pytest.raises(TypeError, match=rf"{f.__name__}: argument 'target' must be a Tensor"):
            f(a * 0.5, np.ones((2, 3)))
        with pytest.raises(ValueError, match=rf"{f.__name__}: reduction must be one of"):
            f(a * 0.5, a * 0.5, reduction="avg")
    with pytest.raises(TypeError, match="mse_loss: input must be a float tensor"):
        F.mse_loss(nbdl.tensor([1, 2]), nbdl.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: input must hold probabilities in \[0, 1\]"):
        F.binary_cross_entropy(a * 2, a * 0.5)
    with pytest.raises(ValueError, match="binary_cross_entropy_with_logits: pos_weight"):
        F.binary_cross_entropy_with_logits(a, a, pos_weight=nbdl.ones(4))
    with pytest.raises(ValueError, match="binary_cross_entropy: weight"):
        F.binary_cross_entropy(a * 0.5, a * 0.5, weight=nbdl.ones(4))
