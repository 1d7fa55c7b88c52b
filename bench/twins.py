"""torch.nn twins of gpucnn.models' torchvision networks: the same layers under torchvision's names, so a gpucnn
model's state dict loads into its twin (``twin.load_state_dict(model.state_dict())``), for the benchmarks against
PyTorch and the tests against it, where torchvision is not installed (its wheels on PyPI want a CUDA build of torch).

    >>> twin = torch_model("resnet18", num_classes=10)
"""

import torch

from gpucnn.models import MobileNetV2

MODELS = ("resnet18", "resnet34", "resnet50", "mobilenet_v2")
# ResNets: their kind of block and the blocks a stage
LAYERS = {"resnet18": ("basic", [2, 2, 2, 2]), "resnet34": ("basic", [3, 4, 6, 3]),
          "resnet50": ("bottleneck", [3, 4, 6, 3])}


def _block(kind, inplanes, planes, stride):
    """A block of torch.nn layers, named as torchvision names them."""
    expansion = 1 if kind == "basic" else 4
    block = torch.nn.Module()
    if kind == "basic":
        block.conv1 = torch.nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        block.bn1 = torch.nn.BatchNorm2d(planes)
        block.conv2 = torch.nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        block.bn2 = torch.nn.BatchNorm2d(planes)
    else:
        block.conv1 = torch.nn.Conv2d(inplanes, planes, 1, bias=False)
        block.bn1 = torch.nn.BatchNorm2d(planes)
        block.conv2 = torch.nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        block.bn2 = torch.nn.BatchNorm2d(planes)
        block.conv3 = torch.nn.Conv2d(planes, planes * 4, 1, bias=False)
        block.bn3 = torch.nn.BatchNorm2d(planes * 4)
    block.downsample = None
    if stride != 1 or inplanes != planes * expansion:
        block.downsample = torch.nn.Sequential(torch.nn.Conv2d(inplanes, planes * expansion, 1, stride, bias=False),
                                               torch.nn.BatchNorm2d(planes * expansion))

    def forward(x):
        out = torch.relu(block.bn1(block.conv1(x)))
        out = block.bn2(block.conv2(out))
        if kind == "bottleneck":
            out = block.bn3(block.conv3(torch.relu(out)))
        return torch.relu(out + (x if block.downsample is None else block.downsample(x)))

    block.forward = forward
    return block


def torch_resnet(name, num_classes):
    """ResNet-18, -34 or -50 (``name``) of torch.nn layers as torchvision names them."""
    kind, layers = LAYERS[name]
    expansion = 1 if kind == "basic" else 4
    model = torch.nn.Module()
    model.conv1 = torch.nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    model.bn1 = torch.nn.BatchNorm2d(64)
    inplanes = 64
    for stage, (planes, count) in enumerate(zip([64, 128, 256, 512], layers)):
        blocks = []
        for index in range(count):
            blocks.append(_block(kind, inplanes, planes, 2 if stage and not index else 1))
            inplanes = planes * expansion
        setattr(model, f"layer{stage + 1}", torch.nn.Sequential(*blocks))
    model.fc = torch.nn.Linear(512 * expansion, num_classes)

    def forward(x):
        x = torch.nn.functional.max_pool2d(torch.relu(model.bn1(model.conv1(x))), 3, 2, 1)
        x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
        return model.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))

    model.forward = forward
    return model


def _conv_norm(in_channels, out_channels, kernel=3, stride=1, groups=1):
    return torch.nn.Sequential(torch.nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2,
                                               groups=groups, bias=False),
                               torch.nn.BatchNorm2d(out_channels), torch.nn.ReLU6())


class _InvertedResidual(torch.nn.Module):
    def __init__(self, channels, width, stride, expand):
        super().__init__()
        hidden = channels * expand
        layers = [_conv_norm(channels, hidden, 1)] if expand != 1 else []
        layers += [_conv_norm(hidden, hidden, stride=stride, groups=hidden),
                   torch.nn.Conv2d(hidden, width, 1, bias=False), torch.nn.BatchNorm2d(width)]
        self.conv = torch.nn.Sequential(*layers)
        self.residual = stride == 1 and channels == width

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


def torch_mobilenet_v2(num_classes):
    """MobileNetV2 of torch.nn layers as torchvision names them (width 1: its channels are the table's)."""
    features, channels = [_conv_norm(3, 32, stride=2)], 32
    for expand, width, count, stride in MobileNetV2.SETTING:
        for index in range(count):
            features.append(_InvertedResidual(channels, width, stride if index == 0 else 1, expand))
            channels = width
    features.append(_conv_norm(channels, 1280, 1))
    model = torch.nn.Module()
    model.features = torch.nn.Sequential(*features)
    model.classifier = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(1280, num_classes))
    model.forward = lambda x: model.classifier(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(
        model.features(x), 1), 1))
    return model


def torch_model(name, num_classes):
    """The twin of ``gpucnn.models.<name>(num_classes=num_classes)``, ``name`` one of MODELS."""
    return torch_mobilenet_v2(num_classes) if name == "mobilenet_v2" else torch_resnet(name, num_classes)
