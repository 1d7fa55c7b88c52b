"""ReLU and leaky ReLU, elementwise on any shape.

The cpu runs the NumPy reference (``forward_cpu``/``backward_cpu``); the kernel devices (``cuda``,
``cudasim``) run the kernels of ``cuda/relu.cu`` (``forward_gpu``/``backward_gpu``), on float32
only: the public calls raise TypeError for other dtypes there.

Gradient at the kink and at NaN follows PyTorch: ReLU passes the upstream gradient unless the input
is <= 0 (so at exactly 0 the gradient is 0, and at NaN it passes); leaky ReLU passes it where the
input is > 0 and scales it by ``negative_slope`` elsewhere (at 0 and at NaN).
"""

from __future__ import annotations

import functools
import numbers

import numpy

from ..autograd import Function
from ..tensor import Tensor, as_tensor
from . import _memory
from ._kernels import kernel_array, launch_elementwise, require_float32, sized
from .math import written_in_place
from ._parallel import run_chunked
from ._select import passed, select



@functools.cache
def _clip_bounds(dtype) -> tuple:
    """(0, inf) as scalars of ``dtype``: ReLU's forward is clip(x, 0, inf)."""
    return dtype.type(0), dtype.type(numpy.inf)


def _relu_where(x, out):
    """torch.relu's values and signs by selection alone: x where not x < 0 (so NaN and -0.0 pass), +0
    elsewhere; no arithmetic, so on any NumPy (slow: 7.8 ms on 2M float32, where clip takes 0.24)."""
    numpy.copyto(out, x)
    numpy.copyto(out, out.dtype.type(0), where=x < 0)
    return out


#: The forward's fast formulations, fastest first; each dtype takes the first that gives torch.relu's
#: values and signs (``_forward_formulation``). clip keeps -0.0 from NumPy 2.1 on (seen: float32 on 2.1,
#: 2.2 and 2.4, every dtype on 2.4); from 1.24 to 2.0 it returns +0.0 for float32 (on 1.24 for float64
#: and long double too), where maximum(0, x) keeps it for float32 and float64 (seen on 1.24). Both pass
#: NaN with its sign.
_FORWARD_FORMULATIONS = (
    lambda x, out: x.clip(*_clip_bounds(x.dtype), out=out),
    lambda x, out: numpy.maximum(x.dtype.type(0), x, out=out),
)


@functools.cache
def _forward_formulation(dtype):
    """The first of _FORWARD_FORMULATIONS that matches ``_relu_where`` on signed zeros, NaNs of both signs,
    infinities and subnormals, in contiguous, strided and 0-d arrays of ``dtype`` (NumPy runs each in
    loops of its own); ``_relu_where`` itself where none does."""
    tiny = numpy.finfo(dtype).smallest_subnormal
    specials = numpy.array([0.0, -0.0, numpy.nan, numpy.copysign(numpy.nan, -1), numpy.inf, -numpy.inf, 1.5, -1.5,
                            tiny, -tiny], dtype=dtype)
    probes = (numpy.tile(specials, 7), numpy.tile(specials, (7, 2))[:, ::2], specials[1:2].reshape(()))

    def same(a, b):  # equal values, NaN where NaN, the same signs (of zeros and NaNs too)
        return numpy.array_equal(a, b, equal_nan=True) and numpy.array_equal(numpy.signbit(a), numpy.signbit(b))

    for formulation in _FORWARD_FORMULATIONS:
        if all(same(formulation(x, numpy.empty(x.shape, dtype)), _relu_where(x, numpy.empty(x.shape, dtype)))
               for x in probes):
            return formulation
    return _relu_where


