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
    #: The hooks of the output (``Tensor.register_hook``: id of a handle -> hook), None where it has none;
    #: ``retained``, a weak reference to the output where it keeps its gradient (``Tensor.retain_grad``).
    _hooks = None
    retained = None

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


def _tensors(values, what: str) -> tuple:
    """``values``, one Tensor or a sequence of them, as a tuple; TypeError naming ``what`` otherwise."""
    from .tensor import Tensor

    values = (values,) if isinstance(values, Tensor) else tuple(values)
    for position, value in enumerate(values):
        if not isinstance(value, Tensor):
            raise TypeError(f"{what}[{position}] must be a Tensor, got {type(value).__name__}")
    return values


def _seeds(outputs: tuple, grad_outputs, what: str, create_graph: bool) -> list:
    """The gradient arrays that backward starts from, one per output: ``grad_outputs`` (None: ones, for an
    output of one element), checked as torch checks them."""
    from .tensor import Tensor, as_tensor

    if create_graph:
        raise NotImplementedError("create_graph=True (a graph of the backward pass, for higher derivatives) is not "
                                  "supported: gpucnn's backward runs on arrays and records nothing")
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = (grad_outputs,) * len(outputs) if grad_outputs is None else (grad_outputs,)
    grad_outputs = tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"{what}: got {len(outputs)} tensors and {len(grad_outputs)} gradients")
    seeds = []
    for position, (output, grad) in enumerate(zip(outputs, grad_outputs)):
        if not output.requires_grad:
            raise RuntimeError(f"{what}: element {position} of the tensors (shape {output.shape}) does not require "
                               "grad: no input of the ops that made it requires grad, or it was made under no_grad()")
        if grad is None:
            if output.data.size != 1:
                raise RuntimeError(f"{what}: a gradient can be implicitly created only for outputs of one element; "
                                   f"output {position} has shape {output.shape}: pass its gradient")
            seeds.append(output.device.xp.ones(output.shape, dtype=output.dtype))
            continue
        array = as_tensor(grad, f"{what}: gradient {position}", output.device).data
        if tuple(array.shape) != output.shape:
            raise RuntimeError(f"{what}: mismatch in shape: gradient {position} has shape {tuple(array.shape)} and "
                               f"output {position} has shape {output.shape}")
        if hasattr(grad, "device") and grad.device != output.device:
            raise RuntimeError(f"{what}: gradient {position} is on {grad.device} and output {position} on "
                               f"{output.device}")
        seeds.append(array.astype(output.dtype, copy=False))
    return seeds


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph: bool = False, inputs=None) -> None:
    """Accumulates the gradients of ``tensors`` (one Tensor or a sequence), each times its gradient of
    ``grad_tensors`` (None for a tensor of one element), into ``.grad`` of the leaves, as
    torch.autograd.backward: one pass over the graph for all of them. ``inputs`` (tensors): only
    theirs, a non-leaf's too. ``retain_graph`` is accepted and changes nothing: the graph stays as long
    as its tensors do, so a second backward works (torch's needs retain_graph=True). ``create_graph=True``
    raises NotImplementedError."""
    tensors = _tensors(tensors, "backward: tensors")
    seeds = _seeds(tensors, grad_tensors, "backward", create_graph)
    if inputs is None:
        run_backward(tensors, seeds)
        return
    inputs = _tensors(inputs, "backward: inputs")
    if not inputs:
        raise RuntimeError("backward: inputs is empty; pass the tensors whose gradients are wanted, or None")
    for position, tensor in enumerate(inputs):
        if not tensor.requires_grad:
            raise RuntimeError(f"backward: inputs[{position}] (shape {tensor.shape}) does not require grad")
    gradients = run_backward(tensors, seeds, {id(tensor): tensor for tensor in inputs})
    for key, tensor in {id(tensor): tensor for tensor in inputs}.items():
        if key in gradients:
            _accumulate_leaf(tensor, gradients[key], owned=True)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         allow_unused=None, materialize_grads: bool = False) -> tuple:
    """The gradients of ``outputs`` (one Tensor or a sequence, each times its gradient of ``grad_outputs``,
    None for one of one element) with respect to each of ``inputs``, as torch.autograd.grad: a tuple, one
    Tensor per input, and no tensor's ``.grad`` changed (but a non-leaf's that ``retain_grad`` keeps, as
    torch's). Tensor hooks on the way run as in backward. An input that the outputs do not depend on is an
    error, or with ``allow_unused`` None (zeros with ``materialize_grads``). ``retain_graph`` is accepted and
    changes nothing (see :func:`backward`); ``create_graph=True`` raises NotImplementedError."""
    outputs = _tensors(outputs, "grad: outputs")
    inputs = _tensors(inputs, "grad: inputs")
    if not outputs or not inputs:
        raise RuntimeError(f"grad: outputs and inputs must not be empty, got {len(outputs)} outputs and "
                           f"{len(inputs)} inputs")
    for position, tensor in enumerate(inputs):
        if not tensor.requires_grad:
            raise RuntimeError(f"grad: inputs[{position}] (shape {tensor.shape}) does not require grad")
    if materialize_grads and allow_unused is False:
        raise ValueError("grad: materialize_grads=True gives zeros for unused inputs, which allow_unused=False "
                         "refuses; leave allow_unused out or pass True")
    seeds = _seeds(outputs, grad_outputs, "grad", create_graph)
    gradients = run_backward(outputs, seeds, {id(tensor): tensor for tensor in inputs})
    results = []
    for position, tensor in enumerate(inputs):
        gradient = gradients.get(id(tensor))
        if gradient is None and not (allow_unused or materialize_grads):
            raise RuntimeError(f"grad: inputs[{position}] (shape {tensor.shape}) was not used in the graph of the "
                               "outputs; pass allow_unused=True to get None for it")
        if gradient is None:
            results.append(None if not materialize_grads else _new_tensor(
                tensor.device.xp.zeros(tensor.shape, dtype=tensor.dtype), tensor.device, False))
        else:
            results.append(_new_tensor(gradient, tensor.device, False))
    return tuple(results)


