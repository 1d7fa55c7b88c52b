"""Built-in models, built by name from a small config so a saved model can be rebuilt from its file.

    >>> model = gpucnn.models.build("convnetjs", in_channels=3, image_size=(32, 32), num_classes=10)

- ``lenet``: LeNet-style (conv -> ReLU -> pool, twice, then a small MLP), sized to the input:
  LeNet-5's 5x5 convolutions with 6 and 16 filters for 28x28 and larger inputs (28x28 gets padding 2,
  as in the paper); for small inputs such as the 8x8 digits, 3x3 convolutions with 32 and 64 filters
  and padding 1 and a hidden layer of 128, since two unpadded 5x5 convolutions do not fit in 8 pixels
  (the wider layers measured about a point better on digits than 16/32/64, at no noticeable cost).
- ``convnetjs``: the network of the ConvNetJS CIFAR-10 demo: three times conv 5x5 pad 2 (16, 20, 20
  filters) -> ReLU -> max-pool 2/2, then linear to the classes. Trained with Adadelta there.

And torchvision's ResNets and MobileNetV2, by its names: ``resnet18``, ``resnet34`` and ``resnet50`` (``ResNet``,
``BasicBlock``, ``Bottleneck``) and ``mobilenet_v2`` (``MobileNetV2``, ``InvertedResidual``), whose state dicts are
torchvision's:

    >>> model = gpucnn.models.resnet18(num_classes=10)
    >>> model.load_state_dict(torchvision.models.resnet18(num_classes=10).state_dict())   # torch's weights
"""

from __future__ import annotations

from . import nn

MODELS = ("lenet", "convnetjs")


def _check(name: str, in_channels: int, image_size, num_classes: int) -> tuple:
    if name not in MODELS:
        raise ValueError(f"unknown model '{name}'; expected one of: {', '.join(MODELS)}")
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if min(height, width) < 4:
        raise ValueError(f"model '{name}' needs images of at least 4x4 pixels, got {height}x{width}")
    if in_channels < 1 or num_classes < 2:
        raise ValueError(f"model '{name}': in_channels must be >= 1 and num_classes >= 2, "
                         f"got {in_channels} and {num_classes}")
    return height, width


def lenet(in_channels: int, image_size, num_classes: int) -> nn.Sequential:
    """LeNet-style CNN for (N, in_channels, H, W) inputs -> (N, num_classes) logits."""
    height, width = _check("lenet", in_channels, image_size, num_classes)
    if min(height, width) >= 28:
        # LeNet-5: 28x28 inputs are padded to 32x32; 32x32 -> conv5 28 -> pool 14 -> conv5 10 -> pool 5
        padding = 2 if min(height, width) < 32 else 0

        def side(size):  # conv5 (with padding) -> pool 2 -> conv5 -> pool 2
            return ((size + 2 * padding - 4) // 2 - 4) // 2

        flat = 16 * side(height) * side(width)
        return nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=padding), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes),
        )
    flat = 64 * (height // 4) * (width // 4)
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, num_classes),
    )


