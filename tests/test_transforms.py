"""torchvision's transforms on NumPy images (H x W, H x W x C: where torchvision takes a PIL image) and tensors
(..., H, W), checked against torchvision's documented definitions computed by hand: ToTensor's layout and
scaling, Normalize's (x - mean) / std, padding as numpy.pad's modes, random crops as windows of the padded
image, flips with p = 0 and 1, CenterCrop's rounding, RandomErasing's rectangle; draws follow gpucnn.manual_seed."""

import numpy as np
import pytest

import gpucnn
from gpucnn.data import transforms

RNG = np.random.default_rng(0)
HWC = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
HW = RNG.integers(0, 256, (5, 7), dtype=np.uint8)


def _planes(image):
    """``image`` as a NumPy array laid out (..., H, W)."""
    if isinstance(image, gpucnn.Tensor):
        return image.numpy()
    return image.transpose(2, 0, 1) if image.ndim == 3 else image


def _images():
    """The same pixels as an H x W x C array, an H x W array and tensors C x H x W and N x C x H x W."""
    return [HWC, HW, gpucnn.tensor(HWC.transpose(2, 0, 1)), gpucnn.tensor(np.stack([HWC.transpose(2, 0, 1)] * 2))]


def _same_kind(result, image):
    assert type(result) is type(image) and result.ndim == image.ndim and result.dtype == image.dtype
    if isinstance(image, np.ndarray):
        assert result.flags.c_contiguous


# ------------------------------------------------------------------------------------- ToTensor, Normalize
def test_to_tensor_lays_out_and_scales_as_torchvisions():
    result = transforms.ToTensor()(HWC)
    assert isinstance(result, gpucnn.Tensor) and result.device.name == "cpu" and result.shape == (3, 5, 7)
    expected = HWC.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    assert result.dtype == np.float32 and np.array_equal(result.numpy(), expected)
    assert result.numpy().max() <= 1 and np.array_equal(transforms.ToTensor()(np.full((1, 1), 255, np.uint8)).numpy(),
                                                        [[[1.0]]])
    gray = transforms.ToTensor()(HW)
    assert gray.shape == (1, 5, 7) and np.array_equal(gray.numpy()[0], HW.astype(np.float32) / np.float32(255))
    floats = RNG.standard_normal((4, 2, 3)) * 300  # not uint8: the values and dtype as they are
    kept = transforms.ToTensor()(floats)
    assert kept.dtype == np.float64 and np.array_equal(kept.numpy(), floats.transpose(2, 0, 1))


def test_to_tensor_refuses_what_is_not_an_image_array():
    with pytest.raises(TypeError, match="ToTensor: pic must be a NumPy array H x W x C or H x W, got Tensor"):
        transforms.ToTensor()(gpucnn.zeros(3, 2, 2))
    with pytest.raises(ValueError, match=r"ToTensor: pic must be 2- or 3-dimensional .*got shape \(1, 2, 2, 3\)"):
        transforms.ToTensor()(np.zeros((1, 2, 2, 3), np.uint8))


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 5)])
def test_normalize_is_x_minus_mean_over_std(shape):
    x = RNG.random(shape).astype(np.float32)
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    expected = (x - np.float32(mean)[:, None, None]) / np.float32(std)[:, None, None]
    image = gpucnn.tensor(x)
    result = transforms.Normalize(mean, std)(image)
    assert result is not image and np.array_equal(image.numpy(), x)  # the input is left alone
    assert result.dtype == np.float32 and np.array_equal(result.numpy(), expected)
    inplace = transforms.Normalize(mean, std, inplace=True)(image)
    assert inplace is image and np.array_equal(image.numpy(), expected)
    one = transforms.Normalize(0.5, [2])(gpucnn.tensor(x))
    assert np.array_equal(one.numpy(), (x - np.float32(0.5)) / np.float32(2))
    doubles = transforms.Normalize(mean, std)(gpucnn.tensor(x.astype(np.float64)))
    assert doubles.dtype == np.float64


