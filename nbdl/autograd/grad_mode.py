"""Grad mode and anomaly mode: process-wide switches read by every op."""
import functools


class _State:
    grad_enabled = True
    anomaly = False


def is_grad_enabled():
    return _State.grad_enabled


class set_grad_enabled:
    """Context manager (and decorator) that sets grad mode to ``mode``."""

    def __init__(self, mode):
        self.prev = _State.grad_enabled
        _State.grad_enabled = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _State.grad_enabled = self.prev
        return False


class _Switch:
    """Base of no_grad / enable_grad: a context manager that is also a decorator."""
    mode = True

    def __enter__(self):
        self.prev = _State.grad_enabled
        _State.grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        _State.grad_enabled = self.prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_Switch):
    """Record nothing on the tape inside this block."""
    mode = False


class enable_grad(_Switch):
    """Record on the tape inside this block (undoes an enclosing no_grad)."""
    mode = True


class detect_anomaly:
    """Inside this block every op checks its output (and backward its gradients)
    for NaN/inf and raises ``FloatingPointError`` naming the first op that made one."""

    def __enter__(self):
        self.prev = _State.anomaly
        _State.anomaly = True
        return self

    def __exit__(self, *exc):
        _State.anomaly = self.prev
        return False


def is_anomaly_enabled():
    return _State.anomaly
