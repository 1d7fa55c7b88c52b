"""conv2d's cpu half: ``Conv2dCpu``, the class ``conv2d.Conv2d`` takes ``forward_cpu`` and
``backward_cpu`` from, and its NumPy helpers. Shapes and names as in ``conv2d``.

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
dy @ cols^T, already in the weight's layout, see ``TRANSPOSED_FILTER_MAX``; a small weight's gradient
is a stack of products, an image each, see ``BY_IMAGE_FILTER_MAX``). The price is the
(K, N, P*Q) <-> (N, K, P*Q) transposes of the output and its gradient, each the size of the output
(cols is C*R*S/K times larger); a forward whose weight has few columns is a stack of products, an
image each, written into the output in place (``BY_IMAGE_ROWS_MAX``). The im2col buffer is kept
from forward for backward-filter (in chunks, backward rebuilds each chunk's columns from the saved
input), then overwritten by dcols.
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

3x3 and 5x5 stride-1 layers with enough channels and output tiles run Winograd's F(4x4, 3x3) or
F(2x2, 5x5) on the cpu too (``winograd.py``, ``WINOGRAD_CPU_MIN_CHANNELS``,
``WINOGRAD_CPU_MIN_TILES``), its transforms as BLAS products. F(2x2, 3x3) with its transforms as
whole-array NumPy adds was tried first and was slower than im2col where it mattered: forward +
backward of 32x64x32x32 -> 64 took 82-89 ms against im2col's 73-74 ms on the 2-core VM; F(4x4, 3x3)
as built takes 53-54 ms there.

Depthwise layers (groups == C == K) at stride 1 take no im2col: their forward copies the kernel taps'
contiguous runs of the padded input into columns, a product a plane, and backward loops over the taps
with whole-array multiply-adds on views of the padded input, in cache-sized blocks (``DEPTHWISE_CPU``).
Nor do 1x1 layers at stride 1 with no padding and one group, whose columns would copy the input: a
product an image on the input itself (``POINTWISE_CPU``).
"""

from __future__ import annotations

import math

import numpy
from numpy.lib.stride_tricks import as_strided

from . import _memory, _parallel, winograd
from ._parallel import blas_threads, run_chunked, single_threaded_blas, usable_cores
from ._rows import whole_rows


def _view(buffer, shape: tuple, dtype):
    """The head of a flat uint8 ``buffer`` as a C-contiguous array of ``shape`` and ``dtype``."""
    dtype = numpy.dtype(dtype)
    return buffer[: math.prod(shape) * dtype.itemsize].view(dtype).reshape(shape)


