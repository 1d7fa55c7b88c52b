"""Define-by-run autograd: the Function base class, the backward pass, and ``no_grad`` and the other grad modes.

Every op is a :class:`Function`. Calling ``SomeFunction(**params).apply(*tensors)`` runs its forward
pass on the tensors' arrays and, when gradients are wanted, records the Function as the creator of its
output. ``Tensor.backward`` walks those records in reverse topological order.
"""

from __future__ import annotations

import contextlib
import copy
import threading

import numpy

from .ops import _memory


class _State(threading.local):
    """Each thread's autograd state. The class attribute is a thread's default until ``no_grad`` sets its
    own (a default by ``getattr`` raises and catches an AttributeError inside: 0.38 us every op call,
    where this takes 0.05)."""

    grad_enabled = True


_state = _State()


def is_grad_enabled() -> bool:
    """False inside ``no_grad()``."""
    return _state.grad_enabled


class _GradMode(contextlib.ContextDecorator):
    """A ``with`` block, or a decorated function, in which ops record the graph (``mode``) or not, and after
    which recording is as it was. Each call of a decorated function is a block of its own."""

    mode = True

    def __new__(cls, *args, **kwargs):
        if len(args) == 1 and not kwargs and callable(args[0]):  # a bare decorator: @gpucnn.no_grad
            return cls()(args[0])
        return super().__new__(cls)

    def _recreate_cm(self):
        return copy.copy(self)

    def __enter__(self):
        self.previous = _state.grad_enabled
        _state.grad_enabled = self.mode
        return self

    def __exit__(self, *exc) -> None:
        _state.grad_enabled = self.previous


class no_grad(_GradMode):
    """A block in which ops record no graph (inference, optimizer updates); ``@no_grad()`` on a function."""

    mode = False


class enable_grad(_GradMode):
    """A block in which ops record the graph, inside ``no_grad`` too."""

    mode = True


class inference_mode(_GradMode):
    """As torch.inference_mode: here ``no_grad`` (``mode=False``: ops record as usual)."""

    def __init__(self, mode: bool = True):
        self.mode = not _flag(mode, "inference_mode")


class set_grad_enabled(_GradMode):
    """Recording on or off (``mode``) from the call on, as torch.set_grad_enabled: a plain call sets it; a
    ``with`` block or a decorated function gives it back after, as it was before."""

    def __init__(self, mode: bool):
        self.mode = _flag(mode, "set_grad_enabled")
        self.previous = _state.grad_enabled
        _state.grad_enabled = self.mode

    def __call__(self, function):
        _state.grad_enabled = self.previous  # decorating sets nothing: each call does
        return super().__call__(function)

    def _recreate_cm(self):
        return set_grad_enabled(self.mode)

    def __enter__(self):
        return self


def _flag(mode, name: str) -> bool:
    if not isinstance(mode, (bool, numpy.bool_)):
        raise TypeError(f"{name}: mode must be True or False, got {mode!r}")
    return bool(mode)


