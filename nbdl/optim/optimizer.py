"""Optimizer: parameter groups, per-parameter state and torch's state_dict format.

A subclass sets its ``defaults``, checks a group's hyperparameters in
``_check_group`` and updates the parameters of one group and one dtype in
``_update`` with one fused kernel launch (``nbdl.kernels.cpu.optim``): it
packs the arrays (which checks them) before it changes any state.
"""
import copy
import importlib
import itertools
from collections import defaultdict

import numpy as np

from nbdl.autograd.grad_mode import enable_grad
from nbdl.kernels.cpu import optim as kernels
from nbdl.creation import zeros
from nbdl.tensor import Tensor

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Optimizer:
    """Base class of the optimizers, with torch's interface.

    params: an iterable of Tensors, of (name, Tensor) pairs, or of dicts
    (parameter groups: ``{"params": [...], "lr": ...}``; missing keys take
    the optimizer's defaults). ``state[p]`` is the per-parameter dict of state
    Tensors (``exp_avg``, ``momentum_buffer``, ``step``, ... with torch's names).
    """

    def __init__(self, params, defaults):
        self.defaults = defaults
        self._pack_caches = {}   # (id(group), dtype) -> kernels.pack's address cache
        self.state = defaultdict(dict)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError(f"{self._name}: params must be an iterable of Tensors or dicts, "
                            "got a Tensor")
        if isinstance(params, set):
            raise TypeError(f"{self._name}: parameters must be an ordered collection, "
                            "not a set (its order changes between runs)")
        groups = list(params)
        if not groups:
            raise ValueError(f"{self._name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self):
        return type(self).__name__

    def __repr__(self):
        lines = [f"{self._name} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines) + "\n)"

    # ---- groups ------------------------------------------------------------
    def add_param_group(self, param_group):
        """Append a group (a dict with "params"); unset options take the defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"{self._name}.add_param_group: expected a dict, "
                            f"got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{self._name}.add_param_group: the group has no 'params'")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(f"{self._name}: parameters must be an ordered collection, "
                            "not a set (its order changes between runs)")
        params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names and len(names) != len(params):
            raise ValueError(f"{self._name}: either all parameters have names or none")
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{self._name}: can only optimize nbdl Tensors, "
                                f"got {type(p).__name__}")
            if p.grad_fn is not None:
                raise ValueError(f"{self._name}: can't optimize a non-leaf Tensor")
            if p.dtype not in _FLOAT_DTYPES:
                raise TypeError(f"{self._name}: parameters must be float32 or float64, "
                                f"got {p.dtype}")
        group = {k: v for k, v in param_group.items() if k != "params"}
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._check_group(group)
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{self._name}: a parameter group contains a parameter twice")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{self._name}: some parameters appear in more than one "
                             "parameter group")
        if any(("param_names" in g) != bool(names) for g in self.param_groups):
            raise ValueError(f"{self._name}: all parameter groups must be with names or "
                             "all without")
        group["params"] = params
        if names:
            group["param_names"] = names
        self.param_groups.append(group)

    def _check_group(self, group):
        """Raise ValueError for a bad hyperparameter of ``group`` (subclasses)."""

    def _check(self, ok, arg, value, rule):
        if not ok:
            raise ValueError(f"{self._name}: invalid {arg} {value!r} ({rule})")

    # ---- step --------------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Drop the gradients (``set_to_none``) or fill them with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.zero_()

    def step(self, closure=None):
        """One update of every parameter that has a gradient. ``closure``
        re-evaluates the model and returns the loss (run with grad enabled)."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        work = [(group, key, batch) for group in self.param_groups
                for key, batch in self._batches(group).items()]
        self._begin_step(work)
        for group, key, (params, xs, gs) in work:
            self._update(group, key, params, xs, gs)
        return loss

    def _batches(self, group):
        """{(device, dtype): (params, param arrays, grad arrays)} of the parameters
        of ``group`` that have a gradient, checked for the kernels."""
        out = {}
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            if not isinstance(g, Tensor) or g.device != p.device:
                raise TypeError(f"{self._name}.step: a parameter on {p.device!r} needs a .grad "
                                f"Tensor on the same device, got {getattr(g, 'device', type(g))}")
            if g.shape != p.shape or g.dtype != p.dtype:
                raise ValueError(f"{self._name}.step: a gradient of shape {g.shape} "
                                 f"{g.dtype} does not match its parameter {p.shape} {p.dtype}")
            if not p.is_contiguous():
                raise ValueError(f"{self._name}.step: parameters must be C-contiguous, got "
                                 f"a non-contiguous one of shape {p.shape}")
            key = (p.device, p.dtype)
            batch = out.get(key)
            if batch is None:
                if p.dtype not in _FLOAT_DTYPES:
                    raise TypeError(f"{self._name}.step: parameters must be float32 or "
                                    f"float64, got {p.dtype}")
                batch = out[key] = ([], [], [])
            x, gd = p.data, g.contiguous().data
            batch[0].append(p)
            batch[1].append(x)
            batch[2].append(gd)
        return out

    def _begin_step(self, work):
        """Called once per step with every (group, dtype, batch) about to update."""

    def _update(self, group, key, params, xs, gs):
        """Update ``params`` (one (device, dtype) key of ``group``); xs, gs are their arrays."""
        raise NotImplementedError

    def _state_array(self, p, key):
        """The array of ``state[p][key]``, created as zeros if missing."""
        state = self.state[p]
        t = state.get(key)
        if t is None:
            t = state[key] = zeros(p.shape, dtype=p.dtype, device=p.device)
        return t.data

    def _step_tensor(self, p):
        """``state[p]["step"]``, a float32 0-d Tensor like torch's, created at 0 if missing."""
        state = self.state[p]
        t = state.get("step")
        if t is None:
            t = state["step"] = Tensor(np.zeros((), np.float32))
        return t

    def _next_step(self, p):
        """Increment ``state[p]["step"]`` and return it as a float."""
        t = self._step_tensor(p)
        step = float(t.data) + 1.0
        t.data[()] = step
        return step

    def _pack(self, group, key, arrays):
        """The kernel module for the batch's device and the leading arguments of its
        ``<name>_step``: on "cpu", kernels.pack's tables for one launch over ``arrays``
        (R lists of the group's arrays of one dtype), reusing the group's checked
        addresses; on "cuda", the arrays themselves (one launch per tensor)."""
        if key[0] == "cuda":
            return importlib.import_module("nbdl.kernels.cuda.optim"), (arrays,)
        cache = self._pack_caches.setdefault((id(group), key), {})
        try:
            return kernels, kernels.pack(arrays, cache)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{self._name}.step: {e}") from None

    # ---- checkpoints -------------------------------------------------------
    def state_dict(self):
        """{"state": {index: {name: Tensor}}, "param_groups": [{..., "params": [index]}]}
        with parameters numbered in group order, torch's format. The state
        Tensors are the optimizer's own (not copies)."""
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: s for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load a ``state_dict`` (ours or torch's): groups must match in number
        and size; state arrays are copied in each parameter's dtype and must
        have its shape."""
        name = f"{self._name}.load_state_dict"
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError(f"{name}: expected a dict with 'state' and 'param_groups'")
        saved = copy.deepcopy(state_dict["param_groups"])
        if len(saved) != len(self.param_groups):
            raise ValueError(f"{name}: the state dict has {len(saved)} parameter groups, "
                             f"the optimizer {len(self.param_groups)}")
        for i, (g, s) in enumerate(zip(self.param_groups, saved)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"{name}: group {i} has {len(s['params'])} parameters in the "
                                 f"state dict and {len(g['params'])} in the optimizer")
        id_map = dict(zip(itertools.chain.from_iterable(s["params"] for s in saved),
                          itertools.chain.from_iterable(g["params"] for g in self.param_groups)))
        state = defaultdict(dict)
        for k, values in state_dict["state"].items():
            if k not in id_map:
                raise ValueError(f"{name}: state for parameter {k!r}, which no group lists")
            p = id_map[k]
            state[p] = {key: self._load_value(p, key, v, name) for key, v in values.items()}
        for g, s in zip(self.param_groups, saved):
            s["params"] = g["params"]
            if "param_names" in g and "param_names" not in s:
                s["param_names"] = g["param_names"]
            for k, v in self.defaults.items():   # e.g. a torch state dict lacks our options
                s.setdefault(k, v)
            self._check_group(s)
        self.param_groups = saved
        self.state = state
        self._pack_caches.clear()

    @staticmethod
    def _load_value(p, key, value, name):
        if key == "step":
            return Tensor(np.array(float(value), np.float32))
        if hasattr(value, "numpy"):   # an nbdl or a torch Tensor
            value = value.numpy()
        elif not isinstance(value, np.ndarray):
            return copy.deepcopy(value)
        arr = np.array(value, dtype=p.dtype, order="C", copy=True)
        if arr.shape != p.shape:
            raise ValueError(f"{name}: state {key!r} has shape {arr.shape}, "
                             f"its parameter {p.shape}")
        return Tensor(arr).to(p.device)
