"""The tensor functions of torch's training and evaluation code beyond arithmetic: predicates, reductions,
elementwise functions, matrix products, indexing and sorting, against torch (values, dtypes, shapes and
gradients) on awkward inputs, and their errors."""

import math

import numpy as np
import pytest
import torch

import gpucnn
from helpers import assert_close, check_against_torch, check_gradients, check_op

rng = np.random.default_rng(40)
A = rng.standard_normal((3, 4, 5))


def both(array, device="cpu"):
    """The same values as a gpucnn tensor and as a torch tensor."""
    return gpucnn.tensor(array, device=device), torch.tensor(array)


def same(ours, theirs, what=""):
    """Equal values, shapes and dtypes (NaNs in one place), as torch's."""
    theirs = theirs.detach()
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch."), (what, ours.dtype, theirs.dtype)
    assert ours.shape == tuple(theirs.shape), (what, ours.shape, tuple(theirs.shape))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=str(what))


# ----------------------------------------------------------------------------- predicates
SPECIAL = np.array([[1.0, np.nan, -np.inf], [np.inf, 0.0, -2.0]], np.float32)


@pytest.mark.parametrize("device", gpucnn.devices())
@pytest.mark.parametrize("name", ["isnan", "isinf", "isfinite"])
def test_nan_and_inf_predicates_as_torch(device, name):
    for array in (SPECIAL, SPECIAL[0, 1], np.zeros((0, 2), np.float32), np.array([3, -1]), np.array([True])):
        ours, theirs = both(array, device)
        same(getattr(gpucnn, name)(ours), getattr(torch, name)(theirs), (name, array))
        same(getattr(ours, name)(), getattr(torch, name)(theirs), (name, array))


@pytest.mark.parametrize("device", gpucnn.devices())
@pytest.mark.parametrize("dim, keepdim", [(None, False), (0, False), (-1, True), ((0, 2), False), ((1, -1), True)])
def test_all_and_any_as_torch(device, dim, keepdim):
    data = (rng.random((3, 4, 5)) > 0.3) * rng.integers(-2, 3, (3, 4, 5))
    data[0] = 1
    for array in (data.astype(np.float32), data.astype(bool), data.astype(np.uint8), data.astype(np.int64)):
        ours, theirs = both(array, device)
        for name in ("all", "any"):
            expected = getattr(torch, name)(theirs) if dim is None else getattr(torch, name)(theirs, dim, keepdim)
            same(getattr(ours, name)(dim, keepdim), expected, (name, array.dtype, dim))
            same(getattr(gpucnn, name)(ours, dim=dim, keepdim=keepdim), expected, (name, array.dtype, dim))
    for array in (np.zeros((0, 3)), np.float32(0.0), np.float32(2.0)):  # empty: all True, any False; 0-d
        ours, theirs = both(array, device)
        for name in ("all", "any"):
            same(getattr(ours, name)(), getattr(theirs, name)(), (name, array))
            same(getattr(ours, name)(0), getattr(theirs, name)(0), (name, array))


def test_allclose_and_equal_as_torch():
    """Python bools; allclose broadcasts and sees NaN as equal only with equal_nan; equal wants one shape."""
    a = np.array([[1.0, np.nan, np.inf], [0.0, -1.0, 2.0]], np.float32)
    b = a + np.float32(1e-6)
    for x, y, kwargs in ((a, b, {}), (a, b, {"equal_nan": True}), (a, a + 1e-3, {"equal_nan": True}),
                         (a, a + 1e-3, {"equal_nan": True, "atol": 1e-2}), (a[1], a[1, :1], {}),
                         (a[1], a[1, :1] - 1, {}), (a[1], b[1], {"rtol": 0, "atol": 0}), (a[:0], a[:0], {})):
        ours = gpucnn.allclose(gpucnn.tensor(x), gpucnn.tensor(y), **kwargs)
        assert ours is torch.allclose(torch.tensor(x), torch.tensor(y), **kwargs), (x, y, kwargs)
        assert gpucnn.tensor(x).allclose(gpucnn.tensor(y), **kwargs) is ours
    for x, y in ((a[1], a[1]), (a, a), (a[1], b[1]), (a[1], a[1:]), (np.arange(3), np.arange(3)),
                 (np.arange(3), np.arange(3.0)), (np.zeros(0), np.zeros((0, 1)))):
        ours = gpucnn.equal(gpucnn.tensor(x), gpucnn.tensor(y))
        assert ours is torch.equal(torch.tensor(x), torch.tensor(y)), (x, y)
        assert gpucnn.tensor(x).equal(gpucnn.tensor(y)) is ours
    with pytest.raises(ValueError, match=r"^allclose: shapes \(2, 3\) \(input\) and \(2,\) \(other\) do not broadcast"):
        gpucnn.allclose(gpucnn.tensor(a), gpucnn.tensor(a[0, :2]))


