"""Adagrad with learning-rate decay."""
import numpy as np

from nbdl.optim.optimizer import Optimizer
from nbdl.creation import full


class Adagrad(Optimizer):
    """torch.optim.Adagrad, one fused kernel launch per group and dtype.
    State (``step``, ``sum``) is created at construction, like torch.
    foreach and fused are accepted and ignored; differentiable must be False."""

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _check_group(self, g):
        self._check(g["lr"] >= 0, "lr", g["lr"], "must be >= 0")
        self._check(g["lr_decay"] >= 0, "lr_decay", g["lr_decay"], "must be >= 0")
        self._check(g["weight_decay"] >= 0, "weight_decay", g["weight_decay"], "must be >= 0")
        self._check(g["initial_accumulator_value"] >= 0, "initial_accumulator_value",
                    g["initial_accumulator_value"], "must be >= 0")
        self._check(g["eps"] >= 0, "eps", g["eps"], "must be >= 0")
        self._check(not g["differentiable"], "differentiable", g["differentiable"],
                    "differentiable updates are not supported")

    def _init_state(self, p, group):
        if "sum" not in self.state[p]:
            self._step_tensor(p)
            self.state[p]["sum"] = full(p.shape, group["initial_accumulator_value"],
                                        dtype=p.dtype, device=p.device)

    def _update(self, group, key, params, xs, gs):
        lr, lr_decay = float(group["lr"]), float(group["lr_decay"])
        sums = []
        for p in params:
            self._init_state(p, group)
            sums.append(self.state[p]["sum"].data)
        device_kernels, tables = self._pack(group, key, [xs, gs, sums])
        clr = np.array([lr / (1 + (self._next_step(p) - 1) * lr_decay) for p in params])
        device_kernels.adagrad_step(*tables, clr, float(group["eps"]),
                                    float(group["weight_decay"]), bool(group["maximize"]))