@pytest.mark.parametrize("image, arguments, error, message", [
    (HWC, ((0.5,), (0.5,)), TypeError, "Normalize: expects a tensor .* got ndarray"),
    (gpucnn.zeros(3, 2, 2, dtype=np.uint8), ((0.5,), (0.5,)), TypeError,
     "Normalize: expects a float tensor, got uint8"),
    (gpucnn.zeros(2, 2), ((0.5,), (0.5,)), ValueError, r"shape \(\.\.\., C, H, W\), got shape \(2, 2\)"),
    (gpucnn.zeros(3, 2, 2), ((0.5, 0.5), (1, 1, 1)), ValueError, r"mean must be a number or one per channel \(3\)"),
    (gpucnn.zeros(3, 2, 2), ((0,), (1, 0, 1)), ValueError, r"Normalize: std \(1, 0, 1\) is zero in float32"),
])
def test_normalize_bad_input(image, arguments, error, message):
    with pytest.raises(error, match=message):
        transforms.Normalize(*arguments)(image)


# ----------------------------------------------------------------------------------------------- Pad
@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
@pytest.mark.parametrize("padding, sides", [(2, (2, 2, 2, 2)), ([3], (3, 3, 3, 3)), ((1, 4), (1, 4, 1, 4)),
                                            ((1, 0, 3, 2), (1, 0, 3, 2))])
def test_pad_as_numpy_pads(mode, padding, sides):
    left, top, right, bottom = sides
    for image in _images():
        result = transforms.Pad(padding, fill=9, padding_mode=mode)(image)
        _same_kind(result, image)
        planes = _planes(image)
        widths = [(0, 0)] * (planes.ndim - 2) + [(top, bottom), (left, right)]
        expected = np.pad(planes, widths, mode=mode, **({"constant_values": 9} if mode == "constant" else {}))
        assert np.array_equal(_planes(result), expected)
    # the modes by hand on a row: 1 2 3 padded by 2 on each side
    row = np.array([[1, 2, 3]], np.uint8)
    expected = {"constant": [9, 9, 1, 2, 3, 9, 9], "edge": [1, 1, 1, 2, 3, 3, 3], "reflect": [3, 2, 1, 2, 3, 2, 1],
                "symmetric": [2, 1, 1, 2, 3, 3, 2]}[mode]
    assert transforms.Pad((2, 0), fill=9, padding_mode=mode)(row).tolist() == [expected]


@pytest.mark.parametrize("make, error, message", [
    (lambda: transforms.Pad((1, 2, 3)), ValueError,
     "Pad: padding must be an int or a sequence of 1, 2 or 4 ints, got 3"),
    (lambda: transforms.Pad(1.5), TypeError, "Pad: padding must be an int or a sequence of ints, got 1.5"),
    (lambda: transforms.Pad(-1), ValueError, "Pad: padding must not be negative, got -1"),
    (lambda: transforms.Pad(1, padding_mode="wrap"), ValueError,
     "Pad: padding_mode must be one of constant, edge, reflect, symmetric, got 'wrap'"),
    (lambda: transforms.Pad(1, fill="white"), TypeError, "Pad: fill must be a number, got 'white'"),
    (lambda: transforms.Pad(1)([[1, 2]]), TypeError, r"Pad: expects a NumPy image .* or a tensor .*got list"),
    (lambda: transforms.Pad(1)(np.zeros((1, 2, 2, 3))), ValueError, r"must be H x W or H x W x C, got shape"),
    (lambda: transforms.Pad(1)(gpucnn.zeros(3)), ValueError, r"at least 2 dimensions \(\.\.\., H, W\)"),
    (lambda: transforms.RandomCrop(0), ValueError, r"RandomCrop: size must be a positive int or a sequence"),
    (lambda: transforms.RandomCrop((2, 3, 4)), ValueError, r"RandomCrop: size must be .* got \(2, 3, 4\)"),
    (lambda: transforms.RandomCrop(2, padding=(1, 2, 3)), ValueError, "RandomCrop: padding must be"),
    (lambda: transforms.CenterCrop("3"), ValueError, "CenterCrop: size must be a positive int"),
    (lambda: transforms.RandomHorizontalFlip(1.5), ValueError, "RandomHorizontalFlip: p must be a probability"),
    (lambda: transforms.RandomVerticalFlip(-0.1), ValueError, "RandomVerticalFlip: p must be a probability"),
    (lambda: transforms.Lambda(3), TypeError, "Lambda: lambd must be callable, got int"),
])
def test_bad_arguments_raise_naming_them(make, error, message):
    with pytest.raises(error, match=message):
        make()


