"""A small forward + backward of every CUDA kernel, for compute-sanitizer (memcheck, racecheck).

    compute-sanitizer --tool memcheck python -m bench.kernel_smoke --device cuda

Shapes are awkward on purpose (odd sizes, not multiples of a block or tile, padding, dilation,
groups, ceil_mode) and small, so a sanitizer run takes seconds. Prints one line per op.

On ``cuda`` CuPy's memory pool is turned off first: the pool carves arrays out of larger blocks, so
an access past an array's end would land in memory the pool owns and memcheck could not see it.
With one allocation per array, every byte past an array's end is outside any allocation.
"""

from __future__ import annotations

import argparse

import numpy

import gpucnn
from gpucnn.nn import functional as F
from gpucnn.ops.batchnorm import BatchNorm
from gpucnn.ops.conv2d import kernel_path, kernel_paths

CASES = {
    "conv2d": lambda x, w: F.conv2d(x, w, None, stride=(2, 1), padding="same", dilation=(1, 2), groups=2),
    "conv2d_wide": lambda x, w: F.conv2d(x, gpucnn.tensor(numpy.ones((130, 4, 3, 2), numpy.float32) / 24,
                                                           device=x.device), padding=1),
    # a bias that wants its gradient: the bias kernel
    "conv2d_bias": lambda x, w: F.conv2d(x, w, gpucnn.tensor(numpy.ones(6, numpy.float32), device=x.device,
                                                             requires_grad=True), padding=1, groups=2),
    # 3x3, stride 1, one group: the winograd paths' transforms (the weight's gradient too), with 11 x 11
    # outputs (cut edge tiles)
    "conv2d_3x3": lambda x, w: F.conv2d(x, gpucnn.tensor(numpy.ones((5, 4, 3, 3), numpy.float32) / 36,
                                                         device=x.device, requires_grad=True), padding=(0, 1)),
    # the same with an inf in the weight: the winograd paths sum their NaN outputs and weight gradients again,
    # directly
    "conv2d_3x3_nonfinite": lambda x, w: F.conv2d(
        x, gpucnn.tensor(_with_inf(numpy.ones((5, 4, 3, 3), numpy.float32) / 36), device=x.device,
                         requires_grad=True), padding=(0, 1)),
    # 16 channels: the "taps" kernels (a 1x1 to 16 channels, then 3x3 at stride 2 with its phases)
    "conv2d_taps": lambda x, w: F.conv2d(
        F.conv2d(x, gpucnn.tensor(numpy.ones((16, 4, 1, 1), numpy.float32) / 4, device=x.device)),
        gpucnn.tensor(numpy.ones((16, 16, 3, 3), numpy.float32) / 144, device=x.device), stride=2, padding=1),
    # split reductions (Conv2d.SPLIT_MIN_CHUNK): the 3x3's forward over 576 = 5 chunks (the last partial),
    # its backward-data over 128 channels x 4 taps = 4 chunks, some empty for the stride phases of fewer
    # taps; a bias on the sum
    "conv2d_split": lambda x, w: F.conv2d(
        F.conv2d(x, gpucnn.tensor(numpy.ones((64, 4, 1, 1), numpy.float32) / 4, device=x.device)),
        gpucnn.tensor(numpy.ones((128, 64, 3, 3), numpy.float32) / 576, device=x.device),
        gpucnn.tensor(numpy.ones(128, numpy.float32), device=x.device), stride=2, padding=1),
    # an inf in the weight: the tiled backward-data sums its NaN results again, exactly, in an unsplit
    # product (16 channels) and in one in splits (conv2d_split's 128)
    "conv2d_nonfinite": lambda x, w: F.conv2d(
        F.conv2d(x, gpucnn.tensor(numpy.ones((16, 4, 1, 1), numpy.float32) / 4, device=x.device)),
        gpucnn.tensor(_with_inf(numpy.ones((16, 16, 3, 3), numpy.float32) / 144), device=x.device,
                      requires_grad=True), stride=2, padding=1) + _nonfinite_split(x),
    "conv2d_stride3": lambda x, w: F.conv2d(x, w, None, stride=3, padding=(2, 0), groups=2),
    # a narrow stride-1 layer (16 input channels, 12 * 9 reduction indices): backward-data on the pixels
    # kernel, a forward of the upstream gradient with the weight flipped, its columns padded by 2 - 3 = -1
    "conv2d_narrow": lambda x, w: F.conv2d(
        F.conv2d(x, gpucnn.tensor(numpy.ones((16, 4, 1, 1), numpy.float32) / 4, device=x.device)),
        gpucnn.tensor(numpy.ones((12, 16, 3, 3), numpy.float32) / 144, device=x.device), padding=(1, 3)),
    "max_pool2d": lambda x, w: F.max_pool2d(x, 3, 2, padding=1, dilation=1, ceil_mode=True),
    "max_pool2d_dilated": lambda x, w: F.max_pool2d(x, 2, 1, dilation=2),
    "max_pool2d_dilated_ceil": lambda x, w: F.max_pool2d(x, 3, 2, padding=1, dilation=2, ceil_mode=True),
    "max_pool2d_2x2": lambda x, w: F.max_pool2d(x[:, :, :12, :10], 2),  # even sides: the float2 kernels
    "max_pool2d_2x2_pairs": lambda x, w: F.max_pool2d(x[:, :, :12, :8], 2),  # a width of 8: float4 rows
    # a detached input: forwards that keep no indices (inference), beside one that does
    "max_pool2d_no_indices": lambda x, w: F.max_pool2d(x.detach(), 3, 2, padding=1)
    + F.max_pool2d(x[:, :, :12, :10].detach(), 2).sum() + F.max_pool2d(x[:, :, :12, :8].detach(), 2).sum()
    + F.max_pool2d(x, 3, 2, padding=1),
    "avg_pool2d": lambda x, w: F.avg_pool2d(x, 3, 2, padding=1, ceil_mode=True, count_include_pad=False),
    "relu": lambda x, w: F.relu(x),
    "leaky_relu": lambda x, w: F.leaky_relu(x, 0.1),
    # views one element past a 16-byte boundary: the kernels' element-by-element path, not float4 quads
    "relu_unaligned": lambda x, w: F.relu(x.reshape(-1)[1:]) + F.leaky_relu(x.reshape(-1)[1:], 0.1),
    # training, with running statistics and an affine weight and bias; then evaluation
    "batch_norm": lambda x, w: F.batch_norm(
        F.batch_norm(x, *_running(x), w[:4, 0, 0, 0], w[:4, 1, 0, 0], training=True), *_running(x), training=False),
    # the same with each channel's 429 values shared among two blocks: the kernels that sum the shares first
    "batch_norm_shared": lambda x, w: _shared_among_blocks(CASES["batch_norm"], x, w),
    # x's 4 channels as classes of 3 x 13 x 11 spatial targets, each loss kept; then 39 x 11 rows, their mean;
    # then class weights, with class 3 ignored
    "cross_entropy": lambda x, w: F.cross_entropy(x, _classes(x, (3, 13, 11)), reduction="none", label_smoothing=0.1)
    + F.cross_entropy(x.permute(0, 2, 1, 3).reshape(39, 4 * 11), _classes(x, (39,)) * 10)
    + F.cross_entropy(x, _classes(x, (3, 13, 11)), w[:4, 0, 0, 0].detach(), ignore_index=3, label_smoothing=0.2),
}


