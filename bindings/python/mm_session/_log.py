"""The library's logs (llama.cpp, ggml, mtmd) as records of the ``mm_session`` logger.

``mm_log_set`` gets one cffi callback for the life of the process (kept alive here); it may run
on any thread, llama.cpp's own included, and cffi takes the GIL for it. The library filters by
level before calling back, so the minimum level given to it follows the logger's effective
level: it is set at import and again whenever a session is created, so
``logging.getLogger("mm_session").setLevel(logging.INFO)`` takes effect at the next
``Session(...)``.
"""

from __future__ import annotations

import atexit
import logging
from typing import Any

from ._native import ffi, lib
from .enums import LogLevel

logger = logging.getLogger("mm_session")

_DEBUG, _INFO, _WARN, _ERROR, _OFF = LogLevel.DEBUG, LogLevel.INFO, LogLevel.WARN, LogLevel.ERROR, LogLevel.OFF
_TO_PYTHON: dict[int, int] = {_DEBUG: logging.DEBUG, _INFO: logging.INFO, _WARN: logging.WARNING, _ERROR: logging.ERROR}


def _ignore(*_exc_info: object) -> None:
    """A logging failure must not print a traceback from inside the library's thread."""


def _on_log(_user_data: Any, level: int, message: Any) -> None:
    text = ffi.string(message).decode("utf-8", "replace").rstrip("\n")
    if text:
        logger.log(_TO_PYTHON.get(level, logging.INFO), text)


# The C callback, alive as long as the module: the library may call it at any time.
_on_log_c = ffi.callback("mm_log_callback", _on_log, onerror=_ignore)


def _min_level() -> int:
    """The library's minimum level for the logger's effective level."""
    level = logger.getEffectiveLevel()
    if level <= logging.DEBUG:
        return _DEBUG
    if level <= logging.INFO:
        return _INFO
    if level <= logging.WARNING:
        return _WARN
    return _ERROR if level <= logging.ERROR else _OFF


def sync_level() -> None:
    """Routes the library's logs to the logger, at the logger's current level."""
    lib.mm_log_set(_min_level(), _on_log_c, ffi.NULL)


@atexit.register
def _detach() -> None:
    """At exit the library logs to stderr again, so no message reaches a Python that is
    shutting down. (Registered before any session's finalizer, so it runs after them.)"""
    lib.mm_log_set(_WARN, ffi.NULL, ffi.NULL)


sync_level()
