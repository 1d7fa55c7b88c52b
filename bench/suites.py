"""Named shape suites for ``python -m bench ops``: one case per layer, each timed for every op it names.

A case is a conv layer (forward, backward-data, backward-filter), a pooling layer (forward, backward),
a ReLU (forward, backward) or a batch norm in training (forward, backward) on one (N, C, H, W) input.
Suites:

- ``lecture``: the lecture's worked examples (32x32x3 input, ten 5x5 filters, pad 2; a 7x7 input with
  a 3x3 filter at stride 1 and 2; 2x2 pooling), at batch 32.
- ``convnetjs``: the ConvNetJS CIFAR-10 demo's layers, batch 32.
- ``resnet18``: CIFAR ResNet-18's layers (the four stages, stride-2 and 1x1 shortcuts, final 4x4
  average pool), batch 32, plus the ImageNet stem's 3x3/2 max pool.
- ``smallresnet``: the layers of ``bench.train``'s small ResNet (its ``resnet`` model: 16, 32 and 64
  channels) at that benchmark's batch of 64, where its training step's time goes.
- ``vgg16``: VGG-16's 3x3 layers at 224x224, batch 32, 64 and 128 (sized for GPUs: minutes on a CPU).
- ``jetson``: batch 1 inference layers of an ImageNet ResNet-18 (224x224), for Jetson boards.
- ``mix`` (the default): a few layers of the suites above, quick on a 2-core CPU.
- ``poolrelu``: the ReLU and pooling layers of the lecture, ConvNetJS, ResNet-18, small-ResNet and
  Jetson suites (VGG-16's large arrays take minutes on a CPU), for the CPU's target on them (within
  2x of PyTorch).
- ``tiny``: what ``--quick`` runs (the tests): small shapes that also run on ``cudasim``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .train import BATCH as TRAIN_BATCH


class Conv(NamedTuple):
    name: str
    batch: int
    in_channels: int
    out_channels: int
    size: int  # H = W
    kernel: int
    stride: int = 1
    padding: int = 0

    ops = ("conv2d_forward", "conv2d_backward_data", "conv2d_backward_filter")

    def input_shape(self) -> tuple:
        return (self.batch, self.in_channels, self.size, self.size)

    def output_size(self) -> int:
        return (self.size + 2 * self.padding - self.kernel) // self.stride + 1

    def describe(self) -> str:
        return (f"{self.batch}x{self.in_channels}x{self.size}x{self.size} -> {self.out_channels}, "
                f"{self.kernel}x{self.kernel} s{self.stride} p{self.padding}")


class Pool(NamedTuple):
    name: str
    kind: str  # "max" or "avg"
    batch: int
    channels: int
    size: int
    kernel: int
    stride: int
    padding: int = 0

    @property
    def ops(self):
        return (f"{self.kind}pool2d_forward", f"{self.kind}pool2d_backward")  # the kernels' names

    def input_shape(self) -> tuple:
        return (self.batch, self.channels, self.size, self.size)

    def output_size(self) -> int:
        return (self.size + 2 * self.padding - self.kernel) // self.stride + 1

    def describe(self) -> str:
        return (f"{self.batch}x{self.channels}x{self.size}x{self.size}, "
                f"{self.kernel}x{self.kernel} s{self.stride} p{self.padding}")


class _Planes(NamedTuple):
    """An op on (batch, channels, size, size) alone: its subclasses name the ops."""

    name: str
    batch: int
    channels: int
    size: int

    def input_shape(self) -> tuple:
        return (self.batch, self.channels, self.size, self.size)

    def describe(self) -> str:
        return f"{self.batch}x{self.channels}x{self.size}x{self.size}"


class Relu(_Planes):
    __slots__ = ()
    ops = ("relu_forward", "relu_backward")


class Norm(_Planes):
    """Batch norm in training, with a weight and a bias (BatchNorm2d's)."""

    __slots__ = ()
    ops = ("batchnorm_forward", "batchnorm_backward")


LECTURE = [
    Conv("lecture 32x32x3, ten 5x5 p2", 32, 3, 10, 32, 5, 1, 2),
    Conv("lecture 7x7, 3x3 s1", 32, 1, 1, 7, 3, 1, 0),
    Conv("lecture 7x7, 3x3 s2", 32, 1, 1, 7, 3, 2, 0),
    Relu("lecture relu 32x32x10", 32, 10, 32),
    Pool("lecture max 2/2", "max", 32, 10, 32, 2, 2),
    Pool("lecture avg 2/2", "avg", 32, 10, 32, 2, 2),
]

CONVNETJS = [
    Conv("convnetjs conv1", 32, 3, 16, 32, 5, 1, 2),
    Relu("convnetjs relu1", 32, 16, 32),
    Pool("convnetjs pool1", "max", 32, 16, 32, 2, 2),
    Conv("convnetjs conv2", 32, 16, 20, 16, 5, 1, 2),
    Relu("convnetjs relu2", 32, 20, 16),
    Pool("convnetjs pool2", "max", 32, 20, 16, 2, 2),
    Conv("convnetjs conv3", 32, 20, 20, 8, 5, 1, 2),
    Pool("convnetjs pool3", "max", 32, 20, 8, 2, 2),
]

RESNET18 = [
    Conv("resnet18 stem 3->64 32px", 32, 3, 64, 32, 3, 1, 1),
    Conv("resnet18 64ch 32px", 32, 64, 64, 32, 3, 1, 1),
    Relu("resnet18 relu 64ch 32px", 32, 64, 32),
    Conv("resnet18 64->128 s2", 32, 64, 128, 32, 3, 2, 1),
    Conv("resnet18 1x1 s2 64->128", 32, 64, 128, 32, 1, 2, 0),
    Conv("resnet18 128ch 16px", 32, 128, 128, 16, 3, 1, 1),
    Conv("resnet18 128->256 s2", 32, 128, 256, 16, 3, 2, 1),
    Conv("resnet18 256ch 8px", 32, 256, 256, 8, 3, 1, 1),
    Conv("resnet18 256->512 s2", 32, 256, 512, 8, 3, 2, 1),
    Conv("resnet18 512ch 4px", 32, 512, 512, 4, 3, 1, 1),
    Pool("resnet18 avg 4x4", "avg", 32, 512, 4, 4, 4),
    Pool("resnet18 imagenet stem max 3/2 p1", "max", 8, 64, 112, 3, 2, 1),
]

SMALL_RESNET = [
    Conv("small resnet stem 3->16", TRAIN_BATCH, 3, 16, 32, 3, 1, 1),
    Conv("small resnet 16ch 32px", TRAIN_BATCH, 16, 16, 32, 3, 1, 1),
    Norm("small resnet batch norm 16ch 32px", TRAIN_BATCH, 16, 32),
    Relu("small resnet relu 16ch 32px", TRAIN_BATCH, 16, 32),
    Conv("small resnet 16->32 s2", TRAIN_BATCH, 16, 32, 32, 3, 2, 1),
    Conv("small resnet 1x1 s2 16->32", TRAIN_BATCH, 16, 32, 32, 1, 2, 0),
    Conv("small resnet 32ch 16px", TRAIN_BATCH, 32, 32, 16, 3, 1, 1),
    Norm("small resnet batch norm 32ch 16px", TRAIN_BATCH, 32, 16),
    Conv("small resnet 32->64 s2", TRAIN_BATCH, 32, 64, 16, 3, 2, 1),
    Conv("small resnet 1x1 s2 32->64", TRAIN_BATCH, 32, 64, 16, 1, 2, 0),
    Conv("small resnet 64ch 8px", TRAIN_BATCH, 64, 64, 8, 3, 1, 1),
    Norm("small resnet batch norm 64ch 8px", TRAIN_BATCH, 64, 8),
    Pool("small resnet avg 8x8", "avg", TRAIN_BATCH, 64, 8, 8, 8),
]

_VGG16_LAYERS = [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56), (256, 256, 56),
                 (256, 512, 28), (512, 512, 28), (512, 512, 14)]
