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

Tool calls take OpenAI's shapes: an assistant message may carry ``"tool_calls"`` (a list of
``{"id", "type": "function", "function": {"name", "arguments"}}``, where ``arguments`` is JSON
text or a dict) and ``"reasoning_content"``; a ``"tool"`` message carries the result of one
call as its content, with ``"tool_call_id"`` (and optionally the function's ``"name"``).
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .enums import Status
from .errors import InvalidArgument, MediaError

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


def _invalid(message: str) -> InvalidArgument:
    return InvalidArgument(Status.INVALID_ARGUMENT, message)


def message_ext(message: Message) -> dict[str, str]:
    """What a message carries for tool calls, as the text of ``mm_message_ext``'s fields (only
    those it has): its tool calls as OpenAI's JSON array (each call's ``arguments`` as JSON
    text), the call id and function name of a tool result, and earlier reasoning."""
    ext: dict[str, str] = {}
    calls = message.get("tool_calls")
    if calls:
        ext["tool_calls"] = _tool_calls_json(calls)
    for key in ("tool_call_id", "name", "reasoning_content"):
        value = message.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise _invalid(f"a chat message's {key!r} is a str, got {type(value).__name__}")
        ext[key] = value
    return ext


def _tool_calls_json(calls: Any) -> str:
    """An assistant message's ``tool_calls`` as JSON text: each call with ``"type": "function"``
    and its ``arguments`` as JSON text (a dict is dumped)."""
    if isinstance(calls, str):
        return calls
    if not isinstance(calls, Sequence):
        raise _invalid(f"a chat message's 'tool_calls' is a list of calls, got {type(calls).__name__}")
    out = []
    for call in calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise _invalid(
                "a tool call is a dict {'id': ..., 'type': 'function', 'function': {'name': ..., "
                f"'arguments': ...}}}}, got {call!r}"
            )
        function = dict(function)
        arguments = function.get("arguments", "{}")
        function["arguments"] = arguments if isinstance(arguments, str) else json.dumps(arguments)
        out.append({"type": "function", **call, "function": function})
    return json.dumps(out)


def tools_json(tools: Any) -> str | None:
    """OpenAI's ``tools`` (a list of ``{"type": "function", "function": {"name", "description",
    "parameters"}}``, or that list's JSON text) as the JSON text of ``mm_ask_params.tools``; an
    empty list is no tools."""
    if isinstance(tools, (str, bytes)):
        return tools.decode("utf-8") if isinstance(tools, bytes) else tools
    if isinstance(tools, Mapping) or not isinstance(tools, Sequence):
        raise _invalid(
            "tools is a list of tools, [{'type': 'function', 'function': {'name': ..., 'parameters': "
            f"{{JSON Schema}}}}}}, ...], got {type(tools).__name__}"
        )
    for tool in tools:
        if not isinstance(tool, Mapping):
            raise _invalid(f"each of tools is a dict {{'type': 'function', 'function': {{...}}}}, got {tool!r}")
    return json.dumps(list(tools)) if tools else None


def tool_choice_text(choice: Any) -> str:
    """OpenAI's ``tool_choice`` as ``mm_ask_params.tool_choice``: "auto", "none", "required" or
    a function's name, from those strings or ``{"type": "function", "function": {"name": ...}}``
    (or the legacy ``function_call``'s ``{"name": ...}``)."""
    if isinstance(choice, str):
        return choice
    if isinstance(choice, Mapping):
        function = choice.get("function", choice)
        name = function.get("name") if isinstance(function, Mapping) else None
        if isinstance(name, str):
            return name
    raise _invalid(
        "tool_choice is 'auto', 'none', 'required' or {'type': 'function', 'function': {'name': ...}}, "
        f"got {choice!r}"
    )


def legacy_functions(functions: Any, function_call: Any) -> tuple[Any, Any]:
    """The deprecated ``functions`` and ``function_call`` as ``tools`` and ``tool_choice``, as
    OpenAI maps them: each function becomes a tool, ``{"name": f}`` a call to that function."""
    if functions is None:
        return None, function_call
    if isinstance(functions, Mapping) or not isinstance(functions, Sequence) or isinstance(functions, str):
        raise _invalid(f"functions is a list of {{'name', 'description', 'parameters'}} dicts, got {functions!r}")
    return [{"type": "function", "function": f} for f in functions], function_call


def assistant_message(message_json: str) -> dict[str, Any]:
    """The library's last message (``mm_session_last_message``) as a response's message:
    ``role``, ``content`` (None when the answer is only tool calls), and ``tool_calls`` and
    ``reasoning_content`` only when the answer has some."""
    raw = json.loads(message_json)
    message: dict[str, Any] = {"role": "assistant", "content": raw.get("content")}
    if raw.get("tool_calls"):
        message["tool_calls"] = raw["tool_calls"]
    if raw.get("reasoning_content"):
        message["reasoning_content"] = raw["reasoning_content"]
    return message


def tool_call_delta(index: int, id_: str, name: str, arguments: str) -> dict[str, Any]:
    """A streamed change of one tool call as an entry of a chunk's ``delta.tool_calls``: its id,
    type and name on the call's first delta, then pieces of its arguments."""
    delta: dict[str, Any] = {"index": index}
    function: dict[str, Any] = {}
    if id_:
        delta.update(id=id_, type="function")
    if name:
        function["name"] = name
    function["arguments"] = arguments
    delta["function"] = function
    return delta


def finish_reason(stop_reason: int) -> str:
    """OpenAI's finish_reason for an ``mm_stop_reason``: "length" when the answer was cut by
    max_tokens or a full context, "tool_calls" when it is tool calls, "stop" otherwise."""
    if stop_reason == 6:  # MM_STOP_TOOL_CALLS
        return "tool_calls"
    return "length" if stop_reason in (2, 5) else "stop"  # MM_STOP_MAX_TOKENS, MM_STOP_CONTEXT_FULL


def completion(
    id_: str,
    created: int,
    model: str,
    message: dict[str, Any],
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
                "message": message,
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
