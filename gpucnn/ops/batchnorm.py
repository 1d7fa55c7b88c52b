"""Batch normalisation over (N, C) or (N, C, *spatial) input, per channel C.

Training mode normalises by the batch statistics and updates the running statistics in place;
evaluation mode normalises by the running statistics.

The cpu runs NumPy (``forward_cpu``/``backward_cpu``). The input-sized results go into arrays from
``_memory``, which recycles freed blocks (forward and backward on 64x16x32x32 float32 took 8 ms on
fresh pages, 3.2 ms on recycled ones, with the formulation before this one). In training, forward
writes three input-sized passes (x - mean, its per-channel scaling, the per-channel offset) and
backward four, besides the channel sums, which BLAS products read without writing: on the 2-core VM,
64x16x32x32 float32 took 0.89 ms forward and 2.3 ms forward + backward, PyTorch 1.03 and 1.65 ms. The
corrected two-pass statistics (see ``forward_cpu``) cost a third channel sum: the forward's best of six
runs went from 1.00 to 1.14 ms, forward + backward stayed at 3.59 ms, in a phase of the machine where
PyTorch took 0.99-1.33 and 2.0-2.8 ms. The input-sized passes run over pieces of whole images
(``BatchNorm.PIECE_BYTES``), so that a pass reads what the one before wrote from the cache: forward +
backward in training on a 2-core Intel Xeon VM (2 MiB of L2 a core; three process-alternating runs)
went from 3.57-3.67 to 3.11-3.15 ms on 64x16x32x32, 1.93-1.96 to 1.73-1.75 on 64x32x16x16 and 5.2-5.4
to 4.7 on 8x64x56x56, and stayed at 0.89-0.92 on 64x64x8x8 (PyTorch: 1.74 ms on the first). The
per-channel ops see each image as one row of values, with the per-channel operand repeated to an
image's row (``BatchNorm.ROW_MAX_VALUES``): a small ResNet's training step at batch 64 went from
588-598 to 621-627 images/s. They run unbuffered along their rows, or planes (``_rows.whole_rows``):
forward + backward in training on 8x144x56x56 (in planes) went from 17.8-18.4 to 12.9-13.4 ms (two runs).
Evaluation mode writes y = x * scale + (bias - mean * scale), PyTorch's inference formula, in two
passes, and x - mean for backward only where autograd records the op. In inference (no_grad) on the
2-core AMD EPYC VM, float32, median of 200 calls, against the three passes over planes before:
1x144x56x56 0.47 -> 0.17 ms, 8x144x56x56 5.5 -> 2.1 ms, 1x960x7x7 99 -> 59 us (PyTorch 0.06-0.08 ms,
0.77-0.84 ms, 30-38 us); MobileNetV2's 52 layers had taken about a fifth of its time at batch 1.

The kernel devices run ``cuda/batchnorm.cu`` on float32: one kernel for forward and one for backward,
each a block per channel, or several blocks per channel (``BatchNorm.MIN_BLOCK_VALUES``) after a
launch that sums the blocks' shares. Written with CuPy's array operations, a training layer's forward
and backward had been about ten Python-heavy launches each. In a small ResNet's training step at batch
128 on an H200, whose GPU waited on the host (the 13.6 ms step took 13.6 ms to issue), a profile of
the host gave them 0.63 and 0.38 ms per layer; with the kernels, 0.10 and 0.04 ms, and the step 6.7 ms.
The launches pack a layer's sizes and flags once (``Device.launcher``), and the statistics forward keeps
for backward are one (3, C) array: on an H100's host CuPy's launch took 11.0-14.4 us with 22
arguments (as many as the forward kernel takes) against 5.1 us from packed ones, and an allocation
4.2-4.6 us; a small ResNet's training step makes 18 allocations fewer (``python -m bench.profile host``). Not
yet timed on a GPU.
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy

from ..autograd import Function
from ..tensor import Tensor, as_tensor
from . import _memory
from ._kernels import THREADS, int32_args, kernel_array, placeholder, require_float32
from ._rows import whole_rows


class BatchNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, per channel.

    x: (N, C, *spatial). Inputs are x, then weight (C,) if ``has_weight``, then bias (C,) if
    ``has_bias``. ``running_mean``/``running_var`` are (C,) arrays (or None in training mode); in
    training mode they are updated in place:
    running = (1 - momentum) * running + momentum * batch statistic, with the unbiased batch variance.
    ``batches``: a 0-d int64 array to add 1 to (BatchNorm2d's num_batches_tracked), or None.
    """

    def __init__(self, training: bool, momentum: float, eps: float, running_mean, running_var,
                 has_weight: bool, has_bias: bool, batches=None):
        self.training, self.momentum, self.eps = training, momentum, eps
        self.running_mean, self.running_var = running_mean, running_var
        self.has_weight, self.has_bias = has_weight, has_bias
        self.batches = batches

    def forward_cpu(self, x, *params):
        if self.batches is not None:
            self.batches += 1
        weight = params[0] if self.has_weight else None
        bias = params[-1] if self.has_bias else None
        # Per-channel arrays are shaped (1, C, 1, ...) to broadcast against x.
        self.channel_shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        self.count, self.plane = values_per_channel(x.shape), math.prod(x.shape[2:])
        self.by_rows = x.shape[0] >= self.ROW_MIN_IMAGES and x.shape[1] * self.plane <= self.ROW_MAX_VALUES

        self.residual = None  # training: the mean of centered (see below)
        pieces = self._pieces(x)
        # Backward keeps x - mean (centered) and the per-channel 1 / std; x_hat is never written out.
        centered = self._empty(x) if self.training or self.records_graph else None
        x_rows, centered_rows = self._rows(x), self._rows(centered)
        if self.training:
            # errstate: an inf in a channel makes its mean inf or NaN
            with numpy.errstate(invalid="ignore", over="ignore"), self._whole_rows():
                mean = self._channel_mean(x)
                # Each (n, c) plane's sum and sum of squares of centered, taken piece by piece while
                # the piece is in the cache, then summed over the images as _channel_sum does.
                sums, squares = (numpy.empty(x.shape[:2], x.dtype) for _ in range(2))
                mean_row = self._row(mean)
                for images in pieces:
                    numpy.subtract(x_rows[images], mean_row, out=centered_rows[images])
                    piece = centered[images]
                    self._plane_sums(piece, sums[images])
                    self._plane_dots(piece, piece, squares[images])
                # The corrected two-pass algorithm (Chan, Golub and LeVeque, 1983): the mean, summed
                # and rounded in float32, is off by a little, which centered keeps as a mean of its
                # own (the residual), where x_hat and its gradient take centered's mean to be 0. Taken
                # out of the mean and variance here and out of x_hat below (per-channel terms only),
                # it reaches neither: over 200 random pairs of float32 layers, the first's outputs
                # with channel means about 10 times their spread, the first's bias gradient (0 in
                # exact arithmetic) had been off by up to 0.2 here (BLAS sums) and 5.5e-3 on cudasim
                # (Kahan sums), against float64; now 2.4e-4 and 1.8e-4, and torch's float32 1.9e-2.
                self.residual = sums.sum(axis=0).reshape(self.channel_shape) / max(self.count, 1)
                self.residual[~numpy.isfinite(self.residual)] = 0  # an inf or NaN channel stays as it was
                var = (squares.sum(axis=0).reshape(self.channel_shape) / max(self.count, 1)
                       - self.residual * self.residual)  # biased
                numpy.maximum(var, 0, out=var)  # where rounding took it below 0 (a NaN stays)
            if self.running_mean is not None and self.count > 0:  # PyTorch leaves them alone on N = 0
                self._update_running((mean + self.residual).reshape(-1), var.reshape(-1))
        else:
            mean = self.running_mean.reshape(self.channel_shape)
            var = self.running_var.reshape(self.channel_shape)
        self.centered, self.inv_std = centered, 1 / numpy.sqrt(var + x.dtype.type(self.eps))
        self.weight = None if weight is None else weight.reshape(self.channel_shape)
        scale = self._scale()
        offset = None if bias is None else bias.reshape(self.channel_shape)
        y = self._empty(x)
        y_rows, scale_row = self._rows(y), self._row(scale)
        with self._whole_rows():
            if self.training:  # y = centered * scale + offset, the residual taken out of the offset
                offset = -self.residual * scale if offset is None else offset - self.residual * scale
                offset_row = self._row(offset)
                for images in pieces:
                    piece = numpy.multiply(centered_rows[images], scale_row, out=y_rows[images])
                    piece += offset_row
            else:  # y = x * scale + (bias - mean * scale), as PyTorch's inference: two passes over x
                offset = -mean * scale if offset is None else offset - mean * scale
                mean_row, offset_row = self._row(mean), self._row(offset)
                for images in pieces:
                    if centered is not None:
                        numpy.subtract(x_rows[images], mean_row, out=centered_rows[images])
                    piece = numpy.multiply(x_rows[images], scale_row, out=y_rows[images])
                    piece += offset_row
        return y

    #: The per-channel ops see the images as rows (``_rows``, ``_row``) in batches of at least
    #: ROW_MIN_IMAGES images of at most ROW_MAX_VALUES values each.
    #: NumPy loops over a (1, C, 1, 1) operand one plane at a time: on 8x16x32x32 float32 a subtraction
    #: took 40 us and an addition in place 27 us that way, 27 and 12 us on rows. Forward and backward
    #: (median of 31, three process-alternating runs) went from 1.66-1.70 and 1.50-1.55 ms to 1.30-1.38
    #: and 1.21-1.26 ms on 64x16x32x32, and from 2.72-2.82 and 2.53-2.59 ms to 2.05-2.15 and 1.89-2.00
    #: on 32x256x14x14 (50K values an image), but from 2.40-2.51 and 2.21-2.37 ms to 2.61-2.66 and
    #: 2.88-2.91 on 8x64x56x56 (200K values an image, in planes of 3136), where an operand's row no
    #: longer stays in the cache. Each operand's row is made anew in every call, as large as an image:
    #: on one image, forward + backward took 95 against 101 us on 16x32x32 and 180 against 445 us on
    #: 256x14x14 in planes and in rows, on two 127-130 against 127-129 us and 362-374 against 330-397
    #: us, on four 224-226 against 199-214 us and 776-795 against 686-727 us (but 97 against 102-105
    #: us on 64x8x8, even at eight images 133-136 against 133-138 us).
    ROW_MAX_VALUES = 1 << 16
    ROW_MIN_IMAGES = 4

    def _rows(self, values):
        """values (N, C, *spatial) as (N, C * prod(spatial)), an image a row (a view where values is
        contiguous, else a copy), where ``by_rows``; else values itself (None stays None)."""
        if not self.by_rows or values is None:
            return values
        return values.reshape(values.shape[0], math.prod(values.shape[1:]))

    def _row(self, per_channel):
        """The operand of a per-channel op on ``_rows``: the C values of ``per_channel`` (any shape) as
        one image's row (1, C * prod(spatial)) where ``by_rows``, else shaped (1, C, 1, ...)."""
        if not self.by_rows:
            return per_channel.reshape(self.channel_shape)
        return numpy.repeat(per_channel.reshape(-1), self.plane).reshape(1, -1)

    def _whole_rows(self):
        """``whole_rows`` for the per-channel ops' rows: an image where ``by_rows``, else a plane."""
        return whole_rows(self.plane * (self.channel_shape[1] if self.by_rows else 1))

    def _scale(self):
        """d(output) / d(centered), per channel: inv_std, times the weight if there is one."""
        return self.inv_std if self.weight is None else self.inv_std * self.weight

    @staticmethod
    def _empty(like):
        """An uninitialised C-contiguous array of ``like``'s shape and dtype, from ``_memory``."""
        return _memory.empty(like.shape, like.dtype)

    #: The input-sized passes run piece by piece, a piece being whole images of about PIECE_BYTES (one
    #: image at least), so that what one pass writes is still in the cache for the next.
    PIECE_BYTES = 1 << 19

    def _pieces(self, x) -> list:
        """Slices of x's images (its first axis), each about PIECE_BYTES, together covering them all."""
        N = x.shape[0]
        image_bytes = x[:1].nbytes
        step = max(1, self.PIECE_BYTES // max(image_bytes, 1))
        return [slice(first, min(first + step, N)) for first in range(0, N, step)]

    def _channel_sum(self, values):
        """Sum over the N and spatial axes, (C,). A matrix-vector product with ones over each (n, c)
        plane, then a sum over N: on 64x16x32x32 float32 0.03 ms, where ``sum(axis=(0, 2, 3))``
        takes 0.17 ms (NumPy reduces over the outer axes element by element)."""
        sums = numpy.empty(values.shape[:2], values.dtype)
        self._plane_sums(values, sums)
        return sums.sum(axis=0)

    @staticmethod
    def _plane_sums(values, out) -> None:
        """out[n, c] = the sum of plane (n, c) of values (n, C, *spatial)."""
        N, C = values.shape[:2]
        plane = math.prod(values.shape[2:])
        numpy.matmul(values.reshape(N, C, plane), numpy.ones(plane, dtype=values.dtype), out=out)

    @staticmethod
    def _plane_dots(a, b, out) -> None:
        """out[n, c] = the sum of a * b over plane (n, c): one dot product per plane (a stack of 1 x 1
        matrix products) without writing a * b; on 64x16x32x32 float32 0.08 ms, where the product and
        ``_channel_sum`` take 0.17 ms."""
        N, C = a.shape[:2]
        plane = math.prod(a.shape[2:])
        numpy.matmul(a.reshape(N * C, 1, plane), b.reshape(N * C, plane, 1), out=out.reshape(N * C, 1, 1))

    def _channel_mean(self, values):
        """Mean over the N and spatial axes, (1, C, 1, ...); 0 rather than NaN for an empty batch."""
        return self._channel_sum(values).reshape(self.channel_shape) / max(self.count, 1)

    def _update_running(self, mean, var) -> None:
        # PyTorch stores the unbiased variance (divided by count - 1); count > 1 is checked up front.
        momentum = self.momentum
        unbiased = var * (self.count / (self.count - 1))
        self.running_mean[...] = (1 - momentum) * self.running_mean + momentum * mean
        self.running_var[...] = (1 - momentum) * self.running_var + momentum * unbiased

    def backward_cpu(self, grad_output):
        # With the channel sums s1 = sum(dy) and s2 = sum(dy * x_hat) (the bias and weight gradients)
        # and scale = weight * inv_std, training mode's mean and var depend on x:
        #     dx = scale * (dy - s1 / count - x_hat * s2 / count) = scale * (dy - (centered * k + m))
        # with per-channel k = inv_std * s2 / count and m = (s1 - residual * inv_std * s2) / count,
        # since x_hat = (centered - residual) * inv_std: four passes over x's size.
        needs = self.needs_input_grad
        train_x = needs[0] and self.training
        need_weight = self.has_weight and needs[1]
        need_sum = self.has_bias and needs[-1] or train_x or need_weight and self.residual is not None
        need_dot = need_weight or train_x
        pieces = self._pieces(grad_output)
        # Each (n, c) plane's sum of dy and of dy * centered, piece by piece (see forward_cpu).
        sums, dots = (numpy.empty(grad_output.shape[:2], grad_output.dtype) for _ in range(2))
        for images in pieces:
            piece = grad_output[images]
            if need_sum:
                self._plane_sums(piece, sums[images])
            if need_dot:
                self._plane_dots(piece, self.centered[images], dots[images])
        sum_grad = sums.sum(axis=0) if need_sum else None
        sum_grad_x_hat, grad_x = None, None
        if need_dot:
            sum_grad_centered = dots.sum(axis=0)
            if self.residual is not None:
                sum_grad_centered -= self.residual.reshape(-1) * sum_grad
            sum_grad_x_hat = sum_grad_centered * self.inv_std.reshape(-1)
        if needs[0]:
            grad_x = self._empty(grad_output)
            scale = self._scale()
            grad_rows, grad_x_rows, scale_row = self._rows(grad_output), self._rows(grad_x), self._row(scale)
            with self._whole_rows():
                if self.training:
                    count = max(self.count, 1)
                    k = self.inv_std * (sum_grad_x_hat.reshape(self.channel_shape) / count)
                    shift = (sum_grad.reshape(self.channel_shape) - self.residual * self.inv_std
                             * sum_grad_x_hat.reshape(self.channel_shape)) / count
                    centered_rows, k_row, shift_row = self._rows(self.centered), self._row(k), self._row(shift)
                    for images in pieces:
                        piece = numpy.multiply(centered_rows[images], k_row, out=grad_x_rows[images])
                        piece += shift_row
                        numpy.subtract(grad_rows[images], piece, out=piece)
                        piece *= scale_row
                else:
                    for images in pieces:
                        numpy.multiply(grad_rows[images], scale_row, out=grad_x_rows[images])
        grads = [grad_x]
        if self.has_weight:
            grads.append(sum_grad_x_hat if needs[1] else None)
        if self.has_bias:
            grads.append(sum_grad if needs[-1] else None)
        return tuple(grads)

    #: On the kernel devices a channel's values are shared among blocks of at least MIN_BLOCK_VALUES
    #: values each, until the launch makes about TARGET_BLOCKS blocks (at most THREADS a channel). With
    #: a block a channel, ncu on an H200 put the small ResNet's batch-norm kernels at batch 128 at 39 %
    #: of its training step's device time: 185-208 us a call on its 16-channel layers (16 blocks for 132
    #: multiprocessors; a block moved its channel's 2 MiB at about 11 GB/s) and 15-16 us on its
    #: 64-channel ones (8192 values a channel). More than one block a channel costs a launch before each
    #: kernel, which sums the blocks' shares (cuda/batchnorm.cu): about 15 us of host work, as long as
    #: a block a channel took on 8192 values. On an H100 at batch 128, against a block a channel
    #: (device time): 0.12-0.15 of the time on the 16-channel 32x32 layers, 0.43-0.52 on 32 channels
    #: at 16x16.
    TARGET_BLOCKS = 512
    MIN_BLOCK_VALUES = 8192

    @classmethod
    def _shares(cls, channels: int, count: int) -> tuple[int, int]:
        """(blocks a channel, values a block) for ``channels`` channels of ``count`` values each; every
        block's share but the last is whole blocks of THREADS values."""
        blocks = min(-(-count // cls.MIN_BLOCK_VALUES), -(-cls.TARGET_BLOCKS // max(channels, 1)), THREADS)
        if blocks <= 1:
            return 1, count
        chunk = -(-count // blocks)
        chunk = -(-chunk // THREADS) * THREADS
        return -(-count // chunk), chunk

    def forward_gpu(self, x, *params):
        xp = self.xp
        self.x = kernel_array(xp, x)
        N, C = x.shape[:2]
        S = math.prod(x.shape[2:])
        self.count = N * S
        self.blocks, chunk = self._shares(C, self.count)
        # the grid and the N, C, S, chunk arguments of every launch, backward's too
        self.grid, self.sizes = (C, self.blocks), _sizes(N, C, S, chunk)
        none = placeholder(self.device)
        self.weight = kernel_array(xp, params[0]) if self.has_weight else none
        bias = kernel_array(xp, params[-1]) if self.has_bias else none
        self.stats = xp.empty((3, C), dtype=xp.float32)  # the mean, residual and inv_std, for backward
        running = (self.running_mean, self.running_var) if self.running_mean is not None else (none, none)
        running_arrays = [kernel_array(xp, array) for array in running]  # read, and in training updated
        y = xp.empty(x.shape, dtype=xp.float32)
        momentum = self.momentum
        # the kernel counts the batch where it runs, on a counter it can take
        count_batch = bool(C) and _kernel_counter(xp, self.batches)
        if self.batches is not None and not count_batch:
            self.batches += 1
        flags = (self.training, self.has_weight, self.has_bias, self.running_mean is not None and self.count > 0,
                 count_batch)
        unbias = self.count / (self.count - 1) if self.count > 1 else 1.0
        if C:
            moments = none
            if self.training and self.blocks > 1:
                moments = xp.empty((C, self.blocks, 3), dtype=xp.float32)
                self.device.launcher("batchnorm", "batchnorm_moments", self.sizes)(self.grid, (THREADS,),
                                                                                   (self.x, moments))
            fixed = _forward_arguments(self.sizes, flags, momentum, unbias, self.eps)
            self.device.launcher("batchnorm", "batchnorm_forward", fixed)(
                self.grid, (THREADS,),
                (self.x, moments, self.weight, bias, y, self.stats, *running_arrays,
                 self.batches if count_batch else placeholder(self.device, numpy.int64)))
        for given, used in zip(running, running_arrays):
            if used is not given:  # a copy was updated: write it back
                given[...] = used
        return y

    def backward_gpu(self, grad_output):
        xp, needs = self.xp, self.needs_input_grad
        grad = kernel_array(xp, grad_output)
        C = grad.shape[1]
        need_x, need_weight, need_bias = needs[0], self.has_weight and needs[1], self.has_bias and needs[-1]
        none = placeholder(self.device)
        grad_x = xp.empty(grad.shape, dtype=xp.float32) if need_x else none
        grad_weight = xp.empty(C, dtype=xp.float32) if need_weight else none
        grad_bias = xp.empty(C, dtype=xp.float32) if need_bias else none
        if C:
            sums = none
            if self.blocks > 1 and (need_weight or need_bias or need_x and self.training):
                sums = xp.empty((C, self.blocks, 2), dtype=xp.float32)
                self.device.launcher("batchnorm", "batchnorm_backward_sums", self.sizes)(
                    self.grid, (THREADS,), (self.x, grad, self.stats, sums))
            fixed = _backward_arguments(self.sizes, (self.training, self.has_weight, need_x, need_weight, need_bias))
            self.device.launcher("batchnorm", "batchnorm_backward", fixed)(
                self.grid, (THREADS,),
                (self.x, grad, sums, self.stats, self.weight, grad_x, grad_weight, grad_bias))
        grads = [grad_x if need_x else None]
        if self.has_weight:
            grads.append(grad_weight if need_weight else None)
        if self.has_bias:
            grads.append(grad_bias if need_bias else None)
        return tuple(grads)


# The kernels' arguments after their arrays, cached: the same values give the same tuple, by which
# Device.launcher knows the launch whose packed arguments it keeps (a layer's launches repeat them).
@functools.lru_cache(maxsize=1024)
def _sizes(N: int, C: int, S: int, chunk: int) -> tuple:
    """(N, C, S, chunk), which every batchnorm kernel takes, as its parameters' types."""
    return (*int32_args((N, C)), numpy.int64(S), numpy.int64(chunk))


@functools.lru_cache(maxsize=1024)
def _forward_arguments(sizes: tuple, flags: tuple, momentum: float, unbias: float, eps: float) -> tuple:
    """batchnorm_forward's: the sizes, the flags, then momentum, 1 - momentum, unbias and eps as float32."""
    return sizes + int32_args(flags) + (numpy.float32(momentum), numpy.float32(1 - momentum), numpy.float32(unbias),
                                        numpy.float32(eps))


@functools.lru_cache(maxsize=1024)
def _backward_arguments(sizes: tuple, flags: tuple) -> tuple:
    """batchnorm_backward's: the sizes and the flags."""
    return sizes + int32_args(flags)


def _kernel_counter(xp, batches) -> bool:
    """Whether batchnorm_forward can count batches on ``batches`` itself: a C-contiguous int64 array."""
    return isinstance(batches, xp.ndarray) and batches.dtype == numpy.int64 and batches.flags.c_contiguous


def values_per_channel(shape: tuple) -> int:
    """N * prod(spatial) for an (N, C, *spatial) shape."""
    return math.prod(shape[:1] + shape[2:])


def _real(value, name: str) -> float:
    if type(value) is float:  # the usual case, without the ABC check
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"batch_norm: {name} must be a real number, got {value!r}")
    return float(value)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-05) -> Tensor:
    """Batch normalisation with PyTorch's semantics.

    Args:
        input: (N, C) or (N, C, *spatial), floating point.
        running_mean, running_var: (C,) Tensors (or arrays) of the input's dtype, or both None (then
            training mode is required). Updated in place in training mode, through their ``.data``.
        weight, bias: (C,) or None.
        training: normalise by the batch statistics (biased variance) and update the running ones.
        momentum: weight of the batch statistic in the running update, in [0, 1].
        eps: added to the variance; > 0 in training mode, >= 0 in evaluation mode.

    Returns:
        Same shape and dtype as input.
    """
    return counted_batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def counted_batch_norm(input, running_mean, running_var, weight=None, bias=None, training: bool = False,
                       momentum: float = 0.1, eps: float = 1e-05, batches=None) -> Tensor:
    """``batch_norm``, which also adds 1 to ``batches`` (a 0-d int64 array on the input's device, or
    None) once the arguments pass their checks: BatchNorm2d's count of the batches it has normalised.
    On the kernel devices the forward kernel counts it, where the array is C-contiguous int64."""
    x = as_tensor(input, "batch_norm: input")
    if x.dtype.kind != "f":
        raise TypeError(f"batch_norm: input must be a floating-point tensor, got dtype {x.dtype} (shape {x.shape})")
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C) or (N, C, *spatial), got shape {x.shape}")
    require_float32("batch_norm", x.dtype, x.device, x.shape)
    device, dtype, channels = x.device, x.dtype, x.shape[1]
    named = {}
    for name, value in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                        ("bias", bias)):
        if value is None:
            continue
        if isinstance(value, Tensor):  # the usual case: no message to format
            tensor = value
        else:
            tensor = as_tensor(value, f"batch_norm: {name}", device)
            if training and name.startswith("running") and tensor.data is not value:
                # a copy was made (a NumPy array for a GPU input, a list): the update would never reach value
                raise TypeError(
                    f"batch_norm: training updates {name} in place, which cannot reach the given "
                    f"{type(value).__name__} (input on {device}, shape {x.shape}); pass a Tensor on {device} "
                    f"or an array of that device"
                )
        if tensor.device is not device and tensor.device != device:
            raise ValueError(f"batch_norm: {name} is on {tensor.device} but input is on {device}")
        if tensor.dtype != dtype:
            raise TypeError(f"batch_norm: {name} has dtype {tensor.dtype} but input has dtype {dtype}")
        if tensor.shape != (channels,):
            raise ValueError(
                f"batch_norm: {name} must have shape (C,) = ({channels},) for input shape {x.shape}, "
                f"got shape {tensor.shape}"
            )
        named[name] = tensor
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: running_mean and running_var must both be None or both be given")
    if not training and running_mean is None:
        raise ValueError("batch_norm: running_mean and running_var are required in evaluation mode (training=False)")
    momentum, eps = _real(momentum, "momentum"), _real(eps, "eps")
    # PyTorch accepts any momentum, but outside [0, 1] the running variance can turn negative.
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"batch_norm: momentum must be in [0, 1], got {momentum!r}")
    if not (eps > 0 if training else eps >= 0):
        requirement = "positive in training mode" if training else "non-negative"
        raise ValueError(f"batch_norm: eps must be {requirement}, got {eps!r}")
    if training and values_per_channel(x.shape) == 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input shape {x.shape}")

    stats = [named[name].data if name in named else None for name in ("running_mean", "running_var")]
    params = [named[name] for name in ("weight", "bias") if name in named]
    return BatchNorm(bool(training), momentum, eps, *stats, "weight" in named, "bias" in named,
                     batches).apply(x, *params)
