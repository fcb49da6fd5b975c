"""The header's enums as Python IntEnums, named without their prefixes
(``MM_ERR_CANCELLED`` is ``Status.CANCELLED``). They are written out so that type checkers and
editors see them; a test checks them against the header the package runs with."""

from __future__ import annotations

import enum


class Status(enum.IntEnum):
    """The library's status codes (``mm_status``): ``Status.CANCELLED == 12``."""

    OK = 0
    NULL_ARGUMENT = 1
    INVALID_ARGUMENT = 2
    INVALID_HANDLE = 3
    FILE_NOT_FOUND = 4
    NOT_A_FILE = 5
    FILE_UNREADABLE = 6
    WRONG_FILE_KIND = 7
    MODEL_LOAD = 8
    CONTEXT_CREATE = 9
    PROJECTOR_LOAD = 10
    PROJECTOR_MISMATCH = 11
    CANCELLED = 12
    UNSUPPORTED = 13
    MEDIA_COUNT = 14
    MEDIA_DECODE = 15
    CONTEXT_FULL = 16
    TOKENIZE = 17
    EVAL = 18
    STATE_CORRUPT = 19
    STATE_MISMATCH = 20
    IO = 21
    BUSY = 22
    FORKED = 23
    REMOTE = 24
    INTERNAL = 99


class MediaKind(enum.IntEnum):
    """How a media item is given (``mm_media_kind``)."""

    FILE = 1
    ENCODED = 2
    RGB = 3
    PCM_F32 = 4


class LogLevel(enum.IntEnum):
    """The library's log levels (``mm_log_level``); OFF as a minimum silences it."""

    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4
    OFF = 5


class StopReason(enum.IntEnum):
    """Why generation ended (``mm_stop_reason``); NONE before the first request, or after one
    that failed."""

    NONE = 0
    EOG = 1
    MAX_TOKENS = 2
    STRING = 3
    CALLBACK = 4
    CONTEXT_FULL = 5
    TOOL_CALLS = 6
    """The answer is tool calls (OpenAI's ``finish_reason: "tool_calls"``)."""


class Overflow(enum.IntEnum):
    """What a chat that does not fit the context does (``mm_overflow``): fail, or drop the
    oldest turns (keeping a leading system message)."""

    FAIL = 0
    DROP_OLDEST = 1


class FlashAttn(enum.IntEnum):
    """Flash attention for the text model (``mm_flash_attn``; the ``flash_attn`` option)."""

    AUTO = 0
    OFF = 1
    ON = 2


class KvType(enum.IntEnum):
    """The KV cache's element type (``mm_kv_type``; the ``kv_type_k`` and ``kv_type_v`` options)."""

    F16 = 0
    Q8_0 = 1
    Q4_0 = 2


class Reasoning(enum.IntEnum):
    """What becomes of a model's reasoning (its ``<think>`` block and the like) in a chat rendered
    by a Jinja template (``mm_reasoning``; the ``reasoning`` option, also given by name:
    ``reasoning="inline"``): kept apart as the answer's ``reasoning_content`` (SEPARATE, the
    default), left in the text (INLINE), or not asked for (OFF: the template's
    ``enable_thinking`` false)."""

    SEPARATE = 0
    INLINE = 1
    OFF = 2


# Each enum with its C name and the prefix its members lose.
C_ENUMS = {
    Status: ("enum mm_status", "MM_ERR_"),
    MediaKind: ("enum mm_media_kind", "MM_MEDIA_"),
    LogLevel: ("enum mm_log_level", "MM_LOG_"),
    StopReason: ("enum mm_stop_reason", "MM_STOP_"),
    Overflow: ("enum mm_overflow", "MM_OVERFLOW_"),
    FlashAttn: ("enum mm_flash_attn", "MM_FLASH_ATTN_"),
    KvType: ("enum mm_kv_type", "MM_KV_"),
    Reasoning: ("enum mm_reasoning", "MM_REASONING_"),
}
