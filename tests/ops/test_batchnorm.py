"""batch_norm against PyTorch (outputs, gradients, running statistics), central differences, bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as torch_F
from helpers import assert_close, check_against_torch, check_gradients
from hypothesis import example, given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn.ops.batchnorm import batch_norm


def compare_with_torch(x, weight, bias, training, momentum=0.1, eps=1e-5, seed=0):
    """Output, input/weight/bias gradients and updated running statistics of float32 data against torch
    in float64. (torch's float32 is no reference: with two values per channel its input gradient was
    0.6 % off the float64 one, and gpucnn's 0.004 %.)"""
    channels = x.shape[1]
    rng = np.random.default_rng(seed + 1)
    mean0 = rng.standard_normal(channels).astype(np.float32)
    var0 = rng.uniform(0.5, 2.0, channels).astype(np.float32)
    ours = [gpucnn.tensor(mean0), gpucnn.tensor(var0)]
    theirs = [torch.tensor(mean0, dtype=torch.float64), torch.tensor(var0, dtype=torch.float64)]
    arrays = [a for a in (x, weight, bias) if a is not None]
    has_weight, has_bias = weight is not None, bias is not None

    def split(params):
        params = list(params)
        w = params.pop(0) if has_weight else None
        b = params.pop(0) if has_bias else None
        return w, b

    def fn(x, *params):
        return batch_norm(x, *ours, *split(params), training, momentum, eps)

    def torch_fn(x, *params):
        params = [p.double() for p in params]
        return torch_F.batch_norm(x.double(), *theirs, *split(params), training, momentum, eps)

    check_against_torch(fn, torch_fn, *arrays, seed=seed, atol=2e-5, rtol=2e-4)
    assert_close(ours[0], theirs[0], name="running_mean")
    assert_close(ours[1], theirs[1], name="running_var")


@st.composite
def configurations(draw):
    n = draw(st.integers(1, 4))
    channels = draw(st.integers(1, 4))
    spatial = tuple(draw(st.lists(st.integers(1, 5), min_size=0, max_size=3)))
    training = draw(st.booleans())
    if training and n * int(np.prod(spatial)) == 1:
        n = 2  # training needs more than one value per channel
    return (n, channels) + spatial, training


@settings(max_examples=40, deadline=None)
@given(config=configurations(), affine=st.sampled_from(["both", "weight", "bias", "none"]),
       momentum=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
@example(config=((2, 2), True), affine="both", momentum=0.0, seed=1)  # torch's float32 gradient: 0.6 % off
def test_random_configurations_against_torch(config, affine, momentum, seed):
    shape, training = config
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    weight = rng.standard_normal(shape[1]) if affine in ("both", "weight") else None
    bias = rng.standard_normal(shape[1]) if affine in ("both", "bias") else None
    compare_with_torch(x, weight, bias, training, momentum, seed=seed)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (2, 3), (4, 2, 3), (2, 2, 3, 1, 2)])
