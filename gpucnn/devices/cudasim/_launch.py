"""Modules, kernels and launches: CuPy's call shape over a cudasim shared library.

Each launch checks its arguments against the kernel's declaration before anything runs (stricter
than CuPy, which passes a Python int as ``long long`` and a float as ``double`` whatever the
kernel declares), packs them into 8-byte slots and calls ``cudasim_launch`` through ctypes.
"""

from __future__ import annotations

import contextlib
import ctypes
import operator
import os
import secrets
import struct

import numpy

from . import _build
from ._errors import ERROR_CLASSES, KernelError

# Type codes of cudasim.h (cudasim::type_code): base | 0x100 pointer | 0x200 pointee const.
_BASE_DTYPES = {1: numpy.bool_, 2: numpy.int8, 3: numpy.uint8, 4: numpy.int16, 5: numpy.uint16,
                6: numpy.int32, 7: numpy.uint32, 8: numpy.int64, 9: numpy.uint64, 10: numpy.float32,
                11: numpy.float64}
_SLOT_FORMATS = {1: "?7x", 2: "b7x", 3: "B7x", 4: "h6x", 5: "H6x", 6: "i4x", 7: "I4x", 8: "q", 9: "Q",
                 10: "f4x", 11: "d"}
_SCALAR_TYPES = {
    base: frozenset(t for t in set(numpy.sctypeDict.values()) if numpy.dtype(t) == numpy.dtype(dtype))
    for base, dtype in _BASE_DTYPES.items()
}
_ORDERS = {"forward": 0, "reverse": 1, "random": 2}
MAX_BLOCK = (1024, 1024, 64)
MAX_GRID = (2**31 - 1, 65535, 65535)


class _Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("block", ctypes.c_uint * 3), ("thread", ctypes.c_uint * 3),
                ("message", ctypes.c_char * 2048)]


# ---- thread order -------------------------------------------------------------------------------
class _OrderState:
    order: str | None = None  # None until first use: then read from $GPUCNN_CUDASIM_ORDER
    seed: int = 0
    launches: int = 0


def _parse_order(text: str):
    name, _, seed = text.strip().partition(":")
    if name not in _ORDERS or (seed and name != "random"):
        raise ValueError(f"thread order must be 'forward', 'reverse', 'random' or 'random:SEED', got {text!r}")
    try:
        return name, int(seed) if seed else None
    except ValueError:
        raise ValueError(f"the seed of thread order {text!r} must be an integer") from None


def set_thread_order(order: str, seed: int | None = None) -> None:
    """Sets the order in which the threads of a block run between two barriers.

    ``'forward'`` (threadIdx order, x fastest), ``'reverse'``, or ``'random'``: a new permutation
    for every phase, drawn from ``seed`` (None: a fresh seed, readable with :func:`get_thread_order`)
    and the number of launches since, so a run is reproducible.
    """
    name, text_seed = _parse_order(order)
    seed = text_seed if seed is None else seed
    if name == "random" and seed is None:
        seed = secrets.randbits(63)
    if seed is not None and not isinstance(seed, int):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    _OrderState.order, _OrderState.seed, _OrderState.launches = name, seed or 0, 0


def get_thread_order() -> tuple[str, int | None]:
    """``(order, seed)`` now in force; the seed is None unless the order is ``'random'``."""
    if _OrderState.order is None:
        set_thread_order(os.environ.get("GPUCNN_CUDASIM_ORDER") or "forward")
    return _OrderState.order, _OrderState.seed if _OrderState.order == "random" else None


@contextlib.contextmanager
def thread_order(order: str, seed: int | None = None):
    """Context manager form of :func:`set_thread_order`; the previous order comes back on exit."""
    get_thread_order()
    saved = (_OrderState.order, _OrderState.seed, _OrderState.launches)
    set_thread_order(order, seed)
    try:
        yield
    finally:
        _OrderState.order, _OrderState.seed, _OrderState.launches = saved


def _next_order() -> tuple[int, int]:
    if _OrderState.order is None:
        get_thread_order()
    _OrderState.launches += 1
    mixed = (_OrderState.seed * 0x9E3779B97F4A7C15 + _OrderState.launches * 0xD1B54A32D192ED03) % 2**64
    return _ORDERS[_OrderState.order], mixed


# ---- launch configuration -----------------------------------------------------------------------
_PADDING = {1: (1, 1), 2: (1,), 3: ()}