@pytest.mark.parametrize("device", gpucnn.devices())
def test_count_nonzero_and_nonzero_as_torch(device):
    data = np.array([[0.0, 1.5, 0.0], [-2.0, 0.0, np.nan]], np.float32)
    for array in (data, data.astype(bool), np.float32(3.0), np.float32(0.0), np.zeros((2, 0)), np.arange(4) % 2):
        ours, theirs = both(array, device)
        same(gpucnn.nonzero(ours), torch.nonzero(theirs), array)
        same(ours.nonzero(), theirs.nonzero(), array)
        ours_tuple, theirs_tuple = ours.nonzero(as_tuple=True), theirs.nonzero(as_tuple=True)
        assert isinstance(ours_tuple, tuple) and len(ours_tuple) == len(theirs_tuple)
        for o, t in zip(ours_tuple, theirs_tuple):
            same(o, t, array)
        same(gpucnn.count_nonzero(ours), torch.count_nonzero(theirs), array)
        if np.ndim(array) == 2:
            for dim in (0, -1, (0, 1)):
                same(ours.count_nonzero(dim), theirs.count_nonzero(dim), (array, dim))


# ----------------------------------------------------------------------------- prod, cumsum, logsumexp, norm
@pytest.mark.parametrize("dim, keepdim", [(None, False), (0, False), (1, True), (-1, False)])
def test_prod_against_torch_with_zeros(dim, keepdim):
    """The gradient at a row's single zero is the product of the others; with two zeros in a row, none."""
    a = rng.uniform(0.5, 1.5, (3, 4, 5)) * rng.choice([-1, 1], (3, 4, 5))
    a[0, 1, 2] = 0.0  # one zero in its rows along every dim
    a[2, 3, 0] = a[2, 3, 4] = a[2, 0, 4] = 0.0  # two zeros in some rows

    def op(module):
        return lambda x: module.prod(x) if dim is None else module.prod(x, dim, keepdim)
    check_op(op(gpucnn), op(torch), a)
    check_op(lambda x: x.prod(0), lambda x: x.prod(0), np.float64(1.5))
    check_op(lambda x: x.prod(), lambda x: x.prod(), np.array([0.0, 2.0, 3.0]))  # one zero over every element


def test_prod_and_cumsum_dtypes_and_edges_as_torch():
    for array in (np.array([[2, 3], [4, -1]], np.int32), np.array([[True, False], [True, True]]), np.zeros((0, 3))):
        ours, theirs = both(array)
        same(ours.prod(), theirs.prod(), array)
        same(ours.prod(1), theirs.prod(1), array)
        same(gpucnn.cumsum(ours, 0), torch.cumsum(theirs, 0), array)
        same(ours.cumsum(-1), theirs.cumsum(-1), array)
    ours, theirs = both(np.float32(2.5))
    same(ours.cumsum(0), theirs.cumsum(0))
    same(ours.prod(-1, keepdim=True), theirs.prod(-1, keepdim=True))
    same(gpucnn.prod(gpucnn.tensor([1, 2]), dtype=np.float64), torch.prod(torch.tensor([1, 2]), dtype=torch.float64))
    with pytest.raises(TypeError, match=r"^prod: dim must be an int or None, got \(0, 1\)"):
        ours.prod((0, 1))
    with pytest.raises(ValueError, match="^cumsum: dimension 2 is out of range for a tensor with 2 dimensions"):
        gpucnn.ones(2, 3).cumsum(2)


@pytest.mark.parametrize("dim", [0, -1, 1])
def test_cumsum_against_torch(dim):
    check_op(lambda x: x.cumsum(dim) * x, lambda x: x.cumsum(dim) * x, A)
    check_op(lambda x: gpucnn.cumsum(x, 0), lambda x: torch.cumsum(x, 0), np.float64(1.5))


@pytest.mark.parametrize("dim, keepdim", [(1, False), (-1, True), ((0, 2), False), ((0, 1, 2), True)])
def test_logsumexp_against_torch(dim, keepdim):
    check_op(lambda x: x.logsumexp(dim, keepdim), lambda x: x.logsumexp(dim, keepdim), A * 3)
    check_op(lambda x: gpucnn.logsumexp(x, dim=dim), lambda x: torch.logsumexp(x, dim=dim), A * 3)


def test_logsumexp_is_stable_and_handles_infinities_as_torch():
    data = np.array([[1e4, 1e4 - 1, -1e4], [-np.inf, -np.inf, -np.inf], [np.inf, 1.0, 0.0], [-1e4, -1e4, -np.inf],
                     [np.nan, 0.0, 1.0]], np.float32)
    for device in gpucnn.devices():
        check_against_torch(lambda x: x.logsumexp(1), lambda x: x.logsumexp(1), data, device=device)
    for array in (np.zeros((0, 3), np.float32), np.float32(2.0), np.array([[1, 2], [3, 4]])):
        ours, theirs = both(array)
        for dim in (0, -1):
            same(ours.logsumexp(dim), theirs.logsumexp(dim), (array, dim))
            same(ours.logsumexp(dim, keepdim=True), theirs.logsumexp(dim, keepdim=True), (array, dim))


NORMS = [(2, None, False), ("fro", None, False), (1, 1, False), (math.inf, -1, True), (-math.inf, 0, False),
         (3, (0, 2), True), (0.5, 2, False), ("fro", (1, 2), False), (2, (0, 1, 2), True), (1.5, None, False)]


