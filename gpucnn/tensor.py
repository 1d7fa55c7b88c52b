"""Tensor: an array on a device, with define-by-run autograd.

    >>> x = gpucnn.tensor([[1.0, -2.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad.numpy()
    array([[ 2., -4.]], dtype=float32)
"""

from __future__ import annotations

import copy
import numbers
import weakref

import numpy

from . import autograd, random
from .devices import Device, get_device

_NUMERIC_KINDS = "biuf"


def _to_array(data, dtype, name: str, xp=numpy):
    """Converts array-like ``data`` to an array of ``xp`` under gpucnn's dtype rules.

    Arrays and NumPy scalars keep their dtype; Python floats (and lists of them) become float32;
    integers stay integers. Complex and non-numeric data raise TypeError naming ``name``.
    """
    keeps_dtype = hasattr(data, "dtype")
    try:
        array = xp.asarray(data)
    except (ValueError, TypeError) as error:
        raise TypeError(f"{name} must be numeric array-like data; it could not be converted: {error}") from None
    if array.dtype.kind == "c":
        raise TypeError(f"{name} is complex ({array.dtype}); gpucnn supports real numbers only")
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"{name} must be numeric (bool, integer or float), got {type(data).__name__} with dtype {array.dtype}"
        )
    if dtype is not None:
        dtype = numpy.dtype(dtype)
        if dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"dtype must be a bool, integer or float type, got {dtype}")
        return array.astype(dtype, copy=False)
    if not keeps_dtype and array.dtype == numpy.float64:
        return array.astype(numpy.float32)
    return array


