"""Winograd's F(4x4, 3x3) for conv2d on the cpu: 3x3 kernels at stride 1, dilation 1, one group.

Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016). The output is cut
into tiles of 4x4 pixels; tile t of output channel k comes from the 6x6 patch d of padded input
under it (rows 4i .. 4i+5, columns 4j .. 4j+5) as

    Y = A^T [ sum over c of (G g G^T) * (B^T d B) ] A        (* elementwise, g = weight[k, c])

with the matrices below (``cuda/winograd.cu`` has the same for the GPU). The sum over input channels
becomes 36 matrix products, one per transform point xi:

    M[xi] (K, T) = U[xi] (K, C) @ V[xi] (C, T),    U = G g G^T,  V = B^T d B,  T = N * ceil(P/4) * ceil(Q/4)

36 K C T multiply-adds where im2col's GEMM does 144 K C T (16 outputs of 9 taps per tile): 4 times
fewer. Every other step is one BLAS product or one copy, never a chain of NumPy passes: the 2-D
transforms are products with Kronecker matrices (V = (B^T x B^T) D over the gathered patches D,
Y = (A^T x A^T) M, U = (G x G) g), which BLAS streams on all cores, and the patches are gathered
(2.25 times the input) and the tiles scattered (the output) by one strided copy each.

Backward:

    dM = (A x A) dY,   dU[xi] = dM[xi] @ V[xi]^T,   dweight = (G x G)^T dU

and the input gradient is this same forward on the upstream gradient: for stride 1 it is the
convolution of dy, padded by 2 - pad on each side, with the weight flipped in both axes and its
channel axes swapped. That reuses the gather, products and scatter above, where the adjoint of the
patch gather (an overlap-add of 6x6 patches at stride 4) would take NumPy adds over runs of 2-4 values.

Rounding: the transforms' coefficients reach 8 and 1/24, so float32 results differ from the direct
sum by more than im2col's do: measured within 1.1e-5 of the result's largest magnitude on ResNet-18's
layers (float64: within 1e-14). Non-finite values would not survive: inf - inf gives NaN where the
direct sum gives inf, so ``Conv2d`` runs this only on finite input, weight and upstream gradient.
"""

from __future__ import annotations

import functools

import numpy
from numpy.lib.stride_tricks import as_strided

from . import _memory