def test_awkward_shapes(shape, training):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    compare_with_torch(x, rng.standard_normal(shape[1]), rng.standard_normal(shape[1]), training)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("images_a_piece", [1, 2, 3])
@pytest.mark.parametrize("layout", ["rows", "large images", "few images"])
def test_pieces_of_images_against_torch(monkeypatch, training, images_a_piece, layout):
    """The cpu's input-sized passes run over pieces of BatchNorm.PIECE_BYTES of whole images: one image
    a piece, and 5 images in pieces of 2 and 3, the last one short; on images seen as rows, and on
    channel planes (an image above ROW_MAX_VALUES, or fewer images than ROW_MIN_IMAGES)."""
    from gpucnn.ops.batchnorm import BatchNorm

    shape = (5, 3, 4, 6)
    monkeypatch.setattr(BatchNorm, "PIECE_BYTES", images_a_piece * 3 * 4 * 6 * 4)
    monkeypatch.setattr(BatchNorm, "ROW_MAX_VALUES", 3 * 4 * 6 - (layout == "large images"))
    monkeypatch.setattr(BatchNorm, "ROW_MIN_IMAGES", 5 + (layout == "few images"))
    rng = np.random.default_rng(images_a_piece)
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    compare_with_torch(x, rng.standard_normal(3), rng.standard_normal(3), training)
    y = batch_norm(gpucnn.tensor(x, requires_grad=True), np.zeros(3, np.float32), np.ones(3, np.float32),
                   training=training)
    assert y._creator.by_rows == (layout == "rows")


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(1, 4, 20, 20), (2, 3, 64, 70), (5, 3, 4, 6), (1, 2, 7, 7)])
def test_without_autograd_as_with_it_and_as_torch(training, shape):
    """Under no_grad (inference: evaluation mode writes no x - mean for backward) the output is the one
    recorded for backward, bit for bit, and torch's; on planes long enough to run unbuffered
    (gpucnn.ops._rows), on images as rows and on short planes."""
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    weight, bias = (rng.standard_normal(shape[1]).astype(np.float32) for _ in range(2))
    mean, var = rng.standard_normal(shape[1]).astype(np.float32), rng.uniform(0.5, 2, shape[1]).astype(np.float32)
    recorded = batch_norm(gpucnn.tensor(x, requires_grad=True), mean.copy(), var.copy(), gpucnn.tensor(weight),
                          gpucnn.tensor(bias), training=training)
    with gpucnn.no_grad():
        inferred = batch_norm(gpucnn.tensor(x, requires_grad=True), mean.copy(), var.copy(), gpucnn.tensor(weight),
                              gpucnn.tensor(bias), training=training)
    assert np.array_equal(inferred.numpy(), recorded.numpy())
    expected = torch_F.batch_norm(torch.tensor(x, dtype=torch.float64), torch.tensor(mean, dtype=torch.float64),
                                  torch.tensor(var, dtype=torch.float64), torch.tensor(weight, dtype=torch.float64),
                                  torch.tensor(bias, dtype=torch.float64), training)
    assert_close(inferred, expected.float(), atol=2e-5, rtol=2e-4)


@pytest.mark.parametrize("training", [True, False])
def test_numerical_gradients_float64(training):
    rng = np.random.default_rng(2)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)

    def fn(x, weight, bias):
        # Fresh copies each call: the central differences call fn many times, each training call updates them.
        return batch_norm(x, mean.copy(), var.copy(), weight, bias, training=training)

    check_gradients(fn, rng.standard_normal((3, 3, 2, 2)), rng.standard_normal(3), rng.standard_normal(3))
    check_gradients(lambda x: batch_norm(x, mean.copy(), var.copy(), training=training), rng.standard_normal((4, 3)))


def test_hand_computed_training_statistics():
    """Channel 0 holds [1, 3]: mean 2, biased variance 1, unbiased variance 2."""
    x = np.array([[1.0, 10.0], [3.0, 10.0]])
    running_mean, running_var = np.zeros(2), np.ones(2)
    y = batch_norm(x, running_mean, running_var, training=True, momentum=0.5, eps=1e-12)
    assert_close(y, np.array([[-1.0, 0.0], [1.0, 0.0]]), atol=1e-6)
    assert_close(running_mean, np.array([1.0, 5.0]))  # numpy arrays are updated in place
    assert_close(running_var, np.array([1.5, 0.5]))


def test_eval_mode_uses_running_statistics_and_leaves_them():
    x = np.array([[2.0], [4.0]], dtype=np.float32)
    running_mean = gpucnn.tensor(np.array([1.0], dtype=np.float32))
    running_var = gpucnn.tensor(np.array([4.0], dtype=np.float32))
    y = batch_norm(x, running_mean, running_var, np.array([2.0], np.float32), np.array([1.0], np.float32), eps=0.0)
    assert_close(y, np.array([[2.0], [4.0]]))  # (x - 1) / 2 * 2 + 1
    assert running_mean.tolist() == [1.0] and running_var.tolist() == [4.0]


def test_training_without_running_statistics():
    x = np.random.default_rng(3).standard_normal((5, 2, 3))
    check_against_torch(lambda t: batch_norm(t, None, None, training=True),
                        lambda t: torch_F.batch_norm(t, None, None, training=True), x)


def test_running_statistics_that_an_update_cannot_reach_are_refused():
    """A list would be copied into a new array: the training update would be lost, so it is an error."""
    x = np.random.default_rng(5).standard_normal((4, 2)).astype(np.float32)
    with pytest.raises(TypeError, match=r"running_mean in place.*given list \(input on cpu, shape \(4, 2\)\)"):
        batch_norm(x, [0.0, 0.0], np.ones(2, np.float32), training=True)
    y = batch_norm(x, [0.0, 0.0], [1.0, 1.0], training=False)  # evaluation only reads them
    assert_close(y, x / np.sqrt(1.0 + 1e-5), rtol=1e-6)