def _topological_order(root_creators) -> list:
    """Functions reachable from ``root_creators``, each after every Function that consumes its output.

    A depth-first search without recursion appends a Function once every Function it reaches has been
    appended (post-order), then reverses the list. A Function counts as visited when it is expanded,
    not when it is pushed: marked when pushed, h's creator in h + f(h) was skipped where f's ops
    reached it, they were appended before it, and backward ran it before they passed it their
    gradients. Each root's search ends before the next one's begins, so several roots give one order."""
    order, expanded_ids = [], set()
    stack = [(creator, False) for creator in reversed(root_creators)]
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


def run_backward(roots, grad_outputs, targets=None):
    """Passes each of ``grad_outputs`` (arrays) back from its tensor of ``roots`` through the graph.

    Without ``targets`` (``Tensor.backward``), accumulates d(roots)/d(leaf) into ``.grad`` of every leaf
    that requires grad. With ``targets`` (a dict: id of a tensor -> the tensor; ``grad``), touches no
    leaf's ``.grad``, runs only the Functions that lead to a target, and returns a dict: id of each target
    that a gradient reached -> that gradient, an array of its own.

    The hooks of a tensor (``Tensor.register_hook``) see its whole gradient once: a non-leaf's are kept
    by its creator (``_hooks``) and run when its gradient is complete, before the creator's backward; a
    leaf's gradients are summed until the end, then its hooks run and the sum goes to ``.grad``. Where
    no tensor has hooks, this costs one attribute read per Function and per leaf that a gradient
    reaches."""
    pending, leaves = {}, {}  # id of a Function -> its output's gradient; id of a leaf -> [leaf, gradient]
    for root, grad in zip(roots, grad_outputs):
        if root._creator is None:
            if targets is None or id(root) in targets:
                _add_leaf_grad(leaves, root, grad)
        else:
            key = id(root._creator)
            pending[key] = _sum(pending[key], grad) if key in pending else grad
    order = _topological_order([root._creator for root in roots if root._creator is not None])
    captured = {}
    if targets is not None:
        order, captures, leading = _leading_to(order, targets)
    for function in order:
        grad = pending.pop(id(function), None)
        if grad is None:
            continue
        if function._hooks is not None:
            grad = _run_hooks(function._hooks, grad, function, function.output_device or function.device)
        if targets is not None:
            if id(function) in captures:
                captured[captures[id(function)]] = function.xp.array(grad)
            if id(function) not in leading:
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
                if targets is not None:
                    if id(tensor) in targets:
                        _add_leaf_grad(leaves, tensor, input_grad)
                elif tensor._hooks is None:
                    _accumulate_leaf(tensor, input_grad, _owned(input_grad, grad, input_grads, function.xp))
                else:
                    _add_leaf_grad(leaves, tensor, input_grad)
            else:
                key = id(tensor._creator)
                pending[key] = _sum(pending[key], input_grad) if key in pending else input_grad
    for key, (leaf, grad) in leaves.items():
        if leaf._hooks is not None:
            grad = _run_hooks(leaf._hooks, grad, leaf, leaf.device)
        if targets is None:
            _accumulate_leaf(leaf, grad)
        else:
            captured[key] = leaf.device.xp.array(grad)
    return captured


