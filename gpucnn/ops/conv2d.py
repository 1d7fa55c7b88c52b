"""conv2d: 2-D convolution (cross-correlation, as in PyTorch) with groups, stride, padding, dilation.

    y[n, k, p, q] = bias[k] + sum over c in group(k), r, s of
                    weight[k, c, r, s] * x_padded[n, c, p*stride_h + r*dilation_h, q*stride_w + s*dilation_w]

Shapes: input x (N, C, H, W), weight (K, C/groups, R, S), bias (K,), output y (N, K, P, Q); the
padded input is (N, C, Hp, Wp).

The CPU path is GEMM-shaped. im2col copies the padded input, through one strided view, into
``cols`` laid out (C, R, S, N, P, Q), i.e. per group a (C/G*R*S, N*P*Q) matrix. Then

    forward          y     (G, K/G, N*P*Q)   = weight (G, K/G, C/G*R*S) @ cols (G, C/G*R*S, N*P*Q)
    backward-filter  dW^T  (G, C/G*R*S, K/G) = cols @ dy^T, dy (G, K/G, N*P*Q)
    backward-data    dcols (G, C/G*R*S, N*P*Q) = weight^T @ dy, then col2im adds each of the R*S
                     kernel taps back into the padded input gradient, which is cropped

Each is one BLAS call per group over the whole batch (over each chunk of images of a batch whose
columns are large, see ``Conv2d.SPLIT_BYTES``), which reads the transposed operands (dy^T,
weight^T) in place: the backward-filter contraction over N and P*Q needs no copy of cols (and as
cols @ dy^T it runs up to twice as fast as dy @ cols^T when K is small; a large weight's gradient is
dy @ cols^T, already in the weight's layout, see ``TRANSPOSED_FILTER_MAX``). The price is the
(K, N, P*Q) <-> (N, K, P*Q) transposes of the output and its gradient, each the size of the output
(cols is C*R*S/K times larger). The im2col buffer is kept from forward for backward-filter (in
chunks, backward rebuilds each chunk's columns from the saved input), then overwritten by dcols.
It, the outputs and the large temporaries come from ``_memory``, which reuses freed blocks: fresh
pages would cost a page fault each, 20-30 % of a step of the ConvNetJS layers.

NumPy adds strided arrays several times slower than contiguous ones, and col2im's adds are strided
(runs of Q elements). With stride 1 backward-data therefore works on "wide" rows: dy is padded with
zero columns to the padded width Wp, so dcols rows hold N*P*Wp values, and the taps of one kernel
row r, each a shift by s*dw of one such contiguous row per channel, are summed with contiguous adds;
only the R row sums are added into the padded gradient with strided adds. A shift carries the zero
columns q >= Q over a row's end into the next row's start, adding nothing; a weight holding inf or
NaN would make those columns NaN (inf * 0), so it takes the plain path. With stride 2 the padded
gradient is kept as its four stride-2 phases, where the taps of one kernel row and column parity are
again contiguous shifts of widened rows (``_col2im_phases``, ``PHASES_MIN_VALUES``).

Stride-1 layers with few output channels (3x3 ones with enough input channels), in batches of enough
images ("blocked", ``BLOCKED_CPU_RULE``), take the cpu's products on 2x2 blocks of output pixels
instead: a block's column is its (R+1) x (S+1) input window, and a (4 K, C (R+1) (S+1)) weight, the
kernel at its 4 offsets with zeros around, gives its 4 K outputs. More multiply-adds, but a quarter
as many, shorter columns and 4 times the rows of a skinny weight. Those columns hold the images last,
so that they copy from the input's stride-2 phases in long contiguous runs (``_gather_blocks``).

A batch of large enough layers splits into parts of consecutive images, one a core, each convolved
by the steps above on its own thread with BLAS on one thread (``Conv2d._cpu_parts``,
``_parallel.single_threaded_blas``): the copies and adds between the products then run on every core
too, where NumPy runs each on one. The parts write their slices of the output and input gradient;
their weight and bias gradients are added up in order, so results are the same on every run.

The kernel devices (cuda, cudasim) run ``cuda/conv2d.cu`` on float32 (``forward_gpu``/``backward_gpu``):
the same three products as implicit GEMMs that gather the im2col entries while loading tiles (no
buffer), backward-data by stride phases (each input pixel's phase is read through its own taps
only: a quarter of the multiply-adds for 3x3 at stride 2), and a per-channel reduction for the bias
gradient. A product with too few tiles to fill the GPU splits its reduction (backward-filter's over
N*P*Q) into partial sums that a second kernel adds in a fixed order (``SPLIT_TARGET_BLOCKS``). No
float atomics: results are reproducible. Where 16 divides the channels that forward
(or backward-data) reduces over, it runs tap by tap over a transposed copy of the weight
(``TAP_STEP_CHANNELS``), which moves the im2col index arithmetic out of the per-element loads.
Large 3x3 stride-1 layers run Winograd's F(4x4, 3x3) instead (``WINOGRAD_GPU_TILE``,
``cuda/winograd.cu``): its transforms, and its 36 products as a 1x1 convolution of 36 groups on the
same GEMM kernels; backward-data is the same forward on the upstream gradient with the flipped weight.
The kernel paths "winograd2" and "winograd4" take F(2x2, 3x3) or F(4x4, 3x3) on every such layer.

3x3 and 5x5 stride-1 layers with enough channels and output tiles run Winograd's F(4x4, 3x3) or
F(2x2, 5x5) on the cpu too (``winograd.py``, ``WINOGRAD_CPU_MIN_CHANNELS``,
``WINOGRAD_CPU_MIN_TILES``), its transforms as BLAS products. F(2x2, 3x3) with its transforms as
whole-array NumPy adds was tried first and was slower than im2col where it mattered: forward +
backward of 32x64x32x32 -> 64 took 82-89 ms against im2col's 73-74 ms on the 2-core VM; F(4x4, 3x3)
as built takes 53-54 ms there.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from typing import NamedTuple

import numpy
from numpy.lib.stride_tricks import as_strided

from ..autograd import Function
from ..tensor import Tensor, as_tensor
from . import _kernels, _memory, _parallel, _shapes, winograd
from ._parallel import blas_threads, run_chunked, single_threaded_blas, usable_cores


def _view(buffer, shape: tuple, dtype):
    """The head of a flat uint8 ``buffer`` as a C-contiguous array of ``shape`` and ``dtype``."""
    dtype = numpy.dtype(dtype)
    return buffer[: math.prod(shape) * dtype.itemsize].view(dtype).reshape(shape)


class _Product(NamedTuple):
    """One launch of a GEMM kernel of cuda/conv2d.cu: its name and grid, the number of splits of its
    reduction, its int arguments after its arrays (the geometry, then the chunk of each split), and
    whether it reads the weight transposed (the taps kernels' layout)."""

    name: str
    grid: tuple
    splits: int
    arguments: tuple
    transposed: bool


_PLANS = {}  # Conv2d._plan's
_GATHER_CHANNELS = 4  # channels of a gather item in cuda/conv2d.cu (GATHER_CHANNELS)
_PIXELS_CHANNELS = 16  # output channels of a conv2d_forward_pixels thread (conv2d.cu's PIXELS_CHANNELS)


class Conv2d(Function):
    """The conv2d op, on explicit (top, bottom, left, right) pads: asymmetric padding is native.

    Args:
        stride, dilation: (height, width) pairs, each >= 1.
        pads: (top, bottom, left, right), each >= 0.
        groups: splits C and K into ``groups`` independent convolutions.
    """

    def __init__(self, stride: tuple[int, int], pads: tuple[int, int, int, int], dilation: tuple[int, int],
                 groups: int):
        self.stride, self.pads, self.dilation, self.groups = tuple(stride), tuple(pads), tuple(dilation), groups
        self.x = self.workspace = self.winograd = self.parts = None
        self.blocked = False

    #: A batch whose im2col columns (with stride 1, backward's wide gradient columns) take more than
    #: SPLIT_BYTES goes in chunks of images of about CHUNK_BYTES of columns each, and backward rebuilds
    #: each chunk's columns from the saved input instead of keeping the whole batch's from forward.
    #: This bounds the memory a layer holds between forward and backward (VGG-16's first layers at
    #: batch 32 would keep 3.7 GB of columns each) at some cost in time. Measured on the 2-core VM with
    #: 32 MiB of L3 this was written on, a step of 3x3 convolutions on 128x64x32x32 (320 MiB of
    #: columns) took 303-312 ms in one go and 322-341 ms in chunks of 64 MiB. Smaller chunks were not
    #: reliably faster: on 32x64x32x32 chunks of 8 MiB took 65-72 ms where one go took 74-81 ms, but
    #: 120-146 ms in about one process in five, from one process to the next, for reasons not found.
    #: Winograd's transformed input likewise (``_forward_winograd_chunks``): past SPLIT_BYTES it goes
    #: in chunks of about CHUNK_BYTES, and backward transforms each chunk's input again. VGG-16's
    #: 64-channel 224x224 layer at batch 32 (in two parts of 16 images, 462 MB each) had taken im2col
    #: image by image: forward + backward (the median of 3) took 3.76-3.79 s, in Winograd's chunks
    #: 3.40-3.44 s; its 128-channel 112x112 layer at batch 64 4.59-4.83 s, in chunks 3.79-3.80 s.
    SPLIT_BYTES = 256 << 20
    CHUNK_BYTES = 64 << 20

    def forward_cpu(self, x, weight, bias=None):
        """x: (N, C, H, W), weight: (K, C/G, R, S), bias: (K,) or None -> y: (N, K, P, Q)."""
        N, K = x.shape[0], weight.shape[0]
        P, Q = self._output_hw(x.shape, weight.shape)
        y = _memory.empty((N, K, P, Q), x.dtype)
        parts = self._cpu_parts(x, weight, P, Q)
        if parts == 1:
            self._forward_images(x, weight, bias, y, N, self._winograd_filter(x, weight, P, Q, N))
            return y
        self.x_shape, self.weight, self.has_bias = x.shape, weight, bias is not None
        self.parts = [(N * index // parts, N * (index + 1) // parts,
                       Conv2d(self.stride, self.pads, self.dilation, self.groups)) for index in range(parts)]

        def work(first, last):
            for start, stop, part in self.parts[first:last]:
                part._forward_images(x[start:stop], weight, bias, y[start:stop], N, transformed)

        with single_threaded_blas():
            transformed = self._winograd_filter(x[: -(-N // parts)], weight, P, Q, N)
            run_chunked(work, parts, 1)
        return y

    def _forward_images(self, x, weight, bias, y, batch: int, transformed):
        """y (n, K, P, Q) = the convolution of the n images of x (all of them, or one part of a batch of
        ``batch`` images: the paths are chosen for the batch), saving what backward needs.
        ``transformed``: the weight's Winograd transform where the layer takes Winograd
        (``_winograd_filter``), else None; the images take it where they are finite."""
        N, C, H, W = x.shape
        K, group_channels, R, S = weight.shape
        _, _, left, right = self.pads
        P, Q = y.shape[2:]
        self.x_shape, self.weight, self.has_bias = x.shape, weight, bias is not None
        # Per image: room for cols (C*R*S, P*Q) and for backward's dcols, whose rows are widened to Wp
        # with stride 1 and by (S-1)//2 with stride 2.
        row = {(1, 1): W + left + right, (2, 2): Q + (S - 1) // 2}.get(self.stride, Q)
        image_bytes = C * R * S * P * row * x.dtype.itemsize
        self.chunk = max(1, N if N * image_bytes <= self.SPLIT_BYTES else min(N, self.CHUNK_BYTES // image_bytes))
        self.workspace_bytes = self.chunk * image_bytes
        if transformed is not None and _all_finite(x):
            self.x = x  # backward's im2col, for a non-finite upstream gradient, rebuilds its columns from it
            self._forward_winograd_chunks(x, transformed, bias, y)
            return
        self.blocked = self._blocked_shape(weight.shape, P, Q, batch) and _all_finite(x)
        if self.blocked:  # room for its columns (and backward's), (C (R+1) (S+1), P2 Q2 n), too
            P2, Q2 = _halves(P, Q)
            blocked_bytes = self.chunk * C * (R + 1) * (S + 1) * P2 * Q2 * x.dtype.itemsize
            self.workspace_bytes = max(self.workspace_bytes, blocked_bytes)
        workspace = _memory.empty(self.workspace_bytes, numpy.uint8)
        if self.blocked:
            self._forward_blocked(x, weight, bias, workspace, y)
        else:
            self._forward_columns(x, weight, bias, workspace, y)
        # In one chunk, the columns are all the images': backward-filter reads them as they are. In
        # several, backward rebuilds them from the input.
        if self.chunk >= N:
            self.workspace = workspace
        else:
            self.x = x

    def _forward_columns(self, x, weight, bias, workspace, y):
        """y = weight @ cols, one product per group over each chunk of images."""
        N, K, P, Q = y.shape
        groups, group_rows = self.groups, math.prod(weight.shape[1:])
        weight_g = weight.reshape(groups, K // groups, group_rows)
        y_knpq = _memory.empty(K * self.chunk * P * Q * x.dtype.itemsize, numpy.uint8) if self.chunk > 1 else None
        for start, stop in self._chunks(N):
            cols = self._im2col(x[start:stop], P, Q, workspace)
            columns = (stop - start) * P * Q
            # One image's (K, 1, P*Q) is its (1, K, P*Q): the product writes into y itself.
            y_chunk = y[start:stop] if stop - start == 1 else _view(y_knpq, (K, stop - start, P, Q), x.dtype)
            _parallel.matmul(weight_g, cols.reshape(groups, group_rows, columns),
                             out=y_chunk.reshape(groups, K // groups, columns))
            if bias is not None:
                rows = y_chunk.reshape(K, columns)
                numpy.add(rows, bias.reshape(K, 1), out=rows)  # contiguous rows: faster than adding it to y
            if stop - start > 1:
                numpy.copyto(y[start:stop], y_chunk.transpose(1, 0, 2, 3))

    #: Stride-1 layers (dilation 1, one group) with few output channels take their products on 2x2
    #: blocks of output pixels ("blocked") where the input is finite. A block's column holds its
    #: (R+1) x (S+1) input window (im2col with an (R+1) x (S+1) kernel at stride 2), and its 4 K
    #: outputs come from one (4 K, C (R+1) (S+1)) weight that holds the kernel at its 4 offsets, zeros
    #: around it. That costs (R+1)(S+1) / (R S) times the multiply-adds (1.78 for 3x3, 1.44 for 5x5),
    #: but the columns shrink 4 R S / ((R+1)(S+1)) times (2.8 for 5x5) and a skinny (K, C R S) weight
    #: becomes one of 4 K rows, which BLAS runs far faster. The columns hold the images last, (C, R+1,
    #: S+1, P/2, Q/2, n), so that im2col copies runs of Q/2 * n values from the input's stride-2 phases
    #: (``_gather_blocks``); backward-data adds the blocks' columns into those phases likewise
    #: (``_col2im_blocked``). The zeros multiply every input of a block's window, so an inf or NaN
    #: there would spoil outputs that do not read it: non-finite input takes the plain columns;
    #: backward-data likewise takes the wide path for a non-finite upstream gradient (and the plain
    #: one for a non-finite weight).
    #: BLOCKED_CPU_RULE: (most extra multiply-adds, most output channels, fewest images, fewest input
    #: channels) rules, one of which a layer must meet. Measured on the 2-core VM, batch 32 unless
    #: said, forward + backward against the plain columns:
    #: - 5x5: 0.62 of its time on ConvNetJS's conv2, 0.65 on conv3, 0.95 on conv1 and 0.77 on the
    #:   lecture's layer (3 input channels, where the products gain least); 0.68-0.78 with 24-32 output
    #:   channels, 0.89 with 48, 1.00 with 64; 0.86-0.88 at batches 4 and 8 (conv2's shape), but
    #:   1.06-1.57 on one or two images (0.95 on one 224x224 image);
    #: - 7x7: 0.68 with 32 output channels, 0.85 with 64;
    #: - 3x3, 16 output channels (those with 16 input channels or more now take Winograd, see
    #:   WINOGRAD_CPU_NARROW_CHANNELS): 0.82-1.01 on 16 input channels at batch 32 and 64, 1.02 on 56x56,
    #:   but 1.16-1.22 on 3 input channels and 1.06-1.58 at batches 1 to 16; a small ResNet training
    #:   step (its 3x3 stem and two 16-channel layers, batch 64) took 107-114 ms so, 115-117 without;
    #:   measured again later (median of 31, three process-alternating runs, batch 64 unless said):
    #:   1.08-1.16 on the small ResNet's 3->16 stem, 1.03-1.18 at batch 32 and 1.14-1.18 at 128,
    #:   1.08-1.18 on 8->16, 1.01-1.07 on 12->16, 1.00-1.08 on 3->8, 0.89-1.01 on 8->8, the forward
    #:   alone 1.17-2.01 on all of these; but 0.80-0.87 on 16->8: so at least 16 input channels;
    #: - 3x3 with 24 and 32 output channels 1.01-1.10; (before the images-last columns) 4x4 with 32
    #:   output channels 1.36, 2x2 with 8 and 16 1.31-1.46.
    #: Its extra NumPy calls cost about 70 us: layers of under BLOCKED_CPU_MIN_MACS multiply-adds keep
    #: the plain columns (the lecture's 7x7 input with a 3x3 filter, 7,200 of them, took 0.21 ms
    #: blocked against 0.14 ms; ConvNetJS conv3, the smallest layer measured faster, has 20 million).
    BLOCKED_CPU_RULE = ((1.5, 48, 4, 1), (1.8, 16, 32, 16))
    BLOCKED_CPU_MIN_MACS = 1 << 22

    def _blocked_shape(self, weight_shape: tuple, P: int, Q: int, batch: int) -> bool:
        """Whether a batch of ``batch`` images takes the 2x2-block products (those of its images that are
        finite)."""
        K, C, R, S = weight_shape
        extra = (R + 1) * (S + 1) / (R * S)
        return (self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1
                and any(extra <= most_extra and K <= most_kernels and batch >= fewest_images and C >= fewest_channels
                        for most_extra, most_kernels, fewest_images, fewest_channels in self.BLOCKED_CPU_RULE)
                and batch * P * Q * K * C * R * S >= self.BLOCKED_CPU_MIN_MACS)

    def _forward_blocked(self, x, weight, bias, workspace, y):
        """y from the 2x2-block products (see BLOCKED_CPU_RULE)."""
        N, K, P, Q = y.shape
        (P2, Q2), taps = _halves(P, Q), weight.shape[1] * (weight.shape[2] + 1) * (weight.shape[3] + 1)
        blocked_weight = _blocked_weight(weight)
        for start, stop in self._chunks(N):
            columns = P2 * Q2 * (stop - start)
            cols = self._im2col(x[start:stop], P, Q, workspace).reshape(taps, columns)
            y_blocks = _parallel.matmul(blocked_weight, cols, out=_memory.empty((4 * K, columns), x.dtype))
            if bias is not None:
                rows = y_blocks.reshape(4, K, columns)
                numpy.add(rows, bias.reshape(K, 1), out=rows)
            y_blocks = y_blocks.reshape(2, 2, K, P2, Q2, stop - start)
            for i, j in _BLOCK_OFFSETS:
                numpy.copyto(y[start:stop, :, i::2, j::2],
                             y_blocks[i, j, :, : (P - i + 1) // 2, : (Q - j + 1) // 2].transpose(3, 0, 1, 2))

    #: 3x3 and 5x5 convolutions at stride 1 (dilation 1, one group) with at least
    #: WINOGRAD_CPU_MIN_CHANNELS[kernel] input and output channels and WINOGRAD_CPU_MIN_TILES output
    #: tiles take Winograd's F(4x4, 3x3) or F(2x2, 5x5) (``winograd.py``) on finite data. Measured on
    #: the 2-core VM, forward + backward against im2col:
    #: - 3x3: 0.61-0.73 of its time on CIFAR ResNet-18's layers (batch 32), 0.88-0.93 on batch-1 64
    #:   and 128 channels (196 and 49 tiles), 0.80 at 32 channels; but 1.6-1.7 times im2col's with 16
    #:   and 4 tiles (the weight's transforms, 36 K C values each way, outweigh the products saved)
    #:   and 2-3.5 times with 16 or 3 input channels.
    #: - 5x5: 0.69 at 128 channels, 0.84 at 64, 0.95-0.98 at 32, 1.1-1.5 at ConvNetJS's 16-20, 2.6-3.7
    #:   with 3 input channels.
    #: 3x3 layers with fewer channels take it too where they have at least WINOGRAD_CPU_NARROW_CHANNELS
    #: and no more output than input channels. Measured later, with conv2d's parts and the 2x2-block
    #: path, forward + backward against the path the layer took (median of 31, three process-alternating
    #: runs): 0.82-0.87 on the small ResNet's 64x16x32x32 -> 16 (2x2 blocks), 0.86-0.89 at batch 32,
    #: 0.75-0.77 at 64x16x8x8, 0.74-0.75 on 32x20x16x16 -> 16, 0.82-0.84 on 64x32x32x32 -> 16, 0.81-0.82
    #: on 32x24x32x32 -> 24 (plain columns), 0.74-0.80 at batch 4 and 0.95-0.97 at batch 16 (columns);
    #: about the same at 56x56 (0.96-1.02) and batch 8 (1.01-1.12); but 1.13-1.18 on 64x16x32x32 -> 32
    #: and 1.02-1.07 -> 24.
    WINOGRAD_CPU_MIN_CHANNELS = {3: 32, 5: 64}
    WINOGRAD_CPU_NARROW_CHANNELS = 16
    WINOGRAD_CPU_MIN_TILES = 32

    def _winograd_shape(self, x, weight_shape: tuple, P: int, Q: int, batch: int) -> bool:
        """Whether the images x, of a batch of ``batch``, take Winograd's products (where they and the
        weight are finite): the batch's tiles count."""
        C, (K, _, R, S) = x.shape[1], weight_shape
        if R != S or R not in self.WINOGRAD_CPU_MIN_CHANNELS:
            return False
        return (self.stride == (1, 1) and self.dilation == (1, 1)
                and self.groups == 1 and x.dtype.itemsize >= 4  # float16 would lose digits to the transforms
                and (min(C, K) >= self.WINOGRAD_CPU_MIN_CHANNELS[R]
                     or R == 3 and self.WINOGRAD_CPU_NARROW_CHANNELS <= K <= C)
                and batch * math.prod(winograd.tiles(P, Q, R)) >= self.WINOGRAD_CPU_MIN_TILES)

    def _winograd_filter(self, x, weight, P: int, Q: int, batch: int):
        """The weight's Winograd transform (``winograd.transform_filter``) where the images x, of a
        batch of ``batch``, take Winograd's products (``_winograd_shape``; those of them that are
        finite); else None."""
        takes = self._winograd_shape(x, weight.shape, P, Q, batch) and _all_finite(weight)
        return winograd.transform_filter(weight) if takes else None

    def _forward_winograd_chunks(self, x, transformed, bias, y) -> None:
        """y = Winograd's convolution of the finite images x by the weight whose transform is
        ``transformed``, in chunks of images (see SPLIT_BYTES); saves each chunk's images and its
        transformed input in ``winograd`` (a list of (start, stop, V)), V None where backward rebuilds it."""
        N, C = x.shape[:2]
        R = self.weight.shape[2]
        image_bytes = winograd.PATCH**2 * C * math.prod(winograd.tiles(*y.shape[2:], R)) * x.dtype.itemsize
        keep = N * image_bytes <= self.SPLIT_BYTES
        chunk = N if keep else max(1, self.CHUNK_BYTES // image_bytes)
        self.winograd = []
        for start, stop in self._chunks(N, chunk):
            V = winograd.forward(x[start:stop], transformed, bias, self.pads, R, out=y[start:stop])[1]
            self.winograd.append((start, stop, V if keep else None))

    def _backward_winograd_chunks(self, grad, grad_input, need_weight: bool, flipped) -> tuple:
        """(grad_input, dweight or None) of the images forward ran by Winograd, chunk by chunk as
        ``_forward_winograd_chunks`` did, from the finite upstream gradient grad (see ``_backward_images``)."""
        C, R = self.x_shape[1], self.weight.shape[2]
        if grad_input is not None and flipped is None and len(self.winograd) > 1:
            flipped = winograd.transform_filter(self.weight, flipped=True)  # once for all the chunks
        grad_weight = None
        for start, stop, V in self.winograd:
            if grad_input is not None:
                winograd.grad_input(grad[start:stop], self.weight, self.pads, out=grad_input[start:stop],
                                    flipped=flipped)
            if need_weight:
                if V is None:
                    V = winograd.transform_input(self.x[start:stop], self.pads, R)
                share = winograd.grad_weight(grad[start:stop], V, C, R)
                grad_weight = share if grad_weight is None else numpy.add(grad_weight, share, out=grad_weight)
        return grad_input, grad_weight

    #: A batch splits into parts of consecutive images, one a core, each convolved on its own thread
    #: with BLAS on one thread (``_parallel.single_threaded_blas``). The layer's paths (Winograd, 2x2
    #: blocks, chunks) are chosen for the whole batch; each part takes them where its own images are
    #: finite. Each part must hold at least PARTS_MIN_MACS multiply-adds; on Winograd's products
    #: PARTS_MIN_TILES tiles (with fewer, each product reads the whole transformed weight for few
    #: columns, and two parts read it twice); on the 2x2-block products PARTS_MIN_BLOCK_VALUES values
    #: in each of backward-data's adds, C * ceil(P/2) * ceil(Q/2) per image (shorter NumPy calls from
    #: two threads at once spend their time handing the GIL over). Measured on the 2-core VM,
    #: forward + backward in two parts against one go (BLAS on its two threads), three runs:
    #: - CIFAR ResNet-18 at batch 32: 0.63-0.65 of the time on 64 channels at 32x32, 0.65-0.71 on 128
    #:   at 16x16, 0.84-0.97 on 256 at 8x8 (64 tiles a part), 0.74-0.77 on the 3x3 stem, 0.74-0.89 on
    #:   the stride-2 layers; but 1.25-1.49 on 512 channels at 4x4 (16 tiles a part);
    #: - the small ResNet's 2x2-block layer (64x16x32x32, 3x3, adds of 131,072 values a part) 0.69-0.70,
    #:   ConvNetJS's conv1 and conv2 (12,288 and 16,384) 1.16-1.29, its conv3 1.55-1.64; the small
    #:   ResNet's 1x1 stride-2 layers (4 million multiply-adds a part) 1.19-1.32;
    #: - 3 input channels at 32x32, batch 64, 16 output channels (24,576 a part; five process-
    #:   alternating runs, the median of 31): 3x3 (the small ResNet's stem) 4.85-5.34 ms in two parts
    #:   against 6.76-6.99 in one, and 4.71-5.09 in two parts on the plain columns; 5x5 (ConvNetJS's
    #:   conv1 at batch 64) 6.81-7.26 against 9.07-9.53, and 7.14-7.69 on the plain columns.
    PARTS_MIN_MACS = 8 << 20
    PARTS_MIN_TILES = 64
    PARTS_MIN_BLOCK_VALUES = 20 << 10

    def _cpu_parts(self, x, weight, P: int, Q: int) -> int:
        """How many parts the cpu's forward and backward split the batch x into (1: none)."""
        N, C = x.shape[:2]
        macs = N * weight.size * P * Q
        if N < 2 or macs < 2 * self.PARTS_MIN_MACS or not blas_threads().usable:
            return 1
        parts = min(usable_cores(), N, macs // self.PARTS_MIN_MACS)
        if self._blocked_shape(weight.shape, P, Q, N):
            parts = min(parts, N * C * math.prod(_halves(P, Q)) // self.PARTS_MIN_BLOCK_VALUES)
        elif self._winograd_shape(x, weight.shape, P, Q, N):
            parts = min(parts, N * math.prod(winograd.tiles(P, Q, weight.shape[2])) // self.PARTS_MIN_TILES)
        return max(1, parts)

    def _chunks(self, N: int, chunk: int | None = None):
        """(start, stop) of each chunk of ``chunk`` images (default: im2col's, ``self.chunk``) of N."""
        chunk = chunk or self.chunk
        return [(start, min(start + chunk, N)) for start in range(0, N, chunk)]

    #: The weight gradient of the plain columns is the product dW^T = cols @ dy^T, which BLAS runs up
    #: to twice as fast as dy @ cols^T for few output channels (ConvNetJS conv2: 1.0 against 1.7 ms),
    #: then copied into the weight's (K, C*R*S) layout; past TRANSPOSED_FILTER_MAX values that
    #: transposing copy leaves the cache (a 512x512 3x3 weight: 12 ms, against 1.6 ms for the whole
    #: product on 49 positions), so it is dy @ cols^T, already in that layout.
    TRANSPOSED_FILTER_MAX = 1 << 18

    #: Stride-2 backward-data (dilation 1, a finite weight) sums its taps by the padded gradient's
    #: stride-2 phases (``_col2im_stride2``) where a chunk's dcols hold at least PHASES_MIN_VALUES
    #: values, the kernel has more than one tap and the widened rows add at most 1 / PHASES_WIDENING
    #: to the product ((S-1) // 2 columns past Q). Measured on the 2-core VM, forward + backward
    #: against the strided adds (three runs): 0.86-0.97 of the time on CIFAR ResNet-18's 64->128 3x3
    #: layer, 0.95-0.99 on 128->256 (8 outputs across) and on ImageNet's 7x7 stem; but 1.04 on
    #: 256->512 (4 across: a quarter more columns), 1.29 on the lecture's 7x7 input (2,592 values:
    #: the extra NumPy calls) and 1.40 on a 1x1 kernel, whose one tap the strided path copies at once.
    PHASES_MIN_VALUES = 1 << 16
    PHASES_WIDENING = 8

    def backward_cpu(self, grad):
        """grad: (N, K, P, Q) -> (dx (N, C, H, W), dweight (K, C/G, R, S), dbias (K,)), None where not needed."""
        self._require_saved()
        need_input, need_weight, need_bias = (self.needs_input_grad + (False,))[:3]
        grad_input = _memory.empty(self.x_shape, grad.dtype) if need_input else None
        if self.parts is None:
            grads = self._backward_images(grad, grad_input, need_weight, need_bias, None)
        else:  # each part its images' input gradient, and its share of the others, added up in order
            shares = [None] * len(self.parts)

            def work(first, last):
                for index in range(first, last):
                    start, stop, part = self.parts[index]
                    shares[index] = part._backward_images(grad[start:stop], None if grad_input is None else
                                                          grad_input[start:stop], need_weight, need_bias, flipped)

            with single_threaded_blas():
                winograd_parts = need_input and any(part.winograd is not None for _, _, part in self.parts)
                flipped = winograd.transform_filter(self.weight, flipped=True) if winograd_parts else None
                run_chunked(work, len(self.parts), 1)
            grads = (grad_input,) + tuple(_sum_in_place([share[i] for share in shares]) for i in (1, 2))
        self.release()
        return grads[: 3 if self.has_bias else 2]

    def _backward_images(self, grad, grad_input, need_weight: bool, need_bias: bool, flipped) -> tuple:
        """grad: the (n, K, P, Q) gradient of forward's n images -> (grad_input: their (n, C, H, W) input
        gradient written into it, or None; dweight (K, C/G, R, S) and dbias (K,) of these images, or None
        where not needed). ``flipped``: the flipped weight's Winograd transform for the input gradient
        where the caller has it (``winograd.grad_input``)."""
        need_input = grad_input is not None
        N, K, P, Q = grad.shape
        C = self.x_shape[1]
        if self.winograd is not None:
            if _all_finite(grad):
                return self._backward_winograd_chunks(grad, grad_input, need_weight, flipped) + (
                    grad.sum(axis=(0, 2, 3)) if need_bias else None,)
            self.winograd = None  # im2col, rebuilding the columns from the saved input
        _, group_channels, R, S = self.weight.shape
        groups, group_rows = self.groups, group_channels * R * S
        rebuild = self.workspace is None  # several chunks: their columns are rebuilt one chunk at a time
        workspace = _memory.empty(self.workspace_bytes, numpy.uint8) if rebuild else self.workspace
        chunks = self._chunks(N)
        # One chunk's product is the weight gradient itself; several add theirs up (none: zeros).
        only, new_sum = (True, _memory.empty) if len(chunks) == 1 else (False, _memory.zeros)
        if need_weight and self.blocked:  # (C (R+1) (S+1), 4 K)
            grad_weight_blocks = new_sum((group_channels * (R + 1) * (S + 1), 4 * K), grad.dtype)
        elif need_weight:  # in the weight's own layout, or transposed (see TRANSPOSED_FILTER_MAX)
            transposed = K * group_rows <= self.TRANSPOSED_FILTER_MAX
            grad_weight_g = new_sum((groups, group_rows, K // groups) if transposed else
                                    (groups, K // groups, group_rows), grad.dtype)
        grad_bias = numpy.zeros(K, grad.dtype) if need_bias else None
        weight_t = self.weight.reshape(groups, K // groups, group_rows).swapaxes(1, 2)
        data_path = self._data_path(grad, P, Q) if need_input else None
        # The blocked products take the gradient in blocks; the others in the layout of the forward's
        # GEMM output, (G, K/G, n*P*Q) (one image's gradient has it).
        by_columns = (need_weight and not self.blocked) or data_path not in (None, "blocked")
        if by_columns and self.chunk > 1:
            grad_knpq = _memory.empty(K * self.chunk * P * Q * grad.dtype.itemsize, numpy.uint8)
        for start, stop in chunks:
            columns = (stop - start) * P * Q
            if by_columns and stop - start == 1:
                grad_kn = numpy.ascontiguousarray(grad[start:stop]).reshape(groups, K // groups, columns)
            elif by_columns:
                grad_kn = _view(grad_knpq, (groups, K // groups, columns), grad.dtype)
                numpy.copyto(grad_kn.reshape(K, stop - start, P, Q), grad[start:stop].transpose(1, 0, 2, 3))
            if need_bias and by_columns:  # contiguous rows sum faster
                grad_bias += grad_kn.reshape(K, columns).sum(axis=1)
            elif need_bias:
                grad_bias += grad[start:stop].sum(axis=(0, 2, 3))
            if self.blocked and (need_weight or data_path == "blocked"):  # what both blocked products take
                grad_blocks = _blocks(grad[start:stop])
            if need_weight and self.blocked:
                x = self.x[start:stop] if rebuild else None
                self._grad_weight_blocked(grad_blocks, P, Q, workspace, x, grad_weight_blocks, only)
            elif need_weight:
                if rebuild:
                    cols = self._im2col(self.x[start:stop], P, Q, workspace).reshape(groups, group_rows, columns)
                else:
                    cols = _view(workspace, (groups, group_rows, columns), grad.dtype)
                if transposed:
                    _add_product(cols, grad_kn.swapaxes(1, 2), grad_weight_g, only)
                else:
                    _add_product(grad_kn, cols.swapaxes(1, 2), grad_weight_g, only)
            if need_input:  # dcols overwrites cols, which backward-filter has used
                if data_path == "blocked":
                    self._col2im_blocked(grad_blocks, workspace, grad_input[start:stop])
                elif data_path == "wide":
                    self._col2im_wide(weight_t, grad_kn, P, Q, workspace, grad_input[start:stop])
                elif data_path == "phases":
                    self._col2im_stride2(weight_t, grad_kn, P, Q, workspace, grad_input[start:stop])
                else:
                    grad_cols = _view(workspace, (groups, group_rows, columns), grad.dtype)
                    _parallel.matmul(weight_t, grad_kn, out=grad_cols)
                    self._col2im(grad_cols.reshape(C, R, S, stop - start, P, Q), grad_input[start:stop])
        grad_weight = None
        if need_weight and self.blocked:
            grad_weight = _unblocked_grad_weight(grad_weight_blocks, R, S)
        elif need_weight and transposed:
            grad_weight = _memory.empty(self.weight.shape, grad.dtype)
            numpy.copyto(grad_weight.reshape(groups, K // groups, group_rows), grad_weight_g.swapaxes(1, 2))
        elif need_weight:
            grad_weight = grad_weight_g.reshape(self.weight.shape)
        return grad_input, grad_weight, grad_bias

    def _data_path(self, grad, P: int, Q: int) -> str:
        """How backward-data goes: "blocked" (``_col2im_blocked``), "wide" (``_col2im_wide``),
        "phases" (``_col2im_stride2``) or "plain" (``_col2im``). The first three multiply the weight
        by zero columns, and "blocked" also the gradient by the blocked weight's zeros: an inf or NaN
        there would make NaN where nothing is added, so they need them finite."""
        R, S = self.weight.shape[2:]
        if self.stride not in ((1, 1), (2, 2)) or not _all_finite(self.weight):
            return "plain"
        if self.stride == (1, 1):
            return "blocked" if self.blocked and _all_finite(grad) else "wide"
        dcols = self.weight[0].size * self.groups * self.chunk * P * Q  # C*R*S*n*P*Q
        if (self.dilation == (1, 1) and R * S > 1 and self.PHASES_WIDENING * ((S - 1) // 2) <= Q
                and dcols >= self.PHASES_MIN_VALUES):
            return "phases"
        return "plain"

    def release(self) -> None:
        """Drops what forward saved for backward: the im2col buffer, or the input to rebuild it from, and
        Winograd's transformed operands (``winograd``: on the cpu its chunks of images, each with its
        transformed input where forward kept it; on the kernel devices its tile size and the 1x1
        convolution of its products), or the parts that hold them."""
        self.x = self.workspace = self.winograd = self.parts = None

    def _require_saved(self) -> None:
        if self.workspace is None and self.x is None and self.parts is None:
            raise RuntimeError(
                "conv2d: backward through this convolution a second time; the first backward released "
                "what its forward saved"
            )

    # ----------------------------------------------------------------- kernel devices (cuda/conv2d.cu)
    # The GEMM kernels come in two tile sizes (TILE x TILE results per block of THREADS threads). The
    # 128 tile does twice the arithmetic per shared-memory read, but wastes more rows on small channel
    # counts and makes a quarter as many blocks: it is taken when the result has more than 64 rows and
    # still makes WIDE_TILE_BLOCKS blocks (two waves on an H100's 132 multiprocessors, which held one
    # such block each when this was measured), by shapes alone, on GPUs of compute capability 7.0 and
    # up (conv2d.cu builds it there only). Backward-filter's blocks count with the splits of its
    # reduction, which SPLIT_MIN_CHUNK can leave few: where the 128 tile made 20-160 blocks (ResNet-18's
    # stride-2 layers at batch 32, the batch-1 Jetson layers), `python -m bench kernels` timed the 64
    # tile per call at 0.56-0.94 of its time in 20 of 21 rows (1.08 in one; two H100 runs and an H200
    # run of ResNet-18, three H100 runs of the Jetson layers); rows where both paths run the same
    # kernels gave 0.83-1.02. Since then backward-filter and the taps kernels fit two 128-tile blocks a
    # multiprocessor (conv2d.cu's CONV_BLOCKS_128); the threshold is not yet measured again.
    TILES = (64, 128)
    WIDE_TILE_CAPABILITY = 70  # conv2d.cu builds the 128 tile for compute capability 7.0 and up
    WIDE_TILE_BLOCKS = 264
    FORCE_TILE = None  # 64 or 128: every product takes that tile (see kernel_path)
    # With WINOGRAD_GPU_TILE = m (2 or 4), 3x3 convolutions at stride 1 (dilation 1, one group) on finite data
    # take Winograd's F(m x m, 3x3) (cuda/winograd.cu): 2.25 (m = 2) or 4 (m = 4) times fewer
    # multiply-adds, through transforms that move 4 (2.25) times the input and output, where both
    # channel counts reach WINOGRAD_GPU_MIN_CHANNELS and the direct convolution would take at least
    # WINOGRAD_GPU_MIN_MACS multiply-adds: below that, its extra launches and the host's finiteness
    # test outweigh what it saves. On an H200 (python -m bench kernels), per product, F(4x4, 3x3) took
    # of the fastest direct path's time: 0.72-0.74 on VGG-16's 512-channel 14x14 layer at batch 8
    # (3.7e9 multiply-adds), 0.29-0.74 on its larger layers at batch 32; 0.57-0.96 on CIFAR
    # ResNet-18's 3x3 stride-1 layers at batch 128 (4.8e9) and 0.68-1.19 at batch 32 (1.2e9). The
    # kernel paths "winograd2" and "winograd4" take it wherever it applies, at any size (see kernel_path).
    WINOGRAD_GPU_TILE = 4
    WINOGRAD_GPU_MIN_CHANNELS = 16
    WINOGRAD_GPU_MIN_MACS = 2**31
    # Backward-data of at most this many input channels per group runs as the exact gather (see conv2d.cu).
    GATHER_MAX_CHANNELS = 8
    # Where this divides the channels the forward (or backward-data) reduces over per group, its
    # kernels take the "taps" variant (conv2d.cu's TAPS_OUTER): the reduction runs tap by tap, channels
    # innermost, on a copy of the weight with its taps before its channels, and every reduction step
    # of either tile (16 or 8 indices) lies within one tap. Both tiles sum in the same order. 0: never
    # (the kernel path "taps_off", to time the two against each other).
    TAP_STEP_CHANNELS = 16
    # Whether the forward takes them too (the kernel path "taps_forward"). It does not: on an H100
    # (python -m bench kernels, per call) the forward without them was faster on 20 of 22 rows, the
    # Jetson suite's batch-1 layers (two runs) and ResNet-18's at batch 32 and 64, by 0.007-0.066 ms,
    # while backward-data with them was faster on ResNet-18's stride-2 3x3 layers at batch 64.
    # Winograd's products keep them (see _winograd).
    TAPS_FORWARD = False
    # A forward whose reduction per group (C/G * R * S) is at most this many indices, two steps of the
    # 64 tile, takes conv2d_forward_pixels: a thread an output pixel and 16 output channels, the
    # block's weights in shared memory, where the GEMM tiles run one or two reduction steps between
    # their staging and an epilogue that decodes each result's pixel (an RGB stem's 3x3 kernel: 27;
    # on an H100 VGG-16's 3->64 layer took 0.60 ms on the tiles against cuDNN's 0.34 at batch 32,
    # CIFAR ResNet-18's stem 0.021 against 0.014); so do Winograd's products of up to 32 input channels
    # (1x1 convolutions of the transformed input). The same sums, term by term. At most conv2d.cu's
    # PIXELS_MAX_REDUCTION (64, its shared buffer); 0: never (the kernel path "pixels_off"). Not yet
    # timed on a GPU against the tiles.
    PIXELS_FORWARD_MAX_REDUCTION = 32
    MAX_GRID_YZ = 65535  # CUDA's limit on gridDim.y and gridDim.z
    MAX_PLANE = 2**31 - 1  # values in one input or output plane: conv2d.cu indexes within a plane by int
    #                        (checked as the forward's plan is made, before any launch)
    # A product with few result tiles leaves most of a GPU idle: a batch-1 layer of 512 channels at
    # 7x7 makes 8 tiles of 64 x 64 for 132 multiprocessors. So each product's reduction (forward: over
    # C*R*S, backward-data: K*R*S, backward-filter: N*P*Q) is split into chunks (multiples of 16, at
    # least SPLIT_MIN_CHUNK indices) until about SPLIT_TARGET_BLOCKS blocks run, and a second kernel
    # adds the chunks' sums in order (conv2d.cu). Forward and backward-data count their tiles of 64,
    # whichever tile runs, and so do not depend on the GPU: their summation order (and result) is the
    # same on every card and for both tiles. (Backward-filter counts the tiles it runs.) The kernel
    # paths "split768" and "chunk128" time more splits. On an H100, ResNet-18's stride-1 forwards at
    # batch 32 run 512 blocks of the 64 tile, which at 3 a multiprocessor make a full wave and one of
    # 116 blocks; the batch-1 Jetson layers' products run 72-147 blocks, one or none a multiprocessor,
    # with 8 warps each to hide its latency. Not yet timed on a GPU.
    SPLIT_TARGET_BLOCKS = 512
    SPLIT_MIN_CHUNK = 256
    # The 128 tile's backward-filter blocks run in waves of WIDE_FILTER_BLOCKS a multiprocessor from
    # compute capability WIDE_FILTER_CAPABILITY, one below (its launch bounds in conv2d.cu,
    # CONV_BLOCKS_128), and a last wave of a few blocks takes as long as a full one. At one block a
    # multiprocessor (160-182 registers a thread, before it fitted 128) on an H100 (132
    # multiprocessors), ResNet-18's three stride-1 layers of 128-512 channels at batch 32 each made
    # 288 backward-filter blocks of 256 reduction indices, three waves, and each took 0.121 ms on
    # the device. With FILL_WAVES, backward-filter on the 128 tile takes fewer splits (longer
    # chunks) where that makes fewer waves times chunk (``_fill_waves``): at two blocks a
    # multiprocessor, 261 blocks of 288 indices and 252 of 304 there, one wave each, and the
    # 512-channel layer one split of 512 (144 blocks, no sum of splits) where two of 256 would take
    # the same wave. The split count then depends on the GPU's multiprocessor count, and so does the
    # rounding of backward-filter's result, which before depended on its tile alone. Not yet timed
    # on a GPU (the kernel path "waves_off" times the splits without it).
    FILL_WAVES = True
    WIDE_FILTER_BLOCKS = 2
    WIDE_FILTER_CAPABILITY = 75

    def _kernel_geometry(self, x_shape: tuple, weight_shape: tuple, P: int, Q: int) -> tuple:
        """int32 (N, C, H, W, K, R, S, P, Q, stride_h, stride_w, pad_top, pad_left, dilation_h,
        dilation_w, groups), the arguments every conv2d kernel takes after its arrays."""
        (K, _, R, S), (top, _, left, _) = weight_shape, self.pads
        return _kernels.int32_args(x_shape + (K, R, S, P, Q) + self.stride + (top, left) + self.dilation
                                   + (self.groups,))

    # A plan says how a product launches: its kernels, grids and splits. It depends on the problem, the
    # settings above (kernel_path changes them) and whether the device has the 128 tile, and is worked
    # out once for each. A small layer's time on a GPU is mostly the host's work (an H100 took 0.12 ms
    # a call for a Jetson-suite forward whose kernels ran 0.03 ms); on cudasim with the launches
    # skipped, that layer's host work per call went from 13.7 to 10.9 us forward, 11.2 to 8.0 us
    # backward-data and 7.4 to 5.4 us backward-filter with the plans kept.
    MAX_PLANS = 4096  # past this many the plans are forgotten and worked out again

    def _plan(self, product: str, x_shape: tuple, weight_shape: tuple):
        """``_<product>_plan(x_shape, weight_shape)``: "forward", "filter" or "data"."""
        key = (product, x_shape, weight_shape, self.stride, self.pads, self.dilation, self.groups,
               has_wide_tile(self.device), self.TILES, self.FORCE_TILE, self.WIDE_TILE_BLOCKS, self.WINOGRAD_GPU_TILE,
               self.WINOGRAD_GPU_MIN_CHANNELS, self.WINOGRAD_GPU_MIN_MACS, self.GATHER_MAX_CHANNELS,
               self.TAP_STEP_CHANNELS, self.TAPS_FORWARD, self.PIXELS_FORWARD_MAX_REDUCTION, self.MAX_GRID_YZ,
               self.MAX_PLANE, self.SPLIT_TARGET_BLOCKS, self.SPLIT_MIN_CHUNK, self.FILL_WAVES,
               self._wide_filter_blocks(), self.device.multiprocessors)
        plan = _PLANS.get(key)
        if plan is None:
            if len(_PLANS) >= self.MAX_PLANS:
                _PLANS.clear()
            plan = _PLANS[key] = getattr(self, f"_{product}_plan")(x_shape, weight_shape)
        return plan

    def _output_hw(self, x_shape: tuple, weight_shape: tuple) -> tuple[int, int]:
        """(P, Q) of this layer's output for these shapes."""
        top, bottom, left, right = self.pads
        return (_shapes.output_size(x_shape[2], weight_shape[2], self.stride[0], top, bottom, self.dilation[0]),
                _shapes.output_size(x_shape[3], weight_shape[3], self.stride[1], left, right, self.dilation[1]))

    def _forward_plan(self, x_shape: tuple, weight_shape: tuple) -> tuple:
        """(P, Q, whether Winograd takes the layer where its data is finite, the _Product of its direct
        (not Winograd) kernel: None for an empty output)."""
        (N, K), (group_channels, R, S) = (x_shape[0], weight_shape[0]), weight_shape[1:]
        P, Q = self._output_hw(x_shape, weight_shape)
        if max(x_shape[2] * x_shape[3], P * Q) > self.MAX_PLANE:
            raise ValueError(
                f"conv2d: the kernels of device '{self.device}' take planes of at most {self.MAX_PLANE} values, "
                f"got input planes of {x_shape[2]}x{x_shape[3]} and output planes of {P}x{Q} (input shape "
                f"{x_shape}, weight {weight_shape}); the cpu takes any size"
            )
        if not N * K * P * Q:
            return P, Q, False, None
        groups, winograd = self.groups, self._takes_winograd(N * P * Q, weight_shape)
        geometry = self._kernel_geometry(x_shape, weight_shape, P, Q)
        pixels_grid = (-(-N * P * Q // _kernels.THREADS), -(-(K // groups) // _PIXELS_CHANNELS), groups)
        if (group_channels * R * S <= self.PIXELS_FORWARD_MAX_REDUCTION and pixels_grid[0] < 2**31
                and max(pixels_grid[1:]) <= self.MAX_GRID_YZ):
            return P, Q, winograd, _Product("conv2d_forward_pixels", pixels_grid, 1, geometry, False)
        tile = self._tile(K // groups, N * P * Q, groups)
        splits, chunk = self._splits(_tiles(K // groups, N * P * Q, groups, self.TILES[0]), group_channels * R * S,
                                     groups)
        taps = self.TAPS_FORWARD and self._taps(group_channels)  # weight (K, R, S, C/G): a 1x1's as it is
        product = _Product(f"conv2d_forward_taps_{tile}" if taps else f"conv2d_forward_{tile}",
                           (-(-N * P * Q // tile), -(-(K // groups) // tile), groups * splits), splits,
                           geometry + (numpy.int32(chunk),), taps and R * S > 1)
        return P, Q, winograd, product

    def _filter_plan(self, x_shape: tuple, weight_shape: tuple):
        """The weight gradient's _Product; None where it is all zeros (no outputs, or an empty weight)."""
        (N, _, _, _), (K, group_channels, R, S) = x_shape, weight_shape
        P, Q = self._output_hw(x_shape, weight_shape)
        groups, positions, columns = self.groups, N * P * Q, group_channels * R * S
        if not (positions and K * columns):
            return None
        tile = self._tile(K // groups, columns, groups, reduction=positions)
        tiles = _tiles(K // groups, columns, groups, tile)
        splits, chunk = self._splits(tiles, positions, groups)
        if tile == self.TILES[1] and self.FILL_WAVES and self.device.multiprocessors:
            splits, chunk = _fill_waves(tiles, positions, splits, chunk,
                                        self.device.multiprocessors * self._wide_filter_blocks())
        return _Product(f"conv2d_backward_filter_{tile}", (-(-columns // tile), -(-(K // groups) // tile),
                                                           groups * splits), splits,
                        self._kernel_geometry(x_shape, weight_shape, P, Q) + (numpy.int64(chunk),), False)

    def _data_plan(self, x_shape: tuple, weight_shape: tuple) -> tuple:
        """How backward-data launches: ("empty",), ("exact", blocks, geometry) or ("tiled", _Product, blocks
        of the kernel that sums its splits (or gathers), blocks of the exact gather after it unsplit, the
        gather's sizes (geometry), the sum's sizes (geometry and the splits)).

        The tiled kernel would turn inf * (a tap no output uses) into NaN; a device-side flag picks it
        for finite weights and the exact gather otherwise, with no host round trip. Few channels per
        group take the gather alone, as do the strides its phases do not cover (a stride and a dilation
        above 1 along one axis)."""
        (N, C, H, W), (K, group_channels, R, S) = x_shape, weight_shape
        size, groups = N * C * H * W, self.groups
        if not size:
            return ("empty",)
        P, Q = self._output_hw(x_shape, weight_shape)
        geometry = self._kernel_geometry(x_shape, weight_shape, P, Q)
        (stride_h, stride_w), (dilation_h, dilation_w) = self.stride, self.dilation
        phases = stride_h * stride_w
        phased = (stride_h == 1 or dilation_h == 1) and (stride_w == 1 or dilation_w == 1)
        # the gather's items: up to _GATHER_CHANNELS channels of a group at an input pixel, a row's columns
        # in stride_w phases of ceil(W / stride_w) slots each (conv2d.cu's gather_items)
        gather_items = N * groups * -(-group_channels // _GATHER_CHANNELS) * H * stride_w * -(-W // stride_w)
        if group_channels <= self.GATHER_MAX_CHANNELS or not phased or groups * phases > self.MAX_GRID_YZ:
            return "exact", _kernels.blocks_for(gather_items), geometry
        tile = self._tile(group_channels, N * H * W, groups)
        phase_pixels = N * -(-H // stride_h) * -(-W // stride_w)  # the largest phase's
        taps = -(-R // stride_h) * -(-S // stride_w)  # the largest phase's
        splits, chunk = self._splits(_tiles(group_channels, phase_pixels, groups * phases, self.TILES[0]),
                                     K // groups * taps, groups * phases)
        transposed = self._taps(K // groups)  # weight (G, C/G, R, S, K/G)
        product = _Product(f"conv2d_backward_data_taps_{tile}" if transposed else f"conv2d_backward_data_{tile}",
                           (-(-phase_pixels // tile), -(-group_channels // tile), groups * phases * splits), splits,
                           geometry + (numpy.int32(chunk),), transposed)
        # after an unsplit product, few blocks for the exact gather: they exit at once in the usual case,
        # and stride over the input otherwise; the sizes of the kernel after the product (the sum or the
        # gather)
        return ("tiled", product, _kernels.blocks_for(size), _kernels.blocks_for(gather_items, cap=256), geometry,
                geometry + (numpy.int32(splits),))

    def _wide_filter_blocks(self) -> int:
        """The 128 tile's backward-filter blocks a multiprocessor of this device holds (conv2d.cu's
        CONV_BLOCKS_128; cudasim counts as a current GPU)."""
        capability = getattr(self.device, "compute_capability", self.WIDE_FILTER_CAPABILITY)
        return self.WIDE_FILTER_BLOCKS if capability >= self.WIDE_FILTER_CAPABILITY else 1

    def _launch(self, name: str, grid: tuple, args: tuple, fixed: tuple = ()) -> None:
        """Launches kernel ``name`` with the arguments ``args + fixed``: ``fixed``, a plan's sizes, is packed
        once per device (Device.launcher), and only ``args`` on each launch."""
        self.device.launcher("conv2d", name, fixed)(grid, (_kernels.THREADS,), args)

    def _tile(self, rows: int, columns: int, layers: int, reduction: int | None = None) -> int:
        """The GEMM tile for a result of ``layers`` (rows x columns) matrices; ``reduction``: the launch
        splits that many reduction indices until the GPU is full (backward-filter), and its blocks count
        with the splits."""
        small, wide = self.TILES
        if self.FORCE_TILE:
            if self.FORCE_TILE == wide and not has_wide_tile(self.device):
                raise RuntimeError(f"conv2d: the {wide} tile is not built for {self.device} (compute capability "
                                   f"{self.device.compute_capability}, under {self.WIDE_TILE_CAPABILITY})")
            return self.FORCE_TILE
        if not has_wide_tile(self.device):
            return small
        blocks = _tiles(rows, columns, layers, wide)
        if reduction is not None:
            if columns <= small:
                return small
            blocks *= self._splits(blocks, reduction, layers)[0]
        return wide if rows > small and blocks >= self.WIDE_TILE_BLOCKS else small

    def _splits(self, tiles: int, reduction: int, layers: int) -> tuple[int, int]:
        """(splits, chunk) for a product of ``tiles`` blocks unsplit in ``layers`` grid z-layers that
        reduces over ``reduction`` indices (see SPLIT_TARGET_BLOCKS)."""
        splits = max(1, min(-(-self.SPLIT_TARGET_BLOCKS // tiles), -(-reduction // self.SPLIT_MIN_CHUNK),
                            self.MAX_GRID_YZ // layers))
        chunk = -(-reduction // splits)
        chunk = -(-chunk // 16) * 16  # whole reduction steps of either tile
        return -(-reduction // chunk), chunk

    def _sum_splits(self, partial, out, splits: int, bias=None, K: int = 1, PQ: int = 1) -> None:
        """out = the sum of partial's ``splits`` leading slices, in order (+ ``bias`` per channel of
        ``K``, for an (N, K, P, Q) output), where the reduction ran in splits."""
        if splits > 1:
            has_bias = bias is not None
            bias = bias if has_bias else partial
            self._launch("conv2d_sum_splits", (_kernels.blocks_for(out.size),),
                         (partial, bias, out, numpy.int32(has_bias), numpy.int64(out.size), numpy.int32(splits),
                          numpy.int32(K), numpy.int64(PQ)))

    def _transposed_weight(self, batches: int, rows: int, columns: int, nonfinite=None):
        """The weight seen as (batches, rows, columns), each matrix transposed: the taps kernels' layout.
        ``nonfinite``: a zeroed int32 flag that the same launch sets to 1 where a value is inf or NaN."""
        out = self.xp.empty((batches, columns, rows), dtype=self.xp.float32)
        check = nonfinite is not None
        flag = nonfinite if check else _kernels.placeholder(self.device, numpy.int32)
        _kernels.launch_elementwise(self.device, "conv2d", "conv2d_transpose_weight", out.size,
                                    (self.weight, out, flag, numpy.int64(out.size)) + _kernels.int32_args(
                                        (rows, columns, out.size < 2**31, check)))
        return out

    def _taps(self, channels: int) -> bool:
        """Whether a product that reduces over ``channels`` per group takes the taps kernels."""
        return bool(self.TAP_STEP_CHANNELS) and channels % self.TAP_STEP_CHANNELS == 0

    def forward_gpu(self, x, weight, bias=None):
        """x: (N, C, H, W), weight: (K, C/G, R, S), bias: (K,) or None, all float32 -> y: (N, K, P, Q)."""
        xp = self.xp
        self.x, self.weight = _kernels.kernel_array(xp, x), _kernels.kernel_array(xp, weight)
        self.x_shape, self.has_bias = x.shape, bias is not None
        N, (K, group_channels, R, S) = x.shape[0], weight.shape
        P, Q, winograd, product = self._plan("forward", x.shape, weight.shape)
        y = xp.empty((N, K, P, Q), dtype=xp.float32)
        if product is None:
            return y
        bias = _kernels.placeholder(self.device) if bias is None else _kernels.kernel_array(xp, bias)
        if winograd and not self._any_nonfinite(self.x, self.weight):
            m = self.WINOGRAD_GPU_TILE
            self.winograd = (m, self._winograd(m, self.x, self.weight, bias, self.has_bias, self.pads[0], self.pads[2],
                                               y))
            return y
        weight = self._transposed_weight(K, group_channels, R * S) if product.transposed else self.weight
        out = y if product.splits == 1 else xp.empty((product.splits,) + y.shape, dtype=xp.float32)
        has_bias = numpy.int32(self.has_bias and product.splits == 1)  # a split product's bias comes with its sum
        self._launch(product.name, product.grid, (self.x, weight, bias, out, has_bias), product.arguments)
        self._sum_splits(out, y, product.splits, bias if self.has_bias else None, K, P * Q)
        return y

    def backward_gpu(self, grad):
        """grad: (N, K, P, Q) -> (dx, dweight, dbias) as backward_cpu, from the kernels."""
        self._require_saved()
        need_input, need_weight, need_bias = (self.needs_input_grad + (False,))[:3]
        grad = _kernels.kernel_array(self.xp, grad)
        if self.winograd is not None and not self._any_nonfinite(grad):
            grads = self._backward_winograd(grad, need_input, need_weight)
        else:
            grads = self._backward_kernels(grad, need_input, need_weight)
        grads += (self._grad_bias(grad) if need_bias else None,)
        self.release()  # the queued kernels still run on it: CuPy reuses freed memory in stream order
        return grads[: 3 if self.has_bias else 2]

    def _grad_bias(self, grad):
        N, K, P, Q = grad.shape
        if not grad.size:
            return self.xp.zeros(K, dtype=self.xp.float32)
        grad_bias = self.xp.empty(K, dtype=self.xp.float32)  # the kernel writes every channel
        self._launch("conv2d_backward_bias", (K,), (grad, grad_bias, numpy.int32(N), numpy.int32(K),
                                                    numpy.int64(P * Q)))
        return grad_bias

    def _backward_kernels(self, grad, need_input: bool, need_weight: bool) -> tuple:
        """(dx, dweight), each None where not needed, from the GEMM kernels (or the gather)."""
        xp, x_shape, weight_shape = self.xp, self.x_shape, self.weight.shape
        grad_input = grad_weight = None
        if need_weight:
            product = self._plan("filter", x_shape, weight_shape)
            if product is None:
                grad_weight = xp.zeros(weight_shape, dtype=xp.float32)
            else:  # the tiles cover the weight: every value is written
                grad_weight = xp.empty(weight_shape, dtype=xp.float32)
                splits = product.splits
                partial = grad_weight if splits == 1 else xp.empty((splits,) + weight_shape, dtype=xp.float32)
                self._launch(product.name, product.grid, (self.x, grad, partial), product.arguments)
                self._sum_splits(partial, grad_weight, splits)
        if need_input:
            grad_input = xp.empty(x_shape, dtype=xp.float32)
            plan = self._plan("data", x_shape, weight_shape)
            if plan[0] == "exact":
                _, blocks, geometry = plan
                self._launch("conv2d_backward_data_exact", (blocks,),
                             (grad, self.weight, grad_input, _kernels.set_flag(self.device)), geometry)
            elif plan[0] == "tiled":
                _, product, sum_blocks, exact_blocks, geometry, sum_sizes = plan
                K, group_channels, R, S = weight_shape
                groups = self.groups
                if product.transposed:  # its transposing launch sets the gather flag too
                    gather = xp.zeros(1, dtype=xp.int32)
                    weight = self._transposed_weight(groups, K // groups, group_channels * R * S, gather)
                else:
                    gather, weight = self._nonfinite_flag(self.weight), self.weight
                splits = product.splits
                partial = grad_input if splits == 1 else xp.empty((splits,) + x_shape, dtype=xp.float32)
                self._launch(product.name, product.grid, (grad, weight, partial, gather), product.arguments)
                if splits > 1:  # the sum of the splits, or the exact gather where the flag is set
                    self._launch("conv2d_backward_data_sum_or_gather", (sum_blocks,),
                                 (partial, grad, self.weight, grad_input, gather), sum_sizes)
                else:
                    self._launch("conv2d_backward_data_exact", (exact_blocks,),
                                 (grad, self.weight, grad_input, gather), geometry)
        return grad_input, grad_weight

    # ----------------------------------------------------------------- Winograd F(m x m, 3x3) (cuda/winograd.cu)
    def _takes_winograd(self, positions: int, weight_shape: tuple) -> bool:
        """Whether this layer, of ``positions`` = N * P * Q outputs, takes Winograd (its data permitting)."""
        K, C = weight_shape[:2]
        return (self.WINOGRAD_GPU_TILE in (2, 4) and weight_shape[2:] == (3, 3) and self.stride == (1, 1)
                and self.dilation == (1, 1) and self.groups == 1 and min(C, K) >= self.WINOGRAD_GPU_MIN_CHANNELS
                and 9 * C * K * positions >= self.WINOGRAD_GPU_MIN_MACS)

    def _nonfinite_flag(self, *arrays):
        """A device int32 flag, set to 1 by conv2d_nonfinite where some value of ``arrays`` is inf or NaN."""
        flag = self.xp.zeros(1, dtype=self.xp.int32)
        for array in arrays:
            _kernels.launch_elementwise(self.device, "conv2d", "conv2d_nonfinite", array.size,
                                        (array, numpy.int64(array.size), flag))
        return flag

    def _any_nonfinite(self, *arrays) -> bool:
        """Whether some value of ``arrays`` is inf or NaN: the flag, read back (a sync)."""
        return bool(int(self._nonfinite_flag(*arrays)[0]))

    def _winograd_launch(self, kernel: str, m: int, count: int, arrays: tuple, *sizes) -> None:
        _kernels.launch_elementwise(self.device, "winograd", f"winograd_{kernel}_{m}", count,
                                    arrays + _kernels.int32_args(sizes))

    def _winograd(self, m: int, x, weight, bias, has_bias: bool, top: int, left: int, y):
        """y = conv2d(x, weight) (+ bias where ``has_bias``) at stride 1, padded by ``top`` and ``left``
        (and as y's size implies on the other sides), by F(m x m, 3x3): V = B^T d B, U = G g G^T,
        M = U @ V and y = A^T M A, the (m + 2)^2 products M[xi] = U[xi] @ V[xi] run as one 1x1
        convolution of (m + 2)^2 groups on this file's GEMM kernels. Returns that convolution, which
        keeps V for the weight's gradient."""
        xp, points = self.xp, (m + 2) ** 2
        (N, C, H, W), (K, P, Q) = x.shape, y.shape[1:]
        tiles_h, tiles_w = -(-P // m), -(-Q // m)
        T = N * tiles_h * tiles_w
        V = xp.empty((1, points * C, T, 1), dtype=xp.float32)
        self._winograd_launch("input_transform", m, C * T, (x, V), N, C, H, W, top, left, tiles_h, tiles_w)
        U = xp.empty((points * K, C, 1, 1), dtype=xp.float32)
        self._winograd_launch("filter_transform", m, K * C, (weight, U), K, C)
        gemm = Conv2d((1, 1), (0, 0, 0, 0), (1, 1), points)
        gemm.device, gemm.xp = self.device, xp
        gemm.TAPS_FORWARD = True  # as VGG-16's layers were timed; TAPS_FORWARD's evidence is from direct layers
        M = gemm.forward_gpu(V, U)
        self._winograd_launch("output_transform", m, K * T, (M, bias, y), has_bias, N, K, P, Q, tiles_h, tiles_w)
        return gemm

    def _backward_winograd(self, grad, need_input: bool, need_weight: bool) -> tuple:
        """(dx, dweight). dweight by the adjoints of the forward's steps: dM = A dY A^T, the 1x1
        convolution's own backward for dU, and dweight = G^T dU G. dx is itself a 3x3 convolution at
        stride 1, of the upstream gradient padded by 2 - pad (a negative pad skips rows or columns that
        reached only padding) with the weight flipped and its channels swapped: the same Winograd
        forward."""
        xp, (m, gemm) = self.xp, self.winograd
        N, K, P, Q = grad.shape
        top, _, left, _ = self.pads
        grad_input = grad_weight = None
        if need_input:
            flipped = xp.ascontiguousarray(self.weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
            grad_input = xp.empty(self.x_shape, dtype=xp.float32)
            self._winograd(m, grad, flipped, _kernels.placeholder(self.device), False, 2 - top, 2 - left, grad_input)
        if need_weight:
            tiles_h, tiles_w = -(-P // m), -(-Q // m)
            grad_M = xp.empty((1, (m + 2) ** 2 * K, N * tiles_h * tiles_w, 1), dtype=xp.float32)
            self._winograd_launch("grad_transform", m, K * N * tiles_h * tiles_w, (grad, grad_M), N, K, P, Q,
                                  tiles_h, tiles_w)
            grad_U = gemm._backward_kernels(grad_M, False, True)[1]
            grad_weight = xp.empty(self.weight.shape, dtype=xp.float32)
            self._winograd_launch("filter_adjoint", m, K * self.x_shape[1], (grad_U, grad_weight), K, self.x_shape[1])
        return grad_input, grad_weight

    # ----------------------------------------------------------------- im2col / col2im
    def _im2col(self, x, P: int, Q: int, workspace):
        """The columns of the n images of ``x`` for a P x Q output, in ``workspace``: (C, R, S, n, P, Q),
        or with ``blocked`` those of an (R+1) x (S+1) kernel at stride 2 over the 2x2 blocks of outputs,
        images last: (C, R+1, S+1, ceil(P/2), ceil(Q/2), n) (``_gather_blocks``)."""
        R, S = self.weight.shape[2:]
        if self.blocked:
            P2, Q2 = _halves(P, Q)
            phases = _padded_phases(x, self.pads[0], self.pads[2], P2 + R // 2, Q2 + S // 2)
            return _gather_blocks(phases, R, S, P2, Q2, workspace)
        return _gather_windows(x, (R, S), self.stride, self.dilation, self.pads, P, Q, workspace)

    def _grad_weight_blocked(self, grad_blocks, P: int, Q: int, workspace, x, total, only: bool) -> None:
        """Adds to ``total`` (``_add_product``) the (C (R+1) (S+1), 4 K) weight gradient of the 2x2-block
        product for the n images of grad_blocks (``_blocks``, of a P x Q output): cols @ dy_blocks^T, the
        columns rebuilt from ``x`` unless it is None."""
        K, columns = grad_blocks.shape[2], grad_blocks[0, 0, 0].size
        C, R, S = self.x_shape[1], self.weight.shape[2], self.weight.shape[3]
        taps = C * (R + 1) * (S + 1)
        if x is None:
            cols = _view(workspace, (taps, columns), grad_blocks.dtype)
        else:
            cols = self._im2col(x, P, Q, workspace).reshape(taps, columns)
        _add_product(cols, grad_blocks.reshape(4 * K, columns).T, total, only)

    def _col2im(self, grad_cols, out):
        """The adjoint of _im2col: grad_cols (C, R, S, n, P, Q) -> out, the (n, C, H, W) input gradient,
        summing overlapping taps."""
        C, R, S, N, P, Q = grad_cols.shape
        H, W = self.x_shape[2:]
        top, bottom, left, right = self.pads
        (sh, sw), (dh, dw) = self.stride, self.dilation
        if any(self.pads):
            grad_padded = _memory.zeros((N, C, H + top + bottom, W + left + right), grad_cols.dtype)
        else:
            grad_padded = out  # the taps add into the result itself
            _memory.fill_zeros(grad_padded)
        grad_padded_cn = grad_padded.transpose(1, 0, 2, 3)  # (C, n, Hp, Wp), as grad_cols[:, r, s]
        for r in range(R):
            rows = slice(r * dh, r * dh + sh * (P - 1) + 1, sh)
            for s in range(S):
                taps = grad_padded_cn[:, :, rows, s * dw : s * dw + sw * (Q - 1) + 1 : sw]
                if r == s == 0:
                    taps[...] = grad_cols[:, 0, 0]  # the first tap meets zeros: a copy, faster than an add
                else:
                    taps += grad_cols[:, r, s]
        if any(self.pads):
            numpy.copyto(out, grad_padded[:, :, top : top + H, left : left + W])

    def _col2im_blocked(self, grad_blocks, workspace, out):
        """Backward-data on the 2x2-block columns, for a finite weight and gradient: grad_blocks (the
        upstream gradient by ``_blocks``) -> out, the (n, C, H, W) input gradient. dcols =
        blocked_weight^T @ dy_blocks gives what each tap (r, s) of a block's (R+1) x (S+1) window
        receives, at padded pixel (2p + r, 2q + s), which is pixel (p + r//2, q + s//2) of stride-2
        phase (r % 2, s % 2). With the images last every tap adds into its phase (``_padded_phases``'
        layout) as runs of ceil(Q/2) * n contiguous values."""
        _, _, K, P2, Q2, n = grad_blocks.shape
        C = self.x_shape[1]
        R, S = self.weight.shape[2:]
        grad_cols = _view(workspace, (C, R + 1, S + 1, P2, Q2, n), grad_blocks.dtype)
        _parallel.matmul(_blocked_weight(self.weight).T, grad_blocks.reshape(4 * K, P2 * Q2 * n),
                         out=grad_cols.reshape(C * (R + 1) * (S + 1), P2 * Q2 * n))
        phases = _memory.zeros((C, 2, 2, P2 + R // 2, Q2 + S // 2, n), grad_blocks.dtype)
        for r in range(R + 1):
            for s in range(S + 1):
                phases[:, r % 2, s % 2, r // 2 : r // 2 + P2, s // 2 : s // 2 + Q2] += grad_cols[:, r, s]
        (top, left), (H, W) = (self.pads[0], self.pads[2]), out.shape[2:]
        for a, b in _BLOCK_OFFSETS:
            (first_row, i, height), (first_column, j, breadth) = _phase_span(a, top, H), _phase_span(b, left, W)
            numpy.copyto(out[:, :, first_row::2, first_column::2],
                         phases[:, a, b, i : i + height, j : j + breadth].transpose(3, 0, 1, 2))

    def _col2im_stride2(self, weight_t, grad_kn, P: int, Q: int, workspace, out):
        """Backward-data for stride 2 (dilation 1) and a finite weight: weight_t (G, C/G*R*S, K/G),
        grad_kn (G, K/G, n*P*Q) -> out, the (n, C, H, W) input gradient, by ``_col2im_phases`` on
        rows widened to Q + (S-1)//2 (zeros past Q)."""
        C = self.x_shape[1]
        R, S = self.weight.shape[2:]
        n = out.shape[0]
        width = Q + (S - 1) // 2
        grad_cols = _widened_product(weight_t, grad_kn, n, P, Q, width, workspace)
        self._col2im_phases(grad_cols.reshape(C, R, S, n * P * width), P, out)

    def _col2im_phases(self, grad_cols, P: int, out):
        """col2im for windows at stride 2: grad_cols (C, Rw, Sw, n*P*width) holds what tap (r, s) of the
        window of output (p, q) adds to padded pixel (2p + r, 2q + s), on rows widened with zero
        columns (q < width, past the last window: 0) -> out, the cropped (n, C, H, W) sum.

        NumPy adds long contiguous runs several times faster than the strided runs of Q that a
        stride-2 view gives. So the padded gradient is kept as its four stride-2 phases (row parity a,
        column parity b), where that pixel is (p + r//2, q + s//2) of phase (r % 2, s % 2): the taps of
        one window row and column parity add as contiguous shifted rows (as in ``_col2im_wide``), each
        sum into its phase as one block of rows. The phases are then interleaved into ``out``."""
        C, Rw, Sw, span = grad_cols.shape
        n, _, H, W = out.shape
        width = span // (n * P)
        top, left = self.pads[0], self.pads[2]
        rows, columns = max(P + (Rw - 1) // 2, (H + top + 1) // 2), max(width, (W + left + 1) // 2)
        phases = _memory.zeros((2, 2, C, n, rows, columns), grad_cols.dtype)
        row_sum = _memory.empty((C, span + (Sw - 1) // 2), grad_cols.dtype)
        for r in range(Rw):
            for b in range(min(2, Sw)):
                row_sum[:, :span] = grad_cols[:, r, b]
                row_sum[:, span:] = 0  # never read; zeros, so that no add warns of a stale inf or NaN
                for s in range(b + 2, Sw, 2):
                    row_sum[:, s // 2 : s // 2 + span] += grad_cols[:, r, s]
                phases[r % 2, b, :, :, r // 2 : r // 2 + P, :width] += row_sum[:, :span].reshape(C, n, P, width)
        out_cn = out.transpose(1, 0, 2, 3)
        for a, b in _BLOCK_OFFSETS:
            (first_row, i, height), (first_column, j, breadth) = _phase_span(a, top, H), _phase_span(b, left, W)
            numpy.copyto(out_cn[:, :, first_row::2, first_column::2],
                         phases[a, b, :, :, i : i + height, j : j + breadth])

    def _col2im_wide(self, weight_t, grad_kn, P: int, Q: int, workspace, out):
        """Backward-data for stride 1 on wide rows: weight_t (G, C/G*R*S, K/G), grad_kn (G, K/G, n*P*Q)
        -> out, the (n, C, H, W) input gradient."""
        N, (C, H, W) = out.shape[0], self.x_shape[1:]
        R, S = self.weight.shape[2:]
        dh, dw = self.dilation
        top, bottom, left, right = self.pads
        Hp, Wp = H + top + bottom, W + left + right
        grad_cols = _widened_product(weight_t, grad_kn, N, P, Q, Wp, workspace).reshape(C, R, S, N * P * Wp)

        # NumPy adds contiguous rows several times faster than strided ones, so the taps of one kernel
        # row r are summed first, each shifted by s*dw along one contiguous (n*P*Wp) row per channel:
        # row_sum[c, (i, p, w)] is what kernel row r adds to grad_padded[i, c, p + r*dh, w]. A shift
        # carries the zero columns q >= Q over the row's end into the next row's start.
        span = N * P * Wp
        row_sum = _memory.empty((C, span + (S - 1) * dw), grad_kn.dtype)
        grad_padded = _memory.empty((C, N, Hp, Wp), grad_kn.dtype)
        grad_padded[:, :, P:] = 0  # the rows that the first kernel row does not write
        for r in range(R):
            row_sum[:, :span] = grad_cols[:, r, 0]
            row_sum[:, span:] = 0  # never read; zeros, so that no add warns of a stale inf or NaN
            for s in range(1, S):
                row_sum[:, s * dw : s * dw + span] += grad_cols[:, r, s]
            rows = grad_padded[:, :, r * dh : r * dh + P]
            if r == 0:
                rows[...] = row_sum[:, :span].reshape(C, N, P, Wp)
            else:
                rows += row_sum[:, :span].reshape(C, N, P, Wp)
        numpy.copyto(out, grad_padded[:, :, top : top + H, left : left + W].transpose(1, 0, 2, 3))


def _tiles(rows: int, columns: int, layers: int, tile: int) -> int:
    """Blocks of ``tile`` x ``tile`` results over ``layers`` (rows x columns) matrices."""
    return -(-rows // tile) * -(-columns // tile) * layers


def _fill_waves(tiles: int, reduction: int, splits: int, chunk: int, wave: int) -> tuple[int, int]:
    """(splits, chunk) of at most ``splits`` splits (chunks of whole reduction steps of 16) over which
    ``tiles`` blocks a split, run ``wave`` blocks at a time (the GPU's multiprocessors times the blocks
    each holds), take the fewest waves times chunk; of equals, the fewest splits."""
    best = (-(-tiles * splits // wave) * chunk, splits, chunk)
    for fewer in range(splits - 1, 0, -1):
        longer = -(-reduction // fewer)
        longer = -(-longer // 16) * 16
        count = -(-reduction // longer)
        cost = -(-tiles * count // wave) * longer
        if cost <= best[0]:
            best = (cost, count, longer)
    return best[1:]


def _widened_product(weight_t, grad_kn, n: int, P: int, Q: int, width: int, workspace):
    """dcols (G, C/G*R*S, n*P*width) = weight_t (G, C/G*R*S, K/G) @ grad_kn (G, K/G, n*P*Q) with each
    output row widened to ``width`` by zero columns, in ``workspace``: the taps of a kernel row then
    add as shifts of one contiguous row (``_col2im_wide``, ``_col2im_phases``)."""
    groups, group_rows, group_kernels = weight_t.shape
    grad_wide = _memory.empty((groups, group_kernels, n, P, width), grad_kn.dtype)
    grad_wide[..., :Q] = grad_kn.reshape(groups, group_kernels, n, P, Q)
    grad_wide[..., Q:] = 0
    grad_cols = _view(workspace, (groups, group_rows, n * P * width), grad_kn.dtype)
    _parallel.matmul(weight_t, grad_wide.reshape(groups, group_kernels, n * P * width), out=grad_cols)
    return grad_cols


def _gather_windows(x, kernel, stride, dilation, pads, P: int, Q: int, workspace):
    """im2col: the (C, R, S, n, P, Q) columns x_padded[i, c, p*sh + r*dh, q*sw + s*dw] at [c, r, s, i, p, q]
    of the n images of ``x`` for an R x S kernel, in ``workspace``; pads (top, bottom, left, right)."""
    N, C, H, W = x.shape
    R, S = kernel
    top, bottom, left, right = pads
    padded = x  # any strides: the view below is built from them
    if any(pads):
        padded = _memory.zeros((N, C, H + top + bottom, W + left + right), x.dtype)
        padded[:, :, top : top + H, left : left + W] = x
    stride_n, stride_c, stride_h, stride_w = padded.strides
    (sh, sw), (dh, dw) = stride, dilation
    windows = as_strided(
        padded,
        shape=(C, R, S, N, P, Q),
        strides=(stride_c, dh * stride_h, dw * stride_w, stride_n, sh * stride_h, sw * stride_w),
        writeable=False,
    )
    cols = _view(workspace, (C, R, S, N, P, Q), x.dtype)
    numpy.copyto(cols, windows)
    return cols


_BLOCK_OFFSETS = ((0, 0), (0, 1), (1, 0), (1, 1))


def _halves(P: int, Q: int) -> tuple[int, int]:
    """The 2x2 blocks of a P x Q output, down and across."""
    return -(-P // 2), -(-Q // 2)


def _blocks(grad):
    """The upstream gradient grad (n, K, P, Q) by 2x2 output blocks, images last, (2, 2, K, ceil(P/2),
    ceil(Q/2), n): [i, j, k, p, q, m] is grad[m, k, 2p + i, 2q + j], 0 for the outputs past P or Q."""
    n, K, P, Q = grad.shape
    P2, Q2 = _halves(P, Q)
    blocks = (_memory.empty if P % 2 == 0 and Q % 2 == 0 else _memory.zeros)((2, 2, K, P2, Q2, n), grad.dtype)
    for i, j in _BLOCK_OFFSETS:
        for m in range(0, n, _memory.IMAGE_TILE):
            numpy.copyto(blocks[i, j, :, : (P - i + 1) // 2, : (Q - j + 1) // 2, m : m + _memory.IMAGE_TILE],
                         grad[m : m + _memory.IMAGE_TILE, :, i::2, j::2].transpose(1, 2, 3, 0))
    return blocks


def _phase_span(parity: int, pad: int, size: int) -> tuple[int, int, int]:
    """Along one axis of ``size`` input pixels padded by ``pad`` before them, the pixels at padded
    positions of ``parity`` (2i + parity): (the first one's input index, its i, how many)."""
    first = (parity - pad) % 2
    return first, (first + pad) // 2, (size - first + 1) // 2


def _padded_phases(x, top: int, left: int, rows: int, columns: int):
    """The input x (n, C, H, W), zero-padded by ``top`` rows and ``left`` columns before it and zeros
    after it, split by stride-2 phase with the images last: (C, 2, 2, rows, columns, n), where
    [c, a, b, i, j, m] is padded pixel (2i + a, 2j + b) of channel c of image m."""
    n, C, H, W = x.shape
    phases = _memory.zeros((C, 2, 2, rows, columns, n), x.dtype)
    for a, b in _BLOCK_OFFSETS:
        (first_row, i, height), (first_column, j, breadth) = _phase_span(a, top, H), _phase_span(b, left, W)
        for m in range(0, n, _memory.IMAGE_TILE):
            numpy.copyto(phases[:, a, b, i : i + height, j : j + breadth, m : m + _memory.IMAGE_TILE],
                         x[m : m + _memory.IMAGE_TILE, :, first_row::2, first_column::2].transpose(1, 2, 3, 0))
    return phases


def _gather_blocks(phases, R: int, S: int, P2: int, Q2: int, workspace):
    """im2col of the blocked products, from ``_padded_phases``: the (C, R+1, S+1, P2, Q2, n) columns,
    in ``workspace``, where [c, r, s, p, q, m] is padded pixel (2p + r, 2q + s), the (r, s) tap of the
    (R+1) x (S+1) window of block (p, q): pixel (p + r//2, q + s//2) of phase (r % 2, s % 2). The
    taps of one phase are one strided view of it, whose rows are runs of Q2 * n contiguous values
    (with the images first they were runs of Q2 values at stride 2, and im2col took 1.4 to 4 times
    as long on the ConvNetJS layers)."""
    C, n = phases.shape[0], phases.shape[5]
    cols = _view(workspace, (C, R + 1, S + 1, P2, Q2, n), phases.dtype)
    for a, b in _BLOCK_OFFSETS:
        phase = phases[:, a, b]
        stride_c, stride_i, stride_j, stride_m = phase.strides
        taps = as_strided(phase, shape=(C, (R + 2 - a) // 2, (S + 2 - b) // 2, P2, Q2, n),
                          strides=(stride_c, stride_i, stride_j, stride_i, stride_j, stride_m), writeable=False)
        numpy.copyto(cols[:, a::2, b::2], taps)
    return cols


def _blocked_weight(weight):
    """(4 K, C (R+1) (S+1)): row (i*2 + j)*K + k holds weight[k] at offset (i, j) of an (R+1) x (S+1)
    window, zeros elsewhere: the weight of output (2p + i, 2q + j) on the window of block (p, q)."""
    K, C, R, S = weight.shape
    blocked = _memory.zeros((2, 2, K, C, R + 1, S + 1), weight.dtype)
    for i, j in _BLOCK_OFFSETS:
        blocked[i, j, :, :, i : i + R, j : j + S] = weight
    return blocked.reshape(4 * K, C * (R + 1) * (S + 1))


def _unblocked_grad_weight(grad_blocks, R: int, S: int):
    """The adjoint of _blocked_weight: (C (R+1) (S+1), 4 K) -> the (K, C, R, S) weight gradient."""
    K = grad_blocks.shape[1] // 4
    blocks = grad_blocks.reshape(-1, R + 1, S + 1, 2, 2, K)
    result = _memory.empty((K, blocks.shape[0], R, S), grad_blocks.dtype)
    total = result.transpose(1, 2, 3, 0)  # (C, R, S, K), as the blocks
    numpy.copyto(total, blocks[:, :R, :S, 0, 0])
    for i, j in _BLOCK_OFFSETS[1:]:
        total += blocks[:, i : i + R, j : j + S, i, j]
    return result


def _add_product(a, b, total, only: bool) -> None:
    """total += a @ b, or with ``only`` (the sum's one product) total = a @ b in place. The products
    land in recycled memory: a fresh array of megabytes costs a page fault per page (a 512x512 3x3
    weight's gradient took about 1,200 a step, and the step twice as long)."""
    if only:
        _parallel.matmul(a, b, out=total)
    else:
        total += _parallel.matmul(a, b, out=_memory.empty(total.shape, total.dtype))


def _sum_in_place(arrays):
    """arrays[0] + arrays[1] + ..., added in that order into arrays[0]; None for a list of Nones."""
    total = arrays[0]
    if total is not None:
        for array in arrays[1:]:
            numpy.add(total, array, out=total)
    return total


#: _all_finite splits its dot products among the cores in pieces of at least this many values.
FINITE_GRAIN = 1 << 20


def _all_finite(array) -> bool:
    """Whether ``array`` holds no inf or NaN, read off one reduction (one pass, no temporary): for
    contiguous float32 and float64 the sum of squares, BLAS's dot product (2-3 times as fast as
    NumPy's pairwise sum, which the others use); while work splits among the threads
    (``_parallel.splitting``, BLAS on one thread) in pieces on all cores (``FINITE_GRAIN``). A result
    that overflows (values past about 1e19 in float32) says no too: the caller then takes its exact
    path, which is only slower."""
    with numpy.errstate(over="ignore", invalid="ignore"):
        if array.dtype in (numpy.float32, numpy.float64) and array.flags.c_contiguous:
            flat, squares = array.reshape(-1), []
            if flat.size < 2 * FINITE_GRAIN or not _parallel.splitting():  # one product, BLAS's threads
                return bool(numpy.isfinite(numpy.dot(flat, flat)))

            def work(start, stop):
                with numpy.errstate(over="ignore", invalid="ignore"):  # each thread has its own state
                    squares.append(numpy.dot(flat[start:stop], flat[start:stop]))

            run_chunked(work, flat.size, FINITE_GRAIN)
            return bool(numpy.isfinite(numpy.sum(squares, dtype=array.dtype)))
        return bool(numpy.isfinite(array.sum()))


# The kernel paths of conv2d's GPU half, for the tests and benchmarks that compare them:
# - the launcher's own choice ("chosen");
# - the same with no reduction split (SPLIT_TARGET_BLOCKS), with splits until about 768 blocks run, or
#   with chunks down to 128 indices (SPLIT_MIN_CHUNK): see SPLIT_TARGET_BLOCKS;
# - the direct kernels only, as the launcher picks them but without the taps kernels, or with them in
#   the forward too (TAPS_FORWARD);
# - the launcher's choice with the tiles for short forward reductions too (no conv2d_forward_pixels),
#   or with backward-filter's splits not fitted to the GPU's waves (FILL_WAVES);
# - one tile for every product and the taps kernels wherever they apply (backward-data's gather for
#   few channels and the pixels forward turned off); the 128 tile exists on compute capability 7.0
#   and up;
# - Winograd's F(2x2, 3x3) or F(4x4, 3x3) wherever it applies, at any size.
_ANY_SIZE = dict(WINOGRAD_GPU_MIN_CHANNELS=0, WINOGRAD_GPU_MIN_MACS=0)
KERNEL_PATHS = {
    "chosen": {},
    "unsplit": dict(SPLIT_TARGET_BLOCKS=0),
    "split768": dict(SPLIT_TARGET_BLOCKS=768),
    "chunk128": dict(SPLIT_MIN_CHUNK=128),
    "taps_off": dict(TAP_STEP_CHANNELS=0, WINOGRAD_GPU_TILE=0),
    "taps_forward": dict(TAPS_FORWARD=True, WINOGRAD_GPU_TILE=0),
    "pixels_off": dict(PIXELS_FORWARD_MAX_REDUCTION=0),
    "waves_off": dict(FILL_WAVES=False),
    "tile64": dict(FORCE_TILE=64, GATHER_MAX_CHANNELS=0, WINOGRAD_GPU_TILE=0, TAPS_FORWARD=True,
                   PIXELS_FORWARD_MAX_REDUCTION=0),
    "tile128": dict(FORCE_TILE=128, GATHER_MAX_CHANNELS=0, WINOGRAD_GPU_TILE=0, TAPS_FORWARD=True,
                    PIXELS_FORWARD_MAX_REDUCTION=0),
    "winograd2": dict(WINOGRAD_GPU_TILE=2, **_ANY_SIZE),
    "winograd4": dict(WINOGRAD_GPU_TILE=4, **_ANY_SIZE),
}


def has_wide_tile(device) -> bool:
    """Whether ``device`` has conv2d's 128-tile kernels: a GPU of compute capability 7.0 and up, or cudasim."""
    return getattr(device, "compute_capability", Conv2d.WIDE_TILE_CAPABILITY) >= Conv2d.WIDE_TILE_CAPABILITY


def kernel_paths(device) -> list[str]:
    """The names of KERNEL_PATHS that ``device`` can run."""
    return [name for name in KERNEL_PATHS if name != "tile128" or has_wide_tile(device)]


@contextlib.contextmanager
def kernel_path(name: str):
    """Within the block, conv2d's GPU launches take kernel path ``name`` of KERNEL_PATHS (process-wide)."""
    if name not in KERNEL_PATHS:
        raise ValueError(f"unknown conv2d kernel path {name!r}; choose from {', '.join(KERNEL_PATHS)}")
    saved = {key: getattr(Conv2d, key) for key in KERNEL_PATHS[name]}
    try:
        for key, value in KERNEL_PATHS[name].items():
            setattr(Conv2d, key, value)
        yield
    finally:
        for key, value in saved.items():
            setattr(Conv2d, key, value)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D convolution, as ``torch.nn.functional.conv2d``.

    Args:
        input: (N, C, H, W) or unbatched (C, H, W), floating point.
        weight: (K, C/groups, R, S), the same dtype as input.
        bias: (K,) or None.
        stride, dilation: an int or a (height, width) pair, each >= 1.
        padding: an int or a pair (>= 0), ``'valid'`` (none) or ``'same'``: output ceil(input/stride),
            any odd padding pixel at the bottom/right (PyTorch's 'same' for stride 1, TensorFlow's for
            stride > 1, which PyTorch rejects).
        groups: >= 1, dividing both C and K.

    On ``cuda`` and ``cudasim`` the kernels take float32 only: another dtype raises TypeError there.
    On the cpu, 3x3 and 5x5 convolutions at stride 1 with enough channels (``Conv2d.WINOGRAD_CPU_*``)
    run Winograd's algorithm: float32 results then differ from the exact sum by up to about 1e-5 of
    their largest magnitude (im2col's, a few 1e-7), as cuDNN's Winograd algorithms do.

    Returns:
        (N, K, P, Q), or (K, P, Q) for unbatched input, with
        P = floor((H + pad_top + pad_bottom - dilation_h*(R-1) - 1) / stride_h) + 1, Q likewise.
    """
    op = "conv2d"
    x, unbatched = _shapes.batched_input(input, op)
    weight = as_tensor(weight, "weight", x.device)
    x_shape, weight_shape, dtype = x.shape, weight.shape, x.dtype  # each a property: read once
    if weight.dtype.kind != "f":
        raise TypeError(f"{op}: weight must be a floating-point tensor, got dtype {weight.dtype}")
    if len(weight_shape) != 4:
        raise ValueError(f"{op}: weight must be 4-D (K, C/groups, R, S), got shape {weight_shape}")
    if weight.dtype != dtype:
        raise TypeError(
            f"{op}: input has dtype {dtype} but weight has dtype {weight.dtype}; they must match "
            "(PyTorch refuses this too): convert one with .to(dtype)"
        )
    if type(groups) is not int:
        if isinstance(groups, bool) or not isinstance(groups, numbers.Integral):
            raise TypeError(f"{op}: groups must be an int, got {groups!r}")
        groups = int(groups)
    if groups < 1:
        raise ValueError(f"{op}: groups must be at least 1, got {groups}")
    channels, kernels = x_shape[1], weight_shape[0]
    if channels % groups:
        raise ValueError(
            f"{op}: groups={groups} does not divide the input's {channels} channels (input shape {x_shape})"
        )
    if kernels % groups:
        raise ValueError(
            f"{op}: groups={groups} does not divide the weight's {kernels} output channels "
            f"(weight shape {weight_shape})"
        )
    if weight_shape[1] * groups != channels:
        raise ValueError(
            f"{op}: input has {channels} channels but weight {weight_shape} with groups={groups} expects "
            f"{weight_shape[1] * groups} (weight.shape[1] * groups); input shape {x_shape}"
        )
    _kernels.require_float32(op, x, weight_shape)
    if groups > Conv2d.MAX_GRID_YZ and x.device.runs_kernels:
        raise ValueError(
            f"{op}: the kernels of device '{x.device}' run at most {Conv2d.MAX_GRID_YZ} groups, got {groups}"
        )
    inputs = [x, weight]
    if bias is not None:
        bias = as_tensor(bias, "bias", x.device)
        if bias.shape != (kernels,):
            raise ValueError(f"{op}: bias must have shape ({kernels},) for weight {weight_shape}, got {bias.shape}")
        if bias.dtype != dtype:
            raise TypeError(f"{op}: bias has dtype {bias.dtype} but input and weight have dtype {dtype}")
        inputs.append(bias)
    stride_hw = _shapes.pair(stride, "stride", op, minimum=1)
    dilation_hw = _shapes.pair(dilation, "dilation", op, minimum=1)
    kernel_hw = weight_shape[2:]
    pads = _shapes.conv_padding(padding, x_shape[2:], kernel_hw, stride_hw, dilation_hw, op)
    _shapes.check_window_fits(op, x_shape, pads, kernel_hw, dilation_hw, "weight")
    function = Conv2d(stride_hw, pads, dilation_hw, groups)
    y = function.apply(*inputs)
    if not y.requires_grad:
        function.release()  # no graph was recorded: backward will never need the im2col buffer
    return _shapes.unbatched_output(y, unbatched)
