"""The C library and its header, loaded through cffi in ABI mode.

The declarations come from ``mm_session.h`` itself: comments and preprocessor lines are
stripped and the rest goes to ``ffi.cdef``, so struct layouts, enums and signatures are
exactly the header's and nothing is compiled. Integer ``#define`` constants are read
separately into :data:`CONSTANTS`.

The library is looked for, in order, at ``$MM_SESSION_LIB``, in this package (a wheel
bundles it), in the installed prefix (``pkg-config --variable=libdir mm-session``), and in
the source tree's ``target/release`` when the package runs from the repository. The header
used is the one that belongs with that library.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cffi

LIB_NAME = "libmm_session.so"
HEADER_NAME = "mm_session.h"
_PACKAGE_DIR = Path(__file__).resolve().parent
_BUNDLED_DIR = _PACKAGE_DIR / "_lib"
_REPO_ROOT = _PACKAGE_DIR.parents[2]


def header_declarations(text: str) -> str:
    """The C declarations of a header for ``ffi.cdef``: no comments, no preprocessor lines,
    nothing inside ``#ifdef __cplusplus`` blocks."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    text = re.sub(r"//[^\n]*", "", text)
    kept = []
    cplusplus_depth = 0
    for line in text.splitlines():
        directive = line.strip()
        if directive.startswith("#"):
            if directive.startswith("#ifdef __cplusplus"):
                cplusplus_depth += 1
            elif directive.startswith("#endif") and cplusplus_depth:
                cplusplus_depth -= 1
            continue
        if not cplusplus_depth:
            kept.append(line)
    return "\n".join(kept)


def header_constants(text: str) -> dict[str, int]:
    """The header's integer ``#define`` constants, including those computed from earlier ones
    (such as ``MM_VERSION_NUMBER``)."""
    constants: dict[str, int] = {}
    for name, value in re.findall(r"^#define[ \t]+(MM_\w+)[ \t]+(\S.*?)[ \t]*$", text, flags=re.MULTILINE):
        constants[name] = _eval_int(ast.parse(value, mode="eval").body, constants)
    return constants


def _eval_int(node: ast.AST, names: dict[str, int]) -> int:
    """Evaluates an integer expression of literals, earlier constants, + - * << and parentheses."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _eval_int(node.left, names), _eval_int(node.right, names)
        operations = {ast.Add: int.__add__, ast.Sub: int.__sub__, ast.Mult: int.__mul__, ast.LShift: int.__lshift__}
        if type(node.op) in operations:
            return operations[type(node.op)](left, right)
    raise ValueError(f"mm_session.h: unsupported #define expression {ast.dump(node)}")


def _pkg_config_dirs() -> tuple[Path, Path] | None:
    """The installed prefix's library and include directories, when pkg-config knows mm-session."""
    try:
        out = subprocess.run(
            ["pkg-config", "--variable=libdir", "--variable=includedir", "mm-session"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return (Path(out[0]), Path(out[1])) if len(out) == 2 else None


def _candidates() -> Iterator[tuple[Path, Path, str]]:
    """(library, header, where) pairs in the order they are tried."""
    env = os.environ.get("MM_SESSION_LIB")
    if env:
        lib = Path(env)
        header = os.environ.get("MM_SESSION_HEADER")
        for guess in ([Path(header)] if header else []) + [
            lib.resolve().parent.parent / "include" / HEADER_NAME,
            _BUNDLED_DIR / HEADER_NAME,
            _REPO_ROOT / "include" / HEADER_NAME,
        ]:
            if guess.is_file():
                yield lib, guess, "$MM_SESSION_LIB"
                break
        else:
            raise ImportError(f"mm_session: no {HEADER_NAME} found for $MM_SESSION_LIB={env}: set $MM_SESSION_HEADER")
        return
    yield _BUNDLED_DIR / LIB_NAME, _BUNDLED_DIR / HEADER_NAME, "bundled"
    dirs = _pkg_config_dirs()
    if dirs:
        yield dirs[0] / LIB_NAME, dirs[1] / HEADER_NAME, "pkg-config"
    yield _REPO_ROOT / "target" / "release" / LIB_NAME, _REPO_ROOT / "include" / HEADER_NAME, "source tree"


def _locate() -> tuple[Path, Path, str]:
    tried = []
    for lib, header, where in _candidates():
        if lib.is_file() and header.is_file():
            return lib, header, where
        tried.append(f"{where}: {lib}")
    raise ImportError(
        "mm_session: libmm_session.so not found (tried " + "; ".join(tried) + "). "
        "Set $MM_SESSION_LIB, `make install` the library, or `make build` in the repository."
    )


LIBRARY_PATH, HEADER_PATH, LIBRARY_ORIGIN = _locate()
_HEADER_TEXT = HEADER_PATH.read_text(encoding="utf-8")
CONSTANTS: dict[str, int] = header_constants(_HEADER_TEXT)

ffi = cffi.FFI()
ffi.cdef(header_declarations(_HEADER_TEXT))
lib = ffi.dlopen(str(LIBRARY_PATH))


def _check_version() -> None:
    """Refuses a library whose ABI differs from the header's: the same major and minor version
    (while the major is 0), and a library at least as new."""
    have = lib.mm_version_number()
    want = CONSTANTS["MM_VERSION_NUMBER"]
    if have // 100 != want // 100 or have < want:
        raise ImportError(
            f"mm_session: {LIBRARY_PATH} is version {ffi.string(lib.mm_version()).decode()} "
            f"({have}); its header {HEADER_PATH} is {want}: they must have the same major and minor version"
        )


_check_version()


def text(pointer: Any) -> str:
    """A NUL-terminated C string as str (NULL gives "")."""
    return str(ffi.string(pointer).decode("utf-8", "replace")) if pointer != ffi.NULL else ""