# ---------------------------------------------------------------------------------------------- crops
def _windows(padded, height, width):
    """Every (top, left) where ``padded`` (..., H, W) holds a window of its size."""
    rows, cols = padded.shape[-2:]
    return [(top, left) for top in range(rows - height + 1) for left in range(cols - width + 1)]


@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_random_crop_is_a_window_of_the_padded_image(mode):
    gpucnn.manual_seed(0)
    for image in _images():
        padded = _planes(transforms.Pad(2, padding_mode=mode)(image))
        seen = set()
        for _ in range(400):
            result = transforms.RandomCrop((4, 6), padding=2, padding_mode=mode)(image)
            _same_kind(result, image)
            planes = _planes(result)
            assert planes.shape[-2:] == (4, 6)
            matches = [window for window in _windows(padded, 4, 6)
                       if np.array_equal(padded[..., window[0]:window[0] + 4, window[1]:window[1] + 6], planes)]
            assert matches
            seen.update(matches)
        assert seen == set(_windows(padded, 4, 6))  # each of the 6 x 6 places drawn (the pixels are distinct)


def test_random_crop_follows_the_seed():
    crop = transforms.RandomCrop(3, padding=1)
    gpucnn.manual_seed(5)
    first = [crop(HWC) for _ in range(5)]
    gpucnn.manual_seed(5)
    assert all(np.array_equal(a, crop(HWC)) for a in first)
    assert not all(np.array_equal(first[0], other) for other in first[1:])
    assert np.array_equal(transforms.RandomCrop((5, 7))(HWC), HWC)


def test_random_crop_pads_if_needed_on_both_sides_by_the_difference():
    image = np.arange(1, 7, dtype=np.uint8).reshape(2, 3)  # no zeros: zeros come from the padding
    seen = set()
    for _ in range(100):
        result = transforms.RandomCrop((4, 5), pad_if_needed=True)(image)
        assert result.shape == (4, 5)
        padded = np.pad(image, ((2, 2), (2, 2)))  # width short by 2, height by 2: 2 more on each side
        matches = {window for window in _windows(padded, 4, 5)
                   if np.array_equal(padded[window[0]:window[0] + 4, window[1]:window[1] + 5], result)}
        assert len(matches) == 1
        seen |= matches
    assert seen == set(_windows(np.zeros((6, 7)), 4, 5))
    exact = transforms.RandomCrop((2, 5), pad_if_needed=True, fill=7)(image)  # the height needs no padding
    assert any(np.array_equal(exact, np.pad(image, ((0, 0), (2, 2)), constant_values=7)[:, left:left + 5])
               for left in range(3))
    with pytest.raises(ValueError, match=r"RandomCrop: the crop size \(4, 5\) is larger than the \(padded\) image's "
                                         r"\(2, 3\)"):
        transforms.RandomCrop((4, 5))(image)


