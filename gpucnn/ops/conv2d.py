"""conv2d: 2-D convolution (cross-correlation, as in PyTorch) with groups, stride, padding, dilation.

    y[n, k, p, q] = bias[k] + sum over c in group(k), r, s of
                    weight[k, c, r, s] * x_padded[n, c, p*stride_h + r*dilation_h, q*stride_w + s*dilation_w]

Shapes: input x (N, C, H, W), weight (K, C/groups, R, S), bias (K,), output y (N, K, P, Q); the
padded input is (N, C, Hp, Wp).

The cpu runs NumPy (``_conv2d_cpu``: im2col and BLAS, Winograd, 2x2 output blocks, parts of a batch
on every core); the kernel devices run ``cuda/conv2d.cu`` and ``cuda/winograd.cu`` (``_conv2d_gpu``).
``Conv2d`` is the op: it takes each half from its class, and keeps what both share.
"""

from __future__ import annotations

import contextlib
import functools
import numbers

from ..autograd import Function
from ..tensor import Tensor, as_tensor
from . import _kernels, _shapes
from ._conv2d_cpu import Conv2dCpu
from ._conv2d_gpu import PIXELS_MAX_REDUCTION, Conv2dGpu, has_wide_tile

__all__ = ["Conv2d", "KERNEL_PATHS", "checked_weight_and_groups", "conv2d", "has_wide_tile", "kernel_path",
           "kernel_paths"]


class Conv2d(Conv2dCpu, Conv2dGpu, Function):
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

    def _output_hw(self, x_shape: tuple, weight_shape: tuple) -> tuple[int, int]:
        """(P, Q) of this layer's output for these shapes."""
        top, bottom, left, right = self.pads
        return (_shapes.output_size(x_shape[2], weight_shape[2], self.stride[0], top, bottom, self.dilation[0]),
                _shapes.output_size(x_shape[3], weight_shape[3], self.stride[1], left, right, self.dilation[1]))


# The kernel paths of conv2d's GPU half, for the tests and benchmarks that compare them:
# - the launcher's own choice ("chosen");
# - the same with no reduction split (SPLIT_TARGET_BLOCKS), with splits until about 768 blocks run, or
#   with chunks down to 64 indices (SPLIT_MIN_CHUNK): see SPLIT_TARGET_BLOCKS;
# - the direct kernels only, as the launcher picks them but without the taps kernels, or with them in
#   the forward too (TAPS_FORWARD);
# - the launcher's choice with the tiles for short forward reductions and narrow layers too (neither
#   conv2d_forward_pixels nor conv2d_backward_filter_pixels), with the former for reductions of up to
#   PIXELS_MAX_REDUCTION indices whatever the output channels (a 7x7 RGB stem's 147), with it for narrow
#   products of longer reductions too, in splits (PIXELS_SPLIT),
#   with backward-filter's splits not fitted to the GPU's waves (FILL_WAVES), or with backward-data's
#   exact gather for up to 20 channels a group (GATHER_MAX_CHANNELS: the ConvNetJS layers' 16 and 20,
#   the small ResNet's 16, on which the 64 tile's rows are mostly channels that do not exist);
# - one tile for every product and the taps kernels wherever they apply (backward-data's gather for
#   few channels and the pixels forward turned off); the 128 tile exists on compute capability 7.0
#   and up;
# - Winograd's F(2x2, 3x3) or F(4x4, 3x3) wherever it applies, at any size.
_ANY_SIZE = dict(WINOGRAD_GPU_MIN_CHANNELS=0, WINOGRAD_GPU_MIN_MACS=0)
_NO_PIXELS = dict(PIXELS_FORWARD_MAX_REDUCTION=0, PIXELS_NARROW_CHANNELS=0)
KERNEL_PATHS = {
    "chosen": {},
    "unsplit": dict(SPLIT_TARGET_BLOCKS=0),
    "split768": dict(SPLIT_TARGET_BLOCKS=768),
    "chunk64": dict(SPLIT_MIN_CHUNK=64),
    "taps_off": dict(TAP_STEP_CHANNELS=0, WINOGRAD_GPU_TILE=0),
    "taps_forward": dict(TAPS_FORWARD=True, WINOGRAD_GPU_TILE=0),
    "pixels_off": _NO_PIXELS,
    "pixels_wide": dict(PIXELS_FORWARD_MAX_REDUCTION=PIXELS_MAX_REDUCTION),
    "pixels_split": dict(PIXELS_SPLIT=True),
    "waves_off": dict(FILL_WAVES=False),
    "gather20": dict(GATHER_MAX_CHANNELS=20),
    "tile64": dict(FORCE_TILE=64, GATHER_MAX_CHANNELS=0, WINOGRAD_GPU_TILE=0, TAPS_FORWARD=True, **_NO_PIXELS),
    "tile128": dict(FORCE_TILE=128, GATHER_MAX_CHANNELS=0, WINOGRAD_GPU_TILE=0, TAPS_FORWARD=True, **_NO_PIXELS),
    "winograd2": dict(WINOGRAD_GPU_TILE=2, **_ANY_SIZE),
    "winograd4": dict(WINOGRAD_GPU_TILE=4, **_ANY_SIZE),
}


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
    x, unbatched = _shapes.batched_input(input, "conv2d")
    device = x.device
    weight = as_tensor(weight, "weight", device)
    inputs = [x, weight] if bias is None else [x, weight, as_tensor(bias, "bias", device)]
    bias_key = None if bias is None else (inputs[2].shape, inputs[2].dtype)
    arguments = (x.shape, x.dtype, weight.shape, weight.dtype, bias_key, stride, padding, dilation, groups, device)
    if _shapes.plain(stride) and _shapes.plain(padding) and _shapes.plain(dilation) and type(groups) is int:
        stride_hw, pads, dilation_hw, groups = _checked_arguments(*arguments)
    else:  # other types of arguments (lists, NumPy integers, floats, which raise) are checked afresh
        stride_hw, pads, dilation_hw, groups = _checked_arguments.__wrapped__(*arguments)
    if groups > Conv2d.MAX_GRID_YZ and device.runs_kernels:  # a setting, not an argument: outside the kept result
        raise ValueError(
            f"conv2d: the kernels of device '{device}' run at most {Conv2d.MAX_GRID_YZ} groups, got {groups}"
        )
    function = Conv2d(stride_hw, pads, dilation_hw, groups)
    y = function.apply(*inputs)
    if not y.requires_grad:
        function.release()  # no graph was recorded: backward will never need the im2col buffer
    return _shapes.unbatched_output(y, unbatched)


