"""Cross-entropy loss on logits and integer class targets: log-softmax and NLL fused in one Function,
with PyTorch's class weights, ignored targets and label smoothing (see ``CrossEntropy``); and the NLL
alone, on log-probabilities (``nll_loss``).

With label smoothing e over C classes the target distribution is q = (1 - e) * one_hot + e / C, and
the loss of one sample is -sum_c q_c * log_softmax(x)_c (PyTorch's definition). Since q sums to 1,
the gradient with respect to the logits is softmax(x) - q; class weights scale both terms.
"""

from __future__ import annotations

import math
import numbers

import numpy

from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor, as_tensor
from ._kernels import THREADS, kernel_array, launch_elementwise, placeholder
from .softmax import shifted_logits

_REDUCTIONS = ("mean", "sum", "none")
_KERNEL_REDUCTIONS = ("none", "sum", "mean")  # cuda/cross_entropy.cu's codes 0, 1, 2
_INT64_MAX = 2**63 - 1


class CrossEntropy(Function):
    """logits: (N, C, *d) and target: (N, *d) integer indices in [0, C) or ``ignore_index`` -> loss.

    A sample's loss is w[y] * -log_softmax(x)[y] with class weights w (all 1 without ``weight``), and
    with label smoothing e, (1 - e) times that plus (e / C) * sum_c w[c] * -log_softmax(x)[c]
    (PyTorch's definition). A sample whose target is ``ignore_index`` has loss 0 and gradient 0. The
    loss is (N, *d) for reduction 'none', else a scalar: the sum, or the sum divided by the sum of
    w[y] over the samples not ignored (their number without weights; NaN where there are none, as in
    PyTorch).

    The gradient of a sample's loss with respect to its logits is coef * softmax(x) - t, where
    coef = (1 - e) w[y] + (e / C) sum_c w[c] (1 without weights) and t = (e / C) w + (1 - e) w[y] at y.
    """

    def __init__(self, weight, ignore_index: int, reduction: str, label_smoothing: float, shapes: str):
        self.weight, self.ignore_index = weight, ignore_index
        self.reduction, self.label_smoothing, self.shapes = reduction, label_smoothing, shapes

    def forward(self, logits, target):
        # float32 logits on a kernel device take cuda/cross_entropy.cu; the rest the array module
        self.kernels = self.device.runs_kernels and logits.dtype == numpy.float32
        if self.kernels:
            return self.forward_gpu(logits, target)
        return self.forward_cpu(logits, target)

    def backward(self, grad_output):
        if self.kernels:
            return self.backward_gpu(grad_output)
        return self.backward_cpu(grad_output)

    def forward_cpu(self, logits, target):
        xp, dtype = self.xp, logits.dtype
        classes = logits.shape[1]
        smoothing = dtype.type(self.label_smoothing)
        index = _as_int64(xp, target)
        self.ignored = index == self.ignore_index
        flat = index.reshape(-1)
        bad = ((flat < 0) | (flat >= classes)) & ~self.ignored.reshape(-1)
        if bad.any():  # named as given, in the targets' order
            _raise_out_of_range(int(target.reshape(-1)[int(bad.argmax())]), classes, self.shapes)
        # (N, 1, *d) class indices for take_along_axis, an ignored sample's set to class 0
        self.target_index = xp.expand_dims(xp.where(self.ignored, 0, index), 1)
        shifted, log_sum = shifted_logits(xp, logits, axis=1)
        with numpy.errstate(invalid="ignore", over="ignore"):
            log_probs = shifted - log_sum
            self.probs = xp.exp(log_probs)
            loss = -xp.take_along_axis(log_probs, self.target_index, axis=1).squeeze(1)
            if self.weight is None:
                self.sample_weight = None
                if self.label_smoothing:
                    loss = (1 - smoothing) * loss - (smoothing / classes) * log_probs.sum(axis=1)
            else:
                self.sample_weight = self.weight[self.target_index.squeeze(1)]  # w[y], (N, *d)
                loss = self.sample_weight * loss
                if self.label_smoothing:
                    weighted = log_probs * _along_classes(self.weight, logits.ndim)
                    loss = (1 - smoothing) * loss - (smoothing / classes) * weighted.sum(axis=1)
            loss = xp.where(self.ignored, dtype.type(0), loss)  # 0 even where the logits hold NaN
        if self.reduction == "none":
            return loss
        total = loss.sum()
        if self.reduction == "sum":
            return total
        if self.weight is None:
            self.divisor = (~self.ignored).sum().astype(dtype)
        else:
            self.divisor = xp.where(self.ignored, dtype.type(0), self.sample_weight).sum()
        with numpy.errstate(invalid="ignore", divide="ignore"):
            return total / self.divisor  # 0 / 0 = NaN: an empty batch, or every target ignored

    def backward_cpu(self, grad_output):
        xp = self.xp
        classes = self.probs.shape[1]
        dtype = self.probs.dtype
        smoothing = dtype.type(self.label_smoothing)
        if self.weight is None:  # coef = 1; t = e / C everywhere, plus (1 - e) at the target class
            grad = xp.full_like(self.probs, smoothing / classes)
            xp.put_along_axis(grad, self.target_index, (1 - smoothing) + smoothing / classes, axis=1)
            grad = self.probs - grad
        else:  # coef = (1 - e) w[y] + (e / C) sum(w); t = (e / C) w, and (1 - e) w[y] + (e / C) w[y] at y
            sample_weight = xp.expand_dims(self.sample_weight, 1)
            grad = xp.broadcast_to((smoothing / classes) * _along_classes(self.weight, self.probs.ndim),
                                   self.probs.shape).copy()
            xp.put_along_axis(grad, self.target_index,
                              (1 - smoothing) * sample_weight + (smoothing / classes) * sample_weight, axis=1)
            coef = (1 - smoothing) * sample_weight + (smoothing / classes) * self.weight.sum()
            grad = coef * self.probs - grad
        scale = _upstream_scale(xp, grad_output, self.reduction, self.divisor if self.reduction == "mean" else None)
        with numpy.errstate(invalid="ignore"):
            return xp.where(xp.expand_dims(self.ignored, 1), dtype.type(0), grad * scale), None

    # ----------------------------------------------------------------- kernel devices (cuda/cross_entropy.cu)
    def forward_gpu(self, logits, target):
        """Three launches and one read back (whether every target is in range), where the array
        module's steps took about twenty operations and two read backs."""
        xp = self.xp
        self.logits = kernel_array(xp, logits)
        self.target = _as_int64(xp, target)
        N, classes = logits.shape[:2]
        self.inner = math.prod(logits.shape[2:])
        samples = self.samples = N * self.inner
        loss = xp.empty((N,) + logits.shape[2:], dtype=xp.float32)
        self.stats = xp.empty(2 * samples, dtype=xp.float32)  # each sample's max, then its log_sum
        self.kernel_weight = placeholder(self.device) if self.weight is None else self.weight
        weighting = (numpy.int32(self.weight is not None), numpy.int64(self.ignore_index))
        launch_elementwise(self.device, "cross_entropy", "cross_entropy_forward", samples,
                           (self.logits, self.target, self.kernel_weight, loss, self.stats, numpy.int32(classes),
                            numpy.int64(self.inner), numpy.int64(samples), numpy.float32(self.label_smoothing))
                           + weighting)
        # the total, the mean's divisor and the sum of the class weights; the first bad target
        self.sums, first_bad = xp.empty(3, dtype=xp.float32), xp.empty(1, dtype=xp.int64)
        self.device.launcher("cross_entropy", "cross_entropy_reduce")(
            (1,), (THREADS,), (loss, self.target, self.kernel_weight, self.sums, first_bad, numpy.int32(classes),
                               numpy.int64(samples)) + weighting + (numpy.int32(self.reduction == "mean"),))
        bad = int(first_bad[0])
        if bad < samples:  # named as given: a uint64 past 2^63 is clamped in the kernels' int64 copy
            _raise_out_of_range(int(target.reshape(-1)[bad]), classes, self.shapes)
        return loss if self.reduction == "none" else self.sums[:1].reshape(())

    def backward_gpu(self, grad_output):
        xp = self.xp
        grad = xp.empty(self.logits.shape, dtype=xp.float32)
        reduction = _KERNEL_REDUCTIONS.index(self.reduction)
        launch_elementwise(self.device, "cross_entropy", "cross_entropy_backward", grad.size,
                           (self.logits, self.target, self.kernel_weight, self.stats, self.sums,
                            kernel_array(xp, grad_output), grad, numpy.int32(grad.shape[1]), numpy.int64(self.inner),
                            numpy.int64(self.samples), numpy.float32(self.label_smoothing),
                            numpy.int32(self.weight is not None), numpy.int64(self.ignore_index),
                            numpy.int32(reduction)))
        return grad, None