@pytest.mark.parametrize("p, dim, keepdim", NORMS)
def test_norm_against_torch(p, dim, keepdim):
    check_op(lambda x: x.norm(p, dim, keepdim), lambda x: x.norm(p, dim, keepdim), A)
    check_op(lambda x: gpucnn.norm(x, p=p, dim=dim), lambda x: torch.norm(x, p=p, dim=dim), A)


def test_norm_at_zero_ties_and_edges_as_torch():
    """The gradient is 0 where the norm is 0 (p 2, 1, 3 and 0.5), shared among tied extremes for inf, and
    none for p 0; an empty tensor's norm is 0; integer tensors and p 'nuc' are errors."""
    data = np.array([[0.0, 0.0, 0.0], [3.0, -3.0, 1.0], [0.0, 2.0, -2.0]], np.float32)
    for device in gpucnn.devices():
        for p in (2, "fro", 1, 3, 0.5, math.inf, -math.inf, 0):
            for dim in (1, None):
                check_against_torch(lambda x: x.norm(p, dim), lambda x: x.norm(p, dim), data, device=device)
    for array in (np.zeros((0, 3), np.float32), np.float32(-2.0)):
        ours, theirs = both(array)
        same(ours.norm(), theirs.norm())
        same(ours.norm(1, dim=-1), theirs.norm(1, dim=-1))
    with pytest.raises(TypeError, match="^norm needs a floating-point tensor, got dtype int64"):
        gpucnn.tensor([1, 2]).norm()
    with pytest.raises(ValueError, match="^norm: p must be 'fro' or a real number"):
        gpucnn.ones(2, 2).norm("nuc")
    same(gpucnn.tensor([3.0, 4.0]).norm(dtype=np.float64), torch.tensor([3.0, 4.0]).norm(dtype=torch.float64))


@pytest.mark.parametrize("dim, keepdim, correction", [(None, False, 1), (1, True, 0), ((0, 2), False, 1)])
def test_var_mean_and_std_mean_against_torch(dim, keepdim, correction):
    for name in ("var_mean", "std_mean"):
        ours = getattr(gpucnn, name)(gpucnn.tensor(A), dim, keepdim=keepdim, correction=correction)
        theirs = getattr(torch, name)(torch.tensor(A), dim, keepdim=keepdim, correction=correction)
        assert isinstance(ours, tuple) and len(ours) == 2
        for o, t in zip(ours, theirs):
            assert_close(o, t)
            assert o.shape == tuple(t.shape)
    check_op(lambda x: gpucnn.var_mean(x, dim, keepdim=keepdim)[0] * gpucnn.std_mean(x, dim, keepdim=keepdim)[1],
             lambda x: torch.var_mean(x, dim, keepdim=keepdim)[0] * torch.std_mean(x, dim, keepdim=keepdim)[1], A)
    check_op(lambda x: gpucnn.var(x, 1) + gpucnn.std(x, unbiased=False), lambda x: x.var(1) + x.std(unbiased=False), A)


# ----------------------------------------------------------------------------- elementwise
SMOOTH = {
    "reciprocal": lambda x: x, "rsqrt": lambda x: x.abs() + 0.3, "square": lambda x: x,
    "log1p": lambda x: x.abs() - 0.5,
    "expm1": lambda x: x, "log2": lambda x: x.abs() + 0.1, "log10": lambda x: x.abs() + 0.1, "erf": lambda x: x * 2,
    "neg": lambda x: x,
}


@pytest.mark.parametrize("name", list(SMOOTH))
def test_smooth_elementwise_functions_against_torch(name):
    a = A.copy()
    a[np.abs(a) < 0.1] = 0.4
    prepare = SMOOTH[name]
    check_op(lambda x: getattr(prepare(x), name)(), lambda x: getattr(prepare(x), name)(), a)
    check_op(lambda x: getattr(gpucnn, name)(prepare(x)), lambda x: getattr(torch, name)(prepare(x)), a)
    for array in (np.array([1, 4, 0]), np.zeros((0, 2), np.float32), np.float32(0.5)):  # dtypes as torch's
        ours, theirs = both(array)
        with np.errstate(divide="ignore"):
            expected = getattr(torch, name)(theirs)
            actual = getattr(gpucnn, name)(ours)
        assert str(actual.dtype) == str(expected.dtype).removeprefix("torch."), (name, array.dtype)
        assert_close(actual, expected)


def test_elementwise_functions_at_their_edges_as_torch():
    values = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, 1e-8, 40.0, -40.0, 1e30], np.float32)
    for name in ("reciprocal", "rsqrt", "log1p", "expm1", "log2", "log10", "erf", "sign"):
        ours, theirs = both(values)
        with np.errstate(all="ignore"):
            assert_close(getattr(ours, name)(), getattr(theirs, name)(), atol=0, rtol=2e-7, name=name)
    same(gpucnn.square(gpucnn.tensor([True, False])), torch.square(torch.tensor([True, False])))
    same(gpucnn.square(gpucnn.tensor([3], dtype=np.int32)), torch.square(torch.tensor([3], dtype=torch.int32)))