def checked_weight_and_groups(op: str, dtype, weight_shape: tuple, weight_dtype, groups, layout: str) -> int:
    """The checks conv2d and conv_transpose2d share: a 4-D floating-point weight (``layout`` names its axes) of
    the input's ``dtype``, and ``groups`` an int of 1 or more, which it returns as an int."""
    if weight_dtype.kind != "f":
        raise TypeError(f"{op}: weight must be a floating-point tensor, got dtype {weight_dtype}")
    if len(weight_shape) != 4:
        raise ValueError(f"{op}: weight must be 4-D {layout}, got shape {weight_shape}")
    if weight_dtype != dtype:
        raise TypeError(
            f"{op}: input has dtype {dtype} but weight has dtype {weight_dtype}; they must match "
            "(PyTorch refuses this too): convert one with .to(dtype)"
        )
    if type(groups) is not int:
        if isinstance(groups, bool) or not isinstance(groups, numbers.Integral):
            raise TypeError(f"{op}: groups must be an int, got {groups!r}")
        groups = int(groups)
    if groups < 1:
        raise ValueError(f"{op}: groups must be at least 1, got {groups}")
    return groups


@functools.lru_cache(maxsize=1024)
def _checked_arguments(x_shape: tuple, dtype, weight_shape: tuple, weight_dtype, bias, stride, padding, dilation,
                       groups, device) -> tuple:
    """conv2d's checks of its arguments and of the input, weight and bias (``bias``: its (shape, dtype), or
    None) shapes and dtypes on ``device``; (stride, (top, bottom, left, right) pads, dilation, groups), as
    ints. The same on every call of a layer, so kept for its plain arguments (``_shapes.plain``): they took 3.5 of
    the 10.5 us of Python a call of a 64-channel 56x56 layer took on cudasim with its launches skipped,
    and on a GPU a small layer's call is mostly the host's work. A check that fails raises, and nothing is
    kept."""
    op = "conv2d"
    groups = checked_weight_and_groups(op, dtype, weight_shape, weight_dtype, groups, "(K, C/groups, R, S)")
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
    _kernels.require_float32(op, dtype, device, x_shape, weight_shape)
    if bias is not None:
        bias_shape, bias_dtype = bias
        if bias_shape != (kernels,):
            raise ValueError(f"{op}: bias must have shape ({kernels},) for weight {weight_shape}, got {bias_shape}")
        if bias_dtype != dtype:
            raise TypeError(f"{op}: bias has dtype {bias_dtype} but input and weight have dtype {dtype}")
    stride_hw = _shapes.pair(stride, "stride", op, minimum=1)
    dilation_hw = _shapes.pair(dilation, "dilation", op, minimum=1)
    kernel_hw = weight_shape[2:]
    pads = _shapes.conv_padding(padding, x_shape[2:], kernel_hw, stride_hw, dilation_hw, op)
    _shapes.check_window_fits(op, x_shape, pads, kernel_hw, dilation_hw, "weight")
    return stride_hw, pads, dilation_hw, groups