class CrossEntropyProbabilities(Function):
    """logits: (N, C, *d) and target: class probabilities of the same shape -> loss.

    With label smoothing e the target becomes q = (1 - e) * target + e / C, and a sample's loss is
    -sum_c w[c] q_c log_softmax(x)_c (w: the class weights, all 1 without ``weight``), PyTorch's
    definition; the mean divides by the number of samples N * prod(d) (NaN for none). Gradients:
    with respect to the logits (sum_c w[c] q_c) softmax(x) - w q, and to the target
    -(1 - e) w log_softmax(x). Written once against the array module: it runs on every device.
    """

    def __init__(self, weight, reduction: str, label_smoothing: float):
        self.weight, self.reduction, self.label_smoothing = weight, reduction, label_smoothing

    def forward(self, logits, target):
        xp, dtype = self.xp, logits.dtype
        classes = logits.shape[1]
        smoothing = dtype.type(self.label_smoothing)
        shifted, log_sum = shifted_logits(xp, logits, axis=1)
        with numpy.errstate(invalid="ignore", over="ignore"):
            self.log_probs = shifted - log_sum
            smoothed = (1 - smoothing) * target + smoothing / classes if self.label_smoothing else target
            self.weighted = smoothed if self.weight is None else smoothed * _along_classes(self.weight, logits.ndim)
            loss = -(self.weighted * self.log_probs).sum(axis=1)
        self.count = loss.size
        if self.reduction == "none":
            return loss
        total = loss.sum()
        if self.reduction == "sum":
            return total
        with numpy.errstate(invalid="ignore", divide="ignore"):
            return total / dtype.type(self.count)  # 0 / 0 = NaN on an empty batch, as in PyTorch

    def backward(self, grad_output):
        xp, dtype = self.xp, self.log_probs.dtype
        scale = _upstream_scale(xp, grad_output, self.reduction, dtype.type(max(self.count, 1)))
        with numpy.errstate(invalid="ignore", over="ignore"):
            probs = xp.exp(self.log_probs)
            grad_logits = (self.weighted.sum(axis=1, keepdims=True) * probs - self.weighted) * scale
            grad_target = None
            if self.needs_input_grad[1]:
                weighted_log_probs = (self.log_probs if self.weight is None
                                      else self.log_probs * _along_classes(self.weight, self.log_probs.ndim))
                grad_target = -(1 - dtype.type(self.label_smoothing)) * weighted_log_probs * scale
        return grad_logits, grad_target


