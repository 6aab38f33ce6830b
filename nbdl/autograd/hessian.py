"""Second derivatives through the tape: Hessian-vector products and Hessians.

Double backward, not a finite difference: the gradient g = df/dx is taken with
``create_graph=True`` (so g carries its own graph), and H v is the gradient of
g . v (the backward of g seeded with v), exact to float64 round-off. ``grad_and_hvp`` keeps g's graph, so many
products with the same Hessian (a CG solve, a dense Hessian built column by
column) pay one forward and one gradient between them.

``hvp`` and ``hessian`` take a function of tensors, as
``torch.autograd.functional.hvp`` / ``hessian`` do.
"""
import numpy as np

from nbdl.autograd.functional import grad
from nbdl.autograd.grad_mode import enable_grad
from nbdl.tensor import Tensor


def _as_tuple(x, op, arg):
    is_tuple = isinstance(x, (tuple, list))
    items = tuple(x) if is_tuple else (x,)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {arg}[{i}] must be a Tensor, got {type(t).__name__}")
    return items, is_tuple


def _scalar_output(out, op):
    if not isinstance(out, Tensor) or out.numel() != 1:
        shape = out.shape if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"{op}: the function must return a Tensor with a single element, got {shape}")
    return out


def _zeros_for(grads, inputs):
    from nbdl.creation import zeros_like
    return tuple(zeros_like(x.detach()) if g is None else g for g, x in zip(grads, inputs))


def _differentiable(inputs, create_graph):
    """The inputs to differentiate at: detached copies that require grad, except
    that with ``create_graph`` an input already requiring grad stays itself (so
    the result is differentiable with respect to it)."""
    return tuple(x if create_graph and x.requires_grad else x.detach().requires_grad_()
                 for x in inputs)


def grad_and_hvp(output, inputs, create_graph=False):
    """(gradients, hvp) of a scalar ``output`` w.r.t. the tensors ``inputs``.

    gradients: a tuple of Tensors, one per input (zeros where the output does not
    depend on it), still attached to the graph. hvp(vs): the tuple H vs for a
    sequence ``vs`` of Tensors shaped like ``inputs``; callable many times (the
    gradient's graph is kept). With ``create_graph`` the products are themselves
    differentiable.
    """
    op = "grad_and_hvp"
    inputs, _ = _as_tuple(inputs, op, "inputs")
    _scalar_output(output, op)
    with enable_grad():
        grads = _zeros_for(grad(output, inputs, create_graph=True, allow_unused=True), inputs)
    linked = any(g.requires_grad for g in grads)

    def hvp(vs):
        vs, _ = _as_tuple(vs, "hvp", "v")
        if len(vs) != len(inputs):
            raise ValueError(f"hvp: got {len(vs)} vectors for {len(inputs)} inputs")
        for i, (v, x) in enumerate(zip(vs, inputs)):
            if v.shape != x.shape:
                raise ValueError(f"hvp: v[{i}] has shape {v.shape}, its input {x.shape}")
        if not linked:   # the gradient does not depend on the inputs: H = 0
            return _zeros_for([None] * len(inputs), inputs)
        # H v = d(g . v)/dx: the backward of g seeded with v (H is symmetric)
        pairs = [(g, v.detach()) for g, v in zip(grads, vs) if g.requires_grad]
        with enable_grad():
            out = grad([g for g, _ in pairs], inputs, grad_outputs=[v for _, v in pairs],
                       retain_graph=True, create_graph=create_graph, allow_unused=True)
        return _zeros_for(out, inputs)

    return grads, hvp


def hvp(func, inputs, v, create_graph=False):
    """(func(*inputs), H v) with H the Hessian of the scalar ``func`` at ``inputs``
    (``torch.autograd.functional.hvp``). ``inputs`` and ``v``: a Tensor or a tuple
    of Tensors of the same shapes; the product comes back in the same form."""
    inputs, is_tuple = _as_tuple(inputs, "hvp", "inputs")
    vs, v_tuple = _as_tuple(v, "hvp", "v")
    if v_tuple != is_tuple or len(vs) != len(inputs):
        raise ValueError(f"hvp: v must match inputs (a Tensor or a tuple of {len(inputs)} Tensors)")
    xs = _differentiable(inputs, create_graph)
    with enable_grad():
        out = _scalar_output(func(*xs), "hvp")
        _, product = grad_and_hvp(out, xs, create_graph=create_graph)
        hv = product(vs)
    if not create_graph:
        hv = tuple(h.detach() for h in hv)
    return out.detach(), (hv if is_tuple else hv[0])


def hessian(func, inputs, create_graph=False):
    """The Hessian of the scalar ``func`` at ``inputs``
    (``torch.autograd.functional.hessian``): for one Tensor x, a Tensor of shape
    x.shape + x.shape; for a tuple, H[i][j] of shape inputs[i].shape + inputs[j].shape.
    Built from one Hessian-vector product per input element."""
    from nbdl.functional import stack
    inputs, is_tuple = _as_tuple(inputs, "hessian", "inputs")
    xs = _differentiable(inputs, create_graph)
    with enable_grad():
        out = _scalar_output(func(*xs), "hessian")
        _, product = grad_and_hvp(out, xs, create_graph=create_graph)
        cols = [[] for _ in xs]   # cols[j][k]: H e_k for the k-th element of input j
        for j, x in enumerate(xs):
            for k in range(x.numel()):
                vs = []
                for i, y in enumerate(xs):
                    e = np.zeros(y.numel(), dtype=y.dtype)
                    if i == j:
                        e[k] = 1
                    vs.append(Tensor(e.reshape(y.shape)).to(y.device))
                cols[j].append(product(vs))
        # H[i][j][a, b] = d2f / dx_i[a] dx_j[b] = (H e_b^{(j)})_i[a]; the Hessian is symmetric
        blocks = tuple(tuple(stack([c[i] for c in cols[j]], -1).reshape(x.shape + y.shape)
                             for j, y in enumerate(xs)) for i, x in enumerate(xs))
    if not create_graph:
        blocks = tuple(tuple(b.detach() for b in row) for row in blocks)
    return blocks if is_tuple else blocks[0][0]
