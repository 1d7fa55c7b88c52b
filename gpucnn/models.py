"""Built-in models, built by name from a small config so a saved model can be rebuilt from its file.

    >>> model = gpucnn.models.build("convnetjs", in_channels=3, image_size=(32, 32), num_classes=10)

- ``lenet``: LeNet-style (conv -> ReLU -> pool, twice, then a small MLP), sized to the input:
  LeNet-5's 5x5 convolutions with 6 and 16 filters for 28x28 and larger inputs (28x28 gets padding 2,
  as in the paper); for small inputs such as the 8x8 digits, 3x3 convolutions with 32 and 64 filters
  and padding 1 and a hidden layer of 128, since two unpadded 5x5 convolutions do not fit in 8 pixels
  (the wider layers measured about a point better on digits than 16/32/64, at no noticeable cost).
- ``convnetjs``: the network of the ConvNetJS CIFAR-10 demo: three times conv 5x5 pad 2 (16, 20, 20
  filters) -> ReLU -> max-pool 2/2, then linear to the classes. Trained with Adadelta there.
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
