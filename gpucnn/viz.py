"""PNG plots of a run: training curves, the first conv layer's filters, and each conv layer's
activation maps for one image (as the ConvNetJS demos show them).

Figures are drawn with matplotlib's object API and its Agg canvas, never pyplot, so nothing here
touches a display or global plotting state.
"""

from __future__ import annotations

import math

import numpy


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def mosaic(maps: numpy.ndarray, columns: int | None = None, gap: int = 1) -> numpy.ndarray:
    """Tiles ``maps`` (K, H, W) or (K, H, W, 3) into one image with ``gap`` pixels of NaN between tiles."""
    count, height, width = maps.shape[:3]
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    shape = (rows * (height + gap) - gap, columns * (width + gap) - gap) + maps.shape[3:]
    canvas = numpy.full(shape, numpy.nan, dtype=numpy.float32)
    for index, tile in enumerate(maps):
        row, column = divmod(index, columns)
        canvas[row * (height + gap):row * (height + gap) + height,
               column * (width + gap):column * (width + gap) + width] = tile
    return canvas


def _colormap(name: str):
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad="white")  # the NaN gaps between tiles


def plot_curves(history: list, path, title: str = "") -> None:
    """Loss and accuracy per epoch from ``metrics.json``'s ``epochs`` list."""
    epochs = [record["epoch"] for record in history]
    figure = _figure(9, 3.6)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, [record["train_loss"] for record in history], "o-", label="train loss")
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    loss_axes.set_yscale("log")
    accuracy_axes.plot(epochs, [100 * record["train_accuracy"] for record in history], "o-", label="train")
    accuracy_axes.plot(epochs, [100 * record["test_accuracy"] for record in history], "s-", label="test")
    if history:
        final = history[-1]["test_accuracy"]
        accuracy_axes.annotate(f"{100 * final:.1f} %", (epochs[-1], 100 * final), textcoords="offset points",
                               xytext=(-10, -14), ha="right")
    accuracy_axes.set(xlabel="epoch", ylabel="%", title="accuracy")
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
        axes.legend()
        axes.xaxis.get_major_locator().set_params(integer=True)
    if title:
        figure.suptitle(title)
    figure.savefig(path)


def plot_filters(weight: numpy.ndarray, path) -> None:
    """The filters of the first conv layer, weight (K, C, R, S): RGB tiles when C == 3 (each filter
    stretched to [0, 1]), else one tile per filter and channel on a colour scale centred on 0."""
    count, channels, height, width = weight.shape
    if channels == 3:
        low = weight.min(axis=(1, 2, 3), keepdims=True)
        high = weight.max(axis=(1, 2, 3), keepdims=True)
        tiles = ((weight - low) / numpy.maximum(high - low, 1e-12)).transpose(0, 2, 3, 1)
        image = mosaic(tiles, columns=min(count, 8))
    else:
        image = mosaic(weight.reshape(count * channels, height, width),
                       columns=channels if channels > 1 else min(count, 8))
    figure = _figure(7, 0.8 + 5.6 * image.shape[0] / image.shape[1])  # the colorbar takes ~1.4 of the 7 inches
    axes = figure.subplots()
    if channels == 3:
        axes.imshow(numpy.nan_to_num(image, nan=1.0), interpolation="nearest")
    else:
        limit = float(numpy.nanmax(numpy.abs(image))) or 1.0
        shown = axes.imshow(image, cmap=_colormap("RdBu_r"), vmin=-limit, vmax=limit, interpolation="nearest")
        figure.colorbar(shown, ax=axes, shrink=0.8, label="weight")
    axes.set_axis_off()
    axes.set_title(f"first conv layer: {count} filters of {channels}x{height}x{width}")
    figure.savefig(path)


def activation_maps(model, inputs: numpy.ndarray, device) -> list:
    """[(title, maps (K, P, Q))] for one input (C, H, W): the output of every Conv2d of ``model``,
    taken after the ReLU when one directly follows it (what the next layer sees)."""
    from . import nn
    from .autograd import no_grad
    from .tensor import tensor

    # where to record each conv layer's maps: the conv itself, or the ReLU right after it
    targets, previous = [], None
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            targets.append([f"conv {len(targets) + 1} (layer '{name}')", module])
        elif isinstance(module, nn.ReLU) and isinstance(previous, nn.Conv2d):
            targets[-1] = [targets[-1][0] + " after ReLU", module]
        previous = module
    recorded, handles = [], []
    for title, module in targets:
        def record(layer, args, output, title=title):
            recorded.append((title, output.numpy()[0]))

        handles.append(module.register_forward_hook(record))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(tensor(inputs[None], device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return recorded


def plot_activations(model, image: numpy.ndarray, preprocess, device, path, caption: str = "") -> None:
    """The input ``image`` (C, H, W) in [0, 1] and every conv layer's output maps for it.

    Each layer's maps share one grey scale (black = lowest, white = highest) so the strongly
    responding filters stand out, as in ConvNetJS.
    """
    # at most 16 maps per row, rows filled evenly (20 maps: 2 rows of 10)
    layers = [(title, mosaic(maps, columns=math.ceil(len(maps) / math.ceil(len(maps) / 16))), maps.shape)
              for title, maps in
              activation_maps(model, preprocess.normalize(image), device)]
    width = 8.0
    heights = [1.8] + [0.45 + width * tiles.shape[0] / tiles.shape[1] for _, tiles, _ in layers]
    figure = _figure(width, sum(heights))
    rows = figure.subplots(len(layers) + 1, 1, squeeze=False, height_ratios=heights)[:, 0]
    if image.shape[0] == 3:
        rows[0].imshow(image.transpose(1, 2, 0).clip(0, 1), interpolation="nearest")
    else:
        rows[0].imshow(image[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    rows[0].set_title(caption or "input", fontsize=10)
    for axes, (title, tiles, shape) in zip(rows[1:], layers):
        axes.imshow(tiles, cmap=_colormap("gray"), interpolation="nearest")
        axes.set_title(f"{title}: {shape[0]} maps of {shape[1]}x{shape[2]}", fontsize=10)
    for axes in rows:
        axes.set_axis_off()
    figure.savefig(path)