class NLL(Function):
    """Negative log-likelihood: input (N, C, *d), log-probabilities, and target (N, *d) integer indices in [0, C)
    or ``ignore_index`` -> loss. A sample's loss is -w[y] * input[y] (w all 1 without ``weight``), 0 where its
    target is ignored; reduced as ``CrossEntropy``'s. Its gradient is -w[y] at y, 0 elsewhere."""

    uses_inputs = False

    def __init__(self, weight, ignore_index: int, reduction: str, shapes: str):
        self.weight, self.ignore_index, self.reduction, self.shapes = weight, ignore_index, reduction, shapes

    def forward(self, x, target):
        xp, dtype = self.xp, x.dtype
        self.shape = x.shape
        index = _as_int64(xp, target)
        self.ignored = index == self.ignore_index
        bad = ((index < 0) | (index >= x.shape[1])) & ~self.ignored
        if bad.any():
            _raise_out_of_range(int(target.reshape(-1)[int(bad.reshape(-1).argmax())]), x.shape[1], self.shapes,
                                "nll_loss")
        self.target_index = xp.expand_dims(xp.where(self.ignored, 0, index), 1)
        if self.weight is None:
            self.sample_weight = xp.where(self.ignored, dtype.type(0), dtype.type(1))
        else:
            self.sample_weight = xp.where(self.ignored, dtype.type(0), self.weight[self.target_index.squeeze(1)])
        with numpy.errstate(invalid="ignore"):
            picked = xp.take_along_axis(x, self.target_index, axis=1).squeeze(1)
            loss = xp.where(self.ignored, dtype.type(0), -self.sample_weight * picked)  # 0 even where input is NaN
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        self.divisor = self.sample_weight.sum()
        with numpy.errstate(invalid="ignore", divide="ignore"):
            return loss.sum() / self.divisor  # 0 / 0 = NaN: an empty batch, or every target ignored

    def backward(self, grad_output):
        xp = self.xp
        scale = _upstream_scale(xp, grad_output, self.reduction, self.divisor if self.reduction == "mean" else None)
        grad = xp.zeros(self.shape, dtype=self.sample_weight.dtype)
        with numpy.errstate(invalid="ignore"):
            values = xp.where(xp.expand_dims(self.ignored, 1), 0, -xp.expand_dims(self.sample_weight, 1) * scale)
        xp.put_along_axis(grad, self.target_index, values.astype(grad.dtype, copy=False), axis=1)
        return grad, None