# The quick, memory-bound layers first: a run stopped by a time limit has them.
VGG16 = [Relu(f"vgg16 relu 64ch 224px b{batch}", batch, 64, 224) for batch in (32, 64, 128)] + [
    Pool(f"vgg16 max 2/2 {c}ch {size}px b{batch}", "max", batch, c, size, 2, 2)
    for batch in (32, 64, 128) for c, size in ((64, 224), (512, 28))
] + [Conv(f"vgg16 {c}->{k} {size}px b{batch}", batch, c, k, size, 3, 1, 1)
     for batch in (32, 64, 128) for c, k, size in _VGG16_LAYERS]

JETSON = [
    Conv("jetson stem 7x7 s2 3->64", 1, 3, 64, 224, 7, 2, 3),
    Relu("jetson relu 64ch 112px", 1, 64, 112),
    Pool("jetson max 3/2 p1", "max", 1, 64, 112, 3, 2, 1),
    Conv("jetson 64ch 56px", 1, 64, 64, 56, 3, 1, 1),
    Conv("jetson 64->128 s2", 1, 64, 128, 56, 3, 2, 1),
    Conv("jetson 128ch 28px", 1, 128, 128, 28, 3, 1, 1),
    Conv("jetson 256ch 14px", 1, 256, 256, 14, 3, 1, 1),
    Conv("jetson 512ch 7px", 1, 512, 512, 7, 3, 1, 1),
    Pool("jetson avg 7x7", "avg", 1, 512, 7, 7, 7),
]

