"""Newton's method with exact Hessian-vector products, Levenberg-Marquardt
damping and an Armijo line search (scipy solves the Newton systems)."""
import numpy as np

from nbdl.autograd.grad_mode import enable_grad, no_grad
from nbdl.autograd.hessian import grad_and_hvp
from nbdl.optim.optimizer import Optimizer
from nbdl.tensor import Tensor

_SOLVERS = ("auto", "dense", "cg")
_EPS = np.finfo(np.float64).eps


class Newton(Optimizer):
    """Damped Newton's method for any model built of twice-differentiable ops.

    Each iteration takes the gradient g with ``create_graph=True`` and solves
    (H + lambda I) d = -g with the exact Hessian H of the tape (products H v by
    double backward, ``nbdl.autograd.hessian``):

    - ``solver="dense"``: H built from one product per parameter, then
      ``scipy.linalg.cho_factor`` / ``cho_solve``;
    - ``solver="cg"``: ``scipy.sparse.linalg.cg`` on a ``LinearOperator`` of
      products, relative tolerance ``cg_rtol`` (default
      min(0.5, sqrt(|g| / |g_0|)), g_0 the first gradient this optimizer
      saw: scipy's forcing term made scale-free; superlinear convergence
      for few products);
    - ``solver="auto"``: dense up to ``dense_max_params`` parameters, else CG
      (CG usually needs far fewer products per iteration than parameters:
      on breast_cancer's 31, about 6).

    Levenberg-Marquardt damping: lambda starts at ``damping``; it grows when H
    + lambda I is not positive definite (a failed Cholesky, a direction of
    negative curvature met by CG, a direction that does not descend) or the
    quadratic model predicts the decrease badly, and shrinks when the model
    is good, so a convex problem ends in pure Newton steps. With
    ``line_search_fn="armijo"`` the step t d (t from ``lr``, halved) must
    decrease the loss by at least 1e-4 t g.d (up to round-off in the loss's
    last digits); ``None`` takes t = ``lr``.

    ``step(closure)`` runs up to ``max_iter`` iterations and stops early
    when the gradient's Euclidean norm is <= ``tolerance_grad`` (or no step
    decreases the loss any more). ``closure`` re-evaluates the model and
    returns the loss Tensor *without* calling backward (Newton differentiates
    it twice itself; line-search trials call it under ``no_grad``).
    After a step, ``state[params[0]]`` holds ``n_iter`` (iterations so far),
    ``loss`` and ``grad_norm`` (at the start of the last iteration),
    ``grad_norm0`` (at the start of the first),
    ``damping``, ``n_hvp`` (products so far) and ``converged``.
    The parameters form one group, as torch's LBFGS requires.
    """

    def __init__(self, params, lr=1.0, max_iter=20, tolerance_grad=1e-7, solver="auto",
                 damping=0.0, line_search_fn="armijo", cg_rtol=None, cg_max_iter=None,
                 dense_max_params=16):
        defaults = dict(lr=lr, max_iter=max_iter, tolerance_grad=tolerance_grad, solver=solver,
                        damping=damping, line_search_fn=line_search_fn, cg_rtol=cg_rtol,
                        cg_max_iter=cg_max_iter, dense_max_params=dense_max_params)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("Newton: parameter groups (per-parameter options) are not supported")
        self._params = self.param_groups[0]["params"]

    def _check_group(self, g):
        self._check(g["lr"] > 0, "lr", g["lr"], "must be > 0")
        self._check(isinstance(g["max_iter"], int) and g["max_iter"] >= 1, "max_iter",
                    g["max_iter"], "must be an int >= 1")
        self._check(g["tolerance_grad"] >= 0, "tolerance_grad", g["tolerance_grad"], "must be >= 0")
        self._check(g["solver"] in _SOLVERS, "solver", g["solver"], f"must be one of {_SOLVERS}")
        self._check(g["damping"] >= 0, "damping", g["damping"], "must be >= 0")
        self._check(g["line_search_fn"] in ("armijo", None), "line_search_fn",
                    g["line_search_fn"], "must be 'armijo' or None")
        self._check(g["cg_rtol"] is None or 0 < g["cg_rtol"] < 1, "cg_rtol", g["cg_rtol"],
                    "must be None or in (0, 1)")
        self._check(g["cg_max_iter"] is None or g["cg_max_iter"] >= 1, "cg_max_iter",
                    g["cg_max_iter"], "must be None or >= 1")
        self._check(g["dense_max_params"] >= 0, "dense_max_params", g["dense_max_params"],
                    "must be >= 0")

    # ---- flat float64 views of the parameters --------------------------------
    def _flat(self, tensors):
        return np.concatenate([np.asarray(t.numpy(), dtype=np.float64).ravel() for t in tensors])

    def _split(self, v):
        out, offset = [], 0
        for p in self._params:
            n = p.numel()
            out.append(Tensor(v[offset:offset + n].reshape(p.shape).astype(p.dtype)).to(p.device))
            offset += n
        return out

    def _assign(self, x):
        with no_grad():
            for p, value in zip(self._params, self._split(x)):
                p.copy_(value)

    # ---- one step ------------------------------------------------------------
    def step(self, closure):
        """Up to ``max_iter`` Newton iterations; returns the loss of the first
        closure call (at the parameters the step started from)."""
        if closure is None:
            raise ValueError("Newton.step: needs a closure that re-evaluates the model and "
                             "returns the loss")
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        for key, value in (("n_iter", 0), ("n_hvp", 0), ("damping", float(group["damping"]))):
            state.setdefault(key, value)
        first_loss = None
        for _ in range(group["max_iter"]):
            x = self._flat(self._params)
            with enable_grad():
                loss = closure()
            self._check_loss(loss)
            if first_loss is None:
                first_loss = loss.detach()
            grads, product = grad_and_hvp(loss, self._params)
            g = self._flat(grads)
            f0, gnorm = float(loss.item()), float(np.linalg.norm(g))
            state.setdefault("grad_norm0", gnorm)
            state.update(loss=f0, grad_norm=gnorm, converged=gnorm <= group["tolerance_grad"])
            if state["converged"] or not (np.isfinite(f0) and np.isfinite(gnorm)):
                break

            d = self._direction(g, gnorm, self._flat_hvp(product, state), state, group)
            t, f_new = self._line_search(closure, x, d, f0, float(g @ d), group)
            state["n_iter"] += 1
            if t == 0.0:   # no step decreases the loss: at the optimum to round-off
                break
            if f_new is not None:
                lam = state["damping"]
                # quadratic model decrease at t d, with d.H d = -g.d - lam |d|^2 from the solve
                dhd = -float(g @ d) - lam * float(d @ d)
                predicted = -(t * float(g @ d) + 0.5 * t * t * dhd)
                rho = (f0 - f_new) / predicted if predicted > 0 else 0.0
                if rho < 0.25:
                    state["damping"] = 2.0 * lam
                elif rho > 0.75 and t == group["lr"]:
                    state["damping"] = lam / 3.0
        return first_loss

    def _flat_hvp(self, product, state):
        """v -> H v on flat float64 vectors, counted in state["n_hvp"]."""
        def hvp(v):
            state["n_hvp"] += 1
            return self._flat(product(self._split(v)))
        return hvp

    def _check_loss(self, loss):
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            got = loss.shape if isinstance(loss, Tensor) else type(loss).__name__
            raise ValueError(f"Newton.step: the closure must return the loss as a one-element "
                             f"Tensor, got {got}")
        if not loss.requires_grad:
            raise RuntimeError("Newton.step: the closure's loss does not depend on the "
                               "parameters (or was computed under no_grad)")
        if loss.grad_fn is not None and loss.grad_fn.backward_fn is None:
            raise RuntimeError("Newton.step: the closure called backward() on the loss, which "
                               "freed its graph; return the loss without calling backward "
                               "(Newton differentiates it twice itself)")

    def _direction(self, g, gnorm, hvp, state, group):
        """A descent direction d solving (H + lambda I) d = -g, raising lambda
        (state["damping"]) until the solve succeeds; -g if it never does."""
        import scipy.linalg
        n = g.size
        dense = group["solver"] == "dense" or (group["solver"] == "auto"
                                               and n <= group["dense_max_params"])
        if dense:
            H = np.column_stack([hvp(e) for e in np.eye(n)])
            H = 0.5 * (H + H.T)
        scale = None   # of H's eigenvalues, for the first lambda > 0
        for _ in range(40):
            lam = state["damping"]
            if dense:
                try:
                    d = scipy.linalg.cho_solve(scipy.linalg.cho_factor(H + lam * np.eye(n)), -g)
                except np.linalg.LinAlgError:
                    d = None
            else:
                d = self._cg(g, gnorm, state["grad_norm0"], hvp, lam, group)
            if d is not None and np.isfinite(d).all() and g @ d < 0:
                return d
            if scale is None:
                scale = (float(np.abs(np.diag(H)).max()) if dense
                         else abs(float(g @ hvp(g))) / (gnorm * gnorm))
                scale = scale if scale > 0 and np.isfinite(scale) else 1.0
            state["damping"] = max(10.0 * lam, 1e-6 * scale)
        return -g

    @staticmethod
    def _cg(g, gnorm, first_gnorm, hvp, lam, group):
        """CG on (H + lam I) d = -g; None when it meets a direction of
        non-positive curvature (H + lam I is not positive definite)."""
        from scipy.sparse.linalg import LinearOperator, cg
        curvature_ok = [True]

        def matvec(v):
            v = np.asarray(v, dtype=np.float64).ravel()
            av = hvp(v) + lam * v
            if v @ v > 0 and v @ av <= 0:
                curvature_ok[0] = False
            return av

        rtol = group["cg_rtol"]
        if rtol is None:   # the forcing term, relative to the first gradient: scale-free
            rtol = min(0.5, np.sqrt(gnorm / first_gnorm))
        op = LinearOperator((g.size, g.size), matvec=matvec, dtype=np.float64)
        d, _ = cg(op, -g, rtol=rtol, maxiter=group["cg_max_iter"])
        return d if curvature_ok[0] else None

    def _line_search(self, closure, x, d, f0, slope, group):
        """(t, loss at x + t d): Armijo backtracking from t = lr; (0, f0) with the
        parameters restored if 30 halvings find no decrease. Without a line
        search, (lr, None) with the step taken."""
        t = float(group["lr"])
        if group["line_search_fn"] is None:
            self._assign(x + t * d)
            return t, None
        for _ in range(30):
            self._assign(x + t * d)
            with no_grad():
                f = float(closure().item())
            # Armijo, with round-off slack: near the optimum f changes below its last digits
            if np.isfinite(f) and f <= f0 + 1e-4 * t * slope + 8 * _EPS * abs(f0):
                return t, f
            t *= 0.5
        self._assign(x)
        return 0.0, f0
