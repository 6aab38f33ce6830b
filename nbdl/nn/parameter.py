"""Parameter: a leaf tensor that a Module registers and optimizers update."""
import numpy as np

from nbdl.tensor import Tensor


class Parameter(Tensor):
    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.empty((0,), np.float32)
        if isinstance(data, Tensor):
            data = data.data
        from nbdl.cuda import is_cuda_array
        if not isinstance(data, np.ndarray) and not is_cuda_array(data):
            raise TypeError(f"Parameter: expected a Tensor or array, got {type(data).__name__}")
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