def test_erf_is_accurate_to_float64():
    x = np.concatenate([np.linspace(-7, 7, 20001), [0.46875, -0.46875, 4.0, -4.0, 1e-300, 27.0, -1e200]])
    expected = np.array([math.erf(v) for v in x])
    assert np.max(np.abs(gpucnn.erf(gpucnn.tensor(x)).numpy() - expected)) <= 4.5e-16
    x32 = x[:-1].astype(np.float32)
    assert_close(gpucnn.erf(gpucnn.tensor(x32)), torch.erf(torch.tensor(x32)), atol=1e-7, rtol=0)


@pytest.mark.parametrize("name", ["sign", "round", "floor", "ceil", "trunc"])
def test_rounding_and_sign_as_torch_with_zero_gradients(name):
    a = A * 3
    a[np.abs(a - np.round(a)) < 0.01] += 0.1  # away from the jumps, for central differences
    check_op(lambda x: getattr(x, name)() * x, lambda x: getattr(x, name)() * x, a)
    check_op(lambda x: getattr(gpucnn, name)(x) + x, lambda x: getattr(torch, name)(x) + x, a)
    halves = np.array([2.5, -0.5, 1.5, -3.5, 0.5, -0.0, np.nan, np.inf], np.float32)  # round: halves to even
    for array in (halves, np.array([[3, -2, 0]]), np.array([7], np.int32), np.zeros(0, np.float32), np.float64(-1.5)):
        ours, theirs = both(array)
        same(getattr(ours, name)(), getattr(theirs, name)(), (name, array))
    same(gpucnn.sign(gpucnn.tensor([True, False])), torch.sign(torch.tensor([True, False])))


def test_round_to_decimals_as_torch():
    a = (rng.standard_normal(50) * 1000).astype(np.float32)
    for decimals in (1, 2, 3, -1, -2):
        ours, theirs = both(a)
        same(ours.round(decimals=decimals), theirs.round(decimals=decimals), decimals)
        same(gpucnn.round(ours, decimals=decimals), torch.round(theirs, decimals=decimals), decimals)
    with pytest.raises(TypeError, match="^round: decimals=2 needs a floating-point tensor, got dtype int64"):
        gpucnn.tensor([1, 2]).round(2)
    with pytest.raises(TypeError, match="^floor is not defined for a bool tensor"):
        gpucnn.tensor([True]).floor()


# ----------------------------------------------------------------------------- matrix products
@pytest.mark.parametrize("a_shape, b_shape", [((3,), (2, 3, 4)), ((2, 1, 4, 3), (3,)), ((5, 1, 2, 3), (4, 3, 2)),
                                              ((3,), (3,)), ((1, 2, 3), (6, 3, 1)), ((2, 3), (4, 1, 3, 2)),
                                              ((0, 3), (3, 2)), ((2, 0), (0, 3))])
def test_matmul_broadcasts_as_torch(a_shape, b_shape):
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    check_op(lambda x, y: gpucnn.matmul(x, y), lambda x, y: torch.matmul(x, y), a, b)
    check_op(lambda x, y: x.matmul(y) + 0, lambda x, y: x.matmul(y) + 0, a, b)


def test_mm_bmm_dot_and_outer_against_torch():
    check_op(lambda x, y: gpucnn.mm(x, y), lambda x, y: torch.mm(x, y), rng.standard_normal((3, 4)),
             rng.standard_normal((4, 2)))
    check_op(lambda x, y: x.bmm(y), lambda x, y: x.bmm(y), rng.standard_normal((2, 3, 4)),
             rng.standard_normal((2, 4, 5)))
    check_op(lambda x, y: gpucnn.dot(x, y), lambda x, y: torch.dot(x, y), rng.standard_normal(5),
             rng.standard_normal(5))
    check_op(lambda x, y: x.outer(y), lambda x, y: x.outer(y), rng.standard_normal(3), rng.standard_normal(4))
    check_op(lambda x, y: gpucnn.outer(x, y), lambda x, y: torch.outer(x, y), rng.standard_normal(3),
             rng.standard_normal(0))
    same(gpucnn.dot(gpucnn.tensor([1, 2]), gpucnn.tensor([3, 4])),
         torch.dot(torch.tensor([1, 2]), torch.tensor([3, 4])))
    same(gpucnn.mm(gpucnn.tensor([[1, 2]]), gpucnn.tensor([[3], [4]])),
         torch.mm(torch.tensor([[1, 2]]), torch.tensor([[3], [4]])))