def _classes(x, shape):
    """Class indices of ``shape`` in [0, 4), on x's device."""
    return gpucnn.tensor(numpy.arange(numpy.prod(shape)).reshape(shape) % 4, device=x.device)


def _with_inf(weight):
    """``weight`` with an inf at [1, 0, 0, 0]."""
    weight[1, 0, 0, 0] = numpy.inf
    return weight


def _nonfinite_split(x):
    """The sum of conv2d_split's layers with an inf in the 3x3 weight (inf - inf in the sum: NaN)."""
    y = F.conv2d(F.conv2d(x, gpucnn.tensor(numpy.ones((64, 4, 1, 1), numpy.float32) / 4, device=x.device)),
                 gpucnn.tensor(_with_inf(numpy.ones((128, 64, 3, 3), numpy.float32) / 576), device=x.device),
                 stride=2, padding=1)
    with numpy.errstate(invalid="ignore"):
        return y.sum()


def _shared_among_blocks(op, x, w):
    """``op(x, w)`` with batch norm's channels shared among blocks of at least 256 values."""
    saved = BatchNorm.MIN_BLOCK_VALUES
    BatchNorm.MIN_BLOCK_VALUES = 256
    try:
        return op(x, w)
    finally:
        BatchNorm.MIN_BLOCK_VALUES = saved


