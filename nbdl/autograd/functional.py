"""Entry points of the backward walk: ``backward`` and ``grad``."""
from nbdl.autograd.graph import run_backward
from nbdl.creation import ones_like
from nbdl.tensor import Tensor


def _root_grads(outputs, grad_outputs, op):
    grads = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not isinstance(out, Tensor):
            raise TypeError(f"{op}: outputs[{i}] must be a Tensor, got {type(out).__name__}")
        if not out.requires_grad:
            raise RuntimeError(f"{op}: outputs[{i}] does not require grad and has no grad_fn "
                               "(was it computed under no_grad, or from tensors without requires_grad?)")
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(f"{op}: grad can be implicitly created only for scalar outputs; "
                                   f"outputs[{i}] has shape {out.shape}: pass a gradient")
            g = ones_like(out.detach())
        elif not isinstance(g, Tensor):
            raise TypeError(f"{op}: gradient for outputs[{i}] must be a Tensor, got {type(g).__name__}")
        elif g.shape != out.shape:
            raise ValueError(f"{op}: gradient for outputs[{i}] has shape {g.shape}, output has {out.shape}")
        elif g.device != out.device:
            raise ValueError(f"{op}: gradient for outputs[{i}] is on {g.device!r}, the output on {out.device!r}")
        grads.append(g)
    return grads


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(tensors)/d(leaf) into each leaf's ``.grad``."""
    tensors = _as_list(tensors)
    grads = _as_list(grad_tensors) if grad_tensors is not None else [None] * len(tensors)
    if len(grads) != len(tensors):
        raise ValueError(f"backward: got {len(grads)} gradients for {len(tensors)} tensors")
    grads = [g.detach().clone() if isinstance(g, Tensor) and not create_graph else g for g in grads]
    grads = _root_grads(tensors, grads, "backward")
    if retain_graph is None:
        retain_graph = create_graph
    run_backward(tensors, grads, retain_graph=retain_graph, create_graph=create_graph,
                 inputs=None if inputs is None else _as_list(inputs), accumulate=True)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of ``outputs`` w.r.t. ``inputs`` as a tuple, leaving ``.grad`` untouched."""
    outputs = _as_list(outputs)
    inputs = _as_list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: inputs[{i}] must be a Tensor that requires grad")
    grads = _as_list(grad_outputs) if grad_outputs is not None else [None] * len(outputs)
    if len(grads) != len(outputs):
        raise ValueError(f"grad: got {len(grads)} grad_outputs for {len(outputs)} outputs")
    grads = _root_grads(outputs, grads, "grad")
    if retain_graph is None:
        retain_graph = create_graph
    found = run_backward(outputs, grads, retain_graph=retain_graph, create_graph=create_graph,
                         inputs=inputs, accumulate=False)
    if not allow_unused:
        for i, g in enumerate(found):
            if g is None:
                raise RuntimeError(f"grad: inputs[{i}] (shape {inputs[i].shape}) was not used to "
                                   "compute the outputs; pass allow_unused=True to get None for it")
    return tuple(found)
