"""RMSprop, plain or centered, with momentum."""
from nbdl.optim.optimizer import Optimizer


class RMSprop(Optimizer):
    """torch.optim.RMSprop, one fused kernel launch per group and dtype.
    foreach and capturable are accepted and ignored; differentiable must be False."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _check_group(self, g):
        self._check(g["lr"] >= 0, "lr", g["lr"], "must be >= 0")
        self._check(g["eps"] >= 0, "eps", g["eps"], "must be >= 0")
        self._check(g["momentum"] >= 0, "momentum", g["momentum"], "must be >= 0")
        self._check(g["weight_decay"] >= 0, "weight_decay", g["weight_decay"], "must be >= 0")
        self._check(g["alpha"] >= 0, "alpha", g["alpha"], "must be >= 0")
        self._check(not g["differentiable"], "differentiable", g["differentiable"],
                    "differentiable updates are not supported")

    def _update(self, group, key, params, xs, gs):
        momentum = float(group["momentum"])
        centered = bool(group["centered"])
        square_avgs, grad_avgs, bufs = [], [], []
        for p in params:
            self._step_tensor(p)   # first in the state, as in torch
            square_avgs.append(self._state_array(p, "square_avg"))
            if momentum > 0:
                bufs.append(self._state_array(p, "momentum_buffer"))
            if centered:
                grad_avgs.append(self._state_array(p, "grad_avg"))
        device_kernels, tables = self._pack(
            group, key, [xs, gs, square_avgs, grad_avgs or None, bufs or None])
        for p in params:
            self._next_step(p)
        device_kernels.rmsprop_step(*tables, float(group["lr"]), float(group["alpha"]),
                             float(group["eps"]), float(group["weight_decay"]), momentum,
                             centered, bool(group["maximize"]))