class Tensor:
    """An n-dimensional array on a device, recording the ops applied to it when it requires grad.

    Build one with :func:`gpucnn.tensor` (or ``Tensor(data, ...)``, the same rules).

    Attributes:
        data: the underlying array (``numpy.ndarray`` on cpu, ``cupy.ndarray`` on cuda).
        grad: a Tensor of the same shape once backward has reached this leaf, else None.
        requires_grad: whether ops on this tensor are recorded for backward.
    """

    __array_ufunc__ = None  # ndarray (op) Tensor defers to Tensor's reflected operators
    _hooks = None  # a leaf's hooks (register_hook): id of a handle -> hook; a non-leaf's are its creator's

    def __init__(self, data, dtype=None, device=None, requires_grad: bool = False):
        device = get_device(device)
        if isinstance(data, Tensor):
            data = data.data if data.device == device else data.numpy()
        with device.context():
            array = _to_array(data, dtype, "data", device.xp)
            self._init(array.copy() if array is data else array, device, requires_grad)

    def _init(self, array, device: Device, requires_grad: bool) -> None:
        if requires_grad and array.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, got dtype {array.dtype}")
        self.data = array
        self.device = device
        self._requires_grad = bool(requires_grad)
        self.grad = None
        self._creator = None
        self._version = [0]  # in-place changes of the array so far, one count with every view of it

    @classmethod
    def _from_array(cls, array, device: Device, requires_grad: bool = False) -> "Tensor":
        """Wraps an array that already lives on ``device`` without copying or converting it."""
        tensor = cls.__new__(cls)
        tensor._init(array, device, requires_grad)
        return tensor

    # ----------------------------------------------------------------- properties
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, requires_grad: bool) -> None:
        """As PyTorch's: on a leaf only, and True on floating-point tensors only (an integer one's gradient
        would be cut to integers)."""
        if not self.is_leaf:
            raise RuntimeError("requires_grad can only change on leaf tensors; use detach() first")
        if requires_grad and self.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, got dtype {self.dtype}")
        self._requires_grad = bool(requires_grad)

    @property
    def shape(self) -> tuple:
        return self.data.shape  # a tuple on NumPy and CuPy arrays

    @property
    def dtype(self) -> numpy.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._creator is None

    def dim(self) -> int:
        return self.data.ndim

    def size(self, dim: int | None = None):
        """The shape, or its length along ``dim`` (as ``torch.Tensor.size``)."""
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def ndimension(self) -> int:
        return self.data.ndim

    def element_size(self) -> int:
        """The bytes of one element."""
        return self.data.dtype.itemsize

    @property
    def itemsize(self) -> int:
        return self.data.dtype.itemsize

    @property
    def nbytes(self) -> int:
        """The bytes of the elements, numel() * element_size()."""
        return self.data.size * self.data.dtype.itemsize

    def stride(self, dim: int | None = None):
        """The steps between neighbouring elements along each dimension, in elements (as torch's: 0 along a
        dimension that ``expand`` stretched), or along ``dim``."""
        strides = tuple(step // self.data.dtype.itemsize for step in self.data.strides)
        if dim is None:
            return strides
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not -self.ndim <= dim < self.ndim:
            raise IndexError(f"stride: dimension {dim!r} is out of range for a tensor of shape {self.shape}")
        return strides[dim]

    def is_contiguous(self) -> bool:
        """Whether the elements lie in memory in row-major order without gaps (see :meth:`contiguous`)."""
        return bool(self.data.flags.c_contiguous)

    @property
    def is_cuda(self) -> bool:
        """Whether the tensor is on a CUDA GPU (not on cudasim, which runs the kernels on the host)."""
        return self.device.type == "cuda"

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        body = numpy.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extras = [f"dtype={self.dtype}"]
        if self.device.name != "cpu":
            extras.append(f"device='{self.device}'")
        if self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}, {', '.join(extras)})"

    # ----------------------------------------------------------------- conversion
    def numpy(self) -> numpy.ndarray:
        """The values as a NumPy array (the array itself on cpu, a copy from a GPU)."""
        return self.device.to_numpy(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def __array__(self, dtype=None, copy=None):
        """``numpy.asarray(tensor)`` and the like: the values as ``numpy()`` gives them, not an array of
        tensors; ``dtype`` converts, ``copy=True`` copies."""
        array = self.numpy()
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        return array.copy() if copy and array is self.data else array

    def __format__(self, spec: str) -> str:
        """A 0-d tensor formats as its value (``f"{loss:.4f}"``), as in PyTorch."""
        return format(self.item(), spec) if self.ndim == 0 else super().__format__(spec)

    def __deepcopy__(self, memo):
        """A copy of a leaf's array, requires_grad and grad (``copy.deepcopy(model)``); as in PyTorch, a tensor
        an op made must be detached first."""
        if not self.is_leaf:
            raise RuntimeError(f"deepcopy of a tensor that an op made (shape {self.shape}) would copy its graph; "
                               "only leaf tensors can be deep-copied, as in PyTorch: detach() it first")
        with self.device.context():
            copied = type(self)._from_array(self.data.copy(), self.device, self.requires_grad)
        memo[id(self)] = copied
        copied.grad = copy.deepcopy(self.grad, memo)
        return copied

    def detach(self) -> "Tensor":
        """The same data, cut from the graph."""
        detached = Tensor._from_array(self.data, self.device, False)
        detached._version = self._version
        return detached

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        self.requires_grad = requires_grad
        return self

    def to(self, device=None, dtype=None) -> "Tensor":
        """This tensor on ``device`` and/or as ``dtype``; ``self`` when nothing changes. Differentiable to a
        floating-point dtype.

        ``to('cpu')``, ``to(numpy.float64)`` and ``to('cpu', numpy.float64)`` all work.
        """
        from .ops import math

        if dtype is None and device is not None and not isinstance(device, (str, Device)):
            device, dtype = None, device
        result = self
        if device is not None and get_device(device) != self.device:
            result = math.ToDevice(get_device(device)).apply(result)
        if dtype is not None and numpy.dtype(dtype) != self.dtype:
            if numpy.dtype(dtype).kind == "f":
                result = math.Cast(dtype).apply(result)
            else:  # integers and bools have no gradient: cut from the graph, as PyTorch's
                with autograd.no_grad():
                    result = math.Cast(dtype).apply(result)
        return result

    def float(self) -> "Tensor":
        return self.to(dtype=numpy.float32)

    def double(self) -> "Tensor":
        return self.to(dtype=numpy.float64)

    def long(self) -> "Tensor":
        return self.to(dtype=numpy.int64)

    def half(self) -> "Tensor":
        """float16 (the kernel devices' conv, pooling and ReLU take float32: ``float()`` before them)."""
        return self.to(dtype=numpy.float16)

    def int(self) -> "Tensor":
        return self.to(dtype=numpy.int32)

    def bool(self) -> "Tensor":
        return self.to(dtype=numpy.bool_)

    # ----------------------------------------------------------------- new tensors of this dtype and device
    def _new(self, dtype, device) -> tuple:
        return self.dtype if dtype is None else dtype, self.device if device is None else device

    def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """Zeros of shape ``size`` (ints, or one tuple or list), of this tensor's dtype and device unless given."""
        from .creation import zeros

        dtype, device = self._new(dtype, device)
        return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """Ones of shape ``size``, of this tensor's dtype and device unless given."""
        from .creation import ones

        dtype, device = self._new(dtype, device)
        return ones(*size, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """An uninitialised tensor of shape ``size``, of this tensor's dtype and device unless given."""
        from .creation import empty

        dtype, device = self._new(dtype, device)
        return empty(*size, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """``fill_value`` in shape ``size`` (a tuple or list), of this tensor's dtype (not the value's, as torch's)
        and device unless given."""
        from .creation import full

        dtype, device = self._new(dtype, device)
        return full(size, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_tensor(self, data, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """A copy of ``data`` (a tensor's cut from its graph), of this tensor's dtype and device unless given, as
        torch's: ``x.new_tensor([1.5])`` of an integer x holds 1."""
        dtype, device = self._new(dtype, device)
        return Tensor(data.detach() if isinstance(data, Tensor) else data, dtype=dtype, device=device,
                      requires_grad=requires_grad)

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device=None) -> "Tensor":
        """This tensor on the GPU ``device`` (an index or a name; None: ``'cuda'``)."""
        return self.to("cuda" if device is None else f"cuda:{device}" if isinstance(device, int) else device)

    def clone(self) -> "Tensor":
        """A copy with an array of its own; differentiable."""
        return _math().clone(self)

    # ----------------------------------------------------------------- autograd
    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False, inputs=None) -> None:
        """Computes gradients of this tensor with respect to the graph's leaves, into their ``.grad``.

        Args:
            gradient: d(loss)/d(self), same shape as self. May be omitted only for a one-element tensor.
            retain_graph: accepted for torch's scripts; the graph stays as long as its tensors do, so a
                second backward works without it.
            create_graph: True raises NotImplementedError (no graph of the backward pass).
            inputs: tensors whose ``.grad`` alone receives the gradient, a non-leaf's too, as torch's.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: no input of the ops that made it "
                "has requires_grad=True (or it was computed under no_grad())"
            )
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar (one-element) tensor, got shape "
                    f"{self.shape}; pass gradient= with that shape"
                )
            grad_array = self.device.xp.ones(self.data.shape, dtype=self.dtype)
        else:
            grad_array = as_tensor(gradient, "gradient", self.device).data
            if tuple(grad_array.shape) != self.shape:
                raise ValueError(f"gradient has shape {tuple(grad_array.shape)}, but the tensor has shape "
                                 f"{self.shape}")
            grad_array = grad_array.astype(self.dtype, copy=False)
        if create_graph or inputs is not None:
            autograd.backward(self, Tensor._from_array(grad_array, self.device), create_graph=create_graph,
                              inputs=inputs)
        else:
            autograd.run_backward((self,), (grad_array,))

    @property
    def grad_fn(self):
        """The Function that made this tensor (its backward runs in backward), None for a leaf."""
        return self._creator

    def detach_(self) -> "Tensor":
        """This tensor cut from the graph in place: a leaf that does not require grad."""
        self._creator = None
        self._requires_grad = False
        return self

    def _needs_grad(self, what: str) -> None:
        if not self.requires_grad:
            raise RuntimeError(f"{what} on a tensor that does not require grad (shape {self.shape}): it never has a "
                               "gradient")

    def retain_grad(self) -> None:
        """Keeps this non-leaf tensor's gradient in ``.grad`` in every backward that reaches it (summed, as a
        leaf's), after its hooks; on a leaf, nothing (a leaf keeps its own)."""
        self._needs_grad("retain_grad")
        if self._creator is not None:
            if self._creator._hooks is None:
                self._creator._hooks = {}
            self._creator.retained = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        """Whether :meth:`retain_grad` keeps this non-leaf tensor's gradient."""
        retained = self._creator is not None and self._creator.retained
        return bool(retained) and retained() is self

    def register_hook(self, hook):
        """Calls ``hook(grad)`` with this tensor's gradient, a Tensor, each time a backward computes it (whole:
        once per backward), as torch's; a Tensor it returns replaces the gradient (the one that flows on, or
        that a leaf accumulates). Hooks run in the order registered. Returns a handle whose ``remove()`` takes
        the hook off."""
        from .nn.module import RemovableHandle

        self._needs_grad("register_hook")
        owner = self if self._creator is None else self._creator
        if owner._hooks is None:
            owner._hooks = {}
        handle = RemovableHandle(owner._hooks)
        owner._hooks[handle.id] = hook
        return handle

    # ----------------------------------------------------------------- operators
    def __add__(self, other):
        return _math().add(self, other)

    def __radd__(self, other):
        return _math().add(other, self)

    def __sub__(self, other):
        return _math().sub(self, other)

    def __rsub__(self, other):
        return _math().sub(other, self)

    def __mul__(self, other):
        return _math().mul(self, other)

    def __rmul__(self, other):
        return _math().mul(other, self)

    def __truediv__(self, other):
        return _math().div(self, other)

    def __rtruediv__(self, other):
        return _math().div(other, self)

    def __matmul__(self, other):
        return _math().matmul(self, other)

    def __rmatmul__(self, other):
        return _math().matmul(other, self)

    def __iadd__(self, other):
        return _math().in_place(self, other, "add")

    def __isub__(self, other):
        return _math().in_place(self, other, "sub")

    def __imul__(self, other):
        return _math().in_place(self, other, "mul")

    def __itruediv__(self, other):
        return _math().in_place(self, other, "div")

    def add_(self, other, *, alpha=1) -> "Tensor":
        """self += alpha * other, in place (see ``__iadd__``); an error where autograd records it."""
        return _math().in_place(self, _scaled(other, alpha), "add", "add_")

    def sub_(self, other, *, alpha=1) -> "Tensor":
        """self -= alpha * other, in place; an error where autograd records it."""
        return _math().in_place(self, _scaled(other, alpha), "sub", "sub_")

    def mul_(self, other) -> "Tensor":
        return _math().in_place(self, other, "mul", "mul_")

    def div_(self, other) -> "Tensor":
        return _math().in_place(self, other, "div", "div_")

    def fill_(self, value) -> "Tensor":
        """Every element set to ``value`` (a number or a one-element tensor), in place."""
        if isinstance(value, Tensor) and value.ndim:
            raise ValueError(f"fill_: value must be a number or a 0-d tensor, got a tensor of shape {value.shape}")
        _math().setitem(self, Ellipsis, value, "fill_")
        return self

    def zero_(self) -> "Tensor":
        """Every element set to 0, in place (``p.grad.zero_()``)."""
        _math().setitem(self, Ellipsis, 0, "zero_")
        return self

    def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator=None) -> "Tensor":
        """Uniform random values in [a, b), in place, drawn from ``generator`` (a :class:`gpucnn.Generator`) or the
        global generator, as :func:`gpucnn.rand` draws them; floating-point tensors only."""
        if a > b:
            raise ValueError(f"uniform_: a={a} is greater than b={b}; the values lie in [a, b)")
        values = _random_values(self, "uniform_", "random", generator)
        _math().setitem(self, Ellipsis, values * (b - a) + a if (a, b) != (0, 1) else values, "uniform_")
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None) -> "Tensor":
        """Normal random values of ``mean`` and ``std``, in place, drawn as :func:`gpucnn.randn` draws them;
        floating-point tensors only."""
        if std < 0:
            raise ValueError(f"normal_: std must be at least 0, got {std}")
        values = _random_values(self, "normal_", "standard_normal", generator)
        _math().setitem(self, Ellipsis, values * std + mean if (mean, std) != (0, 1) else values, "normal_")
        return self

    def copy_(self, src) -> "Tensor":
        """``src``'s values (broadcast to this shape, converted to this dtype, from any device), in place."""
        if isinstance(src, Tensor) and src.device != self.device:
            src = src.to(self.device)
        _math().setitem(self, Ellipsis, src, "copy_")
        return self

    def __neg__(self):
        return _math().neg(self)

    def __pow__(self, exponent):
        return _math().pow(self, exponent)

    def __getitem__(self, index):
        return _math().getitem(self, index)

    def __setitem__(self, index, value):
        _math().setitem(self, index, value)

    def __lt__(self, other):
        return _math().compare(self, other, "less")

    def __le__(self, other):
        return _math().compare(self, other, "less_equal")

    def __gt__(self, other):
        return _math().compare(self, other, "greater")

    def __ge__(self, other):
        return _math().compare(self, other, "greater_equal")

    def __eq__(self, other):
        if other is None:  # Python then compares identities: a tensor is not None, as in PyTorch
            return NotImplemented
        return _math().compare(self, other, "equal")

    def __ne__(self, other):
        if other is None:
            return NotImplemented
        return _math().compare(self, other, "not_equal")

    __hash__ = object.__hash__  # by identity, as PyTorch's: == compares elements

    def __bool__(self) -> bool:
        """The truth of a one-element tensor's value (``if loss < 1:``); more elements are an error, as in
        PyTorch, never a silent True."""
        if self.data.size != 1:
            raise ValueError(f"bool() of a tensor of shape {self.shape} is ambiguous: it takes one element "
                             "(for several, .numpy().all() or .numpy().any())")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    # ----------------------------------------------------------------- methods
    def sum(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """Sum over ``dim`` (an int, a tuple, or None for all); ``axis``/``keepdims`` are NumPy's names."""
        return _math().sum(self, _pick(dim, axis), _pick(keepdim, keepdims))

    def mean(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """Mean over ``dim`` (an int, a tuple, or None for all); ``axis``/``keepdims`` are NumPy's names."""
        return _math().mean(self, _pick(dim, axis), _pick(keepdim, keepdims))

    def var(self, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction=None):
        """The variance over ``dim``; ``correction`` (or PyTorch's older ``unbiased``: 1 or 0) is subtracted from
        the count (1, Bessel's correction, by default, as PyTorch)."""
        return _math().var(self, dim, int(bool(unbiased)) if correction is None else correction, keepdim)

    def std(self, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction=None):
        """The square root of :meth:`var`."""
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def max(self, dim=None, keepdim: bool = False):
        """The largest value (dim None), or along ``dim`` the pair (values, indices), as ``torch.max``:
        ``_, predicted = logits.max(1)``. Differentiable in the values."""
        return _math().extreme(self, "max", dim, keepdim)

    def min(self, dim=None, keepdim: bool = False):
        """The smallest value (dim None), or along ``dim`` the pair (values, indices), as ``torch.min``."""
        return _math().extreme(self, "min", dim, keepdim)

    def maximum(self, other):
        """The elementwise maximum with ``other``, broadcast (see :func:`gpucnn.maximum`)."""
        return _math().maximum(self, other)

    def minimum(self, other):
        """The elementwise minimum with ``other``, broadcast (see :func:`gpucnn.minimum`)."""
        return _math().minimum(self, other)

    def argmax(self, dim=None, keepdim: bool = False):
        """Indices of the maxima along ``dim`` (of the flattened tensor when None); not differentiable."""
        return _math().arg_extreme(self, "max", dim, keepdim)

    def argmin(self, dim=None, keepdim: bool = False):
        """Indices of the minima along ``dim`` (of the flattened tensor when None); not differentiable."""
        return _math().arg_extreme(self, "min", dim, keepdim)

    def reshape(self, *shape):
        return _math().reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)

    view = reshape

    def view_as(self, other):
        """This tensor in ``other``'s shape (see :meth:`view`)."""
        return self.view(_shape_of(other, "view_as"))

    def reshape_as(self, other):
        """This tensor in ``other``'s shape (see :meth:`reshape`)."""
        return self.reshape(_shape_of(other, "reshape_as"))

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        return _math().flatten(self, start_dim, end_dim)

    def unsqueeze(self, dim: int):
        """A new axis of size 1 at ``dim`` (``image.unsqueeze(0)``: a batch of one)."""
        return _math().unsqueeze(self, dim)

    def squeeze(self, dim=None):
        """Without the axes of size 1, or axis ``dim`` only (where it has size 1)."""
        return _math().squeeze(self, dim)

    def transpose(self, dim0: int, dim1: int):
        """Swaps two dimensions (as ``torch.Tensor.transpose``)."""
        return _math().transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _math().permute(self, dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims)

    @property
    def T(self):
        return self.permute(tuple(reversed(range(self.ndim))))

    def expand(self, *sizes):
        """This tensor broadcast to ``sizes`` (-1 keeps a dimension), a view; as ``torch.Tensor.expand``."""
        return _math().expand(self, sizes[0] if len(sizes) == 1 and not isinstance(sizes[0], int) else sizes)

    def expand_as(self, other):
        return self.expand(other.shape)

    def repeat(self, *repeats):
        """This tensor tiled ``repeats`` times along each dimension, as ``torch.Tensor.repeat``."""
        return _math().repeat(self, repeats[0] if len(repeats) == 1 and not isinstance(repeats[0], int) else repeats)

    def split(self, split_size_or_sections, dim: int = 0):
        return _math().split(self, split_size_or_sections, dim)

    def chunk(self, chunks: int, dim: int = 0):
        return _math().chunk(self, chunks, dim)

    def t(self):
        """The transpose of a matrix (a tensor of at most 2 dimensions, as ``torch.Tensor.t``)."""
        if self.ndim > 2:
            raise ValueError(f"t() takes a tensor of at most 2 dimensions, got shape {self.shape}; use transpose()")
        return self.T

    def contiguous(self):
        """This tensor where its array is C-contiguous, else a contiguous copy (differentiable)."""
        return self if self.data.flags.c_contiguous else self.clone()

    def type_as(self, other):
        """This tensor in ``other``'s dtype."""
        return self.to(dtype=other.dtype)

    def pow(self, exponent):
        return self**exponent

    def exp(self):
        return _math().exp(self)

    def log(self):
        return _math().log(self)

    def sqrt(self):
        return _math().sqrt(self)

    def abs(self):
        return _math().abs(self)

    __abs__ = abs

    def relu(self):
        from .ops.relu import relu

        return relu(self)

    def sigmoid(self):
        return _math().sigmoid(self)

    def tanh(self):
        return _math().tanh(self)

    def clamp(self, min=None, max=None):
        """Values clipped to [min, max] (numbers; either may be None); the gradient passes where min <= x <= max."""
        return _math().clamp(self, min, max)

    clip = clamp

    def clamp_(self, min=None, max=None):
        """:meth:`clamp`, in place; an error where autograd records it."""
        from .ops.indexing import written_into

        return written_into(self, lambda: _math().clamp(self, min, max), "clamp_")

    clip_ = clamp_

    # ----------------------------------------------------------------- named arithmetic and comparisons
    def add(self, other, *, alpha=1):
        """self + alpha * other (see :func:`gpucnn.add`)."""
        from .functions import add

        return add(self, other, alpha=alpha)

    def sub(self, other, *, alpha=1):
        """self - alpha * other (see :func:`gpucnn.sub`)."""
        from .functions import sub

        return sub(self, other, alpha=alpha)

    def mul(self, other):
        return _math().mul(self, other)

    def div(self, other, *, rounding_mode=None):
        """self / other, or rounded toward zero (``rounding_mode='trunc'``) or down (``'floor'``), as torch's (see
        :func:`gpucnn.div`)."""
        from .functions import div

        return div(self, other, rounding_mode=rounding_mode)

    def eq(self, other):
        return _math().compare(self, other, "equal")

    def ne(self, other):
        return _math().compare(self, other, "not_equal")

    def lt(self, other):
        return _math().compare(self, other, "less")

    def le(self, other):
        return _math().compare(self, other, "less_equal")

    def gt(self, other):
        return _math().compare(self, other, "greater")

    def ge(self, other):
        return _math().compare(self, other, "greater_equal")

    def logical_and(self, other):
        from .functions import logical_and

        return logical_and(self, other)

    def logical_or(self, other):
        from .functions import logical_or

        return logical_or(self, other)

    def logical_xor(self, other):
        from .functions import logical_xor

        return logical_xor(self, other)

    def logical_not(self):
        from .functions import logical_not

        return logical_not(self)

    def softmax(self, dim: int):
        from .ops.softmax import softmax

        return softmax(self, dim)

    def log_softmax(self, dim: int):
        from .ops.softmax import log_softmax

        return log_softmax(self, dim)

    # ----------------------------------------------------------------- predicates and reductions
    def isnan(self):
        from .ops.reductions import isnan

        return isnan(self)

    def isinf(self):
        from .ops.reductions import isinf

        return isinf(self)

    def isfinite(self):
        from .ops.reductions import isfinite

        return isfinite(self)

    def all(self, dim=None, keepdim: bool = False):
        """Whether every element (over ``dim``: an int, a tuple, or None for all) is nonzero, a bool tensor."""
        from .ops.reductions import all

        return all(self, dim, keepdim)

    def any(self, dim=None, keepdim: bool = False):
        """Whether any element (over ``dim``) is nonzero, a bool tensor."""
        from .ops.reductions import any

        return any(self, dim, keepdim)

    def allclose(self, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
        """Whether |self - other| <= atol + rtol * |other| everywhere (see :func:`gpucnn.allclose`)."""
        from .ops.reductions import allclose

        return allclose(self, other, rtol, atol, equal_nan)

    def equal(self, other) -> bool:
        """Whether ``other`` has this shape and these elements, a Python bool."""
        from .ops.reductions import equal

        return equal(self, other)

    def count_nonzero(self, dim=None):
        from .ops.reductions import count_nonzero

        return count_nonzero(self, dim)

    def nonzero(self, *, as_tuple: bool = False):
        """The indices of the nonzero elements, (count, ndim) int64, or one vector per dimension (``as_tuple``)."""
        from .ops.reductions import nonzero

        return nonzero(self, as_tuple)

    def prod(self, dim=None, keepdim: bool = False, *, dtype=None):
        """The product of all elements or along the int ``dim``; differentiable, at zeros too."""
        from .ops.reductions import prod

        return prod(self, dim, keepdim, dtype=dtype)

    def cumsum(self, dim: int, *, dtype=None):
        """The running sums along ``dim``; differentiable."""
        from .ops.reductions import cumsum

        return cumsum(self, dim, dtype=dtype)

    def cumprod(self, dim: int, *, dtype=None):
        """The running products along ``dim``; differentiable, at zeros too."""
        from .ops.reductions import cumprod

        return cumprod(self, dim, dtype=dtype)

    def logsumexp(self, dim, keepdim: bool = False):
        """log(sum(exp(self))) over ``dim``, without overflow; differentiable."""
        from .ops.reductions import logsumexp

        return logsumexp(self, dim, keepdim)

    def norm(self, p="fro", dim=None, keepdim: bool = False, dtype=None):
        """The p-norm over ``dim`` (see :func:`gpucnn.norm`); differentiable."""
        from .ops.reductions import norm

        return norm(self, p, dim, keepdim, dtype)

    # ----------------------------------------------------------------- elementwise
    def neg(self):
        return _math().neg(self)

    def sign(self):
        from .ops.elementwise import sign

        return sign(self)

    def round(self, decimals: int = 0):
        """Rounded to the nearest integer (or to ``decimals`` places), halves to even; a zero gradient."""
        from .ops.elementwise import round

        return round(self, decimals)

    def floor(self):
        from .ops.elementwise import floor

        return floor(self)

    def ceil(self):
        from .ops.elementwise import ceil

        return ceil(self)

    def trunc(self):
        from .ops.elementwise import trunc

        return trunc(self)

    def reciprocal(self):
        from .ops.elementwise import reciprocal

        return reciprocal(self)

    def rsqrt(self):
        from .ops.elementwise import rsqrt

        return rsqrt(self)

    def square(self):
        from .ops.elementwise import square

        return square(self)

    def log1p(self):
        from .ops.elementwise import log1p

        return log1p(self)

    def expm1(self):
        from .ops.elementwise import expm1

        return expm1(self)

    def log2(self):
        from .ops.elementwise import log2

        return log2(self)

    def log10(self):
        from .ops.elementwise import log10

        return log10(self)

    def erf(self):
        from .ops.elementwise import erf

        return erf(self)

    # ----------------------------------------------------------------- matrix products
    def matmul(self, other):
        """``self @ other``: batch dimensions broadcast, a 1-D operand is a vector (as ``torch.matmul``)."""
        return _math().matmul(self, other)

    def mm(self, other):
        from .ops.linalg import mm

        return mm(self, other)

    def bmm(self, other):
        from .ops.linalg import bmm

        return bmm(self, other)

    def mv(self, vec):
        from .ops.linalg import mv

        return mv(self, vec)

    def dot(self, other):
        from .ops.linalg import dot

        return dot(self, other)

    def outer(self, other):
        from .ops.linalg import outer

        return outer(self, other)

    # ----------------------------------------------------------------- indexing, reordering, selection
    def gather(self, dim: int, index):
        """The values at ``index`` along ``dim`` (see :func:`gpucnn.gather`); differentiable."""
        from .ops.indexing import gather

        return gather(self, dim, index)

    def scatter(self, dim: int, index, src=None, *, value=None):
        """A copy with ``src`` (or ``value``) written at ``index`` along ``dim``; differentiable."""
        from .ops.indexing import scatter

        return scatter(self, dim, index, src, value=value)

    def scatter_add(self, dim: int, index, src):
        """A copy with ``src`` added at ``index`` along ``dim``; differentiable."""
        from .ops.indexing import scatter_add

        return scatter_add(self, dim, index, src)

    def scatter_(self, dim: int, index, src=None, *, value=None):
        """:meth:`scatter`, in place; an error where autograd records it."""
        from .ops.indexing import scatter, written_into

        return written_into(self, lambda: scatter(self, dim, index, src, value=value), "scatter_", src)

    def scatter_add_(self, dim: int, index, src):
        """:meth:`scatter_add`, in place; an error where autograd records it."""
        from .ops.indexing import scatter_add, written_into

        return written_into(self, lambda: scatter_add(self, dim, index, src), "scatter_add_", src)

    def index_select(self, dim: int, index):
        from .ops.indexing import index_select

        return index_select(self, dim, index)

    def masked_fill(self, mask, value):
        """A copy with ``value`` where the bool ``mask`` holds (broadcast); differentiable."""
        from .ops.indexing import masked_fill

        return masked_fill(self, mask, value)

    def masked_fill_(self, mask, value):
        """:meth:`masked_fill`, in place (``mask`` broadcast to this shape); an error where autograd records it."""
        from .ops.indexing import masked_fill, written_into

        return written_into(self, lambda: masked_fill(self, mask, value), "masked_fill_", value)

    def narrow(self, dim: int, start: int, length: int):
        from .ops.indexing import narrow

        return narrow(self, dim, start, length)

    def flip(self, *dims):
        """Reversed along ``dims`` (``x.flip(0)``, ``x.flip(0, 1)`` or ``x.flip([0, 1])``), a copy."""
        from .ops.indexing import flip

        return flip(self, dims[0] if len(dims) == 1 else dims)

    def roll(self, shifts, dims=None):
        from .ops.indexing import roll

        return roll(self, shifts, dims)

    def tril(self, diagonal: int = 0):
        from .ops.indexing import tril

        return tril(self, diagonal)

    def triu(self, diagonal: int = 0):
        from .ops.indexing import triu

        return triu(self, diagonal)

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        """(values, indices) sorted along ``dim``, stably (see :func:`gpucnn.sort`); differentiable in the values."""
        from .ops.indexing import sort

        return sort(self, dim, descending, stable)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        from .ops.indexing import argsort

        return argsort(self, dim, descending, stable)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
        """(values, indices) of the ``k`` largest (or smallest) along ``dim``; differentiable in the values."""
        from .ops.indexing import topk

        return topk(self, k, dim, largest, sorted)

    def unique(self, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, dim=None):
        """The distinct values (see :func:`gpucnn.unique`); not differentiable."""
        from .ops.indexing import unique

        return unique(self, sorted, return_inverse, return_counts, dim)


def _random_values(x: Tensor, what: str, draw: str, generator) -> numpy.ndarray:
    """Values of x's shape and dtype from the NumPy generator's method ``draw`` (``random``, ``standard_normal``)
    of ``generator`` or the global generator, drawn on the host as the creation functions draw them."""
    if x.dtype.kind != "f":
        raise TypeError(f"{what} needs a floating-point tensor, got dtype {x.dtype}")
    source = getattr(random.generator() if generator is None else generator.numpy, draw)
    if x.dtype in (numpy.float32, numpy.float64):
        return source(x.shape, dtype=x.dtype)
    return source(x.shape).astype(x.dtype)


def _shape_of(other, what: str) -> tuple:
    if not isinstance(other, Tensor):
        raise TypeError(f"{what}: other must be a Tensor, got {type(other).__name__}")
    return other.shape


def _scaled(other, alpha):
    """alpha * other for add_/sub_: a Python number stays one, so that an integer tensor takes it."""
    if alpha == 1:
        return other
    return other * alpha if isinstance(other, (int, float, Tensor)) else _math().mul(other, alpha)


def _pick(torch_value, numpy_value):
    return torch_value if numpy_value is None else numpy_value


def _math():
    from .ops import math

    return math


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new Tensor holding a copy of ``data``.

    NumPy arrays keep their dtype (float64 stays float64); Python floats become float32; integer
    data stays integer. ``device`` defaults to :func:`gpucnn.devices.default_device`.
    """
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def as_tensor(value, name: str, device=None) -> Tensor:
    """``value`` if it is a Tensor, else a Tensor wrapping it (no copy on cpu); errors name ``name``."""
    if isinstance(value, Tensor):
        return value
    device = get_device(device)
    with device.context():
        return Tensor._from_array(_to_array(value, None, name, device.xp), device, False)