def test_matrix_products_name_the_shapes_they_refuse():
    m, v, b = gpucnn.ones(2, 3), gpucnn.ones(3), gpucnn.ones(2, 3, 4)
    for call, error, message in (
            (lambda: gpucnn.mm(m, v), ValueError, r"^mm: other must be a matrix \(2-D\), got shape \(3,\)"),
            (lambda: gpucnn.mm(m, m), ValueError, r"^matmul: shapes \(2, 3\) and \(2, 3\) do not align \(3 != 2\)"),
            (lambda: gpucnn.bmm(b, gpucnn.ones(3, 4, 2)), ValueError,
             r"^bmm: the batch sizes differ: input \(2, 3, 4\), other \(3, 4, 2\)"),
            (lambda: gpucnn.bmm(m, b), ValueError,
             r"^bmm: input must be a batch of matrices \(3-D\), got shape \(2, 3\)"),
            (lambda: gpucnn.dot(v, gpucnn.ones(4)), ValueError,
             r"^dot: the vectors differ in length: input \(3,\), other \(4,\)"),
            (lambda: gpucnn.outer(m, v), ValueError, r"^outer: input must be a vector \(1-D\), got shape \(2, 3\)"),
            (lambda: gpucnn.matmul(gpucnn.ones(2, 2, 3), gpucnn.ones(3, 3, 1)), ValueError,
             r"^matmul: the batch dimensions of shapes \(2, 2, 3\) and \(3, 3, 1\) do not broadcast"),
            (lambda: gpucnn.matmul(gpucnn.tensor(1.0), v), ValueError, "^matmul needs operands with at least one")):
        with pytest.raises(error, match=message):
            call()


# ----------------------------------------------------------------------------- gather, scatter, index_select, masks
def test_gather_against_torch():
    index = np.array([[[0, 2], [1, 1], [4, 0]], [[3, 3], [0, 4], [2, 2]]])  # repeats; smaller than A off dim 2
    check_op(lambda x, i: x.gather(2, i), lambda x, i: x.gather(2, i), A, index)
    check_op(lambda x, i: gpucnn.gather(x, -3, i), lambda x, i: torch.gather(x, -3, i), A, index % 3)
    check_op(lambda x, i: x.gather(1, i), lambda x, i: x.gather(1, i), A, index[:, :, :1].repeat(3, 2) % 4)
    check_op(lambda x, i: x.gather(0, i), lambda x, i: x.gather(0, i), A, np.zeros((0, 4, 5), np.int64))
    check_op(lambda x, i: x.gather(0, i), lambda x, i: x.gather(0, i), np.float64(2.5), np.int64(0))
    check_op(lambda x, i: x.gather(0, i), lambda x, i: x.gather(0, i), np.float64(2.5), np.zeros(3, np.int64))


def test_scatter_and_scatter_add_against_torch():
    index = np.array([[2, 0, 1, 4], [0, 3, 4, 1]])  # distinct along dim 1: scatter writes each place once
    src = rng.standard_normal((2, 4))
    base = rng.standard_normal((3, 5))
    check_op(lambda x, s, i: x.scatter(1, i, s), lambda x, s, i: x.scatter(1, i, s), base, src, index)
    check_op(lambda x, s, i: gpucnn.scatter(x, -1, i, s), lambda x, s, i: torch.scatter(x, -1, i, s), base, src, index)
    check_op(lambda x, i: x.scatter(1, i, value=2.5), lambda x, i: x.scatter(1, i, value=2.5), base, index)
    repeated = np.array([[2, 2, 0], [1, 1, 1]])  # scatter_add: repeated indices add up
    check_op(lambda x, s, i: x.scatter_add(1, i, s), lambda x, s, i: x.scatter_add(1, i, s), base, src[:, :3],
             repeated)
    check_op(lambda x, s, i: gpucnn.scatter_add(x, 0, i, s), lambda x, s, i: torch.scatter_add(x, 0, i, s),
             base, src[:, :3], repeated % 2)
    check_op(lambda x, s, i: x.scatter_add(0, i, s), lambda x, s, i: x.scatter_add(0, i, s),
             np.float64(1.0), np.float64(2.0), np.int64(0))
    # src larger than index: its leading block is taken (torch's backward refuses such a src: numerical gradients)
    larger = rng.standard_normal((3, 6))
    for name in ("scatter", "scatter_add"):
        ours = getattr(gpucnn.tensor(base), name)(1, gpucnn.tensor(index), gpucnn.tensor(larger))
        assert_close(ours, getattr(torch.tensor(base), name)(1, torch.tensor(index), torch.tensor(larger)))
        check_gradients(lambda x, s, i: getattr(x, name)(1, i, s), base, larger, index)
    ours, theirs = both(np.zeros((2, 3), np.int64))
    index = np.array([[0, 0, 2]])
    same(ours.scatter_add(1, gpucnn.tensor(index), gpucnn.tensor([[1, 2, 3]])),
         theirs.scatter_add(1, torch.tensor(index), torch.tensor([[1, 2, 3]])))
    same(ours.scatter(1, gpucnn.tensor(index), value=7), theirs.scatter(1, torch.tensor(index), value=7))


def test_index_select_against_torch():
    check_op(lambda x: x.index_select(1, gpucnn.tensor([3, 0, 3], device=x.device)),
             lambda x: x.index_select(1, torch.tensor([3, 0, 3])), A)
    check_op(lambda x: gpucnn.index_select(x, -1, gpucnn.tensor(2, device=x.device)),
             lambda x: torch.index_select(x, -1, torch.tensor(2)), A)
    check_op(lambda x: x.index_select(0, gpucnn.tensor([], dtype=np.int64, device=x.device)),
             lambda x: x.index_select(0, torch.tensor([], dtype=torch.int64)), A)
    check_op(lambda x: x.index_select(0, gpucnn.tensor([0], device=x.device)),
             lambda x: x.index_select(0, torch.tensor([0])), np.float64(2.0))


