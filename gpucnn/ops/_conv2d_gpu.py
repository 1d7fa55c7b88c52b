"""conv2d's half on the kernel devices (cuda, cudasim): ``Conv2dGpu``, the class ``conv2d.Conv2d``
takes ``forward_gpu`` and ``backward_gpu`` from, and how it plans their launches. Shapes and names as
in ``conv2d``.

These devices run ``cuda/conv2d.cu`` on float32: the same three products as the cpu's, as implicit
GEMMs that gather the im2col entries while loading tiles (no buffer), backward-data by stride phases
(each input pixel's phase is read through its own taps only: a quarter of the multiply-adds for 3x3
at stride 2), and a per-channel reduction for the bias gradient. A product with too few tiles to fill
the GPU splits its reduction (backward-filter's over N*P*Q) into partial sums that a second kernel
adds in a fixed order (``SPLIT_TARGET_BLOCKS``). No float atomics: results are reproducible. Where 16
divides the channels that forward (or backward-data) reduces over, it runs tap by tap over a
transposed copy of the weight (``TAP_STEP_CHANNELS``), which moves the im2col index arithmetic out of
the per-element loads. Large 3x3 stride-1 layers run Winograd's F(4x4, 3x3) instead
(``WINOGRAD_GPU_TILE``, ``cuda/winograd.cu``): its transforms, and its 36 products as a 1x1
convolution of 36 groups on the same GEMM kernels; backward-data is the same forward on the upstream
gradient with the flipped weight. The kernel paths "winograd2" and "winograd4" take F(2x2, 3x3) or
F(4x4, 3x3) on every such layer.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy

from . import _kernels


class _Product(NamedTuple):
    """One launch of a GEMM kernel of cuda/conv2d.cu: its name and grid, the number of splits of its
    reduction, its int arguments after its arrays (the geometry, then the chunk of each split), and
    whether it reads the weight transposed (the taps kernels' layout)."""

    name: str
    grid: tuple
    splits: int
    arguments: tuple
    transposed: bool


_PLANS = {}  # Conv2dGpu._plan's
_GATHER_CHANNELS = 4  # channels of a gather item in cuda/conv2d.cu (GATHER_CHANNELS)
_PIXELS_CHANNELS = 16  # output channels of a conv2d_forward_pixels thread (conv2d.cu's PIXELS_CHANNELS)
PIXELS_MAX_REDUCTION = 160  # the longest reduction it takes (conv2d.cu's PIXELS_MAX_REDUCTION, its shared buffer)


class Conv2dGpu:
    """conv2d on the kernel devices: ``conv2d.Conv2d``'s ``forward_gpu`` and ``backward_gpu``, with
    the kernel paths they plan and the settings that plan them."""

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
    # multiprocessor (conv2d.cu's CONV_BLOCKS_128). On an H200 (device time, ResNet-18 at batch 32),
    # the 128 tile with the taps kernels then took 0.89-0.93 of the chosen path's time on the 3x3
    # stride-1 forwards of 128 and 256 channels and on four of the five backward-data of 128-512 input
    # channels, but 1.00-1.52 on the other forwards of 128-512 output channels (1.52 on the 1x1 one)
    # and 1.14 on the 128->256 stride-2 backward-data; the threshold is unchanged.
    TILES = (64, 128)
    WIDE_TILE_CAPABILITY = 70  # conv2d.cu builds the 128 tile for compute capability 7.0 and up
    WIDE_TILE_BLOCKS = 264
    FORCE_TILE = None  # 64 or 128: every product takes that tile (see kernel_path)
    # With WINOGRAD_GPU_TILE = m (2 or 4), 3x3 convolutions at stride 1 (dilation 1, one group) take
    # Winograd's F(m x m, 3x3) (cuda/winograd.cu): 2.25 (m = 2) or 4 (m = 4) times fewer multiply-adds,
    # through transforms that move 4 (2.25) times the input and output, where both channel counts reach
    # WINOGRAD_GPU_MIN_CHANNELS and the direct convolution would take at least WINOGRAD_GPU_MIN_MACS
    # multiply-adds: below that, its extra launches outweigh what it saves. On an H100 (python -m bench
    # kernels, 2026-11-27), F(4x4, 3x3) took of the direct kernels' time, on the device: 0.44-0.65 on CIFAR
    # ResNet-18's 3x3 stride-1 layers of 64-256 channels at batch 32 (1.2e9 multiply-adds each), 0.63-0.84 on
    # its 512-channel one; per call, forward and both backwards together, 0.77-0.92. On the batch-1 Jetson
    # layers (1.2e8) it took 1.00-3.1 of their time on the device (F(2x2, 3x3) 0.85-1.9) and 1.5-2.1 per call.
    # The threshold had been 2^31 when the layer first tested its data for infinities and NaNs and waited on
    # the result; an H200 then measured 0.29-0.74 of the time on VGG-16's layers at batch 32, 0.57-0.96 on
    # ResNet-18's at batch 128 and 0.68-1.19 at batch 32. The kernel paths "winograd2" and "winograd4" take it
    # wherever it applies, at any size (see kernel_path).
    WINOGRAD_GPU_TILE = 4
    WINOGRAD_GPU_MIN_CHANNELS = 16
    WINOGRAD_GPU_MIN_MACS = 2**30
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
    # A forward whose reduction per group (C/G * R * S) is at most this many indices (an RGB stem's 3x3
    # kernel: 27) takes conv2d_forward_pixels: a thread an output pixel and 16 output channels, the
    # block's weights in shared memory, where the GEMM tiles run one or two reduction steps between
    # their staging and an epilogue that decodes each result's pixel; so do Winograd's products of up to
    # 27 input channels (1x1 convolutions of the transformed input). The same sums, term by term. On an
    # H200 (device time, against the tiles in the same run: `python -m bench compare`, and the kernel
    # path "pixels_off"): CIFAR ResNet-18's stem 0.014 ms against 0.020 at batch 32 (cuDNN 0.014), the
    # small ResNet's stem 0.014 against 0.048 and its 1x1 16->32 layer (16 indices) 0.011 against 0.014
    # at batch 128; but its 1x1 32->64 layer (32 indices, 64 output channels) 0.016 against 0.009, so
    # 32 indices take the tiles. At most PIXELS_MAX_REDUCTION; 0: never (the kernel path "pixels_off"; the
    # kernel path "pixels_wide" takes it up to PIXELS_MAX_REDUCTION).
    PIXELS_FORWARD_MAX_REDUCTION = 27
    # A forward of at most this many output channels a group takes it for reductions of up to
    # PIXELS_MAX_REDUCTION indices too: the 64 tile's rows are then mostly channels that do not exist. On
    # an H100 (2026-11-28, device time, `python -m bench kernels`, the kernel path "pixels_wide" against
    # the launcher's choice of tiles): the ConvNetJS 5x5 RGB stem (3 -> 16, 75 indices) and the lecture's
    # (3 -> 10) at batch 32, 0.013 ms against 0.023 (cuDNN 0.013); the small ResNet's 16-channel 3x3 layer (144
    # indices) at batch 128, 0.048 against 0.117 (cuDNN 0.053), its 16 -> 32 stride-2 one 0.029 against
    # 0.036. With more channels the tiles were faster: the batch-1 Jetson 7x7 RGB stem (3 -> 64, 147
    # indices) 0.025 against 0.022, ResNet-18's 1x1 64 -> 128 layer 0.028 against 0.011, the small
    # ResNet's 1x1 32 -> 64 one 0.015 against 0.007, and Winograd's products of 64 and 128 channels on
    # ResNet-18 at batch 32 0.107-0.110 against 0.056-0.064. Winograd's products of at most this many
    # output channels take it too (not timed). Backward-data of a stride-1 layer of more than
    # GATHER_MAX_CHANNELS and at most this many input channels a group, whose reduction per group
    # (K/G * R * S) is at most PIXELS_MAX_REDUCTION, runs on it as a forward of the upstream gradient with
    # the weight flipped (conv2d.cu): the same product shape as the forward of a layer of as many input as
    # output channels (the small ResNet's 16-channel layers), not yet timed as backward-data on a GPU.
    # Backward-filter of at most this many output channels a group runs conv2d_backward_filter_pixels: a
    # thread a column (c, r, s) of the weight and 16 output channels, over its split's positions, where the
    # tiles' 64 rows held 16 or 20 channels on the ConvNetJS layers and 10 or 1 on the lecture's (device
    # time on an H100, 2026-11-28: 0.036-0.042 ms against cuDNN's 0.021-0.027 on ConvNetJS's conv1 and
    # conv2, 0.041 against 0.027 on the lecture's 5x5 layer); not yet timed on a GPU.
    # 0: never (the kernel path "pixels_off").
    PIXELS_NARROW_CHANNELS = 32
    # With PIXELS_SPLIT (the kernel path "pixels_split"), narrow forwards and stride-1 backward-data of
    # longer reductions take the pixels kernel too, in splits of whole input channels of at most
    # PIXELS_MAX_REDUCTION indices (R * S at most that), which conv2d_sum_splits adds: ConvNetJS's conv2
    # (16 -> 20 channels, 400 reduction indices forward, 500 backward-data) and conv3, whose tiles took
    # 0.029 and 0.038 ms against cuDNN's 0.022 on conv2 (H100, device time). Not yet timed on a GPU.
    PIXELS_SPLIT = False
    MAX_GRID_YZ = 65535  # CUDA's limit on gridDim.y and gridDim.z
    MAX_PLANE = 2**31 - 1  # values in one input or output plane: conv2d.cu indexes within a plane by int
    #                        (checked as the forward's plan is made, before any launch)
    # A product with few result tiles leaves most of a GPU idle: a batch-1 layer of 512 channels at
    # 7x7 makes 8 tiles of 64 x 64 for 132 multiprocessors. So each product's reduction (forward: over
    # C*R*S, backward-data: K*R*S, backward-filter: N*P*Q) is split into chunks (multiples of 16, no
    # more of them than SPLIT_MIN_CHUNK goes into the reduction, rounded up: 147 indices make two of
    # 80) until about SPLIT_TARGET_BLOCKS blocks run, and a second kernel adds the chunks' sums in
    # order (conv2d.cu). Forward and backward-data count their tiles of 64, whichever tile runs, and
    # so do not depend on the GPU: their summation order (and result) is the same on every card and
    # for both tiles. (Backward-filter counts the tiles it runs, and its tile rule counts its
    # splits.) On an H200 (`python -m bench kernels`, device time, geometric means over a suite's
    # layers), chunks down to 128 indices rather than 256 took 0.87 of the time on
    # backward-filter, both on ResNet-18's 9 layers at batch 32 (0.73-0.82 on its stride-2 and 1x1
    # layers and its 512-channel one) and on the batch-1 Jetson layers (0.73-1.00); 0.91 on the Jetson
    # forwards (0.82-0.87, but 1.12 on the 7x7 stem) and 0.99 on their backward-data (0.86-1.04);
    # 1.00 on ResNet-18's forwards and backward-data. About 768 blocks rather than 512 gained nowhere
    # (1.00-1.11). A product of at least half SPLIT_TARGET_BLOCKS tiles is not split: two splits of it
    # add the sum's pass, and its blocks already about fill the GPU (132 multiprocessors at two or three
    # blocks each); ResNet-18's four such products at batch 32 (256 tiles of 64: the 128-channel 16x16
    # layer's forward and backward-data, the 64->128 stride-2 forward, the 128->256 one's
    # backward-data) ran unsplit in 0.85-0.95 of their two splits' time on an H200's device, and its
    # four such products at batch 64 in 0.94-1.04 per call. The kernel paths "split768" and "chunk64"
    # time more splits.
    SPLIT_TARGET_BLOCKS = 512
    SPLIT_MIN_CHUNK = 128
    # The splits' sum (conv2d_sum_splits) takes a thread an element; where the result has few elements and
    # many splits, several threads an element, each adding a share of the splits, until the launch has
    # about this many threads (``_sum_sizes``). Backward-filter of ConvNetJS's RGB stem (1,200 weights)
    # at batch 32 sums 256 splits: 1,200 threads would each wait on 256 loads in turn; 32 threads an
    # element, on eight each. Not yet timed on a GPU.
    SUM_LANES_THREADS = 1 << 17
    # The 128 tile's backward-filter blocks run in waves of WIDE_FILTER_BLOCKS a multiprocessor from
    # compute capability WIDE_FILTER_CAPABILITY, one below (its launch bounds in conv2d.cu,
    # CONV_BLOCKS_128), and a last wave of a few blocks takes as long as a full one. At one block a
    # multiprocessor (160-182 registers a thread, before it fitted 128) on an H100 (132
    # multiprocessors), ResNet-18's three stride-1 layers of 128-512 channels at batch 32 each made
    # 288 backward-filter blocks of 256 reduction indices, three waves, and each took 0.121 ms on
    # the device. With FILL_WAVES, backward-filter on the 128 tile takes fewer splits (longer
    # chunks) where that makes fewer waves times chunk (``_fill_waves``): at two blocks a
    # multiprocessor, 261 blocks of 288 indices and 252 of 304 there, one wave each. On an H200
    # (device time) that took 0.74 and 0.77 of the time without it (the kernel path "waves_off") on
    # the 128- and 256-channel layers, but 1.12 on the 512-channel one, which took one split of 512
    # (144 blocks); since chunks go down to 128 indices it takes three of 176 (432 blocks, two waves),
    # which took 0.80 of that one's time. The split count depends on the GPU's multiprocessor count,
    # and so does the rounding of backward-filter's result, which before depended on its tile alone.
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
               self.TAP_STEP_CHANNELS, self.TAPS_FORWARD, self.PIXELS_FORWARD_MAX_REDUCTION,
               self.PIXELS_NARROW_CHANNELS, self.PIXELS_SPLIT, self.MAX_GRID_YZ,
               self.MAX_PLANE, self.SPLIT_TARGET_BLOCKS, self.SPLIT_MIN_CHUNK, self.FILL_WAVES,
               self._wide_filter_blocks(), self.device.multiprocessors)
        plan = _PLANS.get(key)
        if plan is None:
            if len(_PLANS) >= self.MAX_PLANS:
                _PLANS.clear()
            plan = _PLANS[key] = getattr(self, f"_{product}_plan")(x_shape, weight_shape)
        return plan

    def _forward_plan(self, x_shape: tuple, weight_shape: tuple) -> tuple:
        """(P, Q, whether Winograd takes the layer, the _Product of its direct (not Winograd) kernel: None
        for an empty output)."""
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
        reduction, narrow = group_channels * R * S, K // groups <= self.PIXELS_NARROW_CHANNELS
        if reduction <= self.PIXELS_FORWARD_MAX_REDUCTION or (narrow and self._pixels_reduces(reduction, R * S)):
            pixels = self._pixels_product(x_shape, K, R, S, P, Q, self.stride, self.pads[::2], flipped=False)
            if pixels:
                return P, Q, winograd, pixels
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
        geometry = self._kernel_geometry(x_shape, weight_shape, P, Q)
        if K // groups <= self.PIXELS_NARROW_CHANNELS:
            span = _filter_span(columns)
            column_blocks, channel_blocks = -(-columns // span), -(-(K // groups) // _PIXELS_CHANNELS)
            splits, chunk = self._splits(column_blocks * channel_blocks * groups, positions, groups)
            return _Product("conv2d_backward_filter_pixels", (column_blocks, channel_blocks, groups * splits), splits,
                            geometry + (numpy.int64(chunk), numpy.int32(span)), False)
        tile = self._tile(K // groups, columns, groups, reduction=positions)
        tiles = _tiles(K // groups, columns, groups, tile)
        splits, chunk = self._splits(tiles, positions, groups)
        if tile == self.TILES[1] and self.FILL_WAVES and self.device.multiprocessors:
            splits, chunk = _fill_waves(tiles, positions, splits, chunk,
                                        self.device.multiprocessors * self._wide_filter_blocks())
        return _Product(f"conv2d_backward_filter_{tile}", (-(-columns // tile), -(-(K // groups) // tile),
                                                           groups * splits), splits,
                        geometry + (numpy.int64(chunk),), False)

    def _data_plan(self, x_shape: tuple, weight_shape: tuple) -> tuple:
        """How backward-data launches: ("empty",), ("exact", blocks, geometry), ("pixels", _Product) or
        ("tiled", _Product).

        The tiled kernel sums again, exactly, its results that come out NaN (inf * a tap no output uses;
        see conv2d.cu). Few channels per group take the exact gather instead, as do the strides its phases
        do not cover (a stride and a dilation above 1 along one axis); narrow stride-1 layers the pixels
        kernel (PIXELS_NARROW_CHANNELS), which visits only the taps that read an output."""
        (N, C, H, W), (K, group_channels, R, S) = x_shape, weight_shape
        size, groups = N * C * H * W, self.groups
        if not size:
            return ("empty",)
        P, Q = self._output_hw(x_shape, weight_shape)
        geometry = self._kernel_geometry(x_shape, weight_shape, P, Q)
        (stride_h, stride_w), (dilation_h, dilation_w) = self.stride, self.dilation
        phases = stride_h * stride_w
        phased = (stride_h == 1 or dilation_h == 1) and (stride_w == 1 or dilation_w == 1)
        if group_channels <= self.GATHER_MAX_CHANNELS or not phased or groups * phases > self.MAX_GRID_YZ:
            # the gather's items: up to _GATHER_CHANNELS channels of a group at an input pixel, a row's
            # columns in stride_w phases of ceil(W / stride_w) slots each (conv2d.cu's gather_items)
            gather_items = N * groups * -(-group_channels // _GATHER_CHANNELS) * H * stride_w * -(-W // stride_w)
            return "exact", _kernels.blocks_for(gather_items), geometry
        narrow = group_channels <= self.PIXELS_NARROW_CHANNELS and self._pixels_reduces(K // groups * R * S, R * S)
        if phases == 1 and narrow:  # a forward of grad (N, K, P, Q) with the weight flipped
            top, left = self.pads[::2]
            pads = (dilation_h * (R - 1) - top, dilation_w * (S - 1) - left)
            pixels = self._pixels_product((N, K, P, Q), C, R, S, H, W, (1, 1), pads, flipped=True)
            if pixels:
                return "pixels", pixels
        tile = self._tile(group_channels, N * H * W, groups)
        phase_pixels = N * -(-H // stride_h) * -(-W // stride_w)  # the largest phase's
        taps = -(-R // stride_h) * -(-S // stride_w)  # the largest phase's
        splits, chunk = self._splits(_tiles(group_channels, phase_pixels, groups * phases, self.TILES[0]),
                                     K // groups * taps, groups * phases)
        transposed = self._taps(K // groups)  # weight (G, C/G, R, S, K/G)
        product = _Product(f"conv2d_backward_data_taps_{tile}" if transposed else f"conv2d_backward_data_{tile}",
                           (-(-phase_pixels // tile), -(-group_channels // tile), groups * phases * splits), splits,
                           geometry + (numpy.int32(chunk),), transposed)
        return "tiled", product

    def _pixels_reduces(self, reduction: int, taps: int) -> bool:
        """Whether conv2d_forward_pixels takes a narrow product of ``reduction`` indices a group over filters
        of ``taps`` taps: at most PIXELS_MAX_REDUCTION, or in splits of whole channels (PIXELS_SPLIT)."""
        return reduction <= PIXELS_MAX_REDUCTION or (self.PIXELS_SPLIT and taps <= PIXELS_MAX_REDUCTION)

    def _pixels_product(self, x_shape: tuple, K: int, R: int, S: int, P: int, Q: int, stride: tuple, pads: tuple,
                        flipped: bool):
        """conv2d_forward_pixels from x_shape (N, C, H, W) to (N, K, P, Q) with R x S filters, this layer's
        dilation and groups, ``stride`` and the (top, left) ``pads``: the forward, or where ``flipped``
        backward-data (the layer's weight read rotated and its channels swapped, no padding terms; see
        conv2d.cu). A reduction (C/G * R * S) past PIXELS_MAX_REDUCTION runs in splits of as many whole
        channels as fit. None where one channel's taps would not fit the kernel's buffer (whatever the
        settings that led here), or its grid is too large for the kernel."""
        groups, channels = self.groups, x_shape[1] // self.groups
        if R * S > PIXELS_MAX_REDUCTION:
            return None
        split_channels = channels if channels * R * S <= PIXELS_MAX_REDUCTION else PIXELS_MAX_REDUCTION // (R * S)
        splits = -(-channels // split_channels)
        grid = (-(-x_shape[0] * P * Q // _kernels.THREADS), -(-(K // groups) // _PIXELS_CHANNELS), groups * splits)
        if grid[0] >= 2**31 or max(grid[1:]) > self.MAX_GRID_YZ:
            return None
        sizes = (x_shape + (K, R, S, P, Q) + tuple(stride) + tuple(pads) + self.dilation
                 + (groups, flipped, not flipped, split_channels))
        return _Product("conv2d_forward_pixels", grid, splits, _kernels.int32_args(sizes), False)

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
        target = self.SPLIT_TARGET_BLOCKS
        wanted = -(-target // tiles) if 2 * tiles < target else 1
        splits = max(1, min(wanted, -(-reduction // self.SPLIT_MIN_CHUNK), self.MAX_GRID_YZ // layers))
        chunk = -(-reduction // splits)
        chunk = -(-chunk // 16) * 16  # whole reduction steps of either tile
        return -(-reduction // chunk), chunk

    def _run_product(self, product: _Product, inputs: tuple, out, flags: tuple = (), bias=None, K: int = 1,
                     PQ: int = 1) -> None:
        """Launches ``product`` with the arrays ``inputs``, its result, then ``flags``. Its result is ``out``;
        where its reduction runs in splits, a partial result of a slice a split, which conv2d_sum_splits then
        adds into out in a fixed order (+ ``bias`` per channel of ``K``, for an (N, K, P, Q) output; see
        SUM_LANES_THREADS)."""
        xp, splits = self.xp, product.splits
        partial = out if splits == 1 else xp.empty((splits,) + out.shape, dtype=xp.float32)
        self._launch(product.name, product.grid, inputs + (partial,) + flags, product.arguments)
        if splits > 1:
            has_bias = bias is not None
            sizes = _sum_sizes(out.size, splits, K, PQ, self.SUM_LANES_THREADS)
            self._launch("conv2d_sum_splits", (_kernels.blocks_for(out.size * int(sizes[-1])),),
                         (partial, bias if has_bias else partial, out) + _kernels.int32_args((has_bias,)), sizes)

    def _transposed_weight(self, batches: int, rows: int, columns: int):
        """The weight seen as (batches, rows, columns), each matrix transposed: the taps kernels' layout."""
        out = self.xp.empty((batches, columns, rows), dtype=self.xp.float32)
        name, sizes = "conv2d_transpose_weight", _kernels.int32_args((rows, columns, out.size < 2**31))
        _kernels.launch_elementwise(self.device, "conv2d", name, out.size, (self.weight, out),
                                    _kernels.sized(name, out.size, sizes))
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
        if winograd:
            m = self.WINOGRAD_GPU_TILE
            self.winograd = (m, self._winograd(m, self.x, self.weight, bias, self.has_bias, self.pads[0], self.pads[2],
                                               y, padding_counts=True, flipped=False))
            return y
        weight = self._transposed_weight(K, group_channels, R * S) if product.transposed else self.weight
        has_bias = numpy.int32(self.has_bias and product.splits == 1)  # a split product's bias comes with its sum
        self._run_product(product, (self.x, weight, bias), y, (has_bias,), bias if self.has_bias else None, K, P * Q)
        return y

    def backward_gpu(self, grad):
        """grad: (N, K, P, Q) -> (dx, dweight, dbias) as backward_cpu, from the kernels."""
        self._require_saved()
        need_input, need_weight, need_bias = (self.needs_input_grad + (False,))[:3]
        grad = _kernels.kernel_array(self.xp, grad)
        if self.winograd is not None:
            grads = self._backward_winograd(grad, need_input, need_weight)
        else:
            grads = self._backward_kernels(grad, need_input, need_weight)
        grads += (self._grad_bias(grad) if need_bias else None,)
        self.release()  # the queued kernels still run on it: CuPy reuses freed memory in stream order
        return grads[: 3 if self.has_bias else 2]

    def grad_input_gpu(self, grad, weight, x_shape: tuple):
        """The input gradient alone, with no forward before it: grad (N, K, P, Q), weight (K, C/G, R, S),
        float32 -> dx of ``x_shape`` (N, C, H, W), an input whose forward gives P x Q, from the
        backward-data kernels; conv_transpose2d's forward. ``device`` and ``xp`` must be set."""
        xp = self.xp
        self.x, self.x_shape, self.weight = None, tuple(x_shape), _kernels.kernel_array(xp, weight)
        return self._backward_kernels(_kernels.kernel_array(xp, grad), True, False)[0]

    def grad_weight_gpu(self, x, grad, weight):
        """The weight gradient alone, with no forward before it: x (N, C, H, W), grad (N, K, P, Q), float32
        -> dweight of ``weight``'s shape (K, C/G, R, S), from the backward-filter kernels;
        conv_transpose2d's weight gradient. ``device`` and ``xp`` must be set."""
        xp = self.xp
        self.x, self.x_shape, self.weight = _kernels.kernel_array(xp, x), x.shape, _kernels.kernel_array(xp, weight)
        return self._backward_kernels(_kernels.kernel_array(xp, grad), False, True)[1]

    def _grad_bias(self, grad):
        N, K, P, Q = grad.shape
        if not grad.size:
            return self.xp.zeros(K, dtype=self.xp.float32)
        grad_bias = self.xp.empty(K, dtype=self.xp.float32)  # the kernel writes every channel
        self._launch("conv2d_backward_bias", (K,), (grad, grad_bias), _bias_sizes(N, K, P * Q))
        return grad_bias

    def _backward_kernels(self, grad, need_input: bool, need_weight: bool) -> tuple:
        """(dx, dweight), each None where not needed, from the GEMM kernels (or the gather)."""
        xp, x_shape, weight_shape = self.xp, self.x_shape, self.weight.shape
        grad_input = grad_weight = None
        if need_weight:
            product = self._plan("filter", x_shape, weight_shape)
            if product is None:
                grad_weight = xp.zeros(weight_shape, dtype=xp.float32)
            else:  # the kernel covers the weight: every value is written
                grad_weight = xp.empty(weight_shape, dtype=xp.float32)
                self._run_product(product, (self.x, grad), grad_weight)
        if need_input:
            grad_input = xp.empty(x_shape, dtype=xp.float32)
            plan = self._plan("data", x_shape, weight_shape)
            if plan[0] == "exact":
                _, blocks, geometry = plan
                self._launch("conv2d_backward_data_exact", (blocks,), (grad, self.weight, grad_input), geometry)
            elif plan[0] == "pixels":
                self._run_product(plan[1], (grad, self.weight, _kernels.placeholder(self.device)), grad_input,
                                  (numpy.int32(False),))
            elif plan[0] == "tiled":
                product, weight = plan[1], self.weight
                if product.transposed:
                    K, group_channels, R, S = weight_shape
                    weight = self._transposed_weight(self.groups, K // self.groups, group_channels * R * S)
                self._run_product(product, (grad, weight), grad_input)
        return grad_input, grad_weight

    # ----------------------------------------------------------------- Winograd F(m x m, 3x3) (cuda/winograd.cu)
    def _takes_winograd(self, positions: int, weight_shape: tuple) -> bool:
        """Whether this layer, of ``positions`` = N * P * Q outputs, takes Winograd (its data permitting)."""
        K, C = weight_shape[:2]
        return (self.WINOGRAD_GPU_TILE in (2, 4) and weight_shape[2:] == (3, 3) and self.stride == (1, 1)
                and self.dilation == (1, 1) and self.groups == 1 and min(C, K) >= self.WINOGRAD_GPU_MIN_CHANNELS
                and 9 * C * K * positions >= self.WINOGRAD_GPU_MIN_MACS)

    def _winograd_launch(self, kernel: str, m: int, count: int, arrays: tuple, *sizes) -> None:
        _kernels.launch_elementwise(self.device, "winograd", f"winograd_{kernel}_{m}", count,
                                    arrays + _kernels.int32_args(sizes))

    def _winograd(self, m: int, x, weight, bias, has_bias: bool, top: int, left: int, y, padding_counts: bool,
                  flipped: bool):
        """y = conv2d(x, weight) (+ bias where ``has_bias``) at stride 1, padded by ``top`` and ``left``
        (and as y's size implies on the other sides), by F(m x m, 3x3); where ``flipped``, with ``weight``
        rotated by 180 degrees and its channels swapped, as the transforms read it (no copy). V = B^T d B,
        U = G g G^T, M = U @ V and y = A^T M A, the (m + 2)^2 products M[xi] = U[xi] @ V[xi] run as one
        1x1 convolution of (m + 2)^2 groups on this file's GEMM kernels. Returns that convolution, which
        keeps V for the weight's gradient. The output transform sums again directly the outputs that come
        out NaN (an inf or NaN in x or the weight; see winograd.cu), a tap in the padding multiplying its 0
        where ``padding_counts`` (the forward) and adding nothing otherwise (the input's gradient)."""
        xp, points = self.xp, (m + 2) ** 2
        (N, C, H, W), (K, P, Q) = x.shape, y.shape[1:]
        tiles_h, tiles_w = -(-P // m), -(-Q // m)
        T = N * tiles_h * tiles_w
        V = xp.empty((1, points * C, T, 1), dtype=xp.float32)
        self._winograd_launch("input_transform", m, C * T, (x, V), N, C, H, W, top, left, tiles_h, tiles_w)
        U = xp.empty((points * K, C, 1, 1), dtype=xp.float32)
        self._winograd_launch("filter_transform", m, K * C, (weight, U), K, C, flipped)
        gemm = type(self)((1, 1), (0, 0, 0, 0), (1, 1), points)
        gemm.device, gemm.xp = self.device, xp
        gemm.TAPS_FORWARD = True  # as VGG-16's layers were timed; TAPS_FORWARD's evidence is from direct layers
        M = gemm.forward_gpu(V, U)
        self._winograd_launch("output_transform", m, K * T, (M, bias, y, x, weight), has_bias, N, K, P, Q, tiles_h,
                              tiles_w, C, H, W, top, left, padding_counts, flipped)
        return gemm

    def _backward_winograd(self, grad, need_input: bool, need_weight: bool) -> tuple:
        """(dx, dweight). dweight by the adjoints of the forward's steps: dM = A dY A^T, the 1x1
        convolution's own backward for dU, and dweight = G^T dU G. dx is itself a 3x3 convolution at
        stride 1, of the upstream gradient padded by 2 - pad (a negative pad skips rows or columns that
        reached only padding) with the weight flipped and its channels swapped: the same Winograd
        forward, whose transforms read the weight so in place."""
        xp, (m, gemm) = self.xp, self.winograd
        N, K, P, Q = grad.shape
        top, _, left, _ = self.pads
        grad_input = grad_weight = None
        if need_input:
            grad_input = xp.empty(self.x_shape, dtype=xp.float32)
            self._winograd(m, grad, self.weight, _kernels.placeholder(self.device), False, 2 - top, 2 - left,
                           grad_input, padding_counts=False, flipped=True)
        if need_weight:
            tiles_h, tiles_w = -(-P // m), -(-Q // m)
            grad_M = xp.empty((1, (m + 2) ** 2 * K, N * tiles_h * tiles_w, 1), dtype=xp.float32)
            self._winograd_launch("grad_transform", m, K * N * tiles_h * tiles_w, (grad, grad_M), N, K, P, Q,
                                  tiles_h, tiles_w)
            grad_U = gemm._backward_kernels(grad_M, False, True)[1]
            grad_weight = xp.empty(self.weight.shape, dtype=xp.float32)
            C, H, W = self.x_shape[1:]
            self._winograd_launch("filter_adjoint", m, K * C, (grad_U, grad_weight, self.x, grad), K, C, N, H, W, P, Q,
                                  top, left)
        return grad_input, grad_weight


# The arguments after the arrays (and flag) of conv2d_sum_splits and conv2d_backward_bias, as their
# parameters' types: a layer's sizes, the same tuple for the same values, packed once (Device.launcher).
@functools.lru_cache(maxsize=4096)
def _sum_sizes(count: int, splits: int, K: int, PQ: int, lanes_threads: int) -> tuple:
    """conv2d_sum_splits's sizes, the last its ``lanes``: threads an element, a power of two up to 32, doubled
    while each lane still adds four splits or more and the launch has at most ``lanes_threads`` threads."""
    lanes = 1
    while lanes < 32 and 8 * lanes <= splits and 2 * lanes * count <= lanes_threads:
        lanes *= 2
    return numpy.int64(count), numpy.int32(splits), numpy.int32(K), numpy.int64(PQ), numpy.int32(lanes)


@functools.lru_cache(maxsize=4096)
def _bias_sizes(N: int, K: int, PQ: int) -> tuple:
    return numpy.int32(N), numpy.int32(K), numpy.int64(PQ)


def _tiles(rows: int, columns: int, layers: int, tile: int) -> int:
    """Blocks of ``tile`` x ``tile`` results over ``layers`` (rows x columns) matrices."""
    return -(-rows // tile) * -(-columns // tile) * layers


def _filter_span(columns: int) -> int:
    """The columns a block of conv2d_backward_filter_pixels takes: ``columns`` spread evenly over the fewest
    blocks whose threads, in lanes of span threads each, hold a column in three quarters of them or more
    (144 columns: two blocks of 72 in three lanes, 216 of 256 threads, rather than one of 144, 144)."""
    blocks = -(-columns // _kernels.THREADS)
    while True:  # ends by a span of 64 or fewer, whose lanes hold at least 193 of 256 threads
        span = -(-columns // blocks)
        if 4 * span * (_kernels.THREADS // span) >= 3 * _kernels.THREADS:
            return span
        blocks += 1


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



def has_wide_tile(device) -> bool:
    """Whether ``device`` has conv2d's 128-tile kernels: a GPU of compute capability 7.0 and up, or cudasim."""
    return getattr(device, "compute_capability", Conv2dGpu.WIDE_TILE_CAPABILITY) >= Conv2dGpu.WIDE_TILE_CAPABILITY