def _dims(value, what: str, limits, kernel: str) -> tuple[int, int, int]:
    """``value`` (an int or a tuple of 1 to 3 ints) as ``(x, y, z)``, checked against ``limits``."""
    if type(value) is int:
        dims = (value, 1, 1)
    elif type(value) is tuple and 1 <= len(value) <= 3 and all(type(size) is int for size in value):
        dims = value + _PADDING[len(value)]
    else:
        try:
            dims = (operator.index(value),) if hasattr(value, "__index__") else tuple(map(operator.index, value))
        except TypeError:
            dims = ()
        if not 1 <= len(dims) <= 3:
            raise ValueError(f"{kernel}: {what} must be an int or a tuple of 1 to 3 ints, got {value!r}")
        dims = dims + _PADDING[len(dims)]
    x, y, z = dims
    if not (0 < x <= limits[0] and 0 < y <= limits[1] and 0 < z <= limits[2]):
        axis = 0 if not 0 < x <= limits[0] else 1 if not 0 < y <= limits[1] else 2
        raise ValueError(f"{kernel}: {what} {dims} is out of range: dimension {'xyz'[axis]} must be in "
                         f"1..{limits[axis]}, got {dims[axis]}")
    if what == "block" and x * y * z > 1024:
        raise ValueError(f"{kernel}: block {dims} has {x * y * z} threads; CUDA allows at most 1024 per block")
    return dims


# ---- argument checking --------------------------------------------------------------------------
def _describe(value) -> str:
    if isinstance(value, numpy.ndarray):
        return f"a numpy array of dtype {value.dtype} and shape {value.shape}"
    if isinstance(value, numpy.generic):
        return f"numpy.{type(value).__name__} {value!r}"
    if isinstance(value, bool):
        return f"a Python bool ({value!r})"
    if isinstance(value, int):
        return f"a Python int ({value!r}; CuPy would pass it as a 64-bit long long)"
    if isinstance(value, float):
        return f"a Python float ({value!r}; CuPy would pass it as a double)"
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _converter(kernel: str, position: int, name: str, declared: str, code: int):
    """A function that checks one argument and returns what goes into its slot (an address or the scalar)."""
    where = f"{kernel}(): args[{position}] ('{name}', declared '{declared}')"
    base, pointer, const = code & 0xFF, bool(code & 0x100), bool(code & 0x200)

    if pointer:
        dtype = numpy.dtype(_BASE_DTYPES[base]) if base in _BASE_DTYPES else None
        accepted = {dtype, numpy.dtype(numpy.bool_)} if base == 3 else {dtype}
        needs = (f"a C-contiguous numpy array of dtype {dtype}" if dtype is not None
                 else "a C-contiguous numpy array") + ("" if const else ", writable")

        def convert(value):
            if not isinstance(value, numpy.ndarray):
                raise TypeError(f"{where} needs {needs}, got {_describe(value)}")
            if dtype is not None and value.dtype not in accepted:
                raise TypeError(f"{where} needs {needs}, got an array of dtype {value.dtype}")
            flags = value.flags
            if not (flags.c_contiguous and flags.aligned):
                raise ValueError(f"{where} needs {needs}, got a non-contiguous array of shape {value.shape} "
                                 f"and strides {value.strides} (use numpy.ascontiguousarray)")
            if not flags.writeable:
                if not const:
                    raise ValueError(f"{where} is written by the kernel, got a read-only array")
                return value.ctypes.data
            try:
                return ctypes.addressof(ctypes.c_char.from_buffer(value))
            except (TypeError, ValueError):  # empty arrays, buffers ctypes cannot take
                return value.ctypes.data

        return convert, "Q"

    if base not in _SCALAR_TYPES:
        raise TypeError(f"{where}: cudasim cannot check or pass this parameter type (pointers and "
                        "bool/integer/float scalars only)")
    accepted_types = _SCALAR_TYPES[base]
    numpy_name = f"numpy.{numpy.dtype(_BASE_DTYPES[base]).name}"

    def convert(value):
        if type(value) not in accepted_types:
            raise TypeError(f"{where} needs a {numpy_name} scalar, got {_describe(value)}; "
                            f"cast it: {numpy_name}(value)")
        return value

    return convert, _SLOT_FORMATS[base]