_BT = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
       [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
_G = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
      [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]
_AT = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
# A^T's column 1 is all ones: a value added at transform point (1, 1) reaches all 16 outputs once.
_BIAS_POINT = 1 * 6 + 1


@functools.cache
def _kron(dtype) -> tuple:
    """(B^T x B^T (36, 36), G x G (36, 9), A^T x A^T (16, 36)) in ``dtype``: row a*6 + b of a 2-D
    transform is point (a, b), column i*6 + j (i*3 + j for G) patch position (i, j)."""
    return tuple(numpy.kron(m, m).astype(dtype) for m in (numpy.array(_BT, float), numpy.array(_G),
                                                           numpy.array(_AT, float)))


def tiles(P: int, Q: int) -> tuple[int, int]:
    """The 4x4 output tiles down and across."""
    return -(-P // 4), -(-Q // 4)


def transform_filter(weight):
    """U = G g G^T for each (k, c) of weight (K, C, 3, 3): (36, K, C)."""
    K, C = weight.shape[:2]
    U = _memory.empty((36, K, C), weight.dtype)
    numpy.matmul(_kron(weight.dtype)[1], numpy.ascontiguousarray(weight).reshape(K * C, 9).T,
                 out=U.reshape(36, K * C))
    return U


def forward(x, U, bias, pads: tuple[int, int, int, int]):
    """x (N, C, H, W), U (36, K, C) from ``transform_filter``, bias (K,) or None, pads (top, bottom,
    left, right), each >= 0 -> (y (N, K, P, Q), V (36, C, T), the transformed input)."""
    N, C, H, W = x.shape
    K = U.shape[1]
    top, bottom, left, right = pads
    P, Q = H + top + bottom - 2, W + left + right - 2
    th, tw = tiles(P, Q)
    T = N * th * tw
    BK, _, AK = _kron(x.dtype)
    padded = _memory.zeros((N, C, 4 * th + 2, 4 * tw + 2), x.dtype)  # the last tiles' patches end at row 4th+1
    padded[:, :, top : top + H, left : left + W] = x
    stride_n, stride_c, stride_h, stride_w = padded.strides
    patches = as_strided(padded, shape=(6, 6, C, N, th, tw),
                         strides=(stride_h, stride_w, stride_c, stride_n, 4 * stride_h, 4 * stride_w), writeable=False)
    gathered = _memory.empty((36, C * T), x.dtype)
    numpy.copyto(gathered.reshape(6, 6, C, N, th, tw), patches)
    del padded, patches
    V = _memory.empty((36, C, T), x.dtype)
    numpy.matmul(BK, gathered, out=V.reshape(36, C * T))
    del gathered
    M = _memory.empty((36, K, T), x.dtype)
    numpy.matmul(U, V, out=M)
    if bias is not None:
        numpy.add(M[_BIAS_POINT], bias.reshape(K, 1), out=M[_BIAS_POINT])
    # Y^T (K*T, 16), laid out (K, N, th, tw, 4, 4): the tiles' rows of 4 stay contiguous in the scatter.
    tiles_t = _memory.empty((K * T, 16), x.dtype)
    numpy.matmul(M.reshape(36, K * T).T, AK.T, out=tiles_t)
    del M
    out = _memory.empty((N, K, th, 4, tw, 4), x.dtype)
    numpy.copyto(out, tiles_t.reshape(K, N, th, tw, 4, 4).transpose(1, 0, 2, 4, 3, 5))
    out = out.reshape(N, K, 4 * th, 4 * tw)
    if (P, Q) == (4 * th, 4 * tw):
        return out, V
    y = _memory.empty((N, K, P, Q), x.dtype)
    numpy.copyto(y, out[:, :, :P, :Q])
    return y, V


def grad_weight(grad, V, C: int):
    """dweight (K, C, 3, 3) from the upstream gradient grad (N, K, P, Q) and forward's V."""
    N, K, P, Q = grad.shape
    th, tw = tiles(P, Q)
    _, GK, AK = _kron(grad.dtype)
    if (P, Q) == (4 * th, 4 * tw):
        grad_tiles = grad.reshape(N, K, th, 4, tw, 4)
    else:  # the outputs past P x Q count as 0
        grad_tiles = _memory.zeros((N, K, th, 4, tw, 4), grad.dtype)
        grad_tiles.reshape(N, K, 4 * th, 4 * tw)[:, :, :P, :Q] = grad
    by_tile = _memory.empty((K, N, th, tw, 4, 4), grad.dtype)
    numpy.copyto(by_tile, grad_tiles.transpose(1, 0, 2, 4, 3, 5))
    del grad_tiles
    T = N * th * tw
    grad_M = _memory.empty((36, K, T), grad.dtype)
    numpy.matmul(AK.T, by_tile.reshape(K * T, 16).T, out=grad_M.reshape(36, K * T))
    del by_tile
    grad_U = _memory.empty((36, K, C), grad.dtype)
    numpy.matmul(grad_M, V.swapaxes(1, 2), out=grad_U)
    del grad_M
    result = _memory.empty((K, C, 3, 3), grad.dtype)
    numpy.matmul(grad_U.reshape(36, K * C).T, GK, out=result.reshape(K * C, 9))
    return result


def grad_input(grad, weight, pads: tuple[int, int, int, int]):
    """dx (N, C, H, W): ``forward`` on grad (N, K, P, Q) with the weight flipped and its channel axes
    swapped, grad padded by 2 - pad (cropped where a pad passes 2)."""
    top, bottom, left, right = pads
    P, Q = grad.shape[2:]
    grad = grad[:, :, max(0, top - 2) : P - max(0, bottom - 2), max(0, left - 2) : Q - max(0, right - 2)]
    flipped = transform_filter(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    return forward(grad, flipped, None, tuple(max(0, 2 - pad) for pad in pads))[0]