class Function:
    """One differentiable op with a single output.

    A subclass takes its hyper-parameters in ``__init__`` and implements, on arrays of the device's
    array module ``self.xp``:

    - ``forward(*arrays) -> array`` and ``backward(grad_output) -> tuple`` (one gradient or None per
      input), when one implementation serves every device; or
    - ``forward_cpu``/``forward_gpu`` and ``backward_cpu``/``backward_gpu``, when the CUDA devices run
      hand-written kernels and the CPU runs NumPy. The default ``forward``/``backward`` pick one.

    Whatever backward needs, forward saves on ``self``; ``self.records_graph`` (set before forward
    runs) says whether backward can be called at all, so a forward may skip what only backward needs.
    A gradient that backward returns is a new array, a view, or the incoming gradient itself, never an
    array that the Function keeps: a new one becomes a leaf's ``.grad`` as it is (see ``backward``).
    """

    #: Set by a Function whose output lives on another device than its inputs (``Tensor.to``).
    output_device = None
    #: Whether backward reads the values of its inputs (uses_inputs) or of its output (uses_output), which
    #: therefore must not change in place between forward and backward (``Tensor.__iadd__`` and the like
    #: count such changes in ``Tensor._version``); backward checks. Inputs by default, the safe side: an op
    #: that reads only their shapes says so.
    uses_inputs = True
    uses_output = False
    #: Set by a Function whose output may be a view of its first input's array (reshape, indexing): the
    #: two then count their in-place changes together, as they see each other's.
    view_of_input = False
    #: Set by ``apply`` before forward; True for a forward called on its own, which then saves everything.
    records_graph = True

    def apply(self, *inputs):
        """Runs the op on Tensors and returns the output Tensor, recording the graph when needed.

        Every op call runs this, so it is written for speed: on a small layer the host's Python work
        is most of a GPU op's time."""
        device = inputs[0].device
        requires_grad = False
        for position, tensor in enumerate(inputs, start=1):
            if tensor.device is not device and tensor.device != device:  # devices are made once each
                raise RuntimeError(
                    f"{type(self).__name__}: expected all tensors on one device, but input 1 is on "
                    f"{device} and input {position} is on {tensor.device}"
                )
            requires_grad = requires_grad or tensor._requires_grad  # the attribute: every op call reads it
        self.device = device
        self.xp = xp = device.xp
        requires_grad = self.records_graph = requires_grad and is_grad_enabled()
        with device.context():
            output = self.forward(*[tensor.data for tensor in inputs])
        if not isinstance(output, xp.ndarray):  # NumPy turns 0-d results into scalars
            output = xp.asarray(output)
        result = _new_tensor(output, self.output_device or device, requires_grad)
        if self.view_of_input and xp.may_share_memory(output, inputs[0].data):
            result._version = inputs[0]._version
        if requires_grad:
            self.inputs = inputs
            result._creator = self
            if self.uses_inputs:
                self.input_versions = [tensor._version[0] for tensor in inputs]
            if self.uses_output:
                self.output_version = result._version, result._version[0]
        return result

    @property
    def needs_input_grad(self) -> tuple:
        """For each input, whether backward must produce its gradient."""
        return tuple(tensor.requires_grad for tensor in self.inputs)

    def forward(self, *arrays):
        if self.device.runs_kernels:
            return self.forward_gpu(*arrays)
        return self.forward_cpu(*arrays)

    def backward(self, grad_output):
        if self.device.runs_kernels:
            return self.backward_gpu(grad_output)
        return self.backward_cpu(grad_output)

    def forward_cpu(self, *arrays):
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def forward_gpu(self, *arrays):
        raise NotImplementedError(f"{type(self).__name__} has no kernel for device {self.device}")

    def backward_cpu(self, grad_output):
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    def backward_gpu(self, grad_output):
        raise NotImplementedError(f"{type(self).__name__} has no backward kernel for device {self.device}")


def _new_tensor(array, device, requires_grad: bool):
    """A Tensor wrapping ``array``: ``Tensor._from_array``, which replaces this function on the first
    call (tensor.py imports this module, so the import waits until then)."""
    global _new_tensor
    from .tensor import Tensor

    _new_tensor = Tensor._from_array
    return _new_tensor(array, device, requires_grad)


def _topological_order(root_creator) -> list:
    """Functions reachable from ``root_creator``, each after every Function that consumes its output.

    A depth-first search without recursion appends a Function once every Function it reaches has been
    appended (post-order), then reverses the list. A Function counts as visited when it is expanded,
    not when it is pushed: marked when pushed, h's creator in h + f(h) was skipped where f's ops
    reached it, they were appended before it, and backward ran it before they passed it their
    gradients."""
    order, expanded_ids = [], set()
    stack = [(root_creator, False)]
    while stack:
        function, expanded = stack.pop()
        if expanded:
            order.append(function)
            continue
        if id(function) in expanded_ids:
            continue
        expanded_ids.add(id(function))
        stack.append((function, True))
        for tensor in function.inputs:
            creator = tensor._creator
            if creator is not None and id(creator) not in expanded_ids:
                stack.append((creator, False))
    order.reverse()
    return order


