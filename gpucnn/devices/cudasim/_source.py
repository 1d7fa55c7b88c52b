"""Reading a ``.cu`` file for cudasim: its kernels, its headers, and the C++ that g++ compiles.

The compiled translation unit is the ``.cu`` text (behind ``#line 1 "<path>"``, so errors and
``__FILE__`` name the original file) with two changes that keep every line number:

- ``extern __shared__ T name[];`` (dynamic shared memory) becomes
  ``CUDASIM_EXTERN_SHARED(T, name);``, a pointer to the one dynamic shared buffer of the runtime;
- a launch table is appended: for each ``extern "C" __global__`` kernel a trampoline that unpacks
  the argument slots into a call, and the parameter type codes the C++ compiler deduced.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

# String and character literals are matched so that comment markers inside them are left alone.
_LITERAL_OR_COMMENT = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|//[^\n]*|/\*.*?\*/', re.S)
_KERNEL = re.compile(
    r'(?P<extern_c>extern\s+"C"\s+)?(?:(?:static|inline|__host__|__device__)\s+)*__global__\s+'
    r"(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?"
    r"(?P<name>[A-Za-z_]\w*)\s*\((?P<params>[^)]*)\)"
)
_TEMPLATE_BEFORE = re.compile(r"template\s*<[^;{}]*>\s*$")
_EXTERN_C_BLOCK = re.compile(r'extern\s+"C"\s*\{')
_EXTERN_SHARED = re.compile(r"extern\s+__shared__\s+(?P<type>[^;\[\]{}()]*(?:\([^)]*\)[^;\[\]{}()]*)*?)\s*"
                            r"\b(?P<name>[A-Za-z_]\w*)\s*\[\s*\]\s*;")
_ALIGN = re.compile(r"__align__\s*\(\s*\w+\s*\)")
_PARAM = re.compile(r"^(?P<type>.*?[\w*&\s])\s*\b(?P<name>[A-Za-z_]\w*)\s*(?P<array>\[\s*\])?$", re.S)
_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]+)[>"]', re.M)


@dataclass
class Param:
    """One kernel parameter as written: ``name`` and ``declared`` type text, e.g. ``const float*``."""

    name: str
    declared: str


@dataclass
class KernelDecl:
    name: str
    params: list[Param]
    extern_c: bool
    line: int


@dataclass
class Source:
    """A parsed ``.cu`` file: its path, text, kernels, and the headers it pulls in."""

    path: str
    text: str
    kernels: dict[str, KernelDecl] = field(default_factory=dict)
    headers: list[str] = field(default_factory=list)


def strip_comments(text: str) -> str:
    """``text`` with each comment replaced by spaces (newlines kept): offsets and lines unchanged."""

    def blank(match):
        token = match.group(0)
        if token[0] in "\"'":
            return token
        return re.sub(r"[^\n]", " ", token)

    return _LITERAL_OR_COMMENT.sub(blank, text)


def _split_params(text: str) -> list[Param]:
    text = " ".join(text.split())
    if text in ("", "void"):
        return []
    params = []
    for position, piece in enumerate(text.split(",")):
        piece = piece.strip()
        match = _PARAM.match(piece)
        if match is None or not match.group("type").strip():
            params.append(Param(f"arg{position}", piece))
            continue
        declared = re.sub(r"\s*([*&])\s*", r"\1 ", match.group("type")).strip()
        declared = re.sub(r"\s+", " ", declared) + ("*" if match.group("array") else "")
        params.append(Param(match.group("name"), declared))
    return params


def _extern_c_blocks(stripped: str) -> list[tuple[int, int]]:
    """Spans of ``extern "C" { ... }`` blocks (braces counted; literals are not expected there)."""
    spans = []
    for match in _EXTERN_C_BLOCK.finditer(stripped):
        depth, position = 1, match.end()
        while depth and position < len(stripped):
            depth += {"{": 1, "}": -1}.get(stripped[position], 0)
            position += 1
        spans.append((match.end(), position))
    return spans


def find_kernels(stripped: str) -> dict[str, KernelDecl]:
    """The ``__global__`` functions of comment-free source text, by name (first declaration wins).
    ``extern_c`` tells whether one is declared ``extern "C"`` (directly or inside a block)."""
    kernels: dict[str, KernelDecl] = {}
    blocks = _extern_c_blocks(stripped)
    for match in _KERNEL.finditer(stripped):
        if _TEMPLATE_BEFORE.search(stripped, 0, match.start()):
            continue
        name = match.group("name")
        extern_c = bool(match.group("extern_c")) or any(start <= match.start() < end for start, end in blocks)
        decl = KernelDecl(name, _split_params(match.group("params")), extern_c,
                          stripped.count("\n", 0, match.start()) + 1)
        if name not in kernels:
            kernels[name] = decl
        elif decl.extern_c:
            kernels[name].extern_c = True
    return kernels


def rewrite_dynamic_shared(text: str, stripped: str) -> str:
    """Replaces each ``extern __shared__ T name[];`` by ``CUDASIM_EXTERN_SHARED(T, name);``."""
    pieces, last = [], 0
    for match in _EXTERN_SHARED.finditer(stripped):
        element = " ".join(_ALIGN.sub(" ", match.group("type")).split())
        replacement = f"CUDASIM_EXTERN_SHARED({element}, {match.group('name')});"
        pieces += [text[last:match.start()], replacement, "\n" * match.group(0).count("\n")]
        last = match.end()
    pieces.append(text[last:])
    return "".join(pieces)


def find_headers(path: str, include_dirs: list[str]) -> list[str]:
    """Every header ``path`` includes, directly or not, that lives in its folder or ``include_dirs``
    (system headers are not followed). Absolute paths, in discovery order."""
    found: list[str] = []
    pending = [path]
    while pending:
        current = pending.pop()
        try:
            with open(current, encoding="utf-8", errors="replace") as handle:
                text = strip_comments(handle.read())
        except OSError:
            continue
        for bracket, name in _INCLUDE.findall(text):
            folders = ([os.path.dirname(current)] if bracket == '"' else []) + list(include_dirs)
            if bracket == '"':
                folders.insert(1, os.path.dirname(path))
            for folder in folders:
                candidate = os.path.abspath(os.path.join(folder, name))
                if os.path.isfile(candidate):
                    if candidate not in found and candidate != path:
                        found.append(candidate)
                        pending.append(candidate)
                    break
    return found


def parse(path: str, include_dirs: list[str]) -> Source:
    path = os.path.abspath(path)
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    source = Source(path, text)
    source.kernels = find_kernels(strip_comments(text))
    source.headers = find_headers(path, include_dirs)
    return source


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def translation_unit(source: Source) -> str:
    """The C++ that g++ compiles for ``source``: the rewritten kernels plus the launch table."""
    body = rewrite_dynamic_shared(source.text, strip_comments(source.text))
    exported = [k for k in source.kernels.values() if k.extern_c]
    lines = [f"#line 1 {_c_string(source.path)}", body, "", '#line 1 "<cudasim launch table>"']
    for index, kernel in enumerate(exported):
        lines.append(f"static void cudasim_run_{index}(const unsigned char* args) "
                     f"{{ ::cudasim::call(&{kernel.name}, args); }}")
    entries = [f"    {{{_c_string(k.name)}, cudasim_run_{i}, ::cudasim::param_codes(&{k.name}), "
               f"::cudasim::param_count(&{k.name})}}," for i, k in enumerate(exported)]
    lines.append('extern "C" CUDASIM_HIDDEN const cudasim_kernel_entry cudasim_kernel_table[] = {')
    lines += entries or ["    {nullptr, nullptr, nullptr, 0},"]
    lines.append("};")
    lines.append(f'extern "C" CUDASIM_HIDDEN const int cudasim_kernel_table_size = {len(exported)};')
    return "\n".join(lines) + "\n"
