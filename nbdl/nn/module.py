"""Module: parameters, buffers and submodules registered by attribute,
state_dict / load_state_dict by dotted names (torch's), train/eval, to()."""
import collections

import numpy as np

from nbdl.nn.parameter import Parameter
from nbdl.tensor import Tensor


class Module:
    training = True

    def __init__(self):
        object.__setattr__(self, "_parameters", collections.OrderedDict())
        object.__setattr__(self, "_buffers", collections.OrderedDict())
        object.__setattr__(self, "_modules", collections.OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "training", True)

    # ---- registration ---------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning {name!r}")
        for d in (self._parameters, self._buffers, self._modules):
            if name in d and not (d is self._buffers and (value is None or isinstance(value, Tensor))):
                del d[name]
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self._buffers:
            self._buffers[name] = value
        elif name in self._parameters and value is None:
            self._parameters[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        for key in ("_parameters", "_buffers", "_modules"):
            d = self.__dict__.get(key)
            if d is not None and name in d:
                return d[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for d in (self._parameters, self._buffers, self._modules):
            if name in d:
                del d[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, "
                            f"got {type(param).__name__}")
        self._check_name(name, "register_parameter")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, got {type(tensor).__name__}")
        self._check_name(name, "register_buffer")
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def register_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"register_module: {name!r} must be a Module, got {type(module).__name__}")
        self._check_name(name, "register_module")
        self._modules[name] = module

    add_module = register_module

    def _check_name(self, name, op):
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{op}: name must be a non-empty string without '.', got {name!r}")

    # ---- traversal ------------------------------------------------------
    def named_modules(self, prefix="", memo=None):
        memo = set() if memo is None else memo
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in memo:
                continue
            memo.add(id(m))
            yield name, m
            children = [(f"{name}.{k}" if name else k, c) for k, c in m._modules.items() if c is not None]
            stack.extend(reversed(children))

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        for k, m in self._modules.items():
            if m is not None:
                yield k, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named(self, attr, prefix, recurse):
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, m in mods:
            for k, v in getattr(m, attr).items():
                if v is None or id(v) in seen:
                    continue
                seen.add(id(v))
                yield (f"{mname}.{k}" if mname else k), v

    def named_parameters(self, prefix="", recurse=True):
        return self._named("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        return self._named("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ---- state ----------------------------------------------------------
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """Parameters and persistent buffers by dotted name (detached tensors)."""
        out = collections.OrderedDict() if destination is None else destination
        for mname, m in self.named_modules():
            base = prefix + (mname + "." if mname else "")
            for k, v in m._parameters.items():
                if v is not None:
                    out[base + k] = v if keep_vars else v.detach()
            for k, v in m._buffers.items():
                if v is not None and k not in m._non_persistent:
                    out[base + k] = v if keep_vars else v.detach()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy values in by name; with strict, missing/unexpected keys are an error.
        A shape mismatch is always an error. Returns (missing_keys, unexpected_keys)."""
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict and (missing or unexpected):
            if missing:
                errors.append(f"missing keys: {missing}")
            if unexpected:
                errors.append(f"unexpected keys: {unexpected}")
        for k, target in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            arr = v.numpy() if isinstance(v, Tensor) else np.asarray(v)
            if arr.shape != target.shape:
                errors.append(f"size mismatch for {k}: checkpoint has shape {arr.shape}, "
                              f"the model has {target.shape}")
        if errors:
            raise ValueError(f"load_state_dict of {type(self).__name__}: " + "; ".join(errors))
        from nbdl.autograd.grad_mode import no_grad
        with no_grad():
            for k, target in own.items():
                if k in state_dict:
                    v = state_dict[k]
                    arr = v.numpy() if isinstance(v, Tensor) else np.asarray(v)
                    _assign(target, arr)
        return collections.namedtuple("IncompatibleKeys", "missing_keys unexpected_keys")(
            missing, unexpected)

    # ---- modes and moves ------------------------------------------------
    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def apply(self, fn):
        """Call ``fn(module)`` on every submodule (children first) and self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def _apply_to_tensors(self, convert):
        for m in self.modules():
            for k, p in m._parameters.items():
                if p is not None:
                    p.data = convert(Tensor(p.data)).data
                    if p.grad is not None:
                        p.grad = convert(p.grad.detach())
            for k, b in m._buffers.items():
                if b is not None:
                    m._buffers[k] = convert(b.detach())
        return self

    def to(self, device=None, dtype=None):
        """Move (in place) parameters and buffers to ``device`` / cast floats to ``dtype``."""
        from nbdl.creation import as_dtype
        from nbdl.tensor import check_device
        if isinstance(device, (np.dtype, type)) and dtype is None:
            device, dtype = None, device
        if device is not None:
            check_device(device, "Module.to")
        dt = as_dtype(dtype) if dtype is not None else None

        def convert(t):
            if dt is not None and t.dtype.kind == "f":
                t = t.to(dtype=dt)
            return t.to(device) if device is not None else t

        return self._apply_to_tensors(convert)

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    # ---- call and repr --------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        for k, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"({k}): {sub}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


def _assign(target, arr):
    """Write ``arr`` into a parameter or buffer (same shape), keeping its dtype and device."""
    arr = arr.astype(target.dtype, copy=False)
    if isinstance(target.data, np.ndarray):
        target.data[...] = arr
    else:
        target.data.copy_to_device(np.ascontiguousarray(arr))