def backward(root, grad_output) -> None:
    """Accumulates d(root)/d(leaf) * grad_output into ``.grad`` of every leaf that requires grad."""
    if root._creator is None:
        _accumulate_leaf(root, grad_output)
        return
    pending = {id(root._creator): grad_output}
    for function in _topological_order(root._creator):
        grad = pending.pop(id(function), None)
        if grad is None:
            continue
        _check_versions(function)
        with function.device.context():
            input_grads = function.backward(grad)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        inputs = function.inputs
        if len(input_grads) != len(inputs):
            raise RuntimeError(
                f"{type(function).__name__}.backward returned {len(input_grads)} gradients "
                f"for {len(inputs)} inputs"
            )
        for tensor, input_grad in zip(inputs, input_grads):
            if input_grad is None or not tensor.requires_grad:
                continue
            data = tensor.data
            if input_grad.shape != data.shape:
                raise RuntimeError(
                    f"{type(function).__name__}.backward returned a gradient of shape "
                    f"{tuple(input_grad.shape)} for an input of shape {tensor.shape}"
                )
            if input_grad.dtype != data.dtype:
                input_grad = input_grad.astype(data.dtype)
            if tensor._creator is None:
                _accumulate_leaf(tensor, input_grad, _owned(input_grad, grad, input_grads, function.xp))
            else:
                key = id(tensor._creator)
                pending[key] = _sum(pending[key], input_grad) if key in pending else input_grad


def _check_versions(function) -> None:
    """RuntimeError where a value that ``function``'s backward reads changed in place after its forward."""
    name = type(function).__name__
    if function.uses_inputs:
        for position, (tensor, version) in enumerate(zip(function.inputs, function.input_versions), start=1):
            if tensor._version[0] != version:
                raise RuntimeError(
                    f"{name}.backward needs its input {position} (shape {tensor.shape}) as its forward saw it, "
                    "but it was changed in place after the forward: change a copy, or change it after backward"
                )
    if function.uses_output:
        box, version = function.output_version
        if box[0] != version:
            raise RuntimeError(
                f"{name}.backward needs its output as its forward made it, but it was changed in place after the "
                "forward: change a copy, or change it after backward"
            )


def _sum(a, b):
    """a + b, two gradients of one shape and dtype; a large one on the host in recycled memory
    (``ops._memory.ufunc``)."""
    if isinstance(a, numpy.ndarray) and isinstance(b, numpy.ndarray):
        return _memory.ufunc(numpy.add, a, b)
    return a + b


def _owned(input_grad, grad_output, input_grads: tuple, xp) -> bool:
    """Whether ``input_grad``, returned by a backward that was given ``grad_output``, is a new array
    that nothing else holds: not the incoming gradient, and either an array of its own (no view)
    returned once, or all of a block of ``ops._memory`` (which hands out every array as a view of its
    block's) that no other gradient returned shares and that is not the incoming gradient's. (A
    backward keeps none of the arrays it returns: see Function.) A leaf's first gradient is then taken
    as it is; otherwise it is copied, so that no two ``.grad`` share memory with each other or with
    arrays the graph or the caller holds (on a GPU a copy is a launch and an allocation per parameter
    and step; on the cpu a 411 MB input gradient, VGG-16's second layer at batch 32, took 0.94 s to
    copy, most of it the page faults of fresh memory)."""
    if not isinstance(input_grad, xp.ndarray) or input_grad is grad_output:
        return False
    block = input_grad.base
    if block is None:
        return sum(other is input_grad for other in input_grads) == 1
    return (block is not grad_output.base and _memory.whole_block(input_grad)
            and sum(other is input_grad or getattr(other, "base", None) is block for other in input_grads) == 1)


def _accumulate_leaf(tensor, grad, owned: bool = False) -> None:
    """Adds ``grad`` into ``tensor.grad``; the first time, ``grad`` itself where ``owned`` (``_owned``),
    else a copy."""
    if tensor.grad is None:
        tensor.grad = _new_tensor(grad if owned else tensor.device.xp.array(grad), tensor.device, False)
    else:
        tensor.grad = _new_tensor(tensor.device.xp.asarray(tensor.grad.data + grad), tensor.device, False)
