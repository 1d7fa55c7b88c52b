"""Winograd's minimal filtering for conv2d on the cpu: F(4x4, 3x3) and F(2x2, 5x5), stride 1,
dilation 1, one group. (The GPU's F(2x2, 3x3) and F(4x4, 3x3) are the kernels of ``cuda/winograd.cu``,
launched by ``conv2d.Conv2d`` on its kernel paths "winograd2" and "winograd4".)

Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016). F(m x m, r x r) cuts
the output into tiles of m x m pixels; tile t of output channel k comes from the 6x6 patch d of padded
input under it (m + r - 1 = 6: rows m*i .. m*i + 5, columns likewise) as

    Y = A^T [ sum over c of (G g G^T) * (B^T d B) ] A        (* elementwise, g = weight[k, c])

B^T, G and A^T come from the points 0, 1, -1, 2, -2 and infinity (``_matrices``); B^T is the same for
both kernel sizes, and for 3x3 they are the matrices of ``cuda/winograd.cu``. The sum over input
channels becomes 36 matrix products, one per transform point xi:

    M[xi] (K, T) = U[xi] (K, C) @ V[xi] (C, T),    U = G g G^T,  V = B^T d B,  T = N * ceil(P/m) * ceil(Q/m)

36 K C T multiply-adds where im2col's GEMM does m^2 r^2 K C T: 4 times fewer for 3x3 (144), 2.8 times
for 5x5 (100). Every other step is BLAS products or one copy, never a chain of NumPy passes: the
patches are gathered (36 / m^2 times the input: 2.25 for 3x3, 9 for 5x5, where im2col copies 9 and 25)
and the tiles scattered (the output) by one strided copy each, and the 2-D transforms of the data
(V = B^T d B, Y = A^T M A) are two products each, one per axis of the patch, over pieces of the columns
(``_transform_patches``, ``_transform_tiles``); the weight's (U = G g G^T) is one product with G x G.

Backward:

    dM = (A x A) dY,   dU[xi] = dM[xi] @ V[xi]^T,   dweight = (G x G)^T dU

and the input gradient is this same forward on the upstream gradient: for stride 1 it is the
convolution of dy, padded by r - 1 - pad on each side, with the weight flipped in both axes and its
channel axes swapped. That reuses the gather, products and scatter above, where the adjoint of the
patch gather (an overlap-add of 6x6 patches at stride m) would take NumPy adds over runs of 2-4 values.

Rounding: the transforms' coefficients reach 8 and 1/24 (16/24 for 5x5), so float32 results differ
from the direct sum by more than im2col's do: measured within 1.1e-5 of the result's largest
magnitude on ResNet-18's 3x3 layers (float64: within 1e-14). Non-finite values would not survive:
inf - inf gives NaN where the direct sum gives inf, so ``Conv2d`` runs this only on finite input,
weight and upstream gradient.
"""

from __future__ import annotations

import functools
import math

import numpy
from numpy.lib.stride_tricks import as_strided

from . import _memory, _parallel