def test_momentum_zero_and_one():
    x = np.random.default_rng(4).standard_normal((6, 2)).astype(np.float32)
    mean, var = np.zeros(2, np.float32), np.ones(2, np.float32)
    batch_norm(x, mean, var, training=True, momentum=0.0)
    assert mean.tolist() == [0.0, 0.0] and var.tolist() == [1.0, 1.0]
    batch_norm(x, mean, var, training=True, momentum=1.0)
    assert_close(mean, x.mean(axis=0))
    assert_close(var, x.var(axis=0, ddof=1))


def test_float64_keeps_dtype():
    x = gpucnn.tensor(np.random.default_rng(5).standard_normal((4, 3, 2)), requires_grad=True)
    weight = gpucnn.tensor(np.ones(3), requires_grad=True)
    mean, var = gpucnn.tensor(np.zeros(3)), gpucnn.tensor(np.ones(3))
    y = batch_norm(x, mean, var, weight, training=True)
    y.backward(np.ones(y.shape))
    assert y.dtype == x.grad.dtype == weight.grad.dtype == mean.dtype == var.dtype == np.float64


@pytest.mark.parametrize("training", [True, False])
def test_empty_batch(training):
    """PyTorch returns an empty output and leaves the running statistics alone."""
    x = gpucnn.tensor(np.zeros((0, 3, 4, 4), dtype=np.float32), requires_grad=True)
    weight = gpucnn.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    bias = gpucnn.tensor(np.zeros(3, dtype=np.float32), requires_grad=True)
    mean, var = np.zeros(3, np.float32), np.ones(3, np.float32)
    y = batch_norm(x, mean, var, weight, bias, training=training)
    y.backward(np.zeros(y.shape, dtype=np.float32))
    assert y.shape == (0, 3, 4, 4) and x.grad.shape == (0, 3, 4, 4)
    assert weight.grad.tolist() == [0.0] * 3 and bias.grad.tolist() == [0.0] * 3
    assert mean.tolist() == [0.0] * 3 and var.tolist() == [1.0] * 3


def test_non_contiguous_input():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 4, 6, 3)).transpose(0, 3, 2, 1)[:, :, ::2]  # (5, 3, 3, 4)
    assert not x.flags.c_contiguous
    for training in (True, False):
        compare_with_torch(x, rng.standard_normal(3), rng.standard_normal(3), training)


def test_nan_and_inf_stay_in_their_channel():
    x = np.random.default_rng(7).standard_normal((4, 3)).astype(np.float32)
    x[1, 0], x[2, 2] = np.nan, np.inf
    for training in (True, False):
        compare_with_torch(x, np.ones(3), np.zeros(3), training)
    y = batch_norm(x, None, None, training=True).numpy()
    assert np.isnan(y[:, 0]).all() and np.isfinite(y[:, 1]).all()


@pytest.mark.parametrize("images", [2, 8], ids=["one_block", "two_blocks"])
@pytest.mark.parametrize("device", gpucnn.devices())
def test_float32_gradients_through_channels_whose_mean_dwarfs_their_spread(monkeypatch, device, images):
    """Two layers in float32, the first's outputs with means 10 to 100 times their spread: the first's
    bias gradient, 0 in exact arithmetic (the second layer takes the mean out), stays within 2e-5 of
    float64's, and the second's weight gradient within float32's tolerance. With 8 images a kernel
    device shares each channel's 512 values among two blocks."""
    from gpucnn.ops.batchnorm import BatchNorm

    monkeypatch.setattr(BatchNorm, "MIN_BLOCK_VALUES", 256)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((images, 40, 8, 8)).astype(np.float32)
    means = rng.uniform(10, 100, 40).astype(np.float32)
    upstream = rng.standard_normal(x.shape).astype(np.float32)

    def gradients(F, make, dtype):
        bias, weight = make(means, dtype, True), make(np.ones(40), dtype, True)
        y = F.batch_norm(make(x, dtype), None, None, make(np.ones(40), dtype), bias, training=True)
        y = F.batch_norm(y, None, None, weight, make(np.zeros(40), dtype), training=True)
        (y * make(upstream, dtype)).sum().backward()
        return bias.grad, weight.grad

    def ours(array, dtype, grad=False):
        return gpucnn.tensor(np.asarray(array, dtype), device=device, requires_grad=grad)

    expected = gradients(torch_F, lambda array, dtype, grad=False: torch.tensor(array, dtype=dtype, requires_grad=grad),
                         torch.float64)
    bias_grad, weight_grad = gradients(gpucnn.nn.functional, ours, np.float32)
    assert_close(bias_grad, expected[0], atol=2e-5, rtol=0, name="bias gradient")
    assert_close(weight_grad, expected[1], name="weight gradient")


