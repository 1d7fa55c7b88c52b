"""2-D max pooling: the ``MaxPool2d`` Function and ``max_pool2d``, plus the window geometry that the
pooling ops share (argument checks, output size, padded input, strided tap views, stride phases).

Layout is NCHW. An output pixel (p, q) reads the window of input rows ``p*stride_h - pad_h + r*dilation_h``
for taps r in [0, kernel_h), and likewise for columns; taps outside the input are padding.

The cpu runs the NumPy reference (``forward_cpu``/``backward_cpu``); the kernel devices run
``cuda/maxpool2d.cu`` (``forward_gpu``/``backward_gpu``) on float32, with the geometry computed here.
"""

from __future__ import annotations

import functools

import numpy

from ..autograd import Function
from ..tensor import Tensor, as_tensor
from . import _memory
from ._kernels import int32_args, kernel_array, launch_elementwise, placeholder, require_float32, sized
from ._parallel import run_chunked, usable_cores
from ._shapes import batched_input, output_size, pair, plain, unbatched_output


class PoolGeometry:
    """Checked window geometry of one 2-D pooling call on an input of shape (N, C, H, W).

    Attributes (each a pair (height, width)): ``kernel``, ``stride``, ``padding`` (applied on both
    sides), ``dilation``, ``input_hw``, ``output_hw`` (P, Q). Never changed, and equal by these values:
    the ops key their launches by it (``_forward_launch``), for calls whose arguments were checked
    afresh too.
    """

    def __init__(self, kernel, stride, padding, dilation, input_hw, output_hw):
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation
        self.input_hw, self.output_hw = input_hw, output_hw
        self._key = (kernel, stride, padding, dilation, input_hw, output_hw)
        self._hash = hash(self._key)
        # The padded block: padding before the input, and after it as much as the last window reaches
        # (with ceil_mode a window may run past the symmetric padding).
        self.padded_hw = tuple(
            max((out - 1) * s + d * (k - 1) + 1, pad + size)
            for size, out, k, s, pad, d in zip(input_hw, output_hw, kernel, stride, padding, dilation)
        )
        # Rows and columns of each plane of phases(): the padded block divided by the stride, rounded up.
        self.phase_hw = tuple(-(-extent // s) for extent, s in zip(self.padded_hw, stride))

    def __eq__(self, other):
        return isinstance(other, PoolGeometry) and self._key == other._key

    def __hash__(self):
        return self._hash

    def window_starts(self, axis: int):
        """Input coordinate of each window's first tap along ``axis`` (0: rows, 1: columns), shape (P,) or (Q,)."""
        return numpy.arange(self.output_hw[axis]) * self.stride[axis] - self.padding[axis]

    def padded(self, xp, x, fill):
        """``x`` (N, C, H, W) inside the ``padded_hw`` block filled with ``fill`` (positions past the
        symmetric padding are filled too, which clips a ceil_mode window as PyTorch does). Without any
        padding this is ``x`` itself, not a copy."""
        (H, W), (pad_h, pad_w) = self.input_hw, self.padding
        height, width = self.padded_hw
        if (height, width) == (H, W):  # no padding, and every window inside: the input itself
            return x
        block = xp.full(x.shape[:2] + (height, width), fill, dtype=x.dtype)
        block[:, :, pad_h : pad_h + H, pad_w : pad_w + W] = x
        return block

    def phases(self, x, fill):
        """The padded block of ``x`` (N, C, H, W) split by row and column remainder modulo the stride:
        contiguous, shape (stride_h, stride_w, N*C, rows, columns) (``phase_hw``), padded row
        i*stride_h + a, column j*stride_w + b of plane n at ``[a, b, n, i, j]``; ``fill`` wherever the
        block has no input (its padding, and the rows and columns that round it up).

        A tap of every window then is one contiguous range of one phase (:meth:`phase_offsets`):
        NumPy runs over contiguous ranges several times faster than over strided views. Building the
        phases is one pass over the input (strided reads)."""
        N, C = x.shape[:2]
        (H, W), (stride_h, stride_w), (pad_h, pad_w) = self.input_hw, self.stride, self.padding
        rows, columns = self.phase_hw
        planes = x.reshape(N * C, H, W)
        phases = _memory.empty((stride_h, stride_w, N * C, rows, columns), x.dtype)
        for a in range(stride_h):
            # the first phase row that holds an input row (input row top*stride_h + a - pad_h)
            top = -(-(pad_h - a) // stride_h)
            for b in range(stride_w):
                left = -(-(pad_w - b) // stride_w)
                inside = planes[:, top * stride_h + a - pad_h :: stride_h, left * stride_w + b - pad_w :: stride_w]
                bottom, right = top + inside.shape[1], left + inside.shape[2]
                phase = phases[a, b]
                phase[:, top:bottom, left:right] = inside
                borders = (phase[:, :top], phase[:, bottom:], phase[:, top:bottom, :left], phase[:, top:bottom, right:])
                for border in borders:
                    if border.size:
                        border[...] = fill
        return phases

    def phase_offsets(self) -> list:
        """Where the taps lie in :meth:`phases`: ``[(a, b, offset)]`` in tap order r * kernel_w + s, tap
        (r, s) of window (n, p, q) being element ``offset + (n * rows + p) * columns + q`` of phase
        (a, b), flattened. So one tap of all windows is one contiguous range of a phase, and a window's
        values are laid out "wide": as the phases' planes, with junk past each plane's P x Q corner.

        Tap (r, s) is padded row p*stride_h + r*dilation_h, that is row p + (r*dilation_h) // stride_h
        of phase a = (r*dilation_h) % stride_h; columns likewise."""
        columns = self.phase_hw[1]
        offsets = []
        for r in range(self.kernel[0]):
            row, a = divmod(r * self.dilation[0], self.stride[0])
            for s in range(self.kernel[1]):
                column, b = divmod(s * self.dilation[1], self.stride[1])
                offsets.append((a, b, row * columns + column))
        return offsets

    def phase_windows(self, wide):
        """The (N*C, P, Q) windows of a per-window array laid out wide (:meth:`phase_offsets`),
        ``N*C * rows * columns`` long (a view, not a copy)."""
        (rows, columns), (P, Q) = self.phase_hw, self.output_hw
        return wide.reshape(-1, rows, columns)[:, :P, :Q]

    def tap(self, padded, r: int, s: int):
        """The (N, C, P, Q) strided view of ``padded`` holding tap (r, s) of every window."""
        (P, Q), (stride_h, stride_w), (dilation_h, dilation_w) = self.output_hw, self.stride, self.dilation
        top, left = r * dilation_h, s * dilation_w
        rows = slice(top, top + (P - 1) * stride_h + 1, stride_h)
        columns = slice(left, left + (Q - 1) * stride_w + 1, stride_w)
        return padded[:, :, rows, columns]

    def column_phases(self, padded) -> list:
        """``padded``'s columns split by their remainder modulo ``stride_w``, each phase contiguous:
        ``[padded[..., j::stride_w] for j in range(stride_w)]`` (``[padded]`` for stride 1). NumPy
        runs over contiguous rows several times faster than over strided ones, so the cpu reads its
        taps from these (one copy) rather than from ``padded`` with a column step."""
        stride_w = self.stride[1]
        if stride_w == 1:
            return [padded]
        return [numpy.ascontiguousarray(padded[..., j::stride_w]) for j in range(stride_w)]

    def phase_tap(self, phases, r: int, s: int):
        """The (N, C, P, Q) view of tap (r, s), as :meth:`tap`, in :meth:`column_phases` ``phases``:
        input column left + q*stride_w is column left // stride_w + q of phase left % stride_w."""
        (P, Q), (stride_h, stride_w), (dilation_h, dilation_w) = self.output_hw, self.stride, self.dilation
        top, left = r * dilation_h, s * dilation_w
        start = left // stride_w
        return phases[left % stride_w][:, :, top : top + (P - 1) * stride_h + 1 : stride_h, start : start + Q]

    def kernel_args(self) -> tuple:
        """The window geometry as the pooling kernels take it: int32 (H, W, P, Q, kernel_h, kernel_w,
        stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w)."""
        return int32_args(self.input_hw + self.output_hw + self.kernel + self.stride + self.padding + self.dilation)

    def crop(self, padded):
        """Undoes :meth:`padded`: the (N, C, H, W) input region of a padded block, contiguous."""
        (H, W), (pad_h, pad_w) = self.input_hw, self.padding
        return padded[:, :, pad_h : pad_h + H, pad_w : pad_w + W].copy()


def pool_window(op: str, kernel_size, stride, padding, dilation, ceil_mode) -> tuple:
    """The input-independent checks of a pooling call; (kernel, stride, padding, dilation) as pairs.

    PyTorch's rules: ``stride`` None (or empty) means ``kernel_size``; padding is at most
    ``kernel_size // 2`` along each axis (undilated kernel, as PyTorch checks).
    """
    kernel = pair(kernel_size, "kernel_size", op, minimum=1)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel
    else:
        stride = pair(stride, "stride", op, minimum=1)
    pads = pair(padding, "padding", op, minimum=0)
    dilation = pair(dilation, "dilation", op, minimum=1)
    if not isinstance(ceil_mode, (bool, numpy.bool_)):
        raise TypeError(f"{op}: ceil_mode must be a bool, got {ceil_mode!r}")
    if pads[0] > kernel[0] // 2 or pads[1] > kernel[1] // 2:
        raise ValueError(
            f"{op}: padding {pads} must be at most half of kernel_size {kernel} (padding <= kernel_size // 2 "
            f"along each axis)"
        )
    return kernel, stride, pads, dilation


def pool_geometry(op: str, input_shape: tuple, kernel_size, stride, padding, dilation, ceil_mode) -> PoolGeometry:
    """Checks a pooling call's window arguments (:func:`pool_window`) against an (N, C, H, W) input
    shape: C, H and W are non-zero and the output is at least 1x1. The same on every call of a layer,
    so kept for plain arguments, as conv2d keeps its checks (``plain``; a stride of None too): 0.3 us a
    call on cudasim, where checking took 4 us, and a small layer's call on a GPU is mostly the host's
    work. A check that fails raises, and nothing is kept."""
    arguments = (op, tuple(input_shape), kernel_size, stride, padding, dilation, ceil_mode)
    if (plain(kernel_size) and (stride is None or plain(stride)) and plain(padding) and plain(dilation)
            and type(ceil_mode) is bool):
        return _checked_geometry(*arguments)
    # other types of arguments (lists, NumPy integers, floats, which raise) are checked afresh
    return _checked_geometry.__wrapped__(*arguments)


@functools.lru_cache(maxsize=1024)
def _checked_geometry(op: str, input_shape: tuple, kernel_size, stride, padding, dilation, ceil_mode) -> PoolGeometry:
    """pool_geometry's checks and result (a PoolGeometry is never changed)."""
    kernel, stride, pads, dilation = pool_window(op, kernel_size, stride, padding, dilation, ceil_mode)
    ceil_mode = bool(ceil_mode)
    if any(size == 0 for size in input_shape[1:]):
        raise ValueError(f"{op}: input must have non-zero channels, height and width, got shape {input_shape}")
    input_hw = tuple(input_shape[2:])
    output_hw = tuple(
        output_size(size, k, s, p, p, d, ceil_mode)
        for size, k, s, p, d in zip(input_hw, kernel, stride, pads, dilation)
    )
    if min(output_hw) < 1:
        window = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        padded = tuple(size + 2 * p for size, p in zip(input_hw, pads))
        raise ValueError(
            f"{op}: output size {output_hw} is too small: kernel_size {kernel} with dilation {dilation} spans "
            f"{window}, larger than the padded input {padded} (input shape {input_shape}, padding {pads}, "
            f"stride {stride}, ceil_mode={ceil_mode})"
        )
    return PoolGeometry(kernel, stride, pads, dilation, input_hw, output_hw)


class MaxPool2d(Function):
    """Max over each window; x: (N, C, H, W) -> (N, C, P, Q).

    Forward saves where each window's maximum is: :meth:`plane_indices` (N, C, P, Q) int64 gives
    its flat index h*W + w in its input plane (what ``return_indices`` hands out). Among equal
    values the first in scan order (rows, then columns) wins; a NaN always replaces the running
    maximum, so the last NaN of a window wins and the output is NaN, as PyTorch's CPU kernel does.
    Padding never wins: a window whose input values are all -inf reports its first in-input tap.
    The kernel devices save these plane indices (``self.indices``); the cpu saves the flat index
    into the whole input instead (``self.input_indices``), which is what its backward scatters to.
    Without a graph to record and without ``return_indices`` (inference) neither is made: on the cpu
    that halves the forward's time (2x2/2 on 32x16x32x32: 0.35 against 0.63 ms; 3x3/2 with padding 1
    on 1x64x112x112: 0.59 against 1.20 ms), on a GPU it saves the index writes.

    The cpu forward splits the padded input by stride phase (PoolGeometry.phases), so that each tap
    of all windows is one contiguous range, and takes the maximum and the first tap holding it a tap
    at a time over all windows, in blocks of planes of at most ``BLOCK`` tap reads that run on all
    cores (:func:`gpucnn.ops._parallel.run_chunked`, ``_planes_a_piece``). Measured on 2 cores,
    float32: 3x3/2 with padding 1 on 8x64x112x112 takes 9 ms (38 ms tap by tap over strided views,
    which NumPy runs element by element; PyTorch 25 ms), 2x2/2 on 32x16x32x32 0.7 ms (1.0 ms;
    PyTorch 1.4 ms).
    The backward is a scatter-add (see backward_cpu).
    """

    uses_inputs = False  # backward reads where the maxima were

    indices = None  # kernel devices: (N, C, P, Q) flat index of each maximum in its plane
    input_indices = None  # cpu: (N, C, P, Q) flat index of each maximum in the whole input

    BLOCK = 1 << 20  # tap reads (taps x phase plane size) in a block of planes of the cpu forward
    BACKWARD_BLOCK = 1 << 20  # input elements in a block of planes of the cpu backward

    def __init__(self, geometry: PoolGeometry, return_indices: bool = False):
        self.geometry, self.return_indices = geometry, return_indices

    @property
    def keep_indices(self) -> bool:
        """Whether forward finds where each maximum is: for backward, or for ``return_indices``."""
        return self.return_indices or self.records_graph

    def _tap_indices(self, r: int, s: int):
        """(P, Q) flat input index h*W + w of tap (r, s) of every window (padding taps included)."""
        g = self.geometry
        rows = g.window_starts(0) + r * g.dilation[0]
        cols = g.window_starts(1) + s * g.dilation[1]
        return rows[:, None] * g.input_hw[1] + cols[None, :]

    def _first_input_tap(self):
        """(P, Q) flat index of each window's first tap inside the input (one exists: checked)."""
        g = self.geometry
        firsts = []
        for axis in range(2):
            starts = g.window_starts(axis)
            # smallest tap t with start + t*dilation >= 0
            taps = numpy.maximum(-(starts // g.dilation[axis]), 0)
            firsts.append(starts + taps * g.dilation[axis])
        return firsts[0][:, None] * g.input_hw[1] + firsts[1][None, :]

    def forward_cpu(self, x):
        g = self.geometry
        N, C, H, W = x.shape
        self.input_shape = x.shape
        planes = x.reshape((N * C, 1) + g.input_hw)
        output = _memory.empty((N * C,) + g.output_hw, x.dtype)
        keep = self.keep_indices
        indices = _memory.empty((N * C,) + g.output_hw, numpy.int64) if keep else None
        # Tap t = r * kernel_w + s of window (p, q) is input pixel (start_p + r*dh, start_q + s*dw) of
        # its plane: flat index plane * H*W + start_p * W + start_q, plus the tap's offset.
        offsets = [r * g.dilation[0] * W + s * g.dilation[1] for r in range(g.kernel[0]) for s in range(g.kernel[1])]
        taps_per_plane = g.kernel[0] * g.kernel[1] * g.phase_hw[0] * g.phase_hw[1]
        grain = _planes_a_piece(N * C, taps_per_plane, self.BLOCK)
        # A block holds fewer than 2 * grain planes (run_chunked); window starts relative to its first.
        starts = _window_starts_of_planes(min(N * C, 2 * grain), H * W, W, g.window_starts(0), g.window_starts(1))
        inexact = []  # blocks that need the exact scan

        def work(start, stop):
            block = indices[start:stop] if keep else None
            if not self._forward_block(planes[start:stop], output[start:stop], block, offsets, start * H * W):
                inexact.append(start)
            elif keep:
                block += starts[: stop - start]

        if output.size:
            run_chunked(work, N * C, grain)
        if inexact:
            return self._forward_scan(x, g.padded(numpy, x, -numpy.inf))
        if keep:
            self.input_indices = indices.reshape((N, C) + g.output_hw)
        return output.reshape((N, C) + g.output_hw)

    def _forward_block(self, planes, output, indices, offsets, base: int) -> bool:
        """The maxima of some (n, 1, H, W) planes into ``output`` (n, P, Q), and into ``indices``
        ``base`` plus the offset (from ``offsets``, one per tap) of the first tap holding it. False,
        with both incomplete, where a NaN or a window whose maximum is -inf with padding needs the
        exact scan. With ``indices`` None only the maxima, which are exact in every case: the maximum
        propagates NaN, and padding (-inf) never exceeds an input value.

        Each tap of all windows is one contiguous range of the planes' phases (PoolGeometry.phases),
        so every step below is a NumPy call over all windows at once, without per-element branches."""
        g = self.geometry
        phases = g.phases(planes, -numpy.inf)
        flat = phases.reshape(phases.shape[:2] + (-1,))
        taps = g.phase_offsets()
        size = flat.shape[2]
        length = size - taps[-1][2]  # the last tap is the farthest; every window lies below

        def tap(t):
            a, b, offset = taps[t]
            return flat[a, b, offset : offset + length]

        wide = _memory.empty(size, planes.dtype)
        best = wide[:length]
        numpy.copyto(best, tap(0))
        for t in range(1, len(taps)):
            numpy.maximum(best, tap(t), out=best)  # NaN-propagating, as the output must be
        numpy.copyto(output, g.phase_windows(wide))
        if indices is None:
            return True
        lowest = output.min()
        if numpy.isnan(lowest) or (lowest == -numpy.inf and g.padded_hw != g.input_hw):
            return False  # a NaN (the last one wins) or padding that must not win
        # The first tap equal to the maximum: tap t scores K - t where it matches, the highest score
        # wins. Scores fit int8 up to 127 taps, and the bool match read as int8 multiplies without
        # a conversion.
        count = len(taps)
        score_type = numpy.int8 if count < 128 else numpy.int32
        wide_score = _memory.zeros(size, score_type)
        best_score = wide_score[:length]
        match = _memory.empty(length, bool)
        score = _memory.empty(length, score_type)
        for t in range(count):
            numpy.equal(tap(t), best, out=match)
            numpy.multiply(match.view(numpy.int8) if count < 128 else match, score_type(count - t), out=score)
            numpy.maximum(best_score, score, out=best_score)
        by_score = base + numpy.array([0] + offsets[::-1], dtype=numpy.int64)  # score K - t -> offset of tap t
        # take() would convert the scores to a new intp array and, in its default mode, buffer its output.
        scores = _memory.empty(indices.shape, numpy.intp)
        numpy.copyto(scores, g.phase_windows(wide_score))
        numpy.take(by_score, scores, out=indices, mode="clip")  # every score is in [0, count]
        return True

    def _forward_scan(self, x, padded):
        """The exact reference: tap by tap, strict '>' keeps the first of equal maxima, NaN takes over."""
        xp, g = self.xp, self.geometry
        N, C = x.shape[:2]
        best = xp.full((N, C) + g.output_hw, -numpy.inf, dtype=x.dtype)
        best_index = xp.broadcast_to(xp.asarray(self._first_input_tap(), dtype=xp.int64), best.shape)
        for r in range(g.kernel[0]):
            for s in range(g.kernel[1]):
                values = g.tap(padded, r, s)
                take = (values > best) | xp.isnan(values)
                best = xp.where(take, values, best)
                best_index = xp.where(take, xp.asarray(self._tap_indices(r, s)), best_index)
        self.input_indices = best_index + self._plane_starts()
        return best

    def _plane_starts(self):
        """(N, C, 1, 1) int64: the flat index of each input plane's first pixel in the whole input."""
        N, C, H, W = self.input_shape
        return numpy.arange(N * C, dtype=numpy.int64).reshape(N, C, 1, 1) * (H * W)

    def plane_indices(self):
        """(N, C, P, Q) int64: the flat index h*W + w of each window's maximum in its input plane."""
        if not self.keep_indices:
            raise RuntimeError("max_pool2d: this forward kept no indices (no graph, return_indices=False)")
        if self.indices is not None:
            return self.indices
        return self.input_indices - self._plane_starts()

    def backward_cpu(self, grad):
        # Scatter-add: each output's gradient goes to its argmax; overlapping windows that share a
        # maximum accumulate. ufunc.at adds in place, in the gradient's dtype, in order (as PyTorch's
        # CPU kernel does): about twice as fast as bincount, which needs float64 weights and a
        # conversion back. Windows that do not overlap have distinct argmaxes: their gradients are
        # written, not added (2x2/2 on 32x16x32x32: the scatter takes 0.13 ms so, 0.17 ms with
        # ufunc.at). The forward saved the flat indices into the whole input: the scatter takes them
        # as they are (adding plane offsets here took another 0.06 ms).
        # The scatter costs about 1 ns an output (1.25 ns with ufunc.at) whatever the pattern of the
        # indices (sequential ones too), and most of the time: NumPy's cost per element. Tried and
        # slower: put (2.2 ns), int32 indices (converted: 2.9 ns), filling and scattering by blocks
        # of planes that stay in cache, and writing 2x2/2 windows densely as masked uint64 column pairs
        # (on 32x16x32x32 the two strided writes of a window's rows alone take 0.16 ms, the scatter 0.13).
        # Splitting inputs below BACKWARD_BLOCK into 2-8 pieces on two cores made them 10-20 % slower
        # (1x64x112x112 3x3/2: 0.35 against 0.31 ms): waking a helper and waiting for it cost more than it
        # saves. From one block on they split, a piece a core at least (``_planes_a_piece``).
        g = self.geometry
        overlap = any((k - 1) * d + 1 > s for k, d, s in zip(g.kernel, g.dilation, g.stride))

        def scatter(target, flat, values):
            if overlap:
                numpy.add.at(target, flat, values)
            else:
                target[flat] = values

        N, C, H, W = self.input_shape
        P, Q = g.output_hw
        indices = self.input_indices.reshape(N * C, P * Q)
        grad = grad.reshape(N * C, P * Q)
        grain = _planes_a_piece(N * C, H * W, self.BACKWARD_BLOCK)
        if N * C < 2 * grain:
            grad_input = _memory.zeros(self.input_shape, grad.dtype)
            scatter(grad_input.reshape(-1), indices.reshape(-1), grad.reshape(-1))
            return (grad_input,)
        # Large inputs go by blocks of planes on all cores. ufunc.at holds the GIL, but zeroing a
        # block does not, and overlaps it: 3x3/2 on 8x64x112x112 takes 2.8 ms so, 3.3 ms in one go.
        grad_input = _memory.empty((N * C, H * W), grad.dtype)

        def work(start, stop):
            _memory.fill_zeros(grad_input[start:stop])  # before the block's scatter: its indices stay in its planes
            scatter(grad_input.reshape(-1), indices[start:stop].reshape(-1), grad[start:stop].reshape(-1))

        run_chunked(work, N * C, grain)
        return (grad_input.reshape(self.input_shape),)

    def forward_gpu(self, x):
        xp, g = self.xp, self.geometry
        x = kernel_array(xp, x)
        self.input_shape = x.shape
        output_shape = x.shape[:2] + g.output_hw
        y = xp.empty(output_shape, dtype=xp.float32)
        keep = self.keep_indices
        # without indices to keep, the device's placeholder, which the kernels do not write: they take no
        # null pointers
        indices = xp.empty(output_shape, dtype=xp.int64) if keep else placeholder(self.device, numpy.int64)
        self.indices = indices if keep else None
        name, count, fixed = _forward_launch(g, y.size, self.device.address(x) % 16)
        launch_elementwise(self.device, "maxpool2d", name, count, (x, y, indices, _FLAGS[keep]), fixed)
        return y

    def backward_gpu(self, grad):
        xp = self.xp
        grad = kernel_array(xp, grad)
        grad_input = xp.empty(self.input_shape, dtype=xp.float32)
        name, count, fixed = _backward_launch(self.geometry, grad.size, grad_input.size)
        launch_elementwise(self.device, "maxpool2d", name, count, (grad, self.indices, grad_input), fixed)
        return (grad_input,)


_FLAGS = (numpy.int32(0), numpy.int32(1))  # a kernel's int flag, by the bool it stands for


def _float2_windows(g: PoolGeometry) -> bool:
    """Whether the 2x2 kernels apply: 2x2 windows at stride 2 that stay inside the input (no padding,
    and no ceil_mode window past an odd side) on an even width, so a window's rows are float2 pairs."""
    return (g.kernel == g.stride == (2, 2) and g.dilation == (1, 1) and g.padded_hw == g.input_hw
            and g.input_hw[1] % 2 == 0)


# The launches of a layer's calls, made once (a small layer's call on a GPU is mostly the host's work):
# (kernel name, threads, the kernel's last arguments, as launch_elementwise's ``fixed``).

@functools.lru_cache(maxsize=1024)
def _forward_launch(g: PoolGeometry, outputs: int, misalignment: int) -> tuple:
    """The forward's over ``outputs`` outputs, from an input at ``misalignment`` bytes past a multiple of 16."""
    H, W, P, Q = g.kernel_args()[:4]
    windows_2x2 = _float2_windows(g)
    if windows_2x2 and H % 2 == 0 and W % 4 == 0 and misalignment == 0:
        # two windows a thread, their rows read as float4: H = 2P, and a 16-byte aligned input
        name, count, sizes = "maxpool2d_forward_2x2_pairs", outputs // 2, (P, W)
    elif windows_2x2 and misalignment % 8 == 0:  # float2 reads: an 8-byte aligned input
        name, count, sizes = "maxpool2d_forward_2x2", outputs, (H, W, P, Q)
    else:
        name, count, sizes = "maxpool2d_forward", outputs, g.kernel_args()
    return name, count, sized(name, count, sizes)


@functools.lru_cache(maxsize=1024)
def _backward_launch(g: PoolGeometry, outputs: int, inputs: int) -> tuple:
    """The backward's, for ``outputs`` gradient values and ``inputs`` input values."""
    if _float2_windows(g) and g.input_hw[0] % 2 == 0:  # even H too: every pixel in one window
        name, count, sizes = "maxpool2d_backward_2x2", outputs, g.kernel_args()[:4]
    else:
        name, count, sizes = "maxpool2d_backward", inputs, g.kernel_args()
    return name, count, sized(name, count, sizes)


def _planes_a_piece(planes: int, plane_work: int, block: int) -> int:
    """How many of ``planes`` planes, of ``plane_work`` tap reads or values each, a piece of a split
    over the cores takes: a piece holds at most ``block`` of them, and there is a piece a core where
    each still holds half a block. Measured on 2 cores (median of 31, three process-alternating runs),
    two pieces against one: 64x16x32x32 2x2/2 (1M tap reads) 1.58-1.79 against 2.15-2.23 ms forward
    with indices, 0.90-0.91 against 1.18-1.23 ms without, 0.35-0.42 against 0.56-0.57 ms backward;
    1x64x112x112 3x3/2 with padding 1: 1.83-1.93 against 2.17-2.46 ms with indices, 0.83-0.92 against
    1.08-1.33 ms without (its backward, whose windows overlap, stays in one piece). Half blocks for
    every input made 8x64x112x112 3x3/2 slower (forward 17.8-19.6 against 12.7-14.4 ms): the pieces
    stay at most a block."""
    most = max(1, block // plane_work)
    return min(most, max(1, block // 2 // plane_work, -(-planes // usable_cores())))


@functools.lru_cache(maxsize=8)
def _cached_window_starts(planes: int, plane_size: int, width: int, rows: tuple, columns: tuple):
    starts = numpy.arange(planes, dtype=numpy.int64)[:, None, None] * plane_size + (
        numpy.array(rows, dtype=numpy.int64)[:, None] * width + numpy.array(columns, dtype=numpy.int64))
    starts.flags.writeable = False
    return starts


def _window_starts_of_planes(planes: int, plane_size: int, width: int, rows, columns):
    """(planes, P, Q) int64, read-only: flat index plane * plane_size + row * width + column of each
    window's first tap, for window start ``rows`` (P,) and ``columns`` (Q,). Cached: the cpu forward
    adds it to every block of planes of every call with the same geometry."""
    return _cached_window_starts(planes, plane_size, width, tuple(rows.tolist()), tuple(columns.tolist()))


def _check_no_empty_window(op: str, geometry: PoolGeometry, input_shape: tuple) -> None:
    """ValueError when a dilated window's taps all fall in the padding (no input pixel to take the max of).

    Undilated windows never do: each is k consecutive taps, with k >= 2 * pad, starting at -pad or
    later and before the input's end (with ceil_mode by PyTorch's rule), so each holds a pixel.
    """
    if geometry.dilation == (1, 1):
        return
    for axis, name in ((0, "row"), (1, "column")):
        starts = geometry.window_starts(axis)
        taps = starts[:, None] + numpy.arange(geometry.kernel[axis]) * geometry.dilation[axis]
        inside = ((taps >= 0) & (taps < geometry.input_hw[axis])).any(axis=1)
        if not inside.all():
            index = int(numpy.argmin(inside))
            raise ValueError(
                f"{op}: output {name} {index} has a window (taps {taps[index].tolist()}) that lies wholly in the "
                f"padding (kernel_size {geometry.kernel}, stride {geometry.stride}, padding {geometry.padding}, "
                f"dilation {geometry.dilation}, input shape {input_shape})"
            )


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling as ``torch.nn.functional.max_pool2d``.

    Args:
        input: (N, C, H, W) or unbatched (C, H, W), floating point.
        kernel_size, stride, padding, dilation: an int or a pair (height, width). ``stride`` defaults
            to ``kernel_size``; padding (with -inf) is at most ``kernel_size // 2``.
        ceil_mode: round the output size up (the last window may then run past the padding).
        return_indices: also return the (N, C, P, Q) int64 Tensor of flat indices h*W + w of the maxima.

    On ``cuda`` and ``cudasim`` the kernels take float32 only: another dtype raises TypeError there.

    Returns:
        (N, C, P, Q) Tensor (or (C, P, Q)), and the indices when ``return_indices``.
    """
    op = "max_pool2d"
    x, unbatched = batched_input(as_tensor(input, f"{op}: input"), op)
    if not isinstance(return_indices, (bool, numpy.bool_)):
        raise TypeError(f"{op}: return_indices must be a bool, got {return_indices!r}")
    require_float32(op, x.dtype, x.device, x.shape)
    geometry = pool_geometry(op, x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    _check_no_empty_window(op, geometry, x.shape)
    function = MaxPool2d(geometry, bool(return_indices))
    output = unbatched_output(function.apply(x), unbatched)
    if not return_indices:
        return output
    indices = function.plane_indices()
    indices = indices[0] if unbatched else indices
    return output, Tensor._from_array(indices, x.device, False)


__all__ = ["MaxPool2d", "PoolGeometry", "max_pool2d", "pool_geometry"]
