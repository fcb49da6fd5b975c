"""mm_session: local multimodal LLMs (text + images, and audio where the projector has it) on
llama.cpp, through the C library mm-session.

One :class:`Session` owns the text model, its context and its projector, and :meth:`Session.close`
(or the end of a ``with`` block) frees all of them::

    from mm_session import Session

    with Session("model.gguf", "mmproj.gguf", n_ctx=4096) as s:
        print(s.ask("What differs between these pictures?", media=["a.jpg", "b.png"]))

The library is found at ``$MM_SESSION_LIB``, in this package (wheels bundle it), in the
installed prefix (pkg-config), or in the source tree's ``target/release``. Its logs go to the
``mm_session`` logger.
"""

from __future__ import annotations

from ._native import CONSTANTS, HEADER_PATH, LIBRARY_ORIGIN, LIBRARY_PATH, ffi, lib, text
from .enums import FlashAttn, KvType, LogLevel, MediaKind, Overflow, Reasoning, Status, StopReason
from .errors import (
    Busy,
    Cancelled,
    ContextFull,
    Error,
    EvalError,
    FileError,
    FileNotFound,
    Forked,
    InternalError,
    InvalidArgument,
    InvalidHandle,
    MediaError,
    ModelLoadError,
    RemoteError,
    SessionClosed,
    StateError,
    Unsupported,
)
from .media import Pcm, Rgb
from .session import (
    JSON_GRAMMAR,
    AskInfo,
    AsyncStream,
    MemoryStats,
    Session,
    SessionInfo,
    TokenLogprob,
    live_sessions,
    loaded_models,
)

#: ``seed`` value meaning "the session's seed" (``MM_SEED_DEFAULT``).
SEED_DEFAULT: int = CONSTANTS["MM_SEED_DEFAULT"]

#: The largest ``n_parallel``: sessions one context can hold (``MM_MAX_PARALLEL``).
MAX_PARALLEL: int = CONSTANTS["MM_MAX_PARALLEL"]


def version() -> str:
    """The C library's version, "MAJOR.MINOR.PATCH"."""
    return text(lib.mm_version())


def build_info() -> str:
    """What the library was built for: its version, target CPU and each backend's features."""
    return text(lib.mm_build_info())


def status_str(status: int) -> str:
    """The library's short description of a status code."""
    return text(lib.mm_status_str(status))


__version__ = version()

__all__ = [
    "CONSTANTS",
    "HEADER_PATH",
    "JSON_GRAMMAR",
    "LIBRARY_ORIGIN",
    "LIBRARY_PATH",
    "MAX_PARALLEL",
    "SEED_DEFAULT",
    "AskInfo",
    "AsyncStream",
    "Busy",
    "Cancelled",
    "ContextFull",
    "Error",
    "EvalError",
    "FileError",
    "FileNotFound",
    "FlashAttn",
    "Forked",
    "InternalError",
    "InvalidArgument",
    "InvalidHandle",
    "KvType",
    "LogLevel",
    "MediaError",
    "MediaKind",
    "MemoryStats",
    "ModelLoadError",
    "Overflow",
    "Pcm",
    "Reasoning",
    "RemoteError",
    "Rgb",
    "Session",
    "SessionClosed",
    "SessionInfo",
    "StateError",
    "Status",
    "StopReason",
    "TokenLogprob",
    "Unsupported",
    "build_info",
    "ffi",
    "lib",
    "live_sessions",
    "loaded_models",
    "status_str",
    "version",
]