MIX = [
    Conv("convnetjs conv2", 32, 16, 20, 16, 5, 1, 2),
    Conv("resnet18 128ch 16px", 32, 128, 128, 16, 3, 1, 1),
    Conv("resnet18 1x1 s2 64->128", 32, 64, 128, 32, 1, 2, 0),
    Relu("resnet18 relu 64ch 32px", 32, 64, 32),
    Pool("convnetjs pool1", "max", 32, 16, 32, 2, 2),
    Pool("resnet18 imagenet stem max 3/2 p1", "max", 8, 64, 112, 3, 2, 1),
    Pool("lecture avg 2/2", "avg", 32, 10, 32, 2, 2),
]

POOL_RELU = [layer for layer in LECTURE + CONVNETJS + RESNET18 + SMALL_RESNET + JETSON
             if isinstance(layer, (Relu, Pool))]

TINY = [
    Conv("tiny 3x3 p1", 2, 3, 4, 8, 3, 1, 1),
    Conv("tiny 1x1 s2", 2, 4, 6, 7, 1, 2, 0),
    Relu("tiny relu", 2, 3, 8),
    Norm("tiny batch norm", 2, 3, 8),
    Pool("tiny max 3/2 p1", "max", 2, 3, 9, 3, 2, 1),
    Pool("tiny avg 2/2", "avg", 2, 3, 8, 2, 2),
]


def at_batch(layers, batch: int | None) -> list:
    """The layers as they are where ``batch`` is None; else each at ``batch`` images, named without a
    batch of its own (VGG-16's " b64"), and once: a suite's layers that differ by their batch alone
    become one."""
    if batch is None:
        return list(layers)
    result, seen = [], set()
    for layer in layers:
        layer = layer._replace(name=re.sub(r" b\d+$", "", layer.name), batch=batch)
        if (type(layer), layer) not in seen:
            seen.add((type(layer), layer))
            result.append(layer)
    return result


SUITES = {"mix": MIX, "lecture": LECTURE, "convnetjs": CONVNETJS, "resnet18": RESNET18, "smallresnet": SMALL_RESNET,
          "vgg16": VGG16, "jetson": JETSON, "poolrelu": POOL_RELU, "tiny": TINY}
