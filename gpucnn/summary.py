"""``gpucnn.summary(model, input_shape)``: each layer's output shape and parameter count."""

from __future__ import annotations

import numbers

import numpy

from .autograd import no_grad
from .nn.module import Module
from .tensor import Tensor


class ModelSummary:
    """The rows of a summary table and its totals; ``str()`` gives the table.

    Attributes:
        rows: one ``(name, layer type, output shape, parameter count)`` per leaf layer, in call order;
            output shapes start with -1 for the batch dimension.
        total_params, trainable_params: counted over the whole model, shared parameters once.
    """

    def __init__(self, rows: list, total_params: int, trainable_params: int):
        self.rows = rows
        self.total_params = total_params
        self.trainable_params = trainable_params

    def __str__(self) -> str:
        header = ("Layer", "Type", "Output shape", "Params")
        body = [(name, kind, str(list(shape)), f"{count:,}") for name, kind, shape, count in self.rows]
        widths = [max(len(row[i]) for row in [header] + body) for i in range(4)]

        def line(row):
            return "  ".join(cell.rjust(w) if i == 3 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))

        rule = "-" * len(line(header))
        return "\n".join(
            [line(header), rule, *map(line, body), rule,
             f"Total params: {self.total_params:,}",
             f"Trainable params: {self.trainable_params:,}",
             f"Non-trainable params: {self.total_params - self.trainable_params:,}"]
        )

    __repr__ = __str__


def summary(model: Module, input_shape, print_table: bool = True) -> ModelSummary:
    """Runs ``model`` once on zeros of shape (1, *input_shape) and tabulates each leaf layer.

    Args:
        model: the Module.
        input_shape: one sample's shape without the batch dimension, e.g. (3, 32, 32).
        print_table: print the table as well as returning it.
    """
    if not isinstance(model, Module):
        raise TypeError(f"summary: model must be a gpucnn.nn.Module, got {type(model).__name__}")
    if isinstance(input_shape, numbers.Integral):
        input_shape = (input_shape,)
    input_shape = tuple(input_shape)
    if not input_shape or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in input_shape):
        raise ValueError(f"summary: input_shape must be positive ints without the batch dimension, got {input_shape}")

    parameters = list(model.parameters())
    device, dtype = (parameters[0].device, parameters[0].dtype) if parameters else (None, numpy.float32)
    rows, handles = [], []
    for name, module in model.named_modules():
        if next(module.children(), None) is None:  # a leaf layer (the model itself when it has no children)
            def record(layer, inputs, output, name=name):
                shape = output[0].shape if isinstance(output, tuple) else output.shape
                count = sum(p.numel() for p in layer.parameters())
                rows.append((name or type(layer).__name__, type(layer).__name__, (-1,) + tuple(shape[1:]), count))

            handles.append(module.register_forward_hook(record))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(Tensor(numpy.zeros((1,) + input_shape, dtype=dtype), device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    total = sum(p.numel() for p in parameters)
    trainable = sum(p.numel() for p in parameters if p.requires_grad)
    result = ModelSummary(rows, total, trainable)
    if print_table:
        print(result)
    return result