def test_accepts_array_likes():
    y = batch_norm([[1.0, 2.0], [3.0, 6.0]], None, None, [1.0, 1.0], [0.0, 0.0], True)
    assert_close(y, np.array([[-1.0, -1.0], [1.0, 1.0]]), atol=1e-4)


X = np.zeros((4, 3, 2, 2), dtype=np.float32)
C3 = np.ones(3, dtype=np.float32)


@pytest.mark.parametrize("kwargs, message", [
    (dict(input=np.zeros(3, np.float32)),
     r"batch_norm: input must be \(N, C\) or \(N, C, \*spatial\), got shape \(3,\)"),
    (dict(running_mean=np.zeros(4, np.float32)),
     r"batch_norm: running_mean must have shape \(C,\) = \(3,\) for input shape \(4, 3, 2, 2\), got shape \(4,\)"),
    (dict(running_var=np.ones((3, 1), np.float32)),
     r"batch_norm: running_var must have shape \(C,\) = \(3,\).*\(3, 1\)"),
    (dict(weight=np.ones(2, np.float32)), r"batch_norm: weight must have shape \(C,\) = \(3,\).*got shape \(2,\)"),
    (dict(bias=np.ones(4, np.float32)), r"batch_norm: bias must have shape \(C,\) = \(3,\).*got shape \(4,\)"),
    (dict(running_mean=None), r"batch_norm: running_mean and running_var must both be None or both be given"),
    (dict(running_mean=None, running_var=None), r"batch_norm: running_mean and running_var are required in evaluation"),
    (dict(input=np.zeros((1, 3), np.float32), training=True),
     r"batch_norm: expected more than 1 value per channel when training, got input shape \(1, 3\)"),
    (dict(input=np.zeros((1, 3, 1, 1), np.float32), training=True),
     r"expected more than 1 value per channel when training, got input shape \(1, 3, 1, 1\)"),
    (dict(momentum=1.5, training=True), r"batch_norm: momentum must be in \[0, 1\], got 1.5"),
    (dict(momentum=-0.1), r"batch_norm: momentum must be in \[0, 1\], got -0.1"),
    (dict(eps=0.0, training=True), r"batch_norm: eps must be positive in training mode, got 0.0"),
    (dict(eps=-1e-5), r"batch_norm: eps must be non-negative, got -1e-05"),
])
def test_bad_values(kwargs, message):
    arguments = dict(input=X, running_mean=C3 * 0, running_var=C3.copy(), weight=None, bias=None, training=False)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        batch_norm(**arguments)


@pytest.mark.parametrize("kwargs, message", [
    (dict(input=np.zeros((4, 3), np.int64)), r"batch_norm: input must be a floating-point tensor, got dtype int64"),
    (dict(weight=np.ones(3, np.float64)), r"batch_norm: weight has dtype float64 but input has dtype float32"),
    (dict(running_mean=np.zeros(3, np.float64)),
     r"batch_norm: running_mean has dtype float64 but input has dtype float32"),
    (dict(momentum=None), r"batch_norm: momentum must be a real number, got None"),
    (dict(eps="small"), r"batch_norm: eps must be a real number, got 'small'"),
])
def test_bad_types(kwargs, message):
    arguments = dict(input=X, running_mean=C3 * 0, running_var=C3.copy())
    arguments.update(kwargs)
    with pytest.raises(TypeError, match=message):
        batch_norm(**arguments)


def test_eval_with_one_value_per_channel_is_fine():
    """Only training needs more than one value per channel (as PyTorch)."""
    compare_with_torch(np.array([[1.0, 2.0, 3.0]]), None, None, training=False)