def convnetjs(in_channels: int, image_size, num_classes: int) -> nn.Sequential:
    """The ConvNetJS CIFAR-10 demo network for (N, in_channels, H, W) inputs -> (N, num_classes) logits.

    Each 2/2 pool halves H and W rounding down, as ConvNetJS does, so 32x32 ends at 4x4x20 and the
    8x8 digits at 1x1x20.
    """
    height, width = _check("convnetjs", in_channels, image_size, num_classes)
    layers, previous = [], in_channels
    for channels in (16, 20, 20):
        layers += [nn.Conv2d(previous, channels, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
        previous, height, width = channels, height // 2, width // 2
        if min(height, width) < 1:
            raise ValueError("model 'convnetjs' needs images of at least 8x8 pixels")
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(20 * height * width, num_classes))


def build(name: str, in_channels: int, image_size, num_classes: int) -> nn.Sequential:
    """The model ``name`` ('lenet' or 'convnetjs'), freshly initialised from ``gpucnn.random``."""
    _check(name, in_channels, image_size, num_classes)
    return {"lenet": lenet, "convnetjs": convnetjs}[name](in_channels, image_size, num_classes)


def from_config(config: dict) -> nn.Sequential:
    """Rebuilds a model from :func:`config` output."""
    try:
        return build(config["name"], int(config["in_channels"]), tuple(config["image_size"]),
                     int(config["num_classes"]))
    except (KeyError, TypeError) as error:
        raise ValueError(f"incomplete model config {config!r}: {error}") from None


def config(name: str, in_channels: int, image_size, num_classes: int) -> dict:
    """The JSON-ready description that :func:`from_config` turns back into the model."""
    height, width = _check(name, in_channels, image_size, num_classes)
    return {"name": name, "in_channels": int(in_channels), "image_size": [height, width],
            "num_classes": int(num_classes)}


# ------------------------------------------------------------------------------------------ torchvision's ResNets
class BasicBlock(nn.Module):
    """ResNet's block of two 3x3 convolutions (ResNet-18 and -34), the input added before the last ReLU (through
    ``downsample`` where the shape changes), as torchvision's: its names, so its state dicts load."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample, self.stride = downsample, stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """ResNet's bottleneck block (ResNet-50 and up): 1x1 down to ``planes``, 3x3 (the stride, as torchvision's
    ResNet v1.5), 1x1 up to 4 * ``planes``, the input added before the last ReLU."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample, self.stride = downsample, stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision's ResNet for (N, 3, H, W) images (H, W of 32 and up; 224 for ImageNet's): a 7x7 stride-2 stem
    and a 3x3 stride-2 max pool, four stages of ``layers`` blocks (64 to 512 planes, stages 2-4 halving the
    size), global average pooling and a linear classifier. Parameter names, shapes and initialisation are
    torchvision's (convolutions Kaiming-normal, fan-out; ``zero_init_residual`` zeroes each block's last batch
    norm scale), so ``model.load_state_dict(torchvision_model.state_dict())`` loads its weights."""

    def __init__(self, block, layers, num_classes: int = 1000, zero_init_residual: bool = False):
        super().__init__()
        if block not in (BasicBlock, Bottleneck):
            raise ValueError(f"ResNet: block must be BasicBlock or Bottleneck, got {block!r}")
        if len(layers) != 4 or any(not isinstance(count, int) or count < 1 for count in layers):
            raise ValueError(f"ResNet: layers must be four positive ints (blocks a stage), got {layers!r}")
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"ResNet: num_classes must be a positive int, got {num_classes!r}")
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._stage(block, 64, layers[0])
        self.layer2 = self._stage(block, 128, layers[1], stride=2)
        self.layer3 = self._stage(block, 256, layers[2], stride=2)
        self.layer4 = self._stage(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(module.bn2.weight if isinstance(module, BasicBlock) else module.bn3.weight)

    def _stage(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        stage = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        stage += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def _no_weights(weights) -> None:
    if weights is not None:
        raise ValueError("weights: gpucnn downloads no pretrained weights; load them from torchvision's model with "
                         "model.load_state_dict(torchvision_model.state_dict())")


def _resnet(block, layers, weights, kwargs) -> ResNet:
    _no_weights(weights)
    return ResNet(block, layers, **kwargs)


def resnet18(*, weights=None, **kwargs) -> ResNet:
    """torchvision's ResNet-18 (``num_classes``, ``zero_init_residual``); ``weights`` must be None."""
    return _resnet(BasicBlock, [2, 2, 2, 2], weights, kwargs)


def resnet34(*, weights=None, **kwargs) -> ResNet:
    """torchvision's ResNet-34 (``num_classes``, ``zero_init_residual``); ``weights`` must be None."""
    return _resnet(BasicBlock, [3, 4, 6, 3], weights, kwargs)


def resnet50(*, weights=None, **kwargs) -> ResNet:
    """torchvision's ResNet-50 (``num_classes``, ``zero_init_residual``); ``weights`` must be None."""
    return _resnet(Bottleneck, [3, 4, 6, 3], weights, kwargs)


# -------------------------------------------------------------------------------------- torchvision's MobileNetV2
def _make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor``, not below 90 % of it (torchvision's rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class Conv2dNormActivation(nn.Sequential):
    """Convolution (no bias, padding (kernel - 1) / 2), batch norm and ReLU6, as torchvision's block of the name."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2,
                                   groups=groups, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion by ``expand_ratio`` (none at 1), 3x3 depthwise at ``stride``, 1x1
    linear projection; the input added where stride is 1 and the channels match."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = [Conv2dNormActivation(inp, hidden, kernel_size=1)] if expand_ratio != 1 else []
        layers += [Conv2dNormActivation(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 for (N, 3, H, W) images: a 3x3 stride-2 stem, 17 inverted residual blocks (t, c,
    n, s of the paper's table, widths times ``width_mult`` rounded to multiples of ``round_nearest``), a 1x1
    convolution to 1280 channels, global average pooling, dropout and a linear classifier. Names, parameter
    counts and initialisation are torchvision's (convolutions Kaiming-normal on fan-out, the classifier
    normal with std 0.01), so its state dicts load."""

    SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1))

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, round_nearest: int = 8,
                 dropout: float = 0.2):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"MobileNetV2: num_classes must be a positive int, got {num_classes!r}")
        if not width_mult > 0:
            raise ValueError(f"MobileNetV2: width_mult must be positive, got {width_mult!r}")
        channels = _make_divisible(32 * width_mult, round_nearest)
        self.last_channel = _make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features = [Conv2dNormActivation(3, channels, stride=2)]
        for expand, width, count, stride in self.SETTING:
            out = _make_divisible(width * width_mult, round_nearest)
            for index in range(count):
                features.append(InvertedResidual(channels, out, stride if index == 0 else 1, expand))
                channels = out
        features.append(Conv2dNormActivation(channels, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(x.flatten(1))


def mobilenet_v2(*, weights=None, **kwargs) -> MobileNetV2:
    """torchvision's MobileNetV2 (``num_classes``, ``width_mult``, ``dropout``); ``weights`` must be None."""
    _no_weights(weights)
    return MobileNetV2(**kwargs)
