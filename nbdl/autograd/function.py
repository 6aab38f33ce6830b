"""Custom ops: subclass ``Function`` with ``forward(ctx, ...)`` and
``backward(ctx, *grads)`` (PyTorch's shape) and call ``MyOp.apply(...)``.

``forward`` runs with grad mode off and may call any kernel on ``x.data``;
``backward`` returns one gradient (or None) per ``forward`` argument. Written
in nbdl ops, backward is itself differentiable; a backward that runs a fused
kernel instead can be marked ``@once_differentiable``.
"""
import functools

from nbdl.autograd.grad_mode import _State, is_grad_enabled, no_grad
from nbdl.autograd.graph import Node, attach, check_finite
from nbdl.tensor import Tensor


class FunctionCtx:
    """What forward leaves for backward: ``save_for_backward`` and any attributes."""

    def __init__(self, inputs):
        self._saved = ()
        self.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in inputs)

    def save_for_backward(self, *tensors):
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward: argument {i} must be a Tensor or None, "
                                f"got {type(t).__name__}")
        self._saved = tensors

    @property
    def saved_tensors(self):
        return self._saved


class Function:
    """Base class of a custom differentiable op."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("Function subclasses must define forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("Function subclasses must define backward(ctx, *grads)")

    @classmethod
    def apply(cls, *args):
        name = cls.__name__
        ctx = FunctionCtx(args)
        with no_grad():
            result = cls.forward(ctx, *args)
        outs = result if isinstance(result, tuple) else (result,)
        for i, o in enumerate(outs):
            if not isinstance(o, Tensor):
                raise TypeError(f"{name}.forward must return Tensors, output {i} is {type(o).__name__}")
        outs = tuple(o if o.grad_fn is None and not o.requires_grad else Tensor(o.data) for o in outs)
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        inputs = tuple(args[i] for i in positions)

        def backward_fn(*grads):
            grads_in = cls.backward(ctx, *grads)
            if not isinstance(grads_in, tuple):
                grads_in = (grads_in,)
            if len(grads_in) != len(args):
                raise RuntimeError(f"{name}.backward returned {len(grads_in)} gradients, "
                                   f"forward took {len(args)} arguments")
            res = []
            for i in positions:
                g = grads_in[i]
                if g is not None and (not isinstance(g, Tensor) or g.shape != args[i].shape):
                    got = g.shape if isinstance(g, Tensor) else type(g).__name__
                    raise RuntimeError(f"{name}.backward: gradient {i} must be a Tensor of shape "
                                       f"{args[i].shape}, got {got}")
                res.append(g)
            return tuple(res)

        if len(outs) == 1:
            attach(outs[0], name, inputs, backward_fn)
            return outs[0]
        if _State.grad_enabled and any(t.requires_grad for t in inputs):
            node = Node(name, inputs, backward_fn, out_meta=[(o.shape, o.dtype, o.device) for o in outs])
            for i, o in enumerate(outs):
                if o.dtype.kind == "f":
                    o.requires_grad, o.grad_fn, o._out_idx = True, node, i
        if _State.anomaly:
            for o in outs:
                check_finite(o.data, name, inputs)
        return outs


def once_differentiable(backward):
    """Mark a Function's backward as not itself differentiable: its gradients
    are computed with grad mode off, and differentiating them raises."""
    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        with no_grad():
            result = backward(ctx, *grads)
        # the gradients depend on the incoming grads and on the saved tensors
        sources = tuple(t for t in grads + tuple(ctx._saved) if isinstance(t, Tensor) and t.requires_grad)
        if not is_grad_enabled() or not sources:
            return result
        single = not isinstance(result, tuple)
        name = getattr(backward, "__qualname__", "backward")

        def refuse(*_):
            raise RuntimeError(f"{name} is once-differentiable: its gradient cannot be "
                               "differentiated again (create_graph=True through it)")

        marked = tuple(attach(Tensor(r.data), name, sources, refuse) if isinstance(r, Tensor) else r
                       for r in ((result,) if single else result))
        return marked[0] if single else marked

    return wrapper
