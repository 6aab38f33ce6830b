"""Optimizers with fused Numba update kernels, and learning-rate schedulers
(torch.optim's names, signatures and defaults)."""
from nbdl.optim import lr_scheduler
from nbdl.optim.adagrad import Adagrad
from nbdl.optim.adam import Adam, AdamW
from nbdl.optim.newton import Newton
from nbdl.optim.optimizer import Optimizer
from nbdl.optim.rmsprop import RMSprop
from nbdl.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Newton", "lr_scheduler"]
