"""Gradient checks by central differences in float64."""
import numpy as np

from nbdl.autograd.functional import grad
from nbdl.tensor import Tensor


class GradcheckError(RuntimeError):
    pass


def _outputs(fn, inputs):
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]


def _check_inputs(inputs, op):
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    diff = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not diff:
        raise ValueError(f"{op}: no input requires grad")
    for i in diff:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"{op}: input {i} is {inputs[i].dtype}; checks need float64 inputs")
        if not inputs[i].data.flags.writeable or not inputs[i].is_contiguous():
            raise ValueError(f"{op}: input {i} must be a contiguous, writable tensor")
    return inputs, diff


def _numerical(fn, inputs, diff, eps):
    """J[o][k]: (out_o.numel(), inputs[diff[k]].numel()) by central differences."""
    outs0 = _outputs(fn, inputs)
    jac = [[np.zeros((o.numel(), inputs[i].numel())) for i in diff] for o in outs0]
    for k, i in enumerate(diff):
        flat = inputs[i].data.reshape(-1)
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + eps
            plus = [o.numpy().reshape(-1).astype(np.float64) for o in _outputs(fn, inputs)]
            flat[j] = orig - eps
            minus = [o.numpy().reshape(-1).astype(np.float64) for o in _outputs(fn, inputs)]
            flat[j] = orig
            for oi in range(len(outs0)):
                jac[oi][k][:, j] = (plus[oi] - minus[oi]) / (2 * eps)
    return outs0, jac


def _analytical(fn, inputs, diff):
    outs = _outputs(fn, inputs)
    jac = [[np.zeros((o.numel(), inputs[i].numel())) for i in diff] for o in outs]
    for oi, o in enumerate(outs):
        for r in range(o.numel()):
            v = np.zeros(o.numel(), dtype=o.dtype)
            v[r] = 1
            if not o.requires_grad:
                continue
            gs = grad(o, [inputs[i] for i in diff], grad_outputs=Tensor(v.reshape(o.shape)),
                      retain_graph=True, allow_unused=True)
            for k, g in enumerate(gs):
                if g is not None:
                    jac[oi][k][r] = g.numpy().reshape(-1)
    return jac


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Compare ``fn``'s backward with central differences for every input that
    requires grad. On failure names the output, the input and the worst element."""
    inputs, diff = _check_inputs(inputs, "gradcheck")
    _, num = _numerical(fn, inputs, diff, eps)
    ana = _analytical(fn, inputs, diff)
    for oi in range(len(num)):
        for k, i in enumerate(diff):
            n, a = num[oi][k], ana[oi][k]
            err = np.abs(n - a) - (atol + rtol * np.abs(n))
            if err.size and (err.max() > 0 or not np.isfinite(a).all()):
                r, c = np.unravel_index(np.nanargmax(np.where(np.isfinite(err), err, np.inf)), err.shape)
                elem = np.unravel_index(c, inputs[i].shape)
                msg = (f"gradcheck: Jacobian mismatch of output {oi} w.r.t. input {i} at input "
                       f"element {tuple(int(e) for e in elem)}, output element {int(r)}: "
                       f"numerical {n[r, c]:.6g}, analytical {a[r, c]:.6g} (atol={atol}, rtol={rtol})")
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3,
                  raise_exception=True):
    """gradcheck of the first derivative (built with create_graph=True), w.r.t.
    the inputs and the output gradients: checks second derivatives."""
    inputs, diff = _check_inputs(inputs, "gradgradcheck")
    outs = _outputs(fn, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = [Tensor(rng.standard_normal(o.shape), requires_grad=True) for o in outs]
    n_in = len(inputs)

    def first_derivative(*args):
        xs, vs = args[:n_in], args[n_in:]
        ys = _outputs(fn, xs)
        return grad(ys, [xs[i] for i in diff], grad_outputs=list(vs), create_graph=True,
                    allow_unused=True)

    def no_none(*args):
        return tuple(g for g in first_derivative(*args) if g is not None)

    return gradcheck(no_none, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