class Kernel:
    """One ``extern "C" __global__`` function of a :class:`Module`, called the CuPy way:
    ``kernel(grid, block, args, shared_mem=0)``.

    Attributes:
        name: the kernel's name.
        params: ``[(name, declared type), ...]`` as written in the source.
        max_dynamic_shared_size_bytes: the most dynamic shared memory a launch may ask for
            (48 KiB, as CUDA without opt-in; settable up to the runtime's 227 KiB).
    """

    def __init__(self, module: "Module", index: int, name: str, params: list[tuple[str, str]], codes: list[int]):
        self.module = module
        self.name = name
        self.params = params
        self._index = index
        self._max_shared = 48 * 1024
        converters, formats = [], []
        for position, ((param_name, declared), code) in enumerate(zip(params, codes)):
            convert, slot = _converter(name, position, param_name, declared, code)
            converters.append(convert)
            formats.append(slot)
        self._converters = tuple(converters)
        self._pack = struct.Struct("<" + "".join(formats)).pack

    @property
    def max_dynamic_shared_size_bytes(self) -> int:
        return self._max_shared

    @max_dynamic_shared_size_bytes.setter
    def max_dynamic_shared_size_bytes(self, value: int) -> None:
        limit = self.module._max_dynamic_shared
        if not 0 <= int(value) <= limit:
            raise ValueError(f"{self.name}: max_dynamic_shared_size_bytes must be in 0..{limit}, got {value}")
        self._max_shared = int(value)

    def __call__(self, grid, block, args, shared_mem=0, stream=None, enable_cooperative_groups=False):
        dims = self._dims(grid, block)
        self._run(self.module._launch, dims, self._pack(*self._converted(args)), shared_mem)

    def check(self, args) -> None:
        """Raises what a launch with ``args`` would raise for them (TypeError or ValueError), launching nothing."""
        self._converted(args)

    def launch_params(self, grid, block, params: int, shared_mem=0) -> None:
        """Launches the kernel with its arguments as ``cuLaunchKernel`` takes them: ``params`` is the
        address of an array of pointers, one per parameter, each to that parameter's value, of which
        as many bytes as its declared type has are read. Nothing checks the values: :meth:`check` them."""
        self._run(self.module._launch_params, self._dims(grid, block), params, shared_mem)

    def _dims(self, grid, block) -> tuple:
        return _dims(grid, "grid", MAX_GRID, self.name) + _dims(block, "block", MAX_BLOCK, self.name)

    def _run(self, launch, dims: tuple, arguments, shared_mem) -> None:
        """``launch`` (the library's cudasim_launch or cudasim_launch_params) over ``dims``, the grid's and
        the block's, with ``arguments`` (slots, or the pointer array's address)."""
        shared_mem = self._shared_bytes(shared_mem)
        order, seed = _next_order()
        module = self.module
        if launch(self._index, *dims, shared_mem, arguments, order, seed, module._error_address):
            raise module._exception()

    def _converted(self, args) -> list:
        """What each of ``args`` puts into its slot, checked against the declaration."""
        name = self.name
        if type(args) is not tuple:
            if not isinstance(args, (tuple, list)):
                raise TypeError(f"{name}(): args must be a tuple of kernel arguments, got {type(args).__name__}")
            args = tuple(args)
        if len(args) != len(self._converters):
            declared = ", ".join(f"{t} {n}" for n, t in self.params)
            raise TypeError(f"{name}() takes {len(self._converters)} arguments ({declared}), got {len(args)}")
        return [convert(value) for convert, value in zip(self._converters, args)]

    def _shared_bytes(self, shared_mem) -> int:
        if type(shared_mem) is not int:
            shared_mem = int(shared_mem.__index__()) if hasattr(shared_mem, "__index__") else None
        if shared_mem is None or not 0 <= shared_mem <= self._max_shared:
            raise ValueError(f"{self.name}: shared_mem must be an int in 0..{self._max_shared} bytes "
                             f"(max_dynamic_shared_size_bytes), got {shared_mem!r}")
        return shared_mem


