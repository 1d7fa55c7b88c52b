"""Cross-entropy loss on logits and integer class targets: log-softmax and NLL fused in one Function.

With label smoothing e over C classes the target distribution is q = (1 - e) * one_hot + e / C, and
the loss of one sample is -sum_c q_c * log_softmax(x)_c (PyTorch's definition). Since q sums to 1,
the gradient with respect to the logits is softmax(x) - q.
"""

from __future__ import annotations

import math
import numbers

import numpy

from ..autograd import Function
from ..tensor import Tensor, as_tensor
from ._kernels import THREADS, kernel_array, launch_elementwise
from .softmax import shifted_logits

_REDUCTIONS = ("mean", "sum", "none")


class CrossEntropy(Function):
    """logits: (N, C, *d) and target: (N, *d) integer indices in [0, C) -> loss.

    The loss is (N, *d) for reduction 'none', else a scalar: the sum, or the sum divided by the
    number of targets N * prod(d) (NaN for an empty batch, as in PyTorch).
    """

    def __init__(self, reduction: str, label_smoothing: float, shapes: str):
        self.reduction, self.label_smoothing, self.shapes = reduction, label_smoothing, shapes

    def forward(self, logits, target):
        # float32 logits on a kernel device take cuda/cross_entropy.cu; the rest the array module
        self.kernels = self.device.runs_kernels and logits.dtype == numpy.float32
        if self.kernels:
            return self.forward_gpu(logits, target)
        _check_targets(target, logits.shape[1], self.shapes)
        return self.forward_cpu(logits, target)

    def backward(self, grad_output):
        if self.kernels:
            return self.backward_gpu(grad_output)
        return self.backward_cpu(grad_output)

    def forward_cpu(self, logits, target):
        xp = self.xp
        classes = logits.shape[1]
        smoothing = logits.dtype.type(self.label_smoothing)
        target_index = xp.expand_dims(target.astype(xp.int64), 1)  # (N, 1, *d), for take_along_axis
        shifted, log_sum = shifted_logits(xp, logits, axis=1)
        with numpy.errstate(invalid="ignore", over="ignore"):
            log_probs = shifted - log_sum
            self.probs = xp.exp(log_probs)
            loss = -xp.take_along_axis(log_probs, target_index, axis=1).squeeze(1)
            if self.label_smoothing:
                loss = (1 - smoothing) * loss - (smoothing / classes) * log_probs.sum(axis=1)
        self.target_index = target_index
        self.count = target.size
        if self.reduction == "none":
            return loss
        total = loss.sum()
        if self.reduction == "sum":
            return total
        with numpy.errstate(invalid="ignore", divide="ignore"):
            return total / logits.dtype.type(self.count)  # 0 / 0 = NaN on an empty batch

    def backward_cpu(self, grad_output):
        xp = self.xp
        classes = self.probs.shape[1]
        dtype = self.probs.dtype
        smoothing = dtype.type(self.label_smoothing)
        # q = e / C everywhere, plus (1 - e) at the target class.
        smoothed = xp.full_like(self.probs, smoothing / classes)
        xp.put_along_axis(smoothed, self.target_index, (1 - smoothing) + smoothing / classes, axis=1)
        grad = self.probs - smoothed
        if self.reduction == "none":
            scale = xp.expand_dims(grad_output, 1)  # one upstream value per sample
        elif self.reduction == "sum":
            scale = grad_output
        else:
            scale = grad_output / dtype.type(max(self.count, 1))
        return grad * scale, None

    # ----------------------------------------------------------------- kernel devices (cuda/cross_entropy.cu)
    def forward_gpu(self, logits, target):
        """Three launches and one read back (whether every target is in range), where the array
        module's steps took about twenty operations and two read backs."""
        xp = self.xp
        self.logits = kernel_array(xp, logits)
        self.target = xp.ascontiguousarray(target, dtype=xp.int64)
        N, classes = logits.shape[:2]
        self.inner = math.prod(logits.shape[2:])
        samples = self.count = N * self.inner
        loss = xp.empty((N,) + logits.shape[2:], dtype=xp.float32)
        self.stats = xp.empty(2 * samples, dtype=xp.float32)  # each sample's max, then its log_sum
        smoothing = numpy.float32(self.label_smoothing)
        launch_elementwise(self.device, "cross_entropy", "cross_entropy_forward", samples,
                           (self.logits, self.target, loss, self.stats, numpy.int32(classes),
                            numpy.int64(self.inner), numpy.int64(samples), smoothing))
        total, first_bad = xp.empty((), dtype=xp.float32), xp.empty(1, dtype=xp.int64)
        divisor = numpy.float32(samples if self.reduction == "mean" else 1)  # 0 / 0: NaN, as the cpu's
        self.device.kernel("cross_entropy", "cross_entropy_reduce")(
            (1,), (THREADS,), (loss, self.target, total, first_bad, numpy.int64(samples), numpy.int32(classes),
                               divisor))
        bad = int(first_bad[0])
        if bad < samples:  # named as given: a uint64 past 2^63 wraps in the kernels' int64 copy
            _raise_out_of_range(int(target.reshape(-1)[bad]), classes, self.shapes)
        return loss if self.reduction == "none" else total

    def backward_gpu(self, grad_output):
        xp = self.xp
        grad = xp.empty(self.logits.shape, dtype=xp.float32)
        divisor = numpy.float32(max(self.count, 1) if self.reduction == "mean" else 1)
        launch_elementwise(self.device, "cross_entropy", "cross_entropy_backward", grad.size,
                           (self.logits, self.target, self.stats, kernel_array(xp, grad_output), grad,
                            numpy.int32(grad.shape[1]), numpy.int64(self.inner), numpy.int64(self.count),
                            numpy.float32(self.label_smoothing), divisor, numpy.int32(self.reduction == "none")))
        return grad, None