def test_gather_scatter_and_index_select_name_bad_indices():
    x, index = gpucnn.ones(2, 3), gpucnn.tensor([[0], [2]])
    for call, error, message in (
            (lambda: x.gather(1, gpucnn.tensor([[3]])), IndexError, "^gather: index 3 is out of bounds for dimension 1 "
                                                                    "with size 3"),
            (lambda: x.gather(1, gpucnn.tensor([[-1]])), IndexError, "^gather: index -1 is out of bounds"),
            (lambda: x.gather(1, gpucnn.tensor([0, 1])), ValueError,
             r"^gather: index \(shape \(2,\)\) must have as many dimensions as input \(shape \(2, 3\)\)"),
            (lambda: x.gather(1, gpucnn.tensor([[0], [0], [0]])), ValueError,
             r"^gather: index \(shape \(3, 1\)\) is larger than input \(shape \(2, 3\)\) along dimension 0; only "
             "dimension 1 may be larger"),
            (lambda: x.gather(2, index), ValueError, "^gather: dimension 2 is out of range"),
            (lambda: x.gather(1, gpucnn.tensor([[0.0]])), TypeError, "^gather: index must be an integer tensor, got "
                                                                     "dtype float32"),
            (lambda: x.scatter(1, index, gpucnn.ones(1, 1)), ValueError,
             r"^scatter: index \(shape \(2, 1\)\) must be no larger than src \(shape \(1, 1\)\)"),
            (lambda: x.scatter(1, index, gpucnn.ones(2, 1, dtype=np.float64)), TypeError,
             "^scatter: src has dtype float64 and input float32"),
            (lambda: x.scatter(1, index), TypeError, "^scatter takes one of src and value"),
            (lambda: x.scatter_add(1, index, 1.0), TypeError, "^scatter_add: src must be a Tensor, got float"),
            (lambda: x.scatter(0, gpucnn.tensor([[2]]), value=1.0), IndexError,
             "^scatter: index 2 is out of bounds for dimension 0 with size 2"),
            (lambda: x.index_select(1, gpucnn.tensor([[0]])), ValueError, r"^index_select: index must be 1-D or 0-d, "
                                                                          r"got shape \(1, 1\)"),
            (lambda: x.index_select(0, gpucnn.tensor([2])), IndexError,
             "^index_select: index 2 is out of bounds for dimension 0 with size 2")):
        with pytest.raises(error, match=message):
            call()


def test_masked_fill_against_torch():
    mask = rng.random((4, 1)) > 0.5
    mask[0] = True
    check_op(lambda x: x.masked_fill(gpucnn.tensor(mask, device=x.device), -1.5) * x,
             lambda x: x.masked_fill(torch.tensor(mask), -1.5) * x, A)
    check_op(lambda x, v: gpucnn.masked_fill(x, gpucnn.tensor(mask, device=x.device), v),
             lambda x, v: torch.masked_fill(x, torch.tensor(mask), v), A, np.float64(0.25))  # to the value too
    wide = rng.random((2, 1, 4, 5)) > 0.5  # the mask broadcasts x, as torch's out-of-place masked_fill
    check_op(lambda x: x.masked_fill(gpucnn.tensor(wide, device=x.device), 0.0),
             lambda x: x.masked_fill(torch.tensor(wide), 0.0), A)
    ours, theirs = both(np.arange(6).reshape(2, 3))
    same(ours.masked_fill(ours > 2, 2.7), theirs.masked_fill(theirs > 2, 2.7))
    with pytest.raises(TypeError, match="^masked_fill: mask must be a bool tensor, got dtype int64"):
        ours.masked_fill(ours, 1)
    with pytest.raises(ValueError, match=r"^masked_fill: mask \(shape \(2,\)\) does not broadcast with input \(shape "
                                         r"\(2, 3\)\)"):
        ours.masked_fill(gpucnn.tensor([True, False]), 1)
    with pytest.raises(ValueError, match=r"^masked_fill: value must be a number or a 0-d tensor, got shape \(1,\)"):
        ours.masked_fill(ours > 1, gpucnn.tensor([1]))


@pytest.mark.parametrize("device", gpucnn.devices())
def test_in_place_masked_fill_and_scatter_as_torch(device):
    ours, theirs = both(np.arange(12.0, dtype=np.float32).reshape(3, 4), device)
    mask = np.array([True, False, False, True])
    index = np.array([[0, 2, 1, 1]])
    for make in ((lambda t, m: t.masked_fill_(m(mask), -1.0)), (lambda t, m: t.scatter_(0, m(index), value=9.0)),
                 (lambda t, m: t.scatter_add_(1, m(index), m(np.ones((1, 4), np.float32)))),
                 (lambda t, m: t.scatter_(1, m(index), m(np.full((1, 4), 5.0, np.float32))))):
        version = ours._version[0]
        assert make(ours, lambda a: gpucnn.tensor(a, device=device)) is ours
        make(theirs, torch.tensor)
        same(ours, theirs)
        assert ours._version[0] == version + 1
    weight = gpucnn.tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"^masked_fill_ on a tensor \(shape \(3,\)\) cannot be recorded"):
        weight.masked_fill_(gpucnn.tensor([True, False, True]), 0.0)
    with gpucnn.no_grad():
        weight.masked_fill_(gpucnn.tensor([True, False, True]), 0.0)
    assert weight.tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(RuntimeError, match=r"^scatter_ on a tensor \(shape \(3,\)\) cannot be recorded"):
        gpucnn.zeros(3).scatter_(0, gpucnn.tensor([1]), weight[:1] * 2)
    with pytest.raises(ValueError, match=r"^masked_fill_: the result has shape \(2, 3\), but an in-place result keeps"):
        gpucnn.zeros(3).masked_fill_(gpucnn.ones(2, 3, dtype=np.bool_), 1.0)