class Module:
    """A ``.cu`` file compiled for the CPU, like ``cupy.RawModule(path=...)``.

    ``Module(path, include_dirs=(), options=(), *, sanitize=False, switch=None, cache_dir=None)``;
    :func:`gpucnn.devices.cudasim.load` returns a cached instance. ``kernels`` maps each
    ``extern "C"`` kernel name to its ``[(param name, declared type), ...]``; ``library`` is the
    built shared library; ``compiled`` tells whether this instance ran the compiler.
    """

    def __init__(self, path, include_dirs=(), options=(), *, sanitize=False, switch=None, cache_dir=None):
        result = _build.build(path, include_dirs, options, sanitize=sanitize, switch=switch, cache_dir_path=cache_dir)
        self._open(result)

    @classmethod
    def _from_build(cls, result: _build.Build) -> "Module":
        module = cls.__new__(cls)
        module._open(result)
        return module

    def _open(self, result: _build.Build) -> None:
        if result.sanitize and "address" in result.sanitize and not asan_loaded():
            raise RuntimeError(
                f"cudasim: a module built with sanitize={result.sanitize!r} can only be loaded by a process "
                "that started with libasan preloaded; run Python with the variables of "
                "gpucnn.devices.cudasim.sanitizer_env() (LD_PRELOAD=$(g++ -print-file-name=libasan.so)), "
                "or use sanitize='undefined', which needs no preload")
        self.path = result.source.path
        self.library = result.library
        self.compiled = result.compiled
        self.sanitize = result.sanitize
        self.switch = result.switch
        self._declarations = result.source.kernels
        self._dll = ctypes.PyDLL(result.library)  # PyDLL: the GIL stays held, launches never overlap
        self._launch = self._dll.cudasim_launch
        self._launch.restype = ctypes.c_int
        self._launch.argtypes = [ctypes.c_int] + [ctypes.c_uint] * 6 + [
            ctypes.c_ulonglong, ctypes.c_char_p, ctypes.c_int, ctypes.c_ulonglong, ctypes.c_void_p]
        self._launch_params = self._dll.cudasim_launch_params
        self._launch_params.restype = ctypes.c_int
        self._launch_params.argtypes = [ctypes.c_int] + [ctypes.c_uint] * 6 + [
            ctypes.c_ulonglong, ctypes.c_void_p, ctypes.c_int, ctypes.c_ulonglong, ctypes.c_void_p]
        self._error = _Error()
        self._error_address = ctypes.addressof(self._error)
        self._max_dynamic_shared = self._dll.cudasim_max_dynamic_shared()
        self.uses_ucontext = bool(self._dll.cudasim_uses_ucontext())
        self._dll.cudasim_kernel_name.restype = ctypes.c_char_p
        self._dll.cudasim_kernel_params.restype = ctypes.POINTER(ctypes.c_int)
        self._table: dict[str, tuple[int, list[int]]] = {}
        for index in range(self._dll.cudasim_kernel_count()):
            count = self._dll.cudasim_kernel_nparams(index)
            codes = self._dll.cudasim_kernel_params(index)
            self._table[self._dll.cudasim_kernel_name(index).decode()] = (index, [codes[i] for i in range(count)])
        self.kernels = {name: [(p.name, p.declared) for p in self._declarations[name].params] for name in self._table}
        self._functions: dict[str, Kernel] = {}

    def get_function(self, name: str) -> Kernel:
        """The kernel ``name`` (cached). Raises LookupError when the file has no such ``extern "C"`` kernel."""
        kernel = self._functions.get(name)
        if kernel is not None:
            return kernel
        if name not in self._table:
            declared = self._declarations.get(name)
            if declared is not None and not declared.extern_c:
                raise LookupError(f"kernel '{name}' in {self.path} is not declared extern \"C\": its symbol is "
                                  "C++-mangled and CuPy's RawModule.get_function cannot find it either")
            raise LookupError(f"no kernel '{name}' in {self.path}; it has {sorted(self._table) or 'none'}")
        index, codes = self._table[name]
        params = [(p.name, p.declared) for p in self._declarations[name].params]
        if len(params) != len(codes):  # the declaration could not be read: fall back to the compiled types
            params = [(f"arg{i}", f"type code {code:#x}") for i, code in enumerate(codes)]
        kernel = self._functions[name] = Kernel(self, index, name, params, codes)
        return kernel

    def _exception(self) -> KernelError:
        error = self._error
        cls = ERROR_CLASSES.get(error.code, KernelError)
        message = error.message.decode(errors="replace")
        kernel = message.split("'")[1] if message.startswith("kernel '") else None
        return cls(message, kernel, tuple(error.block), tuple(error.thread))

    def __repr__(self):
        return f"<cudasim.Module {self.path} kernels={sorted(self._table)}>"


def asan_loaded() -> bool:
    """True when the AddressSanitizer runtime is part of this process (preloaded)."""
    try:
        return hasattr(ctypes.CDLL(None), "__asan_init")
    except OSError:
        return False