def _add_leaf_grad(leaves: dict, leaf, grad) -> None:
    key = id(leaf)
    if key in leaves:
        leaves[key][1] = _sum(leaves[key][1], grad)
    else:
        leaves[key] = [leaf, grad]


def _leading_to(order: list, targets: dict) -> tuple:
    """For ``grad``: the Functions of ``order`` that lead to a target or make one; a dict: id of the creator of
    each non-leaf target -> id of that target; the ids of the Functions that lead to a target (whose backward
    must run)."""
    captures = {id(tensor._creator): key for key, tensor in targets.items() if tensor._creator is not None}
    leading = set()
    for function in reversed(order):  # each Function before those that consume its output
        for tensor in function.inputs:
            if id(tensor) in targets or tensor._creator is not None and id(tensor._creator) in leading:
                leading.add(id(function))
                break
    return [function for function in order if id(function) in leading or id(function) in captures], captures, leading


def _run_hooks(hooks: dict, grad, owner, device):
    """``grad`` after the hooks of a tensor (``owner``: a leaf, or the creator of a non-leaf) in the order
    they were registered, each given the last one's result: a Tensor, or None to keep it; then kept as the
    ``.grad`` of a non-leaf that retains it (``Tensor.retain_grad``)."""
    from .tensor import Tensor

    tensor = None
    for hook in list(hooks.values()):
        if tensor is None:
            tensor = _new_tensor(grad, device, False)
        result = hook(tensor)
        if result is None:
            continue
        if not isinstance(result, Tensor):
            raise TypeError(f"hook {getattr(hook, '__name__', hook)!r} returned {type(result).__name__}; a hook "
                            "returns a Tensor or None")
        if tuple(result.shape) != tuple(grad.shape):
            raise RuntimeError(f"hook {getattr(hook, '__name__', hook)!r} has changed the size of the gradient: it "
                               f"returned shape {tuple(result.shape)} for a gradient of shape {tuple(grad.shape)}")
        if result.device != device:
            raise RuntimeError(f"hook {getattr(hook, '__name__', hook)!r} returned a gradient on {result.device} "
                               f"for a tensor on {device}")
        grad, tensor = result.data.astype(grad.dtype, copy=False), None
    retained = getattr(owner, "retained", None)
    retained = retained and retained()
    if retained is not None:
        _accumulate_leaf(retained, grad)
    return grad


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