@pytest.mark.parametrize("size, image_size, top, left", [
    (2, (5, 7), 2, 2),            # (5 - 2) / 2 = 1.5 rounds to 2; (7 - 2) / 2 = 2.5 rounds to 2 (half to even)
    ((3, 3), (5, 7), 1, 2),
    ([4], (5, 7), 0, 2),          # 0.5 rounds to 0, 1.5 to 2
    ((5, 7), (5, 7), 0, 0),
    ((1, 4), (4, 4), 2, 0),       # 1.5 rounds to 2
])
def test_center_crop_offsets_round_as_torchvisions(size, image_size, top, left):
    height, width = (size, size) if isinstance(size, int) else tuple(size) * (2 if len(size) == 1 else 1)
    image = np.arange(np.prod(image_size) * 3).reshape(*image_size, 3)
    result = transforms.CenterCrop(size)(image)
    assert np.array_equal(result, image[top:top + height, left:left + width])
    tensor_result = transforms.CenterCrop(size)(gpucnn.tensor(image.transpose(2, 0, 1)))
    assert np.array_equal(tensor_result.numpy(), image.transpose(2, 0, 1)[:, top:top + height, left:left + width])


def test_center_crop_larger_than_the_image_pads_with_zeros():
    image = np.arange(1, 10).reshape(3, 3)
    result = transforms.CenterCrop((6, 5))(image)
    # width: 2 more, 1 left and 1 right; height: 3 more, 1 on top and 2 below
    assert np.array_equal(result, np.pad(image, ((1, 2), (1, 1))))
    wide = transforms.CenterCrop((1, 5))(image)  # padded to 3 x 5, then the middle row
    assert wide.tolist() == [[0, 4, 5, 6, 0]]


# ---------------------------------------------------------------------------------------------- flips
def test_flips_with_p_one_and_zero():
    for image in _images():
        planes = _planes(image)
        for flip, expected in ((transforms.RandomHorizontalFlip(1), planes[..., ::-1]),
                               (transforms.RandomVerticalFlip(p=1.0), planes[..., ::-1, :])):
            result = flip(image)
            _same_kind(result, image)
            assert np.array_equal(_planes(result), expected)
        for flip in (transforms.RandomHorizontalFlip(0), transforms.RandomVerticalFlip(0)):
            assert np.array_equal(_planes(flip(image)), planes)


def test_flips_half_the_time_by_the_seed():
    flip = transforms.RandomHorizontalFlip()
    gpucnn.manual_seed(0)
    flipped = [not np.array_equal(flip(HW), HW) for _ in range(400)]
    assert 150 < sum(flipped) < 250
    gpucnn.manual_seed(0)
    assert [not np.array_equal(flip(HW), HW) for _ in range(400)] == flipped


# ------------------------------------------------------------------------------------ Compose, Lambda
def test_compose_applies_in_order_and_lambda_calls():
    calls = []
    pipeline = transforms.Compose([transforms.Lambda(lambda x: calls.append("a") or x + 1),
                                   transforms.Lambda(lambda x: calls.append("b") or x * 2)])
    assert pipeline(3) == 8 and calls == ["a", "b"]
    assert transforms.Compose([])(HWC) is HWC


def test_cifar_training_pipeline():
    pipeline = transforms.Compose([
        transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
        transforms.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))])
    image = RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    result = pipeline(image)
    assert result.shape == (3, 32, 32) and result.dtype == np.float32
    unchanged = transforms.Compose(pipeline.transforms[2:])(image)  # no crop or flip: ToTensor and Normalize alone
    expected = (image.transpose(2, 0, 1) / np.float32(255) - np.float32([0.49, 0.48, 0.45])[:, None, None]) \
        / np.float32([0.25, 0.24, 0.26])[:, None, None]
    np.testing.assert_allclose(unchanged.numpy(), expected, rtol=1e-6)


def test_transforms_keep_a_tensors_device():
    image = gpucnn.tensor(HWC.transpose(2, 0, 1), device="cudasim")
    for transform in (transforms.RandomCrop(4, padding=1, padding_mode="edge"), transforms.RandomHorizontalFlip(1),
                      transforms.CenterCrop(3), transforms.Pad(1)):
        result = transform(image)
        assert result.device.name == "cudasim"
    normalized = transforms.Normalize((0.5,), (0.5,))(image.float())
    assert normalized.device.name == "cudasim"
    assert np.array_equal(normalized.numpy(), (HWC.transpose(2, 0, 1) - np.float32(0.5)) / np.float32(0.5))