def _raise_out_of_range(value: int, classes: int, shapes: str):
    raise ValueError(f"cross_entropy: target value {value} is out of range [0, {classes}) ({shapes})")


def _check_targets(target, classes: int, shapes: str) -> None:
    """ValueError naming the first target outside [0, classes), in the targets' order."""
    flat = target.reshape(-1)
    bad = (flat < 0) | (flat >= classes)
    if bad.any():
        _raise_out_of_range(int(flat[int(bad.argmax())]), classes, shapes)


def cross_entropy(input, target, *, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits and integer class indices (PyTorch's ``F.cross_entropy``).

    Args:
        input: logits (N, C), unbatched (C,), or (N, C, d1, ..., dk), floating point.
        target: class indices (N,), () or (N, d1, ..., dk), of any integer dtype, each in [0, C).
            Class probabilities (float targets) are not supported.
        reduction: 'mean' (over all targets), 'sum' or 'none' (one loss per target).
        label_smoothing: e in [0, 1]; the target becomes (1 - e) * one_hot + e / C.

    Not supported: PyTorch's ``weight`` and ``ignore_index``; hence ``reduction`` and
    ``label_smoothing`` are keyword-only, so a positional call written for PyTorch fails loudly.
    """
    x = as_tensor(input, "cross_entropy: input")
    t = as_tensor(target, "cross_entropy: target", x.device)
    shapes = f"input shape {x.shape}, target shape {t.shape}"
    if x.dtype.kind != "f":
        raise TypeError(f"cross_entropy: input must be floating-point logits, got dtype {x.dtype} ({shapes})")
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"cross_entropy: target must hold integer class indices, got dtype {t.dtype} ({shapes}); "
            f"class-probability targets are not supported"
        )
    if t.device != x.device:
        raise ValueError(f"cross_entropy: target is on {t.device} but input is on {x.device}")
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real):
        raise TypeError(f"cross_entropy: label_smoothing must be a real number in [0, 1], got {label_smoothing!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing!r}")

    if x.ndim == 0:
        raise ValueError(f"cross_entropy: input must be (C,), (N, C) or (N, C, d1, ...), got {shapes}")
    unbatched = x.ndim == 1
    expected = () if unbatched else (x.shape[0],) + x.shape[2:]
    if t.shape != expected:
        if not unbatched and t.ndim >= 1 and t.shape[0] != x.shape[0]:
            raise ValueError(
                f"cross_entropy: input batch size {x.shape[0]} does not match target batch size {t.shape[0]} ({shapes})"
            )
        raise ValueError(f"cross_entropy: target must have shape {expected} for {shapes}")
    classes = x.shape[0] if unbatched else x.shape[1]
    if classes == 0:
        raise ValueError(f"cross_entropy: input has no classes (C = 0) ({shapes})")

    if unbatched:  # one sample: (C,) -> (1, C), target () -> (1,), and the loss back to ()
        x, t = x.reshape(1, classes), t.reshape(1)
    loss = CrossEntropy(reduction, float(label_smoothing), shapes).apply(x, t)
    return loss.reshape(()) if unbatched and reduction == "none" else loss