def _upstream_scale(xp, grad_output, reduction: str, divisor):
    """What each sample's gradient is multiplied by: its own upstream value (reduction 'none', as an
    (N, 1, *d) array), the one upstream value ('sum'), or that over ``divisor`` ('mean')."""
    if reduction == "none":
        return xp.expand_dims(grad_output, 1)
    if reduction == "sum":
        return grad_output
    with numpy.errstate(divide="ignore", invalid="ignore"):  # every target ignored: 0 / 0, masked after
        return grad_output / divisor


def _along_classes(weight, ndim: int):
    """The class weights (C,) as (C, 1, ...) to broadcast along axis 1 of an (N, C, *d) array of ``ndim`` dims."""
    return weight.reshape(weight.shape + (1,) * (ndim - 2))


def _as_int64(xp, target):
    """C-contiguous int64 targets; uint64 values past int64's range become its largest value, which
    is out of range (reported as given) and never an ``ignore_index``."""
    if target.dtype == numpy.uint64:
        target = xp.minimum(target, numpy.uint64(_INT64_MAX))
    return xp.ascontiguousarray(target, dtype=xp.int64)


def _raise_out_of_range(value: int, classes: int, shapes: str, op: str = "cross_entropy"):
    raise ValueError(f"{op}: target value {value} is out of range [0, {classes}) ({shapes})")