# --------------------------------------------------------------------------------------- RandomErasing
def test_random_erasing_sets_one_rectangle_of_allowed_size():
    image = gpucnn.tensor(RNG.random((3, 20, 30)).astype(np.float32) + 1)  # no zeros: zeros come from erasing
    erase = transforms.RandomErasing(p=1, scale=(0.05, 0.2), ratio=(0.5, 2), value=0)
    for _ in range(50):
        result = erase(image).numpy()
        zeros = result[0] == 0
        rows, cols = np.flatnonzero(zeros.any(axis=1)), np.flatnonzero(zeros.any(axis=0))
        height, width = len(rows), len(cols)
        assert zeros.sum() == height * width and (result == 0).sum() == 3 * height * width  # one rectangle, all planes
        assert np.array_equal(result[:, ~zeros], image.numpy()[:, ~zeros])
        area = height * width / 600  # rounding each side to whole pixels moves the area a little
        assert 0.05 * 0.7 < area < 0.2 * 1.3 and 0.5 * 0.6 < height / width < 2 / 0.6
    assert np.array_equal(transforms.RandomErasing(p=0)(image).numpy(), image.numpy())
    too_large = transforms.RandomErasing(p=1, scale=(1, 1), ratio=(2, 3))  # no rectangle fits: nothing erased
    assert np.array_equal(too_large(image).numpy(), image.numpy())


def test_random_erasing_values_and_inplace():
    image = gpucnn.ones(2, 3, 16, 16)
    per_channel = transforms.RandomErasing(p=1, value=(5, 7, 9))(image).numpy()
    assert set(np.unique(per_channel[:, 0])) == {1, 5} and set(np.unique(per_channel[:, 2])) == {1, 9}
    assert np.array_equal(per_channel[0], per_channel[1])  # one rectangle for the whole batch
    noisy = transforms.RandomErasing(p=1, scale=(0.2, 0.3), value="random")(image).numpy()
    assert (noisy != 1).sum() > 0.2 * 6 * 256 * 0.8 and np.array_equal(image.numpy(), np.ones((2, 3, 16, 16)))
    result = transforms.RandomErasing(p=1, inplace=True)(image)
    assert result is image and (image.numpy() == 0).any()
    gpucnn.manual_seed(9)
    first = transforms.RandomErasing(p=1, value="random")(gpucnn.ones(3, 8, 8)).numpy()
    gpucnn.manual_seed(9)
    assert np.array_equal(transforms.RandomErasing(p=1, value="random")(gpucnn.ones(3, 8, 8)).numpy(), first)


@pytest.mark.parametrize("arguments, error, message", [
    ({"p": 2}, ValueError, "RandomErasing: p must be a probability"),
    ({"scale": (0.5, 0.1)}, ValueError, r"RandomErasing: scale must be a pair \(min, max\), got \(0.5, 0.1\)"),
    ({"scale": (0.5, 1.5)}, ValueError, "RandomErasing: scale must lie between 0 and 1"),
    ({"ratio": 3}, ValueError, "RandomErasing: ratio must be a pair"),
    ({"ratio": (0, 1)}, ValueError, "RandomErasing: ratio must be positive"),
    ({"value": "noise"}, ValueError, "RandomErasing: value must be a number, a sequence of them or 'random'"),
])
def test_random_erasing_bad_arguments(arguments, error, message):
    with pytest.raises(error, match=message):
        transforms.RandomErasing(**arguments)


def test_random_erasing_bad_input():
    with pytest.raises(ValueError, match=r"value must be one number or one per channel \(3\), got \(1, 2\)"):
        transforms.RandomErasing(p=1, value=(1, 2))(gpucnn.zeros(3, 4, 4))
    with pytest.raises(TypeError, match=r"RandomErasing: expects a tensor \(\.\.\., C, H, W\), got ndarray"):
        transforms.RandomErasing()(HWC)
    with pytest.raises(TypeError, match=r"got Tensor of shape \(4, 4\)"):
        transforms.RandomErasing()(gpucnn.zeros(4, 4))
