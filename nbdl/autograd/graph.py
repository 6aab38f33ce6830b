"""The tape: a Node per recorded op and the iterative backward walk.

A Node holds the op's name, its input tensors and a backward function
``grads_in = backward_fn(*grads_out)`` written in nbdl ops (so running it with
grad mode on records a graph of the gradient: ``create_graph=True``).
The walk counts each node's consumers, then visits nodes in reverse
topological order with an explicit stack: no recursion, any depth.
"""
import numpy as np

from nbdl.autograd.grad_mode import _State, enable_grad, no_grad


class Node:
    """One recorded op. ``inputs[i]`` receives ``backward_fn(...)[i]``."""

    __slots__ = ("name", "inputs", "backward_fn", "out_meta")

    def __init__(self, name, inputs, backward_fn, out_meta=None):
        self.name = name
        self.inputs = inputs
        self.backward_fn = backward_fn
        self.out_meta = out_meta   # [(shape, dtype, device)] per output, multi-output nodes only

    def __repr__(self):
        return f"<{self.name}Backward>"


def attach(out, name, inputs, backward_fn):
    """Record ``out = name(*inputs)`` when grad mode is on and an input needs grad."""
    if _State.grad_enabled:
        for t in inputs:
            if t.requires_grad:
                out.requires_grad = True
                out.grad_fn = Node(name, inputs, backward_fn)
                break
    if _State.anomaly:
        check_finite(out.data, name, inputs)
    return out


def check_finite(data, name, inputs=(), where="forward"):
    from nbdl.tensor import to_numpy
    arr = to_numpy(data)
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        bad_in = [i for i, t in enumerate(inputs)
                  if t.dtype.kind in "fc" and not np.isfinite(to_numpy(t.data)).all()]
        detail = f" (inputs {bad_in} already held NaN/inf)" if bad_in else ""
        raise FloatingPointError(f"detect_anomaly: {where} of op '{name}' produced NaN or inf{detail}")


def _freed_error(node):
    return RuntimeError(
        f"backward: trying to backward through the graph of '{node.name}' a second time; "
        "its saved values were freed after the first backward. "
        "Pass retain_graph=True to the first backward (or grad) call.")


def run_backward(roots, root_grads, *, retain_graph=False, create_graph=False,
                 inputs=None, accumulate=True):
    """Propagate ``root_grads`` from ``roots`` back through the tape.

    accumulate=True adds gradients into the ``.grad`` of leaf tensors (of
    ``inputs`` only, when given); accumulate=False returns, for each tensor of
    ``inputs``, the gradient that reached it (None where none did).
    """
    targets = {id(t): i for i, t in enumerate(inputs)} if inputs is not None else None
    found = [None] * len(inputs) if inputs is not None else None
    stored = set()   # ids of the arrays already stored in a .grad during this walk

    def add(a, b):
        return b if a is None else (a + b)

    def to_leaf(t, g):
        if targets is not None:
            i = targets.get(id(t))
            if i is None:
                return
            if not accumulate:
                found[i] = add(found[i], g)
                return
        if not create_graph:
            g = g.detach()
            if id(g.data) in stored or not owns_fresh_buffer(g.data):
                g = g.clone()
            stored.add(id(g.data))
        t.grad = g if t.grad is None else t.grad + g

    # Count, for every node reachable from the roots, how many edges feed it.
    consumers = {}
    stack = []
    for r in roots:
        if r.grad_fn is not None and r.grad_fn not in consumers:
            consumers[r.grad_fn] = 0
            stack.append(r.grad_fn)
    while stack:
        node = stack.pop()
        for t in node.inputs:
            f = t.grad_fn
            if f is not None:
                if f in consumers:
                    consumers[f] += 1
                else:
                    consumers[f] = 1
                    stack.append(f)

    pending = {}    # node -> list of output grads
    for r, g in zip(roots, root_grads):
        if r.grad_fn is None:
            if r.requires_grad:
                to_leaf(r, g)
            continue
        buf = pending.setdefault(r.grad_fn, [None] * _n_outputs(r.grad_fn))
        buf[r._out_idx] = add(buf[r._out_idx], g)

    ready = [n for n, c in consumers.items() if c == 0]
    # grad() w.r.t. a non-leaf tensor takes the gradient reaching it on the way
    capture = targets is not None and not accumulate and any(t.grad_fn is not None for t in inputs)
    with enable_grad() if create_graph else no_grad():
        while ready:
            node = ready.pop()
            grads_out = pending.pop(node, None)
            grads_in = ()
            if grads_out is not None:
                if capture:
                    _capture_nonleaf(node, grads_out, inputs, targets, found)
                fn = node.backward_fn
                if fn is None:
                    raise _freed_error(node)
                if node.out_meta is not None:
                    grads_out = _materialize(node, grads_out)
                try:
                    grads_in = fn(*grads_out)
                except FloatingPointError as e:   # an op inside this backward: name this node
                    if not _State.anomaly:
                        raise
                    raise FloatingPointError(f"detect_anomaly: backward of op '{node.name}' "
                                             "produced NaN or inf") from e
                if not retain_graph:
                    node.backward_fn = None
                if _State.anomaly:
                    for g in grads_in:
                        if g is not None:
                            check_finite(g.data, node.name, where="backward")
            n_in = len(grads_in)
            for i, t in enumerate(node.inputs):
                g = grads_in[i] if i < n_in else None
                if g is not None and g.dtype != t.dtype:   # float32 * float64: each input keeps its dtype
                    g = g.to(dtype=t.dtype)
                f = t.grad_fn
                if f is not None:
                    if g is not None:
                        buf = pending.get(f)
                        if buf is None:
                            pending[f] = [g] if f.out_meta is None else _slot(f, t._out_idx, g)
                        else:
                            j = t._out_idx
                            buf[j] = g if buf[j] is None else buf[j] + g
                    c = consumers[f] - 1
                    consumers[f] = c
                    if c == 0:
                        ready.append(f)
                elif g is not None and t.requires_grad:
                    to_leaf(t, g)
    return found


def owns_fresh_buffer(data):
    """True for a numpy array that owns its C-contiguous memory (safe to keep as a .grad);
    device arrays cannot tell, so they answer False and get copied. (Here rather than in
    nbdl.tensor: an import inside run_backward cost 1.5 us a call.)"""
    return isinstance(data, np.ndarray) and data.flags.owndata and data.flags.c_contiguous


def _slot(node, idx, g):
    buf = [None] * len(node.out_meta)
    buf[idx] = g
    return buf


def _n_outputs(node):
    return 1 if node.out_meta is None else len(node.out_meta)


def _materialize(node, grads_out):
    """Zeros for the outputs of a multi-output node that received no gradient."""
    from nbdl.creation import zeros
    return tuple(g if g is not None else zeros(shape, dtype=dtype, device=device)
                 for g, (shape, dtype, device) in zip(grads_out, node.out_meta))


def _capture_nonleaf(node, grads_out, inputs, targets, found):
    for t in inputs:
        if t.grad_fn is node and grads_out[t._out_idx] is not None:
            i = targets[id(t)]
            found[i] = grads_out[t._out_idx]
