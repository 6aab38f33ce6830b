"""The kernel registry: every op finds its kernel by (op name, device).

A kernel is a plain function on arrays (numpy arrays on "cpu", Numba device
arrays on "cuda"). Built-in kernels are registered by import path and imported
on first use, so ``import nbdl`` compiles and imports nothing heavy.

Swap a kernel for an experiment::

    with nbdl.use_kernel("softmax", "cpu", my_softmax):
        run_the_op_tests_or_benchmarks()

or ``nbdl.register_kernel("softmax", "cpu", my_softmax)`` for the process.
"""
import contextlib
import importlib

DEVICES = ("cpu", "cuda")

_registry = {}   # (op, device) -> callable or "module:attr" (resolved lazily)


def register_kernel(op, device, fn):
    """Make ``fn`` the kernel of ``op`` on ``device``; returns the previous one (or None)."""
    if device not in DEVICES:
        raise ValueError(f"register_kernel: device must be one of {DEVICES}, got {device!r}")
    if not (callable(fn) or isinstance(fn, str)):
        raise TypeError(f"register_kernel: kernel for {op!r} must be callable, got {type(fn).__name__}")
    prev = _registry.get((op, device))
    _registry[op, device] = fn
    return prev


def kernel(op, device):
    """The kernel of ``op`` on ``device`` (imported on first use)."""
    fn = _registry.get((op, device))
    if fn is None:
        raise NotImplementedError(
            f"{op}: no kernel registered for device {device!r}") from None
    if type(fn) is str:
        module, _, attr = fn.partition(":")
        fn = getattr(importlib.import_module(module), attr)
        _registry[op, device] = fn
    return fn


def registered_kernels(device=None):
    """Sorted list of (op, device) pairs that have a kernel."""
    return sorted(k for k in _registry if device is None or k[1] == device)


@contextlib.contextmanager
def use_kernel(op, device, fn):
    """Temporarily swap the kernel of ``op`` on ``device`` for ``fn``."""
    if (op, device) not in _registry:
        raise KeyError(f"use_kernel: no built-in kernel {op!r} on {device!r} to swap")
    prev = register_kernel(op, device, fn)
    try:
        yield fn
    finally:
        _registry[op, device] = prev