PATCH = 6  # input patch side: the points 0, 1, -1, 2, -2 and infinity
_POINTS = (0, 1, -1, 2, -2)
_BT = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
       [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
# A^T's column 1 (the point 1) is all ones: a value added at transform point (1, 1) reaches every
# output of the tile once.
_BIAS_POINT = 1 * PATCH + 1


def tile_size(kernel: int) -> int:
    """m of F(m x m, kernel x kernel) on 6x6 patches: 4 for 3x3 kernels, 2 for 5x5."""
    return PATCH + 1 - kernel


@functools.cache
def _matrices(kernel: int, dtype) -> tuple:
    """(B^T (6, 6), A^T (m, 6), G x G (36, kernel^2)) in ``dtype``: row a of B^T and column a of A^T
    are point a; G x G's row a*6 + b is point (a, b), its column i*kernel + j filter tap (i, j).

    G's row for a finite point p is (1, p, p^2, ...) / prod over the other points q of (p - q), A^T's
    column for it is (1, p, p^2, ...); the point at infinity takes the last filter tap and the last
    output power (Lavin and Gray, section 4)."""
    m = tile_size(kernel)
    G = [[p**k / math.prod(p - q for q in _POINTS if q != p) for k in range(kernel)] for p in _POINTS]
    G.append([0] * (kernel - 1) + [1])
    AT = [[p**i for p in _POINTS] + [int(i == m - 1)] for i in range(m)]
    G = numpy.array(G, float)
    return numpy.array(_BT, dtype), numpy.array(AT, dtype), numpy.kron(G, G).astype(dtype)


def tiles(P: int, Q: int, kernel: int) -> tuple[int, int]:
    """The m x m output tiles down and across."""
    m = tile_size(kernel)
    return -(-P // m), -(-Q // m)


def transform_filter(weight, flipped: bool = False):
    """U = G g G^T for each (k, c) of weight (K, C, r, r): (36, K, C). ``flipped``: of each kernel
    flipped in both axes, which reverses its r*r taps, so G x G's columns are taken in reverse."""
    K, C, kernel = weight.shape[:3]
    U = _memory.empty((PATCH * PATCH, K, C), weight.dtype)
    GK = _matrices(kernel, weight.dtype)[2]
    taps = numpy.ascontiguousarray(weight).reshape(K * C, kernel * kernel).T
    _parallel.matmul(GK[:, ::-1] if flipped else GK, taps, out=U.reshape(PATCH * PATCH, K * C))
    return U


#: The data's 2-D transforms are two products with the 1-D matrix, one per axis of the patch (the
#: input's: 12 multiply-adds a value where B^T x B^T takes 36), over pieces of TRANSFORM_COLUMNS columns
#: (patches or tiles), so that what the first product writes is still in the cache for the second. As
#: one product with the 36 x 36 Kronecker matrix, BLAS ran the input's transform at 31-51 GFLOP/s on a
#: 2-core AMD EPYC VM: 1.7-2.7 ms for 32768 patches on one thread, 0.48-0.57 ms so (pieces of 2048 to
#: 16384 columns timed alike). Forward + backward against the Kronecker products, in one process
#: alternating (median of 11, 8 rounds): 0.79 of the time on the small ResNet's 64x16x32x32 layer, 0.85
#: on CIFAR ResNet-18's 64-channel 32x32 layer at batch 32, 0.85 and 0.94 on the batch-1 64-channel
#: 56x56 and 128-channel 28x28 layers, 0.79-0.80 on 5x5 layers of 64 and 128 channels; 0.98-1.02 on
#: 256 and 512 channels at 8x8 and 4x4 (batch 32), where the products outweigh the transforms.
TRANSFORM_COLUMNS = 4096


def _pieces(columns: int):
    """(start, stop) of each piece of TRANSFORM_COLUMNS of ``columns``."""
    return [(start, min(start + TRANSFORM_COLUMNS, columns)) for start in range(0, columns, TRANSFORM_COLUMNS)]


def _transform_patches(BT, patches, out) -> None:
    """out (6, 6, n): B^T d B for each of the n patches d of ``patches`` (6, 6, n); by pieces, first
    B^T d (over the patch's rows), then that times B (over its columns)."""
    columns = patches.shape[2]
    half = _memory.empty((PATCH, PATCH, min(columns, TRANSFORM_COLUMNS)), patches.dtype)
    for start, stop in _pieces(columns):
        piece = half[:, :, : stop - start]
        numpy.matmul(BT, patches[:, :, start:stop].transpose(1, 0, 2), out=piece.transpose(1, 0, 2))
        numpy.matmul(BT, piece, out=out[:, :, start:stop])


def _transform_tiles(AT, M, out) -> None:
    """out (m, n, m): A^T M A for each of the n 6x6 matrices M[:, :, t] of M (6, 6, n), out[i, t, j] its
    entry (i, j); by pieces, first M A (over the columns), then A^T times that (over the rows)."""
    columns, m = M.shape[2], AT.shape[0]
    half = _memory.empty((PATCH, min(columns, TRANSFORM_COLUMNS), m), M.dtype)
    for start, stop in _pieces(columns):
        piece = half[:, : stop - start]
        numpy.matmul(M[:, :, start:stop].transpose(0, 2, 1), AT.T, out=piece)
        numpy.matmul(AT, piece.reshape(PATCH, -1), out=out[:, start:stop].reshape(m, -1))


def _transform_tile_gradients(AT, grad_tiles, out) -> None:
    """out (6, 6, n): A g A^T for each of the n m x m matrices g of ``grad_tiles`` (m, n, m), laid out
    as ``_transform_tiles`` writes them: that transform's adjoint."""
    columns, m = out.shape[2], AT.shape[0]
    half = _memory.empty((PATCH, min(columns, TRANSFORM_COLUMNS), m), out.dtype)
    for start, stop in _pieces(columns):
        piece = half[:, : stop - start]
        numpy.matmul(AT.T, grad_tiles[:, start:stop].reshape(m, -1), out=piece.reshape(PATCH, -1))
        numpy.matmul(AT.T, piece.transpose(0, 2, 1), out=out[:, :, start:stop])


#: The T tiles are ordered (th, tw, N), the images last, where a batch holds at least IMAGES_LAST_MIN
#: times as many images as a row holds tiles, and (N, th, tw) otherwise. ``forward`` gathers the
#: patches from a padded input of the same order, so that with the images last its copies move runs of
#: N contiguous values, where with the images first they are runs of tw values at stride m. Forward +
#: backward of 3x3 layers (the fastest two of three or four runs) at batch 64, 32 channels at 16x16
#: and 64 at 8x8, took 13.7-14.0 and 8.9-9.1 ms with the images first and 11.5-11.6 and 6.7-7.1 ms
#: last; but at 2 images of 64 channels at 56x56 10.8-13.7 ms first and 17.4-18.0 last, at 4 of 28x28
#: 5.5-6.2 and 7.1-8.9; 8 or 16 images at 56x56 took about as long either way.
IMAGES_LAST_MIN = 2


def _tile_order(N: int, th: int, tw: int) -> tuple[bool, tuple, tuple]:
    """(whether the images come last, see IMAGES_LAST_MIN; the sizes of the T tiles' axes in their
    order; the permutation that takes the tiles' (m, K, *those axes, m), as ``_transform_tiles`` writes
    them, to the output's (N, K, th, m, tw, m))."""
    if N >= IMAGES_LAST_MIN * tw:
        return True, (th, tw, N), (4, 1, 2, 0, 3, 5)
    return False, (N, th, tw), (2, 1, 3, 0, 4, 5)


def transform_input(x, pads: tuple[int, int, int, int], kernel: int):
    """V (36, C, T): the transform B^T d B of each 6x6 patch d of x (N, C, H, W) padded by pads (top,
    bottom, left, right), its T tiles in ``_tile_order``; for a kernel x kernel weight, stride 1."""
    N, C, H, W = x.shape
    m, points = tile_size(kernel), PATCH * PATCH
    top, bottom, left, right = pads
    th, tw = tiles(H + top + bottom - kernel + 1, W + left + right - kernel + 1, kernel)
    T = N * th * tw
    images_last, order, _ = _tile_order(N, th, tw)
    # The padded input, the images last or first as the tiles; the last tiles' patches end at row
    # m*th + kernel - 2.
    rows, columns = m * th + kernel - 1, m * tw + kernel - 1
    if images_last:
        padded = _memory.zeros((C, rows, columns, N), x.dtype)
        for first in range(0, N, _memory.IMAGE_TILE):
            images = slice(first, first + _memory.IMAGE_TILE)
            padded[:, top : top + H, left : left + W, images] = x[images].transpose(1, 2, 3, 0)
        stride_c, stride_h, stride_w, stride_n = padded.strides
        tile_strides = (m * stride_h, m * stride_w, stride_n)
    else:
        padded = _memory.zeros((N, C, rows, columns), x.dtype)
        padded[:, :, top : top + H, left : left + W] = x
        stride_n, stride_c, stride_h, stride_w = padded.strides
        tile_strides = (stride_n, m * stride_h, m * stride_w)
    patches = as_strided(padded, shape=(PATCH, PATCH, C) + order, strides=(stride_h, stride_w, stride_c) + tile_strides,
                         writeable=False)
    gathered = _memory.empty((points, C * T), x.dtype)
    numpy.copyto(gathered.reshape((PATCH, PATCH, C) + order), patches)
    del padded, patches
    V = _memory.empty((points, C, T), x.dtype)
    _transform_patches(_matrices(kernel, x.dtype)[0], gathered.reshape(PATCH, PATCH, C * T),
                       V.reshape(PATCH, PATCH, C * T))
    return V


def forward(x, U, bias, pads: tuple[int, int, int, int], kernel: int, out=None):
    """x (N, C, H, W), U (36, K, C) from ``transform_filter`` of a kernel x kernel weight (or a view of
    one with its last two axes swapped: each U[xi] is read as BLAS's transposed operand), bias (K,) or
    None, pads (top, bottom, left, right), each >= 0 -> (y (N, K, P, Q), V (36, C, T), the transformed
    input, its tiles in ``_tile_order``). y is ``out`` where given (C-contiguous), else a new array."""
    N, C, H, W = x.shape
    K = U.shape[1]
    m, points = tile_size(kernel), PATCH * PATCH
    top, bottom, left, right = pads
    P, Q = H + top + bottom - kernel + 1, W + left + right - kernel + 1
    th, tw = tiles(P, Q, kernel)
    T = N * th * tw
    _, order, to_output = _tile_order(N, th, tw)
    V = transform_input(x, pads, kernel)
    M = _memory.empty((points, K, T), x.dtype)
    _parallel.matmul(U, V, out=M)
    if bias is not None:
        numpy.add(M[_BIAS_POINT], bias.reshape(K, 1), out=M[_BIAS_POINT])
    # Y laid out (m, K, *order, m): the tiles' rows stay contiguous in the scatter.
    tiles_y = _memory.empty((m, K * T, m), x.dtype)
    _transform_tiles(_matrices(kernel, x.dtype)[1], M.reshape(PATCH, PATCH, K * T), tiles_y)
    del M
    y = _memory.empty((N, K, P, Q), x.dtype) if out is None else out
    whole = (P, Q) == (m * th, m * tw)  # the tiles cover the output exactly: they go straight into it
    full = y if whole else _memory.empty((N, K, m * th, m * tw), x.dtype)
    numpy.copyto(full.reshape(N, K, th, m, tw, m), tiles_y.reshape((m, K) + order + (m,)).transpose(to_output))
    if not whole:
        numpy.copyto(y, full[:, :, :P, :Q])
    return y, V


def grad_weight(grad, V, C: int, kernel: int):
    """dweight (K, C, kernel, kernel) from the upstream gradient grad (N, K, P, Q) and forward's V."""
    N, K, P, Q = grad.shape
    m, points = tile_size(kernel), PATCH * PATCH
    th, tw = tiles(P, Q, kernel)
    _, AT, GK = _matrices(kernel, grad.dtype)
    if (P, Q) == (m * th, m * tw):
        grad_tiles = grad.reshape(N, K, th, m, tw, m)
    else:  # the outputs past P x Q count as 0
        grad_tiles = _memory.zeros((N, K, th, m, tw, m), grad.dtype)
        grad_tiles.reshape(N, K, m * th, m * tw)[:, :, :P, :Q] = grad
    _, order, to_output = _tile_order(N, th, tw)
    by_tile = _memory.empty((m, K) + order + (m,), grad.dtype)  # the forward's tiles' layout
    numpy.copyto(by_tile, grad_tiles.transpose(numpy.argsort(to_output)))
    del grad_tiles
    T = N * th * tw
    grad_M = _memory.empty((points, K, T), grad.dtype)
    _transform_tile_gradients(AT, by_tile.reshape(m, K * T, m), grad_M.reshape(PATCH, PATCH, K * T))
    del by_tile
    grad_U = _memory.empty((points, K, C), grad.dtype)
    _parallel.matmul(grad_M, V.swapaxes(1, 2), out=grad_U)
    del grad_M
    result = _memory.empty((K, C, kernel, kernel), grad.dtype)
    _parallel.matmul(grad_U.reshape(points, K * C).T, GK, out=result.reshape(K * C, kernel * kernel))
    return result


def grad_input(grad, weight, pads: tuple[int, int, int, int], out=None, flipped=None):
    """dx (N, C, H, W), in ``out`` where given: ``forward`` on grad (N, K, P, Q) with the weight flipped
    and its channel axes swapped, grad padded by kernel - 1 - pad (cropped where a pad passes kernel - 1).
    The flip is taken in the transform and the swap by the products (``forward``), so the weight is
    never copied: a 512x512 3x3 weight's transposing copy took 3.6 ms. ``flipped``: that transform,
    ``transform_filter(weight, flipped=True)``, where the caller has it."""
    kernel = weight.shape[2]
    crop_top, crop_bottom, crop_left, crop_right = (max(0, pad - (kernel - 1)) for pad in pads)
    P, Q = grad.shape[2:]
    grad = grad[:, :, crop_top : P - crop_bottom, crop_left : Q - crop_right]
    if flipped is None:
        flipped = transform_filter(weight, flipped=True)
    pads = tuple(max(0, kernel - 1 - pad) for pad in pads)
    return forward(grad, flipped.swapaxes(1, 2), None, pads, kernel, out)[0]  # flipped as (36, C, K)
