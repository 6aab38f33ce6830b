"""Modules, parameters, initialisers and losses (torch's names and defaults)."""
from nbdl.nn import functional, init, utils
from nbdl.nn.layers import (GELU, Dropout, Flatten, Identity, LeakyReLU, Linear, LogSoftmax,
                            ModuleDict, ModuleList, ReLU, Sequential, Sigmoid, Softmax, Tanh)
from nbdl.nn.loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, KLDivLoss, L1Loss,
                          MSELoss, NLLLoss)
from nbdl.nn.module import Module
from nbdl.nn.parameter import Parameter
