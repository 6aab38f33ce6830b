"""SGD with momentum, dampening, Nesterov, weight decay, maximize, and opt-in
annealed Gaussian gradient noise (Neelakantan et al. 2015)."""
import math

import numpy as np

from nbdl.optim.optimizer import Optimizer
from nbdl.random import default_generator


class SGD(Optimizer):
    """torch.optim.SGD, one fused kernel launch per group and dtype.

    Extra keyword-only options (nbdl's, not torch's):
    grad_noise: add Gaussian noise to the raw gradient, before maximize,
        weight decay and momentum, of variance ``noise_eta / (1 + t)**noise_gamma``
        where t counts the parameter's steps from 0 (``state[p]["step"]``).
        The draws come from ``nbdl.random.default_generator`` (one claim per
        step for all parameters, keyed by element index), so a seeded run is
        the same for any thread count.
    noise_eta (0.01), noise_gamma (0.55): the variance at t = 0 and its decay.
    foreach and fused are accepted for torch compatibility and ignored (the
    update is always one fused pass); differentiable must be False.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None, grad_noise=False, noise_eta=0.01, noise_gamma=0.55):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused,
                        grad_noise=grad_noise, noise_eta=noise_eta, noise_gamma=noise_gamma)
        super().__init__(params, defaults)

    def _check_group(self, g):
        self._check(g["lr"] >= 0, "lr", g["lr"], "must be >= 0")
        self._check(g["momentum"] >= 0, "momentum", g["momentum"], "must be >= 0")
        self._check(g["weight_decay"] >= 0, "weight_decay", g["weight_decay"], "must be >= 0")
        self._check(not g["nesterov"] or (g["momentum"] > 0 and g["dampening"] == 0),
                    "nesterov", g["nesterov"], "Nesterov momentum needs momentum > 0 and "
                    "dampening = 0")
        self._check(g["noise_eta"] >= 0, "noise_eta", g["noise_eta"], "must be >= 0")
        self._check(g["noise_gamma"] >= 0, "noise_gamma", g["noise_gamma"], "must be >= 0")
        self._check(not g["differentiable"], "differentiable", g["differentiable"],
                    "differentiable updates are not supported")

    def _begin_step(self, work):
        noisy = sum(sum(x.size for x in xs) for group, _, (_, xs, _) in work
                    if group["grad_noise"])
        self._noise_counter = default_generator.claim(noisy) if noisy else 0

    def _update(self, group, key, params, xs, gs):
        n = len(params)
        momentum = float(group["momentum"])
        buf_scale = np.full(n, momentum)
        grad_scale = np.full(n, 1.0 - group["dampening"])
        bufs = None
        if momentum != 0:
            bufs = []
            for t, p in enumerate(params):
                if "momentum_buffer" not in self.state[p]:
                    buf_scale[t], grad_scale[t] = 0.0, 1.0   # first step: buf = d
                bufs.append(self._state_array(p, "momentum_buffer"))
        device_kernels, tables = self._pack(group, key, [xs, gs, bufs])
        noise_std = np.zeros(n)
        counters = np.zeros(n, np.int64)
        if group["grad_noise"]:
            eta, gamma = group["noise_eta"], group["noise_gamma"]
            for t, (p, x) in enumerate(zip(params, xs)):
                noise_std[t] = math.sqrt(eta / (self._next_step(p) ** gamma))
                counters[t] = self._noise_counter
                self._noise_counter += x.size
        device_kernels.sgd_step(*tables, buf_scale, grad_scale, noise_std, counters,
                         float(group["lr"]), float(group["weight_decay"]), momentum,
                         bool(group["nesterov"]), bool(group["maximize"]),
                         np.uint64(default_generator.seed))
