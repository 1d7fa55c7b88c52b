"""Functional ops, with PyTorch's names, argument order and semantics.

Each accepts Tensors or anything ``numpy.asarray`` accepts, checks its arguments before computing
(errors name the argument, its value and the shapes involved), and records the graph for backward.
Image ops take (N, C, H, W) input, or unbatched (C, H, W) as PyTorch does.
"""

from ..ops.activations import (
    celu,
    elu,
    gelu,
    hardsigmoid,
    hardswish,
    hardtanh,
    logsigmoid,
    mish,
    prelu,
    relu6,
    selu,
    silu,
    softplus,
    softsign,
    tanhshrink,
)
from ..ops.avgpool2d import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d
from ..ops.batchnorm import batch_norm
from ..ops.conv2d import conv2d
from ..ops.conv_transpose2d import conv_transpose2d
from ..ops.cross_entropy import cross_entropy, nll_loss
from ..ops.dropout import dropout, dropout2d
from ..ops.linear import linear
from ..ops.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    one_hot,
    smooth_l1_loss,
)
from ..ops.math import sigmoid, tanh
from ..ops.maxpool2d import max_pool2d
from ..ops.norms import group_norm, layer_norm
from ..ops.padding import pad
from ..ops.relu import leaky_relu, relu
from ..ops.softmax import log_softmax, softmax

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "celu",
    "conv2d",
    "conv_transpose2d",
    "cross_entropy",
    "dropout",
    "dropout2d",
    "elu",
    "gelu",
    "group_norm",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "logsigmoid",
    "max_pool2d",
    "mish",
    "mse_loss",
    "nll_loss",
    "one_hot",
    "pad",
    "prelu",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "smooth_l1_loss",
    "softmax",
    "softplus",
    "softsign",
    "tanh",
    "tanhshrink",
]
