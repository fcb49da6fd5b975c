"""OpenAI-style chat messages, as llama-cpp-python's ``create_chat_completion`` takes them.

A message is a dict with ``role`` and ``content``: a str, or a list of content parts:

* ``{"type": "text", "text": "..."}``;
* ``{"type": "image_url", "image_url": {"url": URL}}`` (or ``"image_url": URL``), where URL
  is a ``data:`` URI (base64), a ``file://`` URL, an ``http(s)://`` URL (fetched with
  urllib, as llama-cpp-python does) or a plain file path;
* ``{"type": "input_audio", "input_audio": {"data": BASE64, "format": "wav"}}``.

A message may also carry ``"media": [...]``, any :mod:`mm_session.media` items (NumPy arrays,
PIL images, PCM), placed before its text. Each image or audio part goes where it stands among
the text parts (the session's media marker takes its place).
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .enums import Status
from .errors import MediaError

Message = Mapping[str, Any]

# Seconds allowed to fetch an http(s) image.
URL_TIMEOUT_S = 30


def split_message(message: Message, marker: str) -> tuple[str, str, list[Any]]:
    """A message as (role, text with markers, media items)."""
    try:
        role = message["role"]
    except (KeyError, TypeError):
        raise TypeError(f"a chat message is a dict with 'role' and 'content', got {message!r}") from None
    media = list(message.get("media") or [])
    content = message.get("content")
    pieces = [marker] * len(media)
    if content is None or isinstance(content, str):
        pieces.append(content or "")
    else:
        for part in content:
            kind = part.get("type")
            if kind == "text":
                pieces.append(part["text"])
            elif kind == "image_url":
                url = part["image_url"]
                media.append(load_url(url["url"] if isinstance(url, Mapping) else url))
                pieces.append(marker)
            elif kind == "input_audio":
                media.append(_base64(part["input_audio"]["data"]))
                pieces.append(marker)
            else:
                raise ValueError(f"unsupported content part type {kind!r} (text, image_url, input_audio)")
    return role, "\n".join(p for p in pieces if p), media


def load_url(url: str) -> Any:
    """An image URL as a media item: the bytes of a ``data:`` URI or an http(s) resource, or a
    path."""
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if ";base64" in header:
            return _base64(payload)
        return urllib.parse.unquote_to_bytes(payload)
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme in ("http", "https"):
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:  # the caller's http(s) URL
            return response.read()
    if scheme == "file":
        return Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    return Path(url)


def _base64(payload: str) -> bytes:
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError) as error:
        raise MediaError(Status.MEDIA_DECODE, f"invalid base64 media data: {error}") from None


def finish_reason(stop_reason: int) -> str:
    """OpenAI's finish_reason for an ``mm_stop_reason``: "length" when the answer was cut by
    max_tokens or a full context, "stop" otherwise."""
    return "length" if stop_reason in (2, 5) else "stop"  # MM_STOP_MAX_TOKENS, MM_STOP_CONTEXT_FULL


def completion(
    id_: str,
    created: int,
    model: str,
    text: str,
    finish: str,
    usage: dict[str, int],
    logprobs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A chat.completion response dict."""
    return {
        "id": id_,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": _logprobs(logprobs),
                "finish_reason": finish,
            }
        ],
        "usage": usage,
    }


def chunk(
    id_: str,
    created: int,
    model: str,
    delta: dict[str, Any],
    finish: str | None = None,
    logprobs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A chat.completion.chunk dict."""
    return {
        "id": id_,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": _logprobs(logprobs), "finish_reason": finish}],
    }


def _logprobs(content: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """A choice's "logprobs": None unless they were asked for."""
    return None if content is None else {"content": content, "refusal": None}


class Logprobs:
    """Collects generated tokens (an ``on_token`` callback, on the thread of the call) as
    OpenAI's logprobs entries: token text, log-probability, bytes, and the likeliest tokens."""

    def __init__(self) -> None:
        self._entries: list[dict[str, Any]] = []

    def add(self, chosen: Any, top: list[Any]) -> None:
        entry = _entry(chosen)
        entry["top_logprobs"] = [_entry(t) for t in top]
        self._entries.append(entry)

    def take(self) -> list[dict[str, Any]]:
        """The entries collected since the last take."""
        taken, self._entries = self._entries, []
        return taken


def _entry(token: Any) -> dict[str, Any]:
    return {"token": token.text.decode("utf-8", "replace"), "logprob": token.logprob, "bytes": list(token.text)}
