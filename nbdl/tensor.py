"""Tensor: an array (numpy on "cpu") plus what the tape needs.

``data`` is the raw array; ``grad_fn`` is the Node that produced the tensor
(None for leaves); ``_out_idx`` is which output of that node it is.
The math methods forward to ``nbdl.functional``.
"""
import numpy as np

from nbdl.autograd.grad_mode import _State

DEFAULT_DTYPE = np.dtype(np.float32)
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def to_numpy(data):
    """The host copy (or the array itself) of a tensor's data."""
    return data if isinstance(data, np.ndarray) else data.copy_to_host()


def device_of(data):
    return "cpu" if type(data) is np.ndarray or isinstance(data, np.ndarray) else "cuda"


def is_c_contiguous(data):
    if isinstance(data, np.ndarray):
        return bool(data.flags.c_contiguous)
    return bool(data.is_c_contiguous())


def check_device(device, op="to"):
    from nbdl.dispatch import DEVICES
    if not isinstance(device, str):
        raise TypeError(f"{op}: device must be a str such as 'cpu' or 'cuda', got {type(device).__name__}")
    name = device.split(":")[0]
    if name not in DEVICES:
        raise ValueError(f"{op}: unknown device {device!r}; expected one of {DEVICES}")
    return name


class Tensor:
    __slots__ = ("data", "requires_grad", "grad", "grad_fn", "_out_idx", "__weakref__")
    __array_priority__ = 1000   # numpy scalars defer to Tensor's operators

    def __init__(self, data, requires_grad=False):
        if isinstance(data, np.generic):   # numpy ops on 0-d arrays return scalars
            data = np.asarray(data)
        self.data = data
        self.grad = None
        self.grad_fn = None
        self._out_idx = 0
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ---- metadata -------------------------------------------------------
    @property
    def shape(self):
        shape = self.data.shape
        return shape if type(shape) is tuple else tuple(shape)   # the CUDA simulator's is not

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return device_of(self.data)

    @property
    def ndim(self):
        return self.data.ndim

    def dim(self):
        return self.data.ndim

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    @property
    def is_leaf(self):
        return self.grad_fn is None

    def __repr__(self):
        body = np.array2string(to_numpy(self.data), separator=", ", precision=4,
                               prefix="tensor(")
        extra = ""
        if self.dtype != DEFAULT_DTYPE:
            extra += f", dtype={self.dtype}"
        if self.device != "cpu":
            extra += f", device='{self.device}'"
        if self.grad_fn is not None:
            extra += f", grad_fn={self.grad_fn!r}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ---- conversion -----------------------------------------------------
    def numpy(self):
        """The data as a numpy array: shared with the tensor on "cpu", a host copy on "cuda"."""
        return to_numpy(self.data)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only a one-element tensor converts to a Python number, got shape {self.shape}")
        return to_numpy(self.data).reshape(()).item()

    def tolist(self):
        return to_numpy(self.data).tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"bool: the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.item())

    def __index__(self):
        if self.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        arr = to_numpy(self.data)
        return arr if dtype is None else arr.astype(dtype, copy=False)

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def detach_(self):
        self.grad_fn = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"requires_grad_: only float32/float64 tensors can require gradients, got {self.dtype}")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_: cannot turn off requires_grad of a non-leaf tensor; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def to(self, device=None, dtype=None):
        """Move to ``device`` ("cpu"/"cuda") and/or cast to ``dtype``."""
        out = self
        if isinstance(device, (np.dtype, type)) and dtype is None:
            device, dtype = None, device
        if dtype is not None:
            out = F.cast(out, dtype)
        if device is not None:
            out = F.to_device(out, check_device(device))
        return out

    @property
    def __cuda_array_interface__(self):
        """The GPU array protocol (CuPy, PyTorch, Numba read it without a copy)."""
        if self.device != "cuda":
            raise AttributeError("__cuda_array_interface__: the tensor is on 'cpu', not 'cuda'")
        return self.data.__cuda_array_interface__

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return F.cast(self, np.float32)

    def double(self):
        return F.cast(self, np.float64)

    def long(self):
        return F.cast(self, np.int64)

    def int(self):
        return F.cast(self, np.int32)

    def bool(self):
        return F.cast(self, np.bool_)

    def type_as(self, other):
        return F.cast(self, other.dtype)

    def clone(self):
        return F.clone(self)

    def contiguous(self):
        return self if is_c_contiguous(self.data) else F.clone(self)

    def is_contiguous(self):
        return is_c_contiguous(self.data)

    # ---- autograd -------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        from nbdl.autograd.functional import backward
        backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)

    # ---- in-place, outside the graph ------------------------------------
    def _check_inplace(self, op):
        if _State.grad_enabled and (self.grad_fn is not None or self.requires_grad):
            raise RuntimeError(
                f"{op}: in-place change of a tensor that is part of the graph "
                f"(shape {self.shape}); do it under nbdl.no_grad() or on a detached tensor")
        if isinstance(self.data, np.ndarray) and not self.data.flags.writeable:
            raise RuntimeError(f"{op}: the tensor is a read-only view (e.g. from expand); clone() it first")

    def __setitem__(self, index, value):
        self._check_inplace("__setitem__")
        index = F.unwrap_index(index, self.shape, "__setitem__")
        self._write(index, value, "__setitem__")

    def _write(self, index, value, op):
        """self.data[index] = value, by the setitem kernel of this device."""
        if isinstance(value, Tensor):
            if value.device != self.device:
                raise ValueError(f"{op}: value is on {value.device!r}, the tensor on {self.device!r}")
            value = value.data
        from nbdl.dispatch import kernel
        try:
            kernel("setitem", self.device)(self.data, index, value)
        except (ValueError, TypeError) as e:
            raise type(e)(f"{op}: cannot assign to a tensor of shape {self.shape}: {e}") from None

    def copy_(self, src):
        self._check_inplace("copy_")
        shape = src.shape if isinstance(src, Tensor) else np.shape(src)
        if not F.broadcasts_to(shape, self.shape):
            raise ValueError(f"copy_: source of shape {shape} does not broadcast to {self.shape}")
        self._write(Ellipsis, src if isinstance(src, Tensor) else np.asarray(src), "copy_")
        return self

    def fill_(self, value):
        self._check_inplace("fill_")
        self._write(Ellipsis, value, "fill_")
        return self

    def zero_(self):
        return self.fill_(0)

    def uniform_(self, a=0.0, b=1.0):
        from nbdl.creation import rand
        self._check_inplace("uniform_")
        self._write(Ellipsis, (rand(self.shape, dtype=self.dtype) * (b - a) + a).data, "uniform_")
        return self

    def normal_(self, mean=0.0, std=1.0):
        from nbdl.creation import randn
        self._check_inplace("normal_")
        self._write(Ellipsis, (randn(self.shape, dtype=self.dtype) * std + mean).data, "normal_")
        return self

    # ---- operators ------------------------------------------------------
    def __add__(self, o): return F.add(self, o)
    def __radd__(self, o): return F.add(o, self)
    def __sub__(self, o): return F.sub(self, o)
    def __rsub__(self, o): return F.sub(o, self)
    def __mul__(self, o): return F.mul(self, o)
    def __rmul__(self, o): return F.mul(o, self)
    def __truediv__(self, o): return F.div(self, o)
    def __rtruediv__(self, o): return F.div(o, self)
    def __pow__(self, o): return F.pow(self, o)
    def __rpow__(self, o): return F.pow(o, self)
    def __matmul__(self, o): return F.matmul(self, o)
    def __rmatmul__(self, o): return F.matmul(o, self)
    def __neg__(self): return F.neg(self)
    def __pos__(self): return self
    def __abs__(self): return F.abs(self)
    def __lt__(self, o): return F.lt(self, o)
    def __le__(self, o): return F.le(self, o)
    def __gt__(self, o): return F.gt(self, o)
    def __ge__(self, o): return F.ge(self, o)
    def __eq__(self, o): return F.eq(self, o)
    def __ne__(self, o): return F.ne(self, o)
    def __invert__(self): return F.logical_not(self)
    def __and__(self, o): return F.logical_and(self, o)
    def __or__(self, o): return F.logical_or(self, o)
    __hash__ = object.__hash__

    def __getitem__(self, index):
        return F.index(self, index)

    # Everything else (exp, sum, reshape, ...) is bound from nbdl.functional below.


from nbdl import functional as F  # noqa: E402  (F needs Tensor defined first)

for _name in F.TENSOR_METHODS:
    setattr(Tensor, _name, getattr(F, _name))
Tensor.T = property(lambda self: F.permute(self, tuple(range(self.ndim - 1, -1, -1))))
Tensor.mT = property(lambda self: F.transpose(self, -2, -1))
