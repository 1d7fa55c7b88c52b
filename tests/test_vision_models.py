"""torchvision's ResNets and MobileNetV2 (gpucnn.models.resnet18/34/50, mobilenet_v2): torchvision's parameter
counts and state-dict names, and the outputs and gradients of the same network built of torch.nn's layers
(bench/twins.py), with the same weights loaded from its state dict, in training and in evaluation."""

import numpy as np
import pytest
import torch

import gpucnn
from bench.twins import torch_model
from gpucnn import models, nn
from helpers import assert_close

# torchvision's documented parameter counts at 1000 classes
PARAMETERS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "mobilenet_v2": 3_504_872}
@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_parameter_counts_and_names_are_torchvisions(name):
    model = getattr(models, name)()
    assert sum(parameter.numel() for parameter in model.parameters()) == PARAMETERS[name]
    reference = torch_model(name, 1000)
    assert list(model.state_dict()) == list(reference.state_dict())
    assert [value.shape for value in model.state_dict().values()] == [
        tuple(value.shape) for value in reference.state_dict().values()]


# (model, device, dtype): the kernel devices take float32, checked to float32's accuracy against float64's result
CASES = [("resnet18", "cpu", np.float64), ("resnet50", "cpu", np.float64), ("resnet18", "cudasim", np.float32),
         ("mobilenet_v2", "cpu", np.float64), ("mobilenet_v2", "cudasim", np.float32)]


@pytest.mark.parametrize("name, device, dtype", CASES)
def test_outputs_and_gradients_are_torchs_with_its_weights(name, device, dtype):
    """A batch through both in training mode (batch statistics, running statistics updated alike), the
    gradients of every parameter, then evaluation mode on the running statistics."""
    torch.manual_seed(0)
    reference = torch_model(name, 7).double()
    ours = getattr(models, name)(num_classes=7).to(device, dtype)
    if name == "mobilenet_v2":  # dropout off in both: the same numbers, not the same masks
        ours.classifier[0].p = reference.classifier[0].p = 0.0
    with torch.no_grad():  # the stem's batch norm scaled by 4: ReLU6's upper bound is reached
        next(module for module in reference.modules() if isinstance(module, torch.nn.BatchNorm2d)).weight.mul_(4)
    ours.load_state_dict(reference.state_dict())
    tolerance = dict(atol=1e-9, rtol=1e-7) if dtype == np.float64 else dict(atol=2e-3, rtol=2e-3)
    x = np.random.default_rng(1).standard_normal((2, 3, 40, 36))
    out, expected = ours(gpucnn.tensor(x, dtype=dtype, device=device)), reference(torch.tensor(x))
    assert_close(out, expected.detach(), **tolerance)
    weights = np.random.default_rng(2).standard_normal(out.shape)
    (out * gpucnn.tensor(weights, dtype=dtype, device=device)).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    largest = max(float(np.linalg.norm(parameter.grad.numpy())) for parameter in reference.parameters())
    for (key, mine), (_, theirs) in zip(ours.named_parameters(), reference.named_parameters()):
        if dtype == np.float64:
            assert_close(mine.grad, theirs.grad, **tolerance, name=key)
            continue
        # float32 (the kernel devices): as a whole, to 5 % of the gradient's norm or of a hundredth of the largest
        # where a gradient is about 0 (a batch norm's shift followed by a convolution and a batch norm moves
        # nothing). A pre-activation that float32 rounds to the other side of a ReLU or ReLU6 kink changes
        # every gradient before it by about 1 % in MobileNetV2 (seen on the cpu in float32 too); the float64
        # cases above check the gradients element by element
        error = np.linalg.norm(mine.grad.numpy() - theirs.grad.numpy())
        assert error <= 5e-2 * max(float(np.linalg.norm(theirs.grad.numpy())), largest / 100), key
    for (key, mine), (_, theirs) in zip(ours.state_dict().items(), reference.state_dict().items()):
        assert_close(mine, theirs, **(dict(atol=1e-12, rtol=1e-10) if dtype == np.float64 else tolerance), name=key)
    ours.eval()
    reference.eval()
    with gpucnn.no_grad(), torch.no_grad():
        assert_close(ours(gpucnn.tensor(x, dtype=dtype, device=device)), reference(torch.tensor(x)), **tolerance)


def test_initialisation_is_torchvisions():
    """Convolutions Kaiming-normal on fan-out, batch norms 1 and 0, the classifier as Linear's; with
    zero_init_residual, each block's last batch-norm scale 0."""
    gpucnn.manual_seed(0)
    model = models.resnet50(num_classes=10, zero_init_residual=True)
    stem = model.conv1.weight.numpy()
    assert abs(stem.std() - np.sqrt(2 / (64 * 7 * 7))) < 0.02 * np.sqrt(2 / (64 * 7 * 7)) and abs(stem.mean()) < 1e-3
    assert all((module.weight.numpy() == 1).all() and (module.bias.numpy() == 0).all()
               for name, module in model.named_modules()
               if isinstance(module, nn.BatchNorm2d) and not name.endswith("bn3"))
    assert all((block.bn3.weight.numpy() == 0).all()
               for block in model.modules() if isinstance(block, models.Bottleneck))
    bound = 1 / np.sqrt(2048)
    assert np.abs(model.fc.weight.numpy()).max() <= bound and model.fc.weight.numpy().std() > bound / 2
    basic = models.resnet18(zero_init_residual=True)
    assert all((block.bn2.weight.numpy() == 0).all()
               for block in basic.modules() if isinstance(block, models.BasicBlock))


def test_mobilenet_v2_initialisation_and_width_are_torchvisions():
    gpucnn.manual_seed(0)
    model = models.mobilenet_v2(num_classes=10)
    weight = model.features[3].conv[1][0].weight.numpy()  # a depthwise 3x3 of 144 channels: fan-out 144 * 9
    assert weight.shape == (144, 1, 3, 3) and abs(weight.std() - np.sqrt(2 / 1296)) < 0.05 * np.sqrt(2 / 1296)
    assert abs(model.classifier[1].weight.numpy().std() - 0.01) < 0.001
    assert (model.classifier[1].bias.numpy() == 0).all()
    # torchvision's widths at 0.5: 16 stem channels, the 1280 kept; its rounding to multiples of 8, never more
    # than 10 % down
    narrow = models.mobilenet_v2(width_mult=0.5)
    assert narrow.features[0][0].weight.shape == (16, 3, 3, 3) and narrow.last_channel == 1280
    assert [models._make_divisible(value) for value in (4, 10, 12, 20, 36.8)] == [8, 16, 16, 24, 40]


def test_bad_arguments():
    for build in (models.resnet18, models.mobilenet_v2):
        with pytest.raises(ValueError, match="weights: gpucnn downloads no pretrained weights"):
            build(weights="IMAGENET1K_V1")
    with pytest.raises(ValueError, match="MobileNetV2: num_classes must be a positive int, got 0"):
        models.mobilenet_v2(num_classes=0)
    with pytest.raises(ValueError, match=r"ResNet: layers must be four positive ints \(blocks a stage\), got \[2, 2\]"):
        models.ResNet(models.BasicBlock, [2, 2])
    with pytest.raises(ValueError, match="ResNet: num_classes must be a positive int, got 0"):
        models.resnet34(num_classes=0)
    with pytest.raises(ValueError, match="ResNet: block must be BasicBlock or Bottleneck"):
        models.ResNet(nn.Linear, [1, 1, 1, 1])
