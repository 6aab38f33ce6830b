"""Modules, parameters, initialisers and losses (torch's names and defaults)."""
from nbdl.nn import functional, init, utils
from nbdl.nn.conv import Conv1d, Conv2d, ConvTranspose2d
from nbdl.nn.layers import (GELU, Dropout, Flatten, Identity, LeakyReLU, Linear, LogSoftmax,
                            ModuleDict, ModuleList, ReLU, Sequential, Sigmoid, Softmax, Tanh)
from nbdl.nn.loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, KLDivLoss, L1Loss,
                          MSELoss, NLLLoss)
from nbdl.nn.loss import MultiMarginLoss
from nbdl.nn.module import Module
from nbdl.nn.norm import BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm2d
from nbdl.nn.parameter import Parameter
from nbdl.nn.pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, Upsample
from nbdl.nn.transformer import (Embedding, LayerNorm, MultiheadAttention, PositionalEncoding,
                                  TransformerEncoder, TransformerEncoderLayer)
from nbdl.nn.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