def _running(x):
    """Running mean and variance for x's 4 channels, on x's device."""
    return (gpucnn.tensor(numpy.zeros(4, numpy.float32), device=x.device),
            gpucnn.tensor(numpy.ones(4, numpy.float32), device=x.device))


def run(device) -> None:
    """Every case on ``device`` (a name, or a Device: tests/kernels runs it on cudasim built with
    sanitizers)."""
    rng = numpy.random.default_rng(0)
    x_data = rng.standard_normal((3, 4, 13, 11)).astype(numpy.float32)
    w_data = rng.standard_normal((6, 2, 3, 3)).astype(numpy.float32)
    target = gpucnn.device(device)
    if target.type == "cuda":
        target.xp.cuda.set_allocator(None)
    # conv2d's cases run on each of its kernel paths (the launcher's choice, each tile everywhere, Winograd)
    runs = [(name, op, path) for name, op in CASES.items()
            for path in (kernel_paths(target) if name.startswith("conv2d") else ["chosen"])]
    for name, op, path in runs:
        with kernel_path(path):
            x = gpucnn.tensor(x_data, device=device, requires_grad=True)
            w = gpucnn.tensor(w_data, device=device, requires_grad=True)
            y = op(x, w)
            y.backward(numpy.ones(y.shape, numpy.float32))
            target.synchronize()
        label = name if path == "chosen" else f"{name} ({path})"
        print(f"{label}: output {y.shape}, |dx| = {float(abs(x.grad.numpy()).sum()):.4f}")
    # the optimizers' kernels: two steps each (the first writes their state, the second reads it), over
    # three parameters in one launch, one of them a block's elements and one more
    for name, options in (("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)),
                          ("Adam", dict(lr=0.1, amsgrad=True, weight_decay=0.01)), ("Adadelta", dict(lr=1.0)),
                          ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
                          ("Adagrad", dict(lr=0.1, weight_decay=0.01)), ("Adamax", dict(lr=0.01, weight_decay=0.01)),
                          ("NAdam", dict(lr=0.01, weight_decay=0.01)), ("RAdam", dict(lr=0.01, weight_decay=0.01))):
        parameters = [gpucnn.tensor(data, device=device, requires_grad=True)
                      for data in (w_data, numpy.ones(1, numpy.float32), numpy.ones(1025, numpy.float32))]
        optimizer = getattr(gpucnn.optim, name)(parameters, **options)
        for _ in range(2):
            for parameter in parameters:
                parameter.grad = gpucnn.tensor(numpy.ones(parameter.shape, numpy.float32), device=device)
            optimizer.step()
        target.synchronize()
        print(f"{name}: |w| = {sum(float(abs(parameter.numpy()).sum()) for parameter in parameters):.4f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cudasim")
    run(parser.parse_args(argv).device)


if __name__ == "__main__":
    main()
