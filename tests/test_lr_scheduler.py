"""Learning-rate schedulers against torch 2.13: the same lr sequence, to the bit."""
import math
import warnings

import numpy as np
import pytest
import torch

import nbdl
from nbdl import optim
from nbdl.optim import lr_scheduler

EPOCHS = 40


def _optimizers(lrs=(0.1, 0.02)):
    """An nbdl and a torch SGD with one group per lr."""
    ours = optim.SGD([{"params": [nbdl.nn.Parameter(np.zeros(1, np.float32))], "lr": lr}
                      for lr in lrs], momentum=0.9)
    theirs = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr}
                              for lr in lrs], momentum=0.9)
    return ours, theirs


def _lr_of(scheduler_factory, name, epochs=EPOCHS, **kw):
    ours, theirs = _optimizers()
    a = scheduler_factory(getattr(lr_scheduler, name), ours, **kw)
    b = scheduler_factory(getattr(torch.optim.lr_scheduler, name), theirs, **kw)
    seq_a, seq_b = [a.get_last_lr()], [b.get_last_lr()]
    for _ in range(epochs):
        ours.step()
        theirs.step()
        a.step()
        b.step()
        seq_a.append(a.get_last_lr())
        seq_b.append(b.get_last_lr())
        assert [g["lr"] for g in ours.param_groups] == seq_a[-1]
    return seq_a, seq_b, a


def _plain(cls, opt, **kw):
    return cls(opt, **kw)


CASES = [
    ("StepLR", dict(step_size=7)),
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=10)),                 # keeps going past T_max
    ("CosineAnnealingLR", dict(T_max=15, eta_min=1e-3)),
    ("LambdaLR", dict(lr_lambda=lambda e: 0.95 ** e)),
    ("LambdaLR", dict(lr_lambda=[lambda e: 1 / (1 + e), lambda e: min(1.0, (e + 1) / 5)])),
]


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_schedule_matches_torch_exactly(name, kw):
    ours, theirs, _ = _lr_of(_plain, name, **kw)
    assert ours == theirs


@pytest.mark.parametrize("name,kw", CASES[:5], ids=[n for n, _ in CASES[:5]])
def test_step_with_epoch_uses_the_closed_form(name, kw):
    ours, theirs = _optimizers()
    a = getattr(lr_scheduler, name)(ours, **kw)
    b = getattr(torch.optim.lr_scheduler, name)(theirs, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch deprecates step(epoch)
        for epoch in (5, 12, 3, 30):
            a.step(epoch)
            b.step(epoch)
            np.testing.assert_allclose(a.get_last_lr(), b.get_last_lr(), rtol=1e-14)


def test_cosine_closed_form_values():
    ours, _ = _optimizers(lrs=(1.0,))
    sched = lr_scheduler.CosineAnnealingLR(ours, T_max=8, eta_min=0.1)
    for e in range(1, 9):
        sched.step()
        expected = 0.1 + 0.9 * (1 + math.cos(math.pi * e / 8)) / 2
        np.testing.assert_allclose(sched.get_last_lr()[0], expected, rtol=1e-12)


@pytest.mark.parametrize("name,kw", CASES[:5], ids=[n for n, _ in CASES[:5]])
def test_state_dict_round_trip(name, kw):
    ours, _ = _optimizers()
    a = getattr(lr_scheduler, name)(ours, **kw)
    for _ in range(6):
        a.step()
    state = a.state_dict()
    assert "optimizer" not in state and state["last_epoch"] == 6
    fresh, _ = _optimizers(lrs=(5.0, 6.0))
    b = getattr(lr_scheduler, name)(fresh, **kw)   # torch's order: scheduler, then loads
    fresh.load_state_dict(ours.state_dict())
    b.load_state_dict(state)
    for _ in range(10):
        a.step()
        b.step()
        assert a.get_last_lr() == b.get_last_lr()


def test_lambda_state_dict_keeps_callable_objects_state():
    class Warmup:
        def __init__(self, n):
            self.n = n

        def __call__(self, e):
            return min(1.0, (e + 1) / self.n)
    ours, _ = _optimizers(lrs=(0.1,))
    sched = lr_scheduler.LambdaLR(ours, Warmup(4))
    state = sched.state_dict()
    assert state["lr_lambdas"] == [{"n": 4}]
    other = lr_scheduler.LambdaLR(_optimizers(lrs=(0.1,))[0], Warmup(9))
    other.load_state_dict(state)
    assert other.lr_lambdas[0].n == 4


def test_scheduler_errors():
    ours, _ = _optimizers()
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="step_size"):
        lr_scheduler.StepLR(ours, step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        lr_scheduler.CosineAnnealingLR(ours, T_max=0)
    with pytest.raises(ValueError, match="expected 2 lr_lambdas"):
        lr_scheduler.LambdaLR(ours, [lambda e: 1.0])
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.ExponentialLR(_optimizers()[0], gamma=0.9, last_epoch=3)