class Conv2dCpu:
    """conv2d on the cpu: ``conv2d.Conv2d``'s ``forward_cpu`` and ``backward_cpu``, with the paths
    they choose among and the settings that choose them."""

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
        if self._depthwise_shape(x.shape, weight.shape):
            self.x_shape, self.weight, self.has_bias = tuple(x.shape), weight, bias is not None
            self.x, self.depthwise = x, True
            self._forward_depthwise(x, weight, bias, y)
            return y
        parts = self._cpu_parts(x, weight, P, Q)
        if parts == 1:
            self._forward_images(x, weight, bias, y, N, self._winograd_filter(x, weight, P, Q, N))
            return y
        self.x_shape, self.weight, self.has_bias = x.shape, weight, bias is not None
        self.parts = [(N * index // parts, N * (index + 1) // parts,
                       type(self)(self.stride, self.pads, self.dilation, self.groups)) for index in range(parts)]

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
        N, C = x.shape[:2]
        R, S = weight.shape[2:]
        P, Q = y.shape[2:]
        self._save_shapes(x.shape, weight, P, Q, x.dtype.itemsize)
        self.has_bias = bias is not None
        if self._pointwise_shape(x.shape, weight.shape, batch):
            self.x, self.pointwise = x, True
            self._forward_pointwise(x, weight, bias, y)
            return
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

    def _save_shapes(self, x_shape: tuple, weight, P: int, Q: int, itemsize: int) -> None:
        """Saves the input's shape and the weight, and sizes im2col's chunks of images (``chunk``) and
        their workspace (``workspace_bytes``) for a P x Q output (see SPLIT_BYTES)."""
        N, C, _, W = x_shape
        R, S = weight.shape[2:]
        _, _, left, right = self.pads
        self.x_shape, self.weight = tuple(x_shape), weight
        # Per image: room for cols (C*R*S, P*Q) and a row of ones after them (the bias of the products
        # an image, BY_IMAGE_ROWS_MAX), and for backward's dcols, whose rows are widened to Wp with
        # stride 1 and by (S-1)//2 with stride 2.
        row = {(1, 1): W + left + right, (2, 2): Q + (S - 1) // 2}.get(self.stride, Q)
        image_bytes = (C * R * S + 1) * P * row * itemsize
        self.chunk = max(1, N if N * image_bytes <= self.SPLIT_BYTES else min(N, self.CHUNK_BYTES // image_bytes))
        self.workspace_bytes = self.chunk * image_bytes

    def grad_input_cpu(self, grad, weight, x_shape: tuple):
        """The input gradient alone, with no forward before it: grad (N, K, P, Q), weight (K, C/G, R, S)
        -> dx of ``x_shape`` (N, C, H, W), an input whose forward gives P x Q. On the plain columns (no
        2x2 blocks, Winograd or parts) or the depthwise path; conv_transpose2d's forward."""
        if self._depthwise_shape(x_shape, weight.shape):
            self.x_shape, self.weight = tuple(x_shape), weight
            grad_input = _memory.empty(x_shape, grad.dtype)
            self._grad_input_depthwise(grad, grad_input)
            return grad_input
        self._save_shapes(x_shape, weight, *grad.shape[2:], grad.dtype.itemsize)
        grad_input = _memory.empty(x_shape, grad.dtype)
        self._backward_images(grad, grad_input, False, False, None)
        self.release()
        return grad_input

    def grad_weight_cpu(self, x, grad, weight):
        """The weight gradient alone, with no forward before it: x (N, C, H, W), grad (N, K, P, Q) ->
        dweight of ``weight``'s shape (K, C/G, R, S), the columns built from x chunk by chunk, on the
        plain columns or the depthwise path; conv_transpose2d's weight gradient."""
        if self._depthwise_shape(x.shape, weight.shape):
            self.x_shape, self.weight = tuple(x.shape), weight
            return self._grad_weight_depthwise(x, grad)
        self._save_shapes(x.shape, weight, *grad.shape[2:], x.dtype.itemsize)
        self.x = x
        grad_weight = self._backward_images(grad, None, True, False, None)[1]
        self.release()
        return grad_weight

    def _forward_columns(self, x, weight, bias, workspace, y):
        """y = weight @ cols, one product per group over each chunk of images, or a product per image
        and group written into y itself (``BY_IMAGE_ROWS_MAX``)."""
        N, K, P, Q = y.shape
        groups, group_rows = self.groups, math.prod(weight.shape[1:])
        weight_g = weight.reshape(groups, K // groups, group_rows)
        by_image = group_rows <= self.BY_IMAGE_ROWS_MAX and self._images_apart(P, Q)
        y_knpq = None
        if self.chunk > 1 and not by_image:
            y_knpq = _memory.empty(K * self.chunk * P * Q * x.dtype.itemsize, numpy.uint8)
        for start, stop in self._chunks(N):
            cols = self._im2col(x[start:stop], P, Q, workspace)
            columns = (stop - start) * P * Q
            if by_image:
                self._forward_images_products(weight_g, cols, bias, workspace, y[start:stop])
                continue
            # One image's (K, 1, P*Q) is its (1, K, P*Q): the product writes into y itself.
            y_chunk = y[start:stop] if stop - start == 1 else _view(y_knpq, (K, stop - start, P, Q), x.dtype)
            _parallel.matmul(weight_g, cols.reshape(groups, group_rows, columns),
                             out=y_chunk.reshape(groups, K // groups, columns))
            if bias is not None:
                rows = y_chunk.reshape(K, columns)
                with whole_rows(columns):
                    numpy.add(rows, bias.reshape(K, 1), out=rows)  # contiguous rows: faster than adding it to y
            if stop - start > 1:
                numpy.copyto(y[start:stop], y_chunk.transpose(1, 0, 2, 3))

    def _forward_images_products(self, weight_g, cols, bias, workspace, y):
        """y (n, K, P, Q) = weight_g (G, K/G, C/G*R*S) @ cols, a product an image and group written into
        y in place, each reading its image's columns in place (see BY_IMAGE_ROWS_MAX). With one group
        the bias comes with the products: the weight gains a column, the bias, and cols a row of ones
        after them in ``workspace`` (an add over y's planes took a third of the products' time again)."""
        n, K, P, Q = y.shape
        groups, group_rows = weight_g.shape[0], weight_g.shape[2]
        pixels = P * Q
        if bias is not None and groups == 1:
            weight_g = numpy.concatenate((weight_g[0], bias.reshape(K, 1)), axis=1)[numpy.newaxis]
            cols = _view(workspace, (group_rows + 1, n * pixels), y.dtype)
            cols[group_rows] = 1
            group_rows += 1
        y_images = y.reshape(n, groups, K // groups, pixels)
        _parallel.matmul(weight_g, cols.reshape(groups, group_rows, n, pixels).transpose(2, 0, 1, 3), out=y_images)
        if bias is not None and groups > 1:
            planes = y.reshape(n, K, pixels)
            with whole_rows(pixels):
                numpy.add(planes, bias.reshape(K, 1), out=planes)

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
    #: A weight of at most BY_IMAGE_ROWS_MAX columns (C*R*S) keeps the plain columns too, whose forward
    #: is then a product an image. Forward + backward without the input's gradient (a first layer), in
    #: one process alternating, against the blocked products: ConvNetJS's conv1 0.61-0.66 of the time
    #: at batch 32 and 0.74-0.78 at 64, LeNet's first layer (64x1x28x28 -> 6) 0.60, the lecture's 5x5
    #: layer 0.66-0.68, 5x5 on 4 and 5 input channels 0.73 and 0.85, 7x7 on 2 channels 0.69, 7x7 and
    #: 6x6 inputs 0.73 and 0.90, batch 4 and 8 0.76 and 0.87; with 6 and 8 input channels (150 and 200
    #: columns) 0.95 and 1.05. The forward alone 0.62-0.66. With the input's gradient, whose wide
    #: backward-data the blocked one outruns here, 0.90-1.09 (ConvNetJS's conv1 0.90, the lecture's
    #: layer 1.09, LeNet's 1.03, 4 and 5 input channels 0.90 and 1.04). The plain columns kept for
    #: backward are larger: 75 rows a pixel for a 5x5 kernel on 3 channels against 108 a 2x2 block.
    BLOCKED_CPU_RULE = ((1.5, 48, 4, 1), (1.8, 16, 32, 16))
    BLOCKED_CPU_MIN_MACS = 1 << 22

    def _blocked_shape(self, weight_shape: tuple, P: int, Q: int, batch: int) -> bool:
        """Whether a batch of ``batch`` images takes the 2x2-block products (those of its images that are
        finite)."""
        K, C, R, S = weight_shape
        extra = (R + 1) * (S + 1) / (R * S)
        return (self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1
                and C * R * S > self.BY_IMAGE_ROWS_MAX
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
                with whole_rows(columns):
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
    #: input and output channels and at most twice as many output as input channels (no more, before
    #: the change below). Measured with conv2d's parts and the 2x2-block path, forward +
    #: backward against the path the layer took (median of 31, three process-alternating
    #: runs): 0.82-0.87 on the small ResNet's 64x16x32x32 -> 16 (2x2 blocks), 0.86-0.89 at batch 32,
    #: 0.75-0.77 at 64x16x8x8, 0.74-0.75 on 32x20x16x16 -> 16, 0.82-0.84 on 64x32x32x32 -> 16, 0.81-0.82
    #: on 32x24x32x32 -> 24 (plain columns), 0.74-0.80 at batch 4 and 0.95-0.97 at batch 16 (columns);
    #: about the same at 56x56 (0.96-1.02) and batch 8 (1.01-1.12); but 1.13-1.18 on 64x16x32x32 -> 32
    #: and 1.02-1.07 -> 24.
    #: Since the data's transforms run as two products a patch axis (``winograd.TRANSFORM_COLUMNS``),
    #: measured again against the path the layer took otherwise (a 2-core AMD EPYC VM, in one process
    #: alternating, median of 11, 8 rounds): 5x5 layers took 0.88-0.96 of the time at 32 channels (the
    #: 2x2 blocks; batch 4 to 64, 8x8 to 32x32), 0.77-1.00 at 40 and 48, 0.97 at 24 and 1.60 on ConvNetJS's
    #: conv2 (16 -> 20), so 5x5 takes it from 32 channels; 3x3 from 16 input channels to twice as many
    #: output channels 0.78-0.98 (16 -> 32 at 16x16 to 56x56, batch 1 to 64; 16 -> 24 0.81-0.85, 24 -> 48
    #: 1.02), to three times as many 1.16.
    #: F(2x2, 3x3) with its transforms as BLAS products too (4x4 patches: 16 products and a weight
    #: transform 2.25 times smaller, for 1.78 times the multiply-adds) was measured against these
    #: paths on the 2-core Intel VM (forward + backward, median of 11-15, two process-alternating
    #: runs) and not built: it gained only where the weight's transforms outweigh the products, on
    #: 32x512x4x4 -> 512 (0.78-0.92 of F(4x4, 3x3)'s time in one part, 0.86-0.96 in two) and
    #: 16x512x4x4 (0.90-0.99 of im2col's); 0.98 at 64x512x4x4 and 32x256x4x4, but 1.14-1.15 at
    #: 128x512x4x4 and 32x512x7x7, 1.24-1.53 at 32x256x8x8 and 32x128x16x16; against im2col 1.16-1.26
    #: at 8x512x4x4 and 4x512x7x7, 2.0 at 1x512x7x7.
    WINOGRAD_CPU_MIN_CHANNELS = {3: 32, 5: 32}
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
                     or R == 3 and min(C, K) >= self.WINOGRAD_CPU_NARROW_CHANNELS and K <= 2 * C)
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

    #: A weight gradient of at most BY_IMAGE_FILTER_MAX values (K * C/G * R * S) is that product taken
    #: an image at a time, reading the upstream gradient in place, and summed over the images
    #: (``_add_image_products``): one long product of so few rows and columns ran at a third of BLAS's
    #: rate or less on the 2-core VM, and from two threads at once (conv2d's parts) each took twice as
    #: long as alone, where a stack of short products did not slow. Backward-filter alone (median of 25,
    #: against the one product and the gradient's copy it reads, in one process, alternating): the
    #: small ResNet's stem (64x3x32x32, 3x3, 16 out) 0.66 against 1.87 ms, its 1x1 stride-2 layers 0.32
    #: against 0.85 (16->32) and 0.38 against 0.43 (32->64), CIFAR ResNet-18's stem 1.27 against 1.61,
    #: LeNet's first layer (32x1x28x28, 5x5, 6 out) 0.18 against 0.42; past it 1.01-1.15 of the time
    #: (4,608 to 73,728 values, but 8,192 and 9,408: 0.87 and 0.92). Where backward-data reads the
    #: gradient by columns too, its copy is made anyway, and the whole backward gains less: with the
    #: input gradient, 0.71-0.83 of its time up to BY_IMAGE_FILTER_MAX_BESIDE_COLUMNS values, 0.97-1.17
    #: at 1,728-2,048. An image's product must be at least BY_IMAGE_MIN_PIXELS long: the lecture's 7x7
    #: layers (5x5 and 3x3 outputs) took 1.22 of the time an image at a time.
    BY_IMAGE_FILTER_MAX = 1 << 11
    BY_IMAGE_FILTER_MAX_BESIDE_COLUMNS = 1 << 9
    BY_IMAGE_MIN_PIXELS = 64

    #: On the plain columns, a forward whose weight has at most BY_IMAGE_ROWS_MAX columns (C/G*R*S)
    #: is a product an image (and group), each reading its image's columns in place and writing its
    #: (K, P*Q) output into y itself (``_forward_images_products``), instead of one product over all
    #: the images into (K, n*P*Q) and a transposing copy into y: with so short a weight the copy costs
    #: as much as the product. As with the weight gradient, images of at least BY_IMAGE_MIN_PIXELS
    #: output pixels, more than one a chunk. Measured on the 2-core VM, the forward alone against the
    #: one product (the least of three medians of 25, alternating in one process): 16 columns (the
    #: small ResNet's 1x1 stride-2 16->32 layer, batch 64) 0.55-0.60 of the time, 25 (LeNet's first
    #: layer on the plain columns, batch 32) 0.61-0.62, 27 (3x3 stems of 16 and 64 channels, batch 32
    #: and 64) 0.71-0.84, 32-36 0.67-0.76, 48-128 0.81-0.96; past it mixed: 144-150 0.80-1.05, 256-576
    #: 0.99-1.04. On outputs of fewer pixels, 0.88-1.05 (the lecture's 7x7 layers, 25 and 9 pixels,
    #: 1.04-1.05).
    BY_IMAGE_ROWS_MAX = 1 << 7

    def _images_apart(self, P: int, Q: int) -> bool:
        """Whether a product may go an image at a time (BY_IMAGE_FILTER_MAX, BY_IMAGE_ROWS_MAX): more than
        one image a chunk, each of at least BY_IMAGE_MIN_PIXELS output pixels."""
        return self.chunk > 1 and P * Q >= self.BY_IMAGE_MIN_PIXELS

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
        if self.depthwise:
            if need_input:
                self._grad_input_depthwise(grad, grad_input)
            grads = (grad_input, self._grad_weight_depthwise(self.x, grad) if need_weight else None,
                     grad.sum(axis=(0, 2, 3)) if need_bias else None)
        elif self.parts is None:
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
        if self.pointwise:
            return self._backward_pointwise(grad, grad_input, need_weight, need_bias)
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
        data_path = self._data_path(grad, P, Q) if need_input else None
        # The blocked products take the gradient in blocks; the others, but the weight gradient's product
        # an image at a time (BY_IMAGE_FILTER_MAX), in the layout of the forward's GEMM output,
        # (G, K/G, n*P*Q) (one image's gradient has it).
        data_by_columns = data_path not in (None, "blocked")
        by_image = False
        if need_weight and self.blocked:  # (C (R+1) (S+1), 4 K)
            grad_weight_blocks = new_sum((group_channels * (R + 1) * (S + 1), 4 * K), grad.dtype)
        elif need_weight:  # in the weight's own layout, or transposed (see TRANSPOSED_FILTER_MAX)
            transposed = K * group_rows <= self.TRANSPOSED_FILTER_MAX
            most = self.BY_IMAGE_FILTER_MAX_BESIDE_COLUMNS if data_by_columns else self.BY_IMAGE_FILTER_MAX
            by_image = transposed and K * group_rows <= most and self._images_apart(P, Q)
            grad_weight_g = new_sum((groups, group_rows, K // groups) if transposed else
                                    (groups, K // groups, group_rows), grad.dtype)
        grad_bias = numpy.zeros(K, grad.dtype) if need_bias else None
        weight_t = self.weight.reshape(groups, K // groups, group_rows).swapaxes(1, 2)
        by_columns = (need_weight and not self.blocked and not by_image) or data_by_columns
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
                if by_image:
                    _add_image_products(cols, grad[start:stop], grad_weight_g, only)
                elif transposed:
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
        dcols = math.prod(self.weight.shape[1:]) * self.groups * self.chunk * P * Q  # C*R*S*n*P*Q
        if (self.dilation == (1, 1) and R * S > 1 and self.PHASES_WIDENING * ((S - 1) // 2) <= Q
                and dcols >= self.PHASES_MIN_VALUES):
            return "phases"
        return "plain"

    # ----------------------------------------------------------------- pointwise
    #: A 1x1 layer at stride 1 with no padding and one group (ResNet-50's bottlenecks, MobileNetV2's
    #: expansions and projections) takes no columns on the cpu: its columns would be a copy of the
    #: input, (C, n, H*W). Its forward is a product an image, y[i] (K, H*W) = weight (K, C) @ x[i]
    #: (C, H*W), read and written in place (one stacked matmul); backward-data likewise weight^T @
    #: dy[i]; backward-filter the sum over the images of dy[i] @ x[i]^T (POINTWISE_PRODUCTS_BYTES). The
    #: input itself is kept for backward, no columns. Images of fewer than BY_IMAGE_MIN_PIXELS pixels
    #: keep the columns (but a batch of one): their products are short, and backward-filter's sum adds
    #: a (K, C) product an image. POINTWISE_CPU = False sends such layers to the columns.
    #: Measured on the 2-core AMD EPYC VM (float32, batch 8, the least of two medians of 9, alternating
    #: with the columns in one process), ResNet-50's 1x1 layers at 112x112 input, forward / forward +
    #: backward-data / forward + backward-filter in ms: 64->256 on 28x28 1.48 / 3.58 / 3.15 against
    #: 1.50 / 4.69 / 4.44, 512->128 on 14x14 1.28 / 3.02 / 3.20 against 1.65 / 4.59 / 3.77, 64->256 on
    #: 32x8x8 0.50 / 1.09 / 1.13 against 0.63 / 1.64 / 1.42; but on 4x4, 2048->512 1.86 / 5.37 / 11.27
    #: against 1.88 / 4.54 / 4.91, and on 7x7 1024->256 4.08 against 3.55 forward + backward-filter.
    #: Training steps (three alternating runs): ResNet-50 at batch 4 on 224x224 909-1090 ms against
    #: 951-1155, MobileNetV2 at batch 8 717-841 against 841-907; the process's peak resident set rose by
    #: 2016 MiB against 2242 (ResNet-50, batch 8) and 1152 against 1251 (MobileNetV2) in two steps.
    POINTWISE_CPU = True
    pointwise = False  # whether forward took the pointwise path

    #: Backward-filter takes its products an image each in stacks of at most POINTWISE_PRODUCTS_BYTES
    #: of (K, C) products, each stack summed into the weight gradient in order.
    POINTWISE_PRODUCTS_BYTES = 1 << 22

    def _pointwise_shape(self, x_shape: tuple, weight_shape: tuple, batch: int) -> bool:
        """Whether images of ``x_shape`` in a batch of ``batch`` take the pointwise path (see POINTWISE_CPU)."""
        return (self.POINTWISE_CPU and tuple(weight_shape[2:]) == (1, 1) and self.stride == (1, 1)
                and not any(self.pads) and self.groups == 1
                and (batch == 1 or x_shape[2] * x_shape[3] >= self.BY_IMAGE_MIN_PIXELS))

    def _forward_pointwise(self, x, weight, bias, y) -> None:
        """y (n, K, H, W) = weight (K, C, 1, 1) @ each image of x (n, C, H, W), plus bias (K,) unless None."""
        n, C, H, W = x.shape
        K = weight.shape[0]
        planes = y.reshape(n, K, H * W)
        _parallel.matmul(weight.reshape(K, C), x.reshape(n, C, H * W), out=planes)
        if bias is not None:
            with whole_rows(H * W):
                numpy.add(planes, bias.reshape(K, 1), out=planes)

    def _backward_pointwise(self, grad, grad_input, need_weight: bool, need_bias: bool) -> tuple:
        """``_backward_images`` on the pointwise path: grad (n, K, H, W) -> (grad_input written, or None;
        dweight (K, C, 1, 1) or None; dbias (K,) or None)."""
        n, K, H, W = grad.shape
        C = self.x_shape[1]
        grad_planes = grad.reshape(n, K, H * W)
        weight = self.weight.reshape(K, C)
        if grad_input is not None:
            _parallel.matmul(weight.T, grad_planes, out=grad_input.reshape(n, C, H * W))
        grad_weight = grad_bias = None
        if need_weight:
            x_planes = self.x.reshape(n, C, H * W)
            grad_weight = _memory.empty(self.weight.shape, grad.dtype)
            total = grad_weight.reshape(K, C)
            step = max(1, self.POINTWISE_PRODUCTS_BYTES // max(K * C * grad.dtype.itemsize, 1))
            for start in range(0, n, step):
                stop = min(start + step, n)
                products = _parallel.matmul(grad_planes[start:stop], x_planes[start:stop].swapaxes(1, 2),
                                            out=_memory.empty((stop - start, K, C), grad.dtype))
                if start == 0:
                    numpy.sum(products, axis=0, out=total)
                else:
                    total += products.sum(axis=0)
            if n == 0:
                total[...] = 0
        if need_bias:
            grad_bias = numpy.matmul(grad_planes, numpy.ones(H * W, grad.dtype)).sum(axis=0)
        return grad_input, grad_weight, grad_bias

    # ----------------------------------------------------------------- depthwise
    #: A depthwise layer (groups == C == K: one input and one output channel a group, MobileNet's
    #: 3x3 layers) takes no im2col columns on the cpu, whose rows of Q are copied from strided windows:
    #: the padded input is kept as its sh x sw stride phases (``_depthwise_planes``; with stride 1 the
    #: padded input itself), in which every tap reads a unit-stride view, and as "wide" rows: each output
    #: row runs over its phase's whole width, so that the rows of a tap follow each other and each tap
    #: is one contiguous run of P*Wph values a plane (NumPy adds runs of Q at stride 2 several times
    #: slower), the Wph - Q extra columns of a row dropped at the end. The forward copies a block's taps
    #: into columns of those runs, (n, c, R*S, P*Wph) (at stride 1 through one view, plane by plane:
    #: tap by tap took twice as long), and takes one (1, R*S) by (R*S, P*Wph) product a plane, in
    #: blocks of about DEPTHWISE_COLUMNS_BYTES of columns; backward-data is a loop over the taps, each
    #: adding the weighted upstream gradient into its view of a padded gradient, then cropped, and
    #: backward-filter a dot product a tap and channel. DEPTHWISE_CPU = False sends such layers to
    #: im2col. Backward-data takes the wide rows where the weight is finite, backward-filter where the
    #: input is: the extra columns of the upstream gradient are zeros, which an inf or NaN would turn to
    #: NaN; else rows of Q.
    #: Backward's planes go in blocks of about DEPTHWISE_BLOCK_BYTES of padded input (one image's
    #: channels in parts, or whole images), each through all its taps while its arrays stay in the cache
    #: (in one pass over the whole of a 144x56x56 layer at batch 8 the taps took twice as long), on one
    #: thread: split among the two cores of the VM (``_parallel.run_chunked``) a layer alone ran up to
    #: twice as fast, but MobileNetV2's inference no faster, at times slower (OpenBLAS's threads, still
    #: spinning after the 1x1 layers' products, share the cores, and the split window that follows puts
    #: those products on one thread).
    #: Measured on the 2-core AMD EPYC VM (3x3, padding 1, float32, the least of 5 medians of 11,
    #: alternating with im2col in one process), with the forward then a loop over the taps too (a
    #: multiply and an add of whole arrays each), the time against im2col's: forward 0.62-0.84 and
    #: forward + backward 0.41-0.67 at stride 1 (144x56x56 and 32x112x112 at batch 1 and 8, 960x7x7);
    #: at stride 2 forward + backward 0.76-0.91 (144x56x56, 96x112x112 at batch 1, 576x14x14) but 1.18 on
    #: 96x112x112 at batch 8, and the forward 2.1 times on 144x56x56 at batch 1 and 1.36 on 96x112x112
    #: at batch 8 (the input, four times the output, is copied into its phases); with the forward's
    #: columns still slower at stride 2 (1.2-2.1 times im2col's forward on 144x56x56, 192x28x28 and
    #: 576x14x14 at batch 1, 1.1-1.9 on 96x112x112 at batch 8; 0.5-1.0 on 96x112x112 at batch 1). So
    #: layers of stride past DEPTHWISE_CPU_MAX_STRIDE keep im2col.
    #: The multiplies by a weight a channel run along each channel's run of P*Wph values unbuffered
    #: (``_rows.whole_rows``): stride 1, three runs alternating in one process, 1x192x28x28 forward
    #: (then on the taps) 1.04-1.06 -> 0.68-0.81 ms and forward + backward 3.4-4.0 -> 2.7-3.3 ms,
    #: 8x192x28x28 31-36 -> 23-24.5 ms and 8x144x56x56 63-66 -> 50-53 ms. The forward's columns against
    #: its taps (three runs, alternating processes, median of 21, ms): 1x144x56x56 1.09-1.66 against
    #: 1.85-1.98, 1x192x28x28 0.39-0.61 against 0.76-0.86, 1x384x14x14 0.31-0.46 against 0.56-0.83,
    #: 1x960x7x7 0.30-0.43 against 0.60-0.69, 8x192x28x28 4.8-5.2 against 6.2-6.8, 1x32x112x112
    #: 1.19-1.61 against 1.34-1.63.
    DEPTHWISE_CPU = True
    DEPTHWISE_CPU_MAX_STRIDE = 1
    DEPTHWISE_BLOCK_BYTES = 1 << 20
    DEPTHWISE_COLUMNS_BYTES = 1 << 21
    depthwise = False  # whether forward took the depthwise path

    def _depthwise_shape(self, x_shape: tuple, weight_shape: tuple) -> bool:
        """Whether a layer of these shapes takes the depthwise path (see DEPTHWISE_CPU)."""
        return (self.DEPTHWISE_CPU and max(self.stride) <= self.DEPTHWISE_CPU_MAX_STRIDE
                and weight_shape[1] == 1 and self.groups == x_shape[1] == weight_shape[0])

    def _depthwise_phases(self) -> tuple[int, int, int]:
        """(Hph, Wph, plane): the height and width of the padded input's stride phases, and the length
        of a phase in the depthwise path's flat planes: Hph*Wph values, then ((S-1)*dw) // sw that the
        wide rows' last taps read past them."""
        H, W = self.x_shape[2:]
        top, bottom, left, right = self.pads
        (sh, sw), S = self.stride, self.weight.shape[3]
        Hph, Wph = -(-(H + top + bottom) // sh), -(-(W + left + right) // sw)
        return Hph, Wph, Hph * Wph + (S - 1) * self.dilation[1] // sw

    def _depthwise_spans(self):
        """For each stride phase (a, b) of the padded input, padded pixels (i*sh + a, j*sw + b): its
        index a*sw + b, the input's pixels in it (rows first_row::sh, columns first_column::sw) and
        where they lie in the phase (rows row:row + height, columns column:column + breadth)."""
        (H, W), (sh, sw) = self.x_shape[2:], self.stride
        top, left = self.pads[0], self.pads[2]
        for a in range(sh):
            (first_row, row, height) = _stride_phase_span(a, sh, top, H)
            for b in range(sw):
                (first_column, column, breadth) = _stride_phase_span(b, sw, left, W)
                yield (a * sw + b, (slice(first_row, None, sh), slice(first_column, None, sw)),
                       (slice(row, row + height), slice(column, column + breadth)))

    def _depthwise_planes(self, x):
        """The n images x (n, c, H, W) zero-padded, as the flat planes of their stride phases
        (n, c, sh*sw, plane) (``_depthwise_phases``)."""
        n, c = x.shape[:2]
        Hph, Wph, plane = self._depthwise_phases()
        planes = _memory.zeros((n, c, self.stride[0] * self.stride[1], plane), x.dtype)
        for phase, pixels, span in self._depthwise_spans():
            numpy.copyto(planes[:, :, phase, : Hph * Wph].reshape(n, c, Hph, Wph)[(..., *span)], x[(..., *pixels)])
        return planes

    def _depthwise_taps(self, planes, P: int, width: int):
        """(r, s, view) for each tap: view (n, c, P, width) of the planes (n, c, sh*sw, plane), whose
        [i, c, p, q] is padded pixel (p*sh + r*dh, q*sw + s*dw) of plane (i, c) for q < Q: pixel
        (p + r*dh // sh, q + s*dw // sw) of phase (r*dh % sh, s*dw % sw). Wide rows (width Wph) read on
        past a row's Q outputs into the next row, and at most ((S-1)*dw) // sw past the phase's last."""
        R, S = self.weight.shape[2:]
        (sh, sw), (dh, dw) = self.stride, self.dilation
        Wph = self._depthwise_phases()[1]
        stride_n, stride_c, _, item = planes.strides
        for r in range(R):
            for s in range(S):
                phase, offset = (r * dh % sh) * sw + s * dw % sw, (r * dh // sh) * Wph + s * dw // sw
                yield r, s, as_strided(planes[:, :, phase, offset:], shape=planes.shape[:2] + (P, width),
                                       strides=(stride_n, stride_c, Wph * item, item))

    def _depthwise_blocks(self, work, block_bytes: int | None = None) -> list:
        """[(start, stop, first, last, work(start, stop, first, last)), ...] for the blocks of images
        start:stop and channels first:last that cover the (N, C) planes, in order, each of about
        ``block_bytes`` (default DEPTHWISE_BLOCK_BYTES) of padded input (at least one plane)."""
        block_bytes = block_bytes or self.DEPTHWISE_BLOCK_BYTES
        N, C = self.x_shape[:2]
        phases = self.stride[0] * self.stride[1]
        image_bytes = C * phases * self._depthwise_phases()[2] * self.weight.dtype.itemsize
        if image_bytes >= block_bytes:
            count = min(C, -(-image_bytes // block_bytes))
            blocks = [(n, n + 1, C * i // count, C * (i + 1) // count) for n in range(N) for i in range(count)]
        else:
            count = -(-N * image_bytes // block_bytes)
            blocks = [(N * i // count, N * (i + 1) // count, 0, C) for i in range(count)]
        return [block + (work(*block),) for block in blocks]

    def _depthwise_widened(self, grad, width: int):
        """grad (n, c, P, Q) with zero columns to ``width``, or grad itself where width is Q."""
        Q = grad.shape[3]
        if width == Q:
            return grad
        widened = _memory.empty(grad.shape[:3] + (width,), grad.dtype)
        widened[..., :Q] = grad
        widened[..., Q:] = 0
        return widened

    def _forward_depthwise(self, x, weight, bias, y) -> None:
        """y (N, C, P, Q) = the depthwise convolution of x (N, C, H, W) by weight (C, 1, R, S), plus bias
        (C,) unless None: each block's taps copied into columns (n, c, R*S, P*Wph), wide rows, then one
        (1, R*S) by (R*S, P*Wph) product a plane (see DEPTHWISE_COLUMNS_BYTES)."""
        P, Q = y.shape[2:]
        R, S = weight.shape[2:]
        width = self._depthwise_phases()[1]
        weight_rows = weight.reshape(weight.shape[0], 1, R * S)

        def work(start, stop, first, last):
            n, c = stop - start, last - first
            cols = _memory.empty((n, c, R * S, P * width), y.dtype)
            planes = self._depthwise_planes(x[start:stop, first:last])
            if self.stride == (1, 1):  # every tap in one view of the planes, copied plane by plane
                (dh, dw), (stride_n, stride_c, _, item) = self.dilation, planes.strides
                taps = as_strided(planes[:, :, 0], shape=(n, c, R, S, P * width),
                                  strides=(stride_n, stride_c, dh * width * item, dw * item, item))
                numpy.copyto(cols.reshape(n, c, R, S, P * width), taps)
            else:
                for r, s, view in self._depthwise_taps(planes, P, width):
                    numpy.copyto(cols[:, :, r * S + s].reshape(n, c, P, width), view)
            wide = numpy.matmul(weight_rows[first:last], cols, out=_memory.empty((n, c, 1, P * width), y.dtype))
            rows, target = wide.reshape(n, c, P, width)[..., :Q], y[start:stop, first:last]
            if bias is None:
                numpy.copyto(target, rows)
            else:
                with whole_rows(P * Q if width == Q else Q):
                    numpy.add(rows, bias[first:last].reshape(-1, 1, 1), out=target)

        self._depthwise_blocks(work, max(1, self.DEPTHWISE_COLUMNS_BYTES // (R * S)))

    def _grad_input_depthwise(self, grad, grad_input) -> None:
        """grad (N, C, P, Q) -> grad_input (N, C, H, W), the depthwise forward's adjoint: each tap adds
        weight[:, 0, r, s] * grad into its view of the zero padded gradient's phases, whose input pixels
        are then copied out."""
        P, Q = grad.shape[2:]
        Hph, Wph, plane = self._depthwise_phases()
        width = Wph if _all_finite(self.weight) else Q

        def work(start, stop, first, last):
            n, c = stop - start, last - first
            upstream = self._depthwise_widened(grad[start:stop, first:last], width)
            planes = _memory.zeros((n, c, self.stride[0] * self.stride[1], plane), grad.dtype)
            products = _memory.empty(upstream.shape, grad.dtype)
            with whole_rows(P * width):
                for r, s, view in self._depthwise_taps(planes, P, width):
                    numpy.multiply(upstream, self.weight[first:last, 0, r, s].reshape(-1, 1, 1), out=products)
                    numpy.add(view, products, out=view)
            for phase, pixels, span in self._depthwise_spans():
                numpy.copyto(grad_input[start:stop, first:last][(..., *pixels)],
                             planes[:, :, phase, : Hph * Wph].reshape(n, c, Hph, Wph)[(..., *span)])

        self._depthwise_blocks(work)

    def _grad_weight_depthwise(self, x, grad):
        """x (N, C, H, W), grad (N, C, P, Q) -> the (C, 1, R, S) weight gradient: for each tap and channel
        the sum over the images and outputs of grad times that tap's view of the padded input. For a
        finite input, one dot product of wide rows an image and channel (BLAS's, twice as fast as einsum
        on rows of Q), the upstream gradient widened with zero columns; else einsum. Each block sums its
        own, added up in the blocks' order."""
        R, S = self.weight.shape[2:]
        C, P, Q = grad.shape[1:]
        wide = _all_finite(x)
        width = self._depthwise_phases()[1] if wide else Q

        def work(start, stop, first, last):
            n, c = stop - start, last - first
            upstream = self._depthwise_widened(grad[start:stop, first:last], width)
            total = numpy.empty((c, R, S), grad.dtype)
            for r, s, view in self._depthwise_taps(self._depthwise_planes(x[start:stop, first:last]), P, width):
                if wide:  # rows that follow each other: one run of P*Wph values (a view)
                    dots = numpy.matmul(upstream.reshape(n, c, 1, P * width), view.reshape(n, c, P * width, 1))
                    total[:, r, s] = dots.sum(axis=(0, 2, 3))
                else:
                    total[:, r, s] = numpy.einsum("ncpq,ncpq->c", upstream, view)
            return total

        grad_weight = numpy.zeros((C, 1, R, S), grad.dtype)
        for _, _, first, last, total in self._depthwise_blocks(work):
            grad_weight[first:last, 0] += total
        return grad_weight

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


def _stride_phase_span(phase: int, stride: int, pad: int, size: int) -> tuple[int, int, int]:
    """Along one axis of ``size`` input pixels padded by ``pad`` before them, the pixels at padded
    positions i*stride + phase: (the first one's input index, its i, how many)."""
    first = (phase - pad) % stride
    return first, (first + pad) // stride, max(0, -(-(size - first) // stride))


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


def _add_image_products(cols, grad, total, only: bool) -> None:
    """total += dW^T (G, C/G*R*S, K/G) of n images, or with ``only`` total = it: the columns cols
    (G, C/G*R*S, n*P*Q) times the gradient grad (n, K, P, Q) read in place, a product an image and
    group (one stacked matmul), summed over the images in order."""
    groups, rows, columns = cols.shape
    n, K = grad.shape[:2]
    pixels = columns // n
    products = numpy.matmul(cols.reshape(groups, rows, n, pixels).transpose(2, 0, 1, 3),
                            grad.reshape(n, groups, K // groups, pixels).swapaxes(2, 3),
                            out=_memory.empty((n, groups, rows, K // groups), total.dtype))
    if only:
        numpy.sum(products, axis=0, out=total)
    else:
        total += products.sum(axis=0)


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

