"""Adam and AdamW (decoupled weight decay), with amsgrad and maximize."""
import numpy as np

from nbdl.optim.optimizer import Optimizer


class Adam(Optimizer):
    """torch.optim.Adam, one fused kernel launch per group and dtype.

    ``decoupled_weight_decay=True`` is AdamW. foreach, fused and capturable
    are accepted for torch compatibility and ignored (the update is always one
    fused pass); differentiable must be False.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_group(self, g):
        betas = g["betas"]
        self._check(g["lr"] >= 0, "lr", g["lr"], "must be >= 0")
        self._check(g["eps"] >= 0, "eps", g["eps"], "must be >= 0")
        self._check(len(betas) == 2, "betas", betas, "must be a pair")
        self._check(0 <= betas[0] < 1, "beta at index 0", betas[0], "must be in [0, 1)")
        self._check(0 <= betas[1] < 1, "beta at index 1", betas[1], "must be in [0, 1)")
        self._check(g["weight_decay"] >= 0, "weight_decay", g["weight_decay"], "must be >= 0")
        self._check(not g["differentiable"], "differentiable", g["differentiable"],
                    "differentiable updates are not supported")

    def _update(self, group, key, params, xs, gs):
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        amsgrad = bool(group["amsgrad"])
        exp_avgs, exp_avg_sqs, max_sqs = [], [], []
        for p in params:
            self._step_tensor(p)   # first in the state, as in torch
            exp_avgs.append(self._state_array(p, "exp_avg"))
            exp_avg_sqs.append(self._state_array(p, "exp_avg_sq"))
            if amsgrad:
                max_sqs.append(self._state_array(p, "max_exp_avg_sq"))
        device_kernels, tables = self._pack(
            group, key, [xs, gs, exp_avgs, exp_avg_sqs, max_sqs or None])
        steps = [self._next_step(p) for p in params]   # Python floats: torch's exact scalars
        step_size = np.array([lr / (1 - beta1 ** s) for s in steps])
        bc2_sqrt = np.array([(1 - beta2 ** s) ** 0.5 for s in steps])
        weight_decay = float(group["weight_decay"])
        device_kernels.adam_step(*tables, step_size, bc2_sqrt, beta1, beta2, float(group["eps"]),
                          weight_decay, 1 - lr * weight_decay, amsgrad, bool(group["maximize"]),
                          bool(group["decoupled_weight_decay"]))


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay (default 1e-2)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