# ----------------------------------------------------------------------------- narrow, flip, roll, triangles
def test_narrow_flip_roll_and_triangles_against_torch():
    for ours, theirs in (
            (lambda x: x.narrow(1, 1, 2), lambda x: x.narrow(1, 1, 2)),
            (lambda x: gpucnn.narrow(x, -1, -3, 3), lambda x: torch.narrow(x, -1, -3, 3)),
            (lambda x: x.narrow(0, 3, 0), lambda x: x.narrow(0, 3, 0)),
            (lambda x: x.flip(0) * x, lambda x: x.flip(0) * x),
            (lambda x: x.flip(0, -1), lambda x: x.flip(0, -1)),
            (lambda x: gpucnn.flip(x, [1, 2]), lambda x: torch.flip(x, [1, 2])),
            (lambda x: x.roll(2) * x, lambda x: x.roll(2) * x),
            (lambda x: x.roll(-1, 1), lambda x: x.roll(-1, 1)),
            (lambda x: gpucnn.roll(x, (1, 7), (0, -1)), lambda x: torch.roll(x, (1, 7), (0, -1))),
            (lambda x: x.tril() + x.triu(1) * 2, lambda x: x.tril() + x.triu(1) * 2),
            (lambda x: gpucnn.tril(x, -1) * 3 + gpucnn.triu(x, 2), lambda x: torch.tril(x, -1) * 3 + torch.triu(x, 2))):
        check_op(ours, theirs, A)
    for make in (lambda m, x: m.flip(x, [0]), lambda m, x: m.roll(x, 1), lambda m, x: m.roll(x, 1, 0),
                 lambda m, x: m.triu(x.reshape(2, 3)), lambda m, x: m.flip(x.reshape(2, 3), [1])):
        ours, theirs = both(np.arange(6))
        same(make(gpucnn, ours), make(torch, theirs))
    ours, theirs = both(np.float32(2.0))
    same(ours.flip(0), theirs.flip(0))
    same(ours.roll(3), theirs.roll(3))
    x = gpucnn.ones(2, 4)
    for call, error, message in (
            (lambda: x.narrow(1, 3, 2), ValueError, r"^narrow: start 3 \+ length 2 exceeds dimension 1 of size 4 "
                                                    r"\(shape \(2, 4\)\)"),
            (lambda: x.narrow(1, -5, 1), ValueError, "^narrow: start -5 is out of range for dimension 1 of size 4"),
            (lambda: gpucnn.tensor(1.0).narrow(0, 0, 1), ValueError, "^narrow: a 0-d tensor cannot be narrowed"),
            (lambda: x.flip(0, 0), ValueError, "^flip: dim=.* repeats a dimension"),
            (lambda: x.flip(2), ValueError, "^flip: dimension 2 is out of range"),
            (lambda: x.roll((1, 2)), ValueError, r"^roll: shifts \(1, 2\) need dims, one for each shift"),
            (lambda: x.roll((1, 2), 0), ValueError, r"^roll: shifts \(1, 2\) and dims 0 must have one length"),
            (lambda: x.roll(1.5), TypeError, "^roll: shifts must be an int or a tuple of ints, got 1.5"),
            (lambda: gpucnn.ones(3).tril(), ValueError, r"^tril: input must have at least 2 dimensions, got shape "
                                                        r"\(3,\)")):
        with pytest.raises(error, match=message):
            call()


# ----------------------------------------------------------------------------- sort, argsort, topk, unique
TIES = np.array([[3.0, 1.0, np.nan, 1.0, 3.0, -np.inf, 0.0, -0.0, np.nan, 2.0],
                 [5.0, 5.0, 5.0, -1.0, np.inf, 2.0, 2.0, 7.0, -1.0, 0.0]], np.float32)


@pytest.mark.parametrize("device", gpucnn.devices())
@pytest.mark.parametrize("descending", [False, True])
def test_sort_and_argsort_stable_with_ties_and_nan_as_torch(device, descending):
    """As torch's stable sort: equal values keep their order, NaN counts as the largest, for floats,
    integers and bools, along every dim."""
    for array in (TIES, TIES.T.copy(), np.array([[3, 1, 3, 2, 1], [0, 0, 5, 0, -2]]), TIES > 1,
                  np.zeros((0, 3), np.float32)):
        ours, theirs = both(array, device)
        for dim in (-1, 0):
            values, indices = ours.sort(dim, descending=descending)
            expected = theirs.sort(dim=dim, descending=descending, stable=True)
            same(values, expected.values, (array, dim))
            same(indices, expected.indices, (array, dim))
            same(gpucnn.sort(ours, dim, descending).indices, expected.indices, (array, dim))
            same(ours.argsort(dim, descending), expected.indices, (array, dim))
            same(gpucnn.argsort(ours, dim=dim, descending=descending), expected.indices, (array, dim))
    ours, theirs = both(np.float32(1.5), device)
    same(ours.sort().values, theirs.sort().values)
    same(ours.sort(0).indices, theirs.sort(0).indices)