def cross_entropy(input, target, weight=None, *, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits and class indices or class probabilities (PyTorch's ``F.cross_entropy``).

    Args:
        input: logits (N, C), unbatched (C,), or (N, C, d1, ..., dk), floating point.
        target: class indices (N,), () or (N, d1, ..., dk), of any integer dtype, each in [0, C) or
            equal to ``ignore_index``; or class probabilities of the input's shape and dtype (a float
            target, which may require grad: ``CrossEntropyProbabilities``).
        weight: a weight per class, (C,), of the input's dtype; it takes no gradient.
        ignore_index: targets equal to it add nothing to the loss and get a zero gradient (even where
            their logits hold NaN), and the mean leaves them out. Class indices only.
        reduction: 'mean' (over the targets not ignored, weighted by their class weights; with class
            probabilities, over the samples), 'sum' or 'none' (one loss per target).
        label_smoothing: e in [0, 1]; the target becomes (1 - e) * one_hot + e / C (with class
            probabilities, (1 - e) * target + e / C).

    PyTorch's legacy ``size_average`` and ``reduce`` are not taken; hence everything after ``weight``
    is keyword-only, so a positional call written for PyTorch fails loudly.
    """
    x = as_tensor(input, "cross_entropy: input")
    t = as_tensor(target, "cross_entropy: target", x.device)
    shapes = f"input shape {x.shape}, target shape {t.shape}"
    if x.dtype.kind != "f":
        raise TypeError(f"cross_entropy: input must be floating-point logits, got dtype {x.dtype} ({shapes})")
    if t.dtype.kind not in "iuf":
        raise TypeError(f"cross_entropy: target must hold integer class indices or floating-point class "
                        f"probabilities, got dtype {t.dtype} ({shapes})")
    if t.device != x.device:
        raise ValueError(f"cross_entropy: target is on {t.device} but input is on {x.device}")
    check_options("cross_entropy", ignore_index, reduction, label_smoothing)

    if x.ndim == 0:
        raise ValueError(f"cross_entropy: input must be (C,), (N, C) or (N, C, d1, ...), got {shapes}")
    unbatched, probabilities = x.ndim == 1, t.dtype.kind == "f"
    if probabilities:
        _check_probabilities(x, t, ignore_index, shapes)
    else:
        check_indices(x, t, unbatched, shapes)
    classes = x.shape[0] if unbatched else x.shape[1]
    if classes == 0:
        raise ValueError(f"cross_entropy: input has no classes (C = 0) ({shapes})")
    weights = None if weight is None else class_weights(weight, x, classes, shapes)

    if unbatched:  # one sample: (C,) -> (1, C), target () -> (1,) (probabilities: (1, C)), the loss back to ()
        x, t = x.reshape(1, classes), t.reshape((1, classes) if probabilities else 1)
    if probabilities:
        function = CrossEntropyProbabilities(weights, reduction, float(label_smoothing))
    else:
        function = CrossEntropy(weights, int(ignore_index), reduction, float(label_smoothing), shapes)
    loss = function.apply(x, t)
    return loss.reshape(()) if unbatched and reduction == "none" else loss


def nll_loss(input, target, weight=None, *, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """The negative log-likelihood of class indices under log-probabilities (PyTorch's ``F.nll_loss``):
    ``nll_loss(log_softmax(x, 1), y)`` is ``cross_entropy(x, y)``.

    Args:
        input: log-probabilities (N, C), unbatched (C,), or (N, C, d1, ..., dk), floating point.
        target: class indices (N,), () or (N, d1, ..., dk), of any integer dtype, each in [0, C) or
            equal to ``ignore_index``.
        weight, ignore_index, reduction: as :func:`cross_entropy`'s (the mean is over the weights of the
            targets not ignored).

    PyTorch's legacy ``size_average`` and ``reduce`` are not taken: the arguments after ``weight`` are
    keyword-only.
    """
    x = as_tensor(input, "nll_loss: input")
    t = as_tensor(target, "nll_loss: target", x.device)
    shapes = f"input shape {x.shape}, target shape {t.shape}"
    if x.dtype.kind != "f":
        raise TypeError(f"nll_loss: input must be floating-point log-probabilities, got dtype {x.dtype} ({shapes})")
    if t.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold integer class indices, got dtype {t.dtype} ({shapes})")
    if t.device != x.device:
        raise ValueError(f"nll_loss: target is on {t.device} but input is on {x.device}")
    check_options("nll_loss", ignore_index, reduction, 0.0)
    if x.ndim == 0:
        raise ValueError(f"nll_loss: input must be (C,), (N, C) or (N, C, d1, ...), got {shapes}")
    unbatched = x.ndim == 1
    check_indices(x, t, unbatched, shapes, "nll_loss")
    classes = x.shape[0] if unbatched else x.shape[1]
    weights = None if weight is None else class_weights(weight, x, classes, shapes, "nll_loss")
    if unbatched:
        x, t = x.reshape(1, classes), t.reshape(1)
    loss = NLL(weights, int(ignore_index), reduction, shapes).apply(x, t)
    return loss.reshape(()) if unbatched and reduction == "none" else loss


def check_indices(x: Tensor, t: Tensor, unbatched: bool, shapes: str, op: str = "cross_entropy") -> None:
    """ValueError unless class-index targets have the shape of x without its class axis."""
    expected = () if unbatched else (x.shape[0],) + x.shape[2:]
    if t.shape != expected:
        if not unbatched and t.ndim >= 1 and t.shape[0] != x.shape[0]:
            raise ValueError(f"{op}: input batch size {x.shape[0]} does not match target batch size {t.shape[0]} "
                             f"({shapes})")
        raise ValueError(f"{op}: target must have shape {expected} for {shapes}")


def _check_probabilities(x: Tensor, t: Tensor, ignore_index: int, shapes: str) -> None:
    """ValueError or TypeError unless class-probability targets have x's shape and dtype, and no ignore_index."""
    if t.shape != x.shape:
        raise ValueError(f"cross_entropy: class-probability targets must have the input's shape ({shapes})")
    if t.dtype != x.dtype:
        raise TypeError(f"cross_entropy: class-probability targets have dtype {t.dtype} but input has dtype "
                        f"{x.dtype}; they must match ({shapes})")
    if ignore_index != -100:
        raise ValueError(f"cross_entropy: ignore_index is for class indices, not class-probability targets "
                         f"(got ignore_index={ignore_index}; {shapes})")


def check_options(op: str, ignore_index, reduction, label_smoothing) -> None:
    """TypeError or ValueError, naming ``op`` and the argument, for an option cross_entropy does not take."""
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"{op}: ignore_index must be an int, got {ignore_index!r}")
    if not -_INT64_MAX - 1 <= ignore_index <= _INT64_MAX:
        raise ValueError(f"{op}: ignore_index must fit in int64, got {ignore_index}")
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real):
        raise TypeError(f"{op}: label_smoothing must be a real number in [0, 1], got {label_smoothing!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing!r}")


def class_weights(weight, x: Tensor, classes: int, shapes: str, op: str = "cross_entropy"):
    """``weight`` as a C-contiguous (classes,) array of the logits' dtype on their device; errors name it."""
    w = as_tensor(weight, f"{op}: weight", x.device)
    if w.device != x.device:
        raise ValueError(f"{op}: weight is on {w.device} but input is on {x.device}")
    if w.shape != (classes,):
        raise ValueError(f"{op}: weight must have shape ({classes},), one value per class, got shape "
                         f"{w.shape} ({shapes})")
    if w.dtype != x.dtype:
        raise TypeError(f"{op}: weight has dtype {w.dtype} but input has dtype {x.dtype}; they must match: "
                        f"convert one with .to(dtype)")
    if w.requires_grad and is_grad_enabled():
        raise ValueError(f"{op}: weight takes no gradient, so it cannot require grad; pass weight.detach()")
    with x.device.context():
        return x.device.xp.ascontiguousarray(w.data)