def _threads(count: int) -> int:
    """The threads cuda/relu.cu's kernels take for ``count`` elements: one per 16 (four float4 quads,
    which a thread loads before it stores them), as PyTorch's elementwise kernels take 16 float32s a
    thread. With one quad a thread, ReLU's forward on 32x64x32x32 ran 6.2 us on an H200 against
    PyTorch's 5.4 (its backward, two loads a thread, 6.3 against 6.3 with half as much again to move)."""
    return -(-count // 16)


def _c_contiguous(array):
    """``array`` itself when C-contiguous, else a C-contiguous copy (0-d stays 0-d, unlike ascontiguousarray)."""
    return array if array.flags.c_contiguous else array.copy()


class ReLU(Function):
    """y = max(x, 0); x: any shape.

    The cpu formulations, measured on float32 on a 2-core machine (164K / 2M elements):

    - forward is ``clip(x, 0, inf)``, whose NumPy loop is vectorised with scalar bounds: 19 us /
      0.23 ms, close to a copy (15 us / 0.21 ms), where ``maximum(x, 0)`` takes 62 us / 0.78 ms (its
      loop is vectorised for two array operands only). clip passes NaN through and keeps -0.0 as
      -0.0, bit for bit as torch.relu, from NumPy 2.1 on; on older NumPy the dtypes whose clip
      returns +0.0 there take another formulation (``_FORWARD_FORMULATIONS``).
    - backward passes the upstream gradient where ``not (x <= 0)``, that is where ``y != 0`` (y is
      NaN where x is). The mask, as integers 0/1, multiplies the gradient's bits read as integers of
      the same size (``_select.passed``): exact for every gradient (an inf or NaN gradient still gives 0 where x <= 0, as
      PyTorch's threshold_backward does) with no check for them. 43 us / 0.84 ms, where the float
      product with the bool mask takes 49 us / 1.0 ms (and needs that check), ``where`` 8 ms at 2M.
      The bool-to-integer conversion is most of the cost: NumPy's compare only writes bools.

    From ``THREADED`` elements on, both run in contiguous pieces on all cores
    (:func:`gpucnn.ops._parallel.run_chunked`): the backward in pieces of ``THREADED // 2``, the
    forward in pieces of ``FORWARD_PIECE`` (of a C-contiguous input). Waking a helper thread and
    waiting for it costs about 40 us here, more than it saves below that. Below, the backward runs in
    pieces of ``CACHED`` elements one after the other, so that a piece's mask and product are still in
    the cache for its next pass; on a 2-core Intel Xeon VM (2 MiB of L2 a core), float32, against one
    piece: 512K elements 0.26 ms against 0.35, 1M - 1 0.50-0.52 against 0.69-0.70, 256K 0.128 against
    0.143-0.145, 128K (one piece either way) 0.048-0.052. (Such pieces inside the threaded ones took 2M
    from 0.78-0.82 ms to 1.0.) On a later 2-core Xeon VM, called back to back at 2M, the threaded
    backward took 0.80-0.86 ms against 0.97-1.04 on one core, the threaded forward 0.40-0.44 ms
    against 0.53-0.58 (pieces of 256K; 0.43 in pieces of 128K), and 0.49-0.55 ms against 0.56-0.58
    when every call came right after a PyTorch op, whose OpenMP threads then spin on the second core.
    """

    THREADED = 1 << 20
    FORWARD_PIECE = 1 << 18
    CACHED = 1 << 16
    uses_output = True  # the cpu's backward reads y (the kernels' reads x)

    def forward_cpu(self, x):
        formulation = _forward_formulation(x.dtype)
        self.y = _memory.empty(x.shape, x.dtype)
        if x.size >= self.THREADED and x.flags.c_contiguous:
            x_flat, y_flat = x.reshape(-1), self.y.reshape(-1)
            run_chunked(lambda start, stop: formulation(x_flat[start:stop], y_flat[start:stop]), x.size,
                        self.FORWARD_PIECE)
        else:
            formulation(x, self.y)
        return self.y

    def backward_cpu(self, grad_output):
        y, grad = _c_contiguous(self.y).reshape(-1), _c_contiguous(grad_output).reshape(-1)
        grad_input = _memory.empty(y.shape, grad.dtype)

        def work(start, stop):  # the gradient where y != 0: where x > 0 or x is NaN
            nonzero = numpy.not_equal(y[start:stop], 0, out=_memory.empty(stop - start, bool))
            passed(numpy, nonzero, grad[start:stop], out=grad_input[start:stop])

        if y.size >= self.THREADED:
            run_chunked(work, y.size, self.THREADED // 2)
        else:  # in pieces whose mask and product stay in the cache from one pass to the next
            for start in range(0, y.size, self.CACHED):
                work(start, min(start + self.CACHED, y.size))
        return (grad_input.reshape(self.y.shape),)

    def forward_gpu(self, x):
        xp = self.xp
        self.x = kernel_array(xp, x)
        y = xp.empty(x.shape, dtype=xp.float32)
        launch_elementwise(self.device, "relu", "relu_forward", _threads(y.size), (self.x, y),
                           sized("relu_forward", y.size, ()))
        return y

    def backward_gpu(self, grad_output):
        xp = self.xp
        grad_output = kernel_array(xp, grad_output)
        grad_input = xp.empty(grad_output.shape, dtype=xp.float32)
        launch_elementwise(self.device, "relu", "relu_backward", _threads(grad_input.size),
                           (self.x, grad_output, grad_input), sized("relu_backward", grad_input.size, ()))
        return (grad_input,)


class LeakyReLU(Function):
    """y = x where x > 0, negative_slope * x elsewhere; x: any shape."""

    def __init__(self, negative_slope: float):
        self.negative_slope = negative_slope

    def forward_cpu(self, x):
        self.x = x
        return numpy.multiply(x, self._factor(x), out=_memory.empty(x.shape, x.dtype))

    def backward_cpu(self, grad_output):
        return (numpy.multiply(grad_output, self._factor(self.x), out=_memory.empty(grad_output.shape,
                                                                                    grad_output.dtype)),)

    def _factor(self, x):
        """1 where x > 0, negative_slope elsewhere (at NaN too), in x's dtype (``select``): x times it, and the
        upstream gradient times it, are PyTorch's where(x > 0, x, x * slope) and where(x > 0, dy, dy * slope)
        bit for bit, x * 1 being x (inf and NaN too). On 451,584 float32 (2-core AMD EPYC VM, three runs)
        forward and backward took 1.75-2.15 and 1.78-2.24 ms with NumPy's where, 0.18-0.27 ms each so."""
        return select(numpy, x > 0, x.dtype.type(1), x.dtype.type(self.negative_slope))

    def forward_gpu(self, x):
        xp = self.xp
        self.x = kernel_array(xp, x)
        y = xp.empty(x.shape, dtype=xp.float32)
        launch_elementwise(self.device, "relu", "leaky_relu_forward", _threads(y.size),
                           (self.x, y, numpy.float32(self.negative_slope)), sized("leaky_relu_forward", y.size, ()))
        return y

    def backward_gpu(self, grad_output):
        xp = self.xp
        grad_output = kernel_array(xp, grad_output)
        grad_input = xp.empty(grad_output.shape, dtype=xp.float32)
        launch_elementwise(self.device, "relu", "leaky_relu_backward", _threads(grad_input.size),
                           (self.x, grad_output, grad_input, numpy.float32(self.negative_slope)),
                           sized("leaky_relu_backward", grad_input.size, ()))
        return (grad_input,)


def _float_input(input, op: str) -> Tensor:
    x = as_tensor(input, f"{op}: input")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating-point tensor, got dtype {x.dtype} (shape {x.shape})")
    require_float32(op, x.dtype, x.device, x.shape)
    return x


def relu(input, inplace: bool = False) -> Tensor:
    """Rectified linear unit, elementwise. input: any shape; output: the same shape and dtype.

    On ``cuda`` and ``cudasim`` the kernels take float32 only: another dtype raises TypeError there.
    ``inplace=True`` overwrites the input where autograd records nothing (see
    :func:`gpucnn.ops.math.written_in_place`).

    >>> relu(gpucnn.tensor([1.0, -2.0, 3.0, -1.0])).tolist()
    [1.0, 0.0, 3.0, 0.0]
    """
    x = _float_input(input, "relu")
    if inplace:
        return written_in_place(input, lambda x: ReLU().apply(x), "relu")
    return ReLU().apply(x)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else negative_slope * x. input: any shape; output: the same shape and dtype.

    On ``cuda`` and ``cudasim`` the kernels take float32 only: another dtype raises TypeError there.
    ``inplace=True`` as :func:`relu`'s.
    """
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
        raise TypeError(f"leaky_relu: negative_slope must be a real number, got {negative_slope!r}")
    x = _float_input(input, "leaky_relu")
    if inplace:
        return written_in_place(input, lambda x: LeakyReLU(float(negative_slope)).apply(x), "leaky_relu")
    return LeakyReLU(float(negative_slope)).apply(x)