@pytest.mark.parametrize("dim, descending", [(-1, False), (0, True), (1, False)])
def test_sort_and_topk_gradients_against_torch(dim, descending):
    check_op(lambda x: x.sort(dim, descending).values * x, lambda x: x.sort(dim, descending).values * x, A)
    check_op(lambda x: x.topk(2, dim, largest=descending).values, lambda x: x.topk(2, dim, largest=descending).values,
             A)


@pytest.mark.parametrize("device", gpucnn.devices())
@pytest.mark.parametrize("largest", [True, False])
def test_topk_with_ties_and_nan_as_torch(device, largest):
    """Values as torch's (NaN the largest), indices that hold those values, the first of equal values first;
    the gradient reaches the chosen elements."""
    for k in (0, 1, 3, 10):
        ours = gpucnn.tensor(TIES, device=device, requires_grad=True)
        values, indices = gpucnn.topk(ours, k, largest=largest)
        expected = torch.tensor(TIES).topk(k, largest=largest)
        same(values, expected.values, k)
        assert indices.dtype == np.int64 and indices.shape == tuple(expected.indices.shape)
        np.testing.assert_array_equal(np.take_along_axis(TIES, indices.numpy(), 1), expected.values.numpy())
        if k:
            values.backward(gpucnn.ones_like(values))
            chosen = np.zeros(TIES.shape, np.float32)
            np.put_along_axis(chosen, indices.numpy(), 1.0, axis=1)
            np.testing.assert_array_equal(ours.grad.numpy(), chosen)
    values, indices = gpucnn.topk(gpucnn.tensor([[1.0, 2.0, 2.0, 0.0, 2.0]], device=device), 2)
    assert indices.tolist() == [[1, 2]] and values.tolist() == [[2.0, 2.0]]
    assert gpucnn.tensor([3, 1, 2], device=device).topk(2, largest=False).indices.tolist() == [1, 2]
    ours, theirs = both(np.float32(4.0), device)
    for k in (0, 1):
        same(ours.topk(k).values, theirs.topk(k).values)
        same(ours.topk(k).indices, theirs.topk(k).indices)
    with pytest.raises(ValueError, match=r"^topk: k=11 is out of range for dimension -1 of size 10 \(shape "
                                         r"\(2, 10\)\)"):
        gpucnn.tensor(TIES).topk(11)
    with pytest.raises(ValueError, match="^topk: k=-1 is out of range"):
        gpucnn.tensor(TIES).topk(-1)
    with pytest.raises(TypeError, match="^sort: dim must be an int, got None"):
        gpucnn.tensor(TIES).sort(None)


@pytest.mark.parametrize("device", gpucnn.devices())
def test_unique_as_torch(device):
    for array in (np.array([[3, 1, 3], [2, 1, 7]]), np.array([1.0, np.nan, 2.0, np.nan, 1.0], np.float32),
                  np.array([True, False, True]), np.zeros((0, 2)), np.float32(2.0)):
        ours, theirs = both(array, device)
        same(ours.unique(), theirs.unique(), array)
        for inverse in (False, True):
            for counts in (False, True):
                actual = gpucnn.unique(ours, return_inverse=inverse, return_counts=counts)
                expected = torch.unique(theirs, return_inverse=inverse, return_counts=counts)
                if not inverse and not counts:
                    actual, expected = (actual,), (expected,)
                assert len(actual) == len(expected)
                for a, e in zip(actual, expected):
                    same(a, e, (array, inverse, counts))
    rows = np.array([[1, 2], [0, 3], [1, 2], [0, 3], [0, 1]])
    ours, theirs = both(rows, device)
    for dim in (0, 1, -1):
        for a, e in zip(ours.unique(dim=dim, return_inverse=True, return_counts=True),
                        theirs.unique(dim=dim, return_inverse=True, return_counts=True)):
            same(a, e, dim)


def test_value_ops_differentiate_and_index_ops_do_not():
    """Results that carry values (sort, topk, gather...) require grad as torch's; indices, masks, counts and
    uniques never do."""
    x = gpucnn.tensor(A, requires_grad=True)
    for result in (x.sort().values, x.topk(1).values, x.gather(0, gpucnn.tensor(np.zeros((1, 4, 5), np.int64))),
                   x.prod(), x.cumsum(0), x.logsumexp(0), x.norm(), x.round(), x.sign(), x.flip(0), x.erf()):
        assert result.requires_grad
    for result in (x.sort().indices, x.argsort(), x.topk(1).indices, x.isnan(), x.all(), x.any(1), x.nonzero(),
                   x.count_nonzero(), gpucnn.unique(x)):
        assert not result.requires_grad
