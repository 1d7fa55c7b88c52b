"""Functional ops, with PyTorch's names, argument order and semantics.

Each accepts Tensors or anything ``numpy.asarray`` accepts, checks its arguments before computing
(errors name the argument, its value and the shapes involved), and records the graph for backward.
Image ops take (N, C, H, W) input, or unbatched (C, H, W) as PyTorch does.
"""

from ..ops.avgpool2d import adaptive_avg_pool2d, avg_pool2d
from ..ops.batchnorm import batch_norm
from ..ops.conv2d import conv2d
from ..ops.conv_transpose2d import conv_transpose2d
from ..ops.cross_entropy import cross_entropy, nll_loss
from ..ops.dropout import dropout, dropout2d
from ..ops.linear import linear
from ..ops.losses import l1_loss, mse_loss
from ..ops.math import sigmoid, tanh
from ..ops.maxpool2d import max_pool2d
from ..ops.norms import group_norm, layer_norm
from ..ops.relu import leaky_relu, relu
from ..ops.softmax import log_softmax, softmax

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "conv_transpose2d",
    "cross_entropy",
    "dropout",
    "dropout2d",
    "group_norm",
    "l1_loss",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]
