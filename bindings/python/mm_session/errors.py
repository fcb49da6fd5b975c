"""Errors: every failed call raises :class:`Error` (or a subclass per status family) with the
library's status and the message ``mm_last_error()`` gave on the thread of the failing call."""

from __future__ import annotations

from ._native import lib, text
from .enums import Status


class Error(Exception):
    """A failed mm-session call.

    Attributes:
        status: the :class:`Status` (an IntEnum: ``status.name`` and ``int(status)``).
        message: the library's message, naming the function, the file and the cause.
    """

    status: Status | int
    message: str

    def __init__(self, status: int, message: str) -> None:
        try:
            self.status = Status(status)
        except ValueError:  # a status newer than this package
            self.status = status
        self.message = message
        name = getattr(self.status, "name", str(status))
        super().__init__(f"{message} [{name} ({int(status)})]" if message else f"{name} ({int(status)})")


class InvalidArgument(Error, ValueError):
    """An argument is missing, out of range or malformed (NULL_ARGUMENT, INVALID_ARGUMENT)."""


class InvalidHandle(Error):
    """The session was already destroyed (INVALID_HANDLE)."""


class SessionClosed(InvalidHandle):
    """A call on a :class:`~mm_session.Session` after ``close()``."""


class FileError(Error):
    """A file that is not what it should be: not a regular file, unreadable, of the wrong
    kind, or a write that failed (NOT_A_FILE, FILE_UNREADABLE, WRONG_FILE_KIND, IO)."""


class FileNotFound(FileError):
    """A file does not exist (FILE_NOT_FOUND)."""


class ModelLoadError(Error):
    """The model, its context or the projector could not be loaded, or they do not fit each
    other (MODEL_LOAD, CONTEXT_CREATE, PROJECTOR_LOAD, PROJECTOR_MISMATCH)."""


class Cancelled(Error):
    """The call was cancelled (CANCELLED): ``Session.cancel()``, or a progress callback that
    returned False."""


class Unsupported(Error):
    """The session cannot do this, such as images without a projector (UNSUPPORTED)."""


class MediaError(Error):
    """A media item could not be decoded, or media and markers differ in number (MEDIA_DECODE,
    MEDIA_COUNT)."""


class ContextFull(Error):
    """The request does not fit in the context window (CONTEXT_FULL)."""


class EvalError(Error):
    """Tokenizing, encoding or evaluating failed (TOKENIZE, EVAL)."""


class StateError(Error):
    """A saved state is corrupt or belongs to other weights (STATE_CORRUPT, STATE_MISMATCH)."""


class Busy(Error):
    """A call on a session from inside one of its own callbacks (BUSY)."""


class Forked(Error):
    """The process was forked after it created sessions (FORKED)."""


class RemoteError(Error):
    """An RPC server of ``rpc_servers`` could not be reached or went away (REMOTE): the
    session's layers there are gone; close it."""


class InternalError(Error):
    """A bug inside mm-session (INTERNAL); destroy the session that was in use."""


_FAMILIES: dict[str, type[Error]] = {
    "NULL_ARGUMENT": InvalidArgument,
    "INVALID_ARGUMENT": InvalidArgument,
    "INVALID_HANDLE": InvalidHandle,
    "FILE_NOT_FOUND": FileNotFound,
    "NOT_A_FILE": FileError,
    "FILE_UNREADABLE": FileError,
    "WRONG_FILE_KIND": FileError,
    "IO": FileError,
    "MODEL_LOAD": ModelLoadError,
    "CONTEXT_CREATE": ModelLoadError,
    "PROJECTOR_LOAD": ModelLoadError,
    "PROJECTOR_MISMATCH": ModelLoadError,
    "CANCELLED": Cancelled,
    "UNSUPPORTED": Unsupported,
    "MEDIA_COUNT": MediaError,
    "MEDIA_DECODE": MediaError,
    "CONTEXT_FULL": ContextFull,
    "TOKENIZE": EvalError,
    "EVAL": EvalError,
    "STATE_CORRUPT": StateError,
    "STATE_MISMATCH": StateError,
    "BUSY": Busy,
    "FORKED": Forked,
    "REMOTE": RemoteError,
    "INTERNAL": InternalError,
}


def error_class(status: int) -> type[Error]:
    """The exception class for a status (Error itself for one this module does not know)."""
    try:
        return _FAMILIES.get(Status(status).name, Error)
    except ValueError:
        return Error


def check(status: int) -> None:
    """Raises the status's exception unless it is OK. Call it on the thread of the failing call,
    right after it: the message is that thread's ``mm_last_error()``."""
    if status != 0:
        raise error_class(status)(status, text(lib.mm_last_error()))


def closed_error() -> SessionClosed:
    """The error of a call on a closed session."""
    return SessionClosed(Status.INVALID_HANDLE, "the session is closed")


__all__ = [
    "Busy",
    "Cancelled",
    "ContextFull",
    "Error",
    "EvalError",
    "FileError",
    "FileNotFound",
    "Forked",
    "InternalError",
    "InvalidArgument",
    "InvalidHandle",
    "MediaError",
    "ModelLoadError",
    "RemoteError",
    "SessionClosed",
    "StateError",
    "Status",
    "Unsupported",
    "check",
    "error_class",
]
