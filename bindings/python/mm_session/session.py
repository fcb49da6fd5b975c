"""The Session class: one multimodal model (text model, context, projector) behind one handle."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import threading
import time
import uuid
import weakref
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Callable, TypeVar, Union

from . import _log, chat
from ._calls import POLL_S, Call, blocking
from ._native import ffi, lib, text
from ._options import c_string, fill
from .chat import Logprobs
from .enums import Reasoning, Status, StopReason
from .errors import InvalidArgument, Unsupported, check, closed_error
from .media import MediaItem, c_media

Prompt = Union[str, Sequence[Mapping[str, Any]]]
T = TypeVar("T")
# What the stream queue carries besides pieces: the end of the call, and (locally) no piece yet.
_END = object()
_NOTHING = object()


@dataclass(frozen=True)
class SessionInfo:
    """What a session is and holds (``mm_session_info``)."""

    n_ctx: int
    """Context window in positions."""
    n_past: int
    """Positions the conversation cache holds now."""
    supports_vision: bool
    supports_audio: bool
    audio_sample_rate: int
    """Sample rate (Hz) the audio encoder expects; 0 without one."""
    marker: str
    """The text that stands for a media item in a prompt."""
    n_parallel: int
    """Sessions that can decode together in this session's context (its slots: the
    ``n_parallel`` it was created with, or its parent's); 1: it decodes alone."""
    n_batch: int
    """Most tokens one step evaluates: this session's, or shared by the sessions that decode
    together."""


@dataclass(frozen=True)
class MemoryStats:
    """Bytes a session holds, by use and by place (``mm_memory_stats``); "gpu" is any non-host
    device. Model and projector bytes are shared by ``shared_by`` sessions (a session and its
    forks); the context (compute buffers, KV cache) by ``context_shared_by`` sessions that
    decode together (``n_parallel`` > 1), whose ``kv_*`` figures are then this session's share."""

    model_host: int
    model_gpu: int
    kv_host: int
    kv_gpu: int
    compute_host: int
    compute_gpu: int
    projector_host: int
    projector_gpu: int
    shared_by: int
    context_shared_by: int
    """Sessions that share this session's context (a session created with ``n_parallel`` > 1
    and its forks); 1: the context is its own."""

    @property
    def host(self) -> int:
        """All host bytes."""
        return self.model_host + self.kv_host + self.compute_host + self.projector_host

    @property
    def gpu(self) -> int:
        """All device bytes."""
        return self.model_gpu + self.kv_gpu + self.compute_gpu + self.projector_gpu


@dataclass(frozen=True)
class AskInfo:
    """Figures of the last finished request (``mm_ask_info``)."""

    prompt_positions: int
    """Positions the prompt (text and media) takes in the context."""
    positions_reused: int
    """Positions of the prompt found in the cache (not evaluated again)."""
    tokens_evaluated: int
    media_encoded: int
    """Media items run through the projector's encoder by this request."""
    tokens_generated: int
    messages_dropped: int
    stop_reason: StopReason
    prompt_ms: float
    """Prompt evaluation (media encoding included), in ms."""
    generate_ms: float
    prompt_tokens: int
    """Text tokens of the prompt (``prompt_positions == prompt_tokens + media_positions``)."""
    media_items: int
    """Media items in the prompt, encoded by this request or found in the cache."""
    media_tokens: int
    """Embeddings the prompt's media give the model."""
    media_positions: int
    """Positions those embeddings take (fewer than media_tokens with M-RoPE models)."""
    slot_wait_ms: float
    """How long the request waited for a slot of its shared context, in ms (0 when one was
    free; always 0 for sessions created with ``n_parallel`` 1)."""
    most_together: int
    """The most sessions whose tokens one step of this request carried, its own included
    (1: it decoded alone)."""
    tool_calls: int
    """Tool calls in the answer (see :meth:`Session.last_message`)."""


@dataclass(frozen=True)
class TokenLogprob:
    """A generated token and its log-probability under the model (before temperature,
    penalties, bias and grammar)."""

    token: int
    logprob: float
    text: bytes
    """The token's text; may be part of a UTF-8 character."""


_CONVERT: dict[str, Callable[[Any], Any]] = {"stop_reason": StopReason, "marker": text}


def _from_struct(cls: Callable[..., T], struct: Any) -> T:
    """A dataclass from the C struct fields of the same names."""
    values = {}
    for f in fields(cls):  # type: ignore[arg-type]
        value = getattr(struct, f.name)
        values[f.name] = _CONVERT.get(f.name, lambda v: v)(value)
    return cls(**values)


def _output(struct_type: str) -> Any:
    """A zeroed output struct with its struct_size set."""
    out = ffi.new(f"{struct_type} *")
    out.struct_size = ffi.sizeof(struct_type)
    return out


def _text_to(sink: str, user_data: Any, piece: Any, length: int) -> bool:
    """Hands a piece of text to the request's `sink` (`on_piece`, `on_reasoning`)."""
    request = ffi.from_handle(user_data)
    if request.stopped:
        return False
    try:
        getattr(request, sink)(ffi.unpack(piece, length).decode("utf-8"))
    except BaseException as error:  # noqa: BLE001 (any exception: raised by the consumer after the call)
        request.callback_error = error
        return False
    return True


def _on_text(user_data: Any, piece: Any, length: int) -> bool:
    return _text_to("on_piece", user_data, piece, length)


def _on_reasoning(user_data: Any, piece: Any, length: int) -> bool:
    return _text_to("on_reasoning", user_data, piece, length)


def _on_tool_call(user_data: Any, delta: Any) -> bool:
    request = ffi.from_handle(user_data)
    if request.stopped:
        return False
    try:
        request.on_tool_call(
            chat.tool_call_delta(int(delta.index), text(delta.id), text(delta.name), text(delta.arguments))
        )
    except BaseException as error:  # noqa: BLE001 (any exception: raised by the consumer after the call)
        request.callback_error = error
        return False
    return True


def _on_progress(user_data: Any, progress: float) -> bool:
    load = ffi.from_handle(user_data)
    if load.stopped:
        return False
    if load.on_progress is None:
        return True
    try:
        return load.on_progress(progress) is not False
    except BaseException as error:  # noqa: BLE001 (any exception: raised by the constructor after the call)
        load.callback_error = error
        return False


def _token(t: Any) -> TokenLogprob:
    return TokenLogprob(int(t.token), float(t.logprob), ffi.unpack(t.text, t.len))


def _on_token(user_data: Any, chosen: Any, top: Any, n_top: int) -> None:
    request = ffi.from_handle(user_data)
    if request.stopped:
        return
    try:
        request.on_token(_token(chosen), [_token(top[i]) for i in range(n_top)])
    except BaseException as error:  # noqa: BLE001 (any exception: raised by the caller after the call)
        request.callback_error = error
        request.cancel()


# The C callbacks, made once: each call finds its Python state through user_data.
_on_text_c = ffi.callback("mm_text_callback", _on_text)
_on_progress_c = ffi.callback("mm_progress_callback", _on_progress)
_on_token_c = ffi.callback("mm_token_callback", _on_token)
_on_reasoning_c = ffi.callback("mm_text_callback", _on_reasoning)
_on_tool_call_c = ffi.callback("mm_tool_call_callback", _on_tool_call)


class _Stoppable:
    """State a C callback reads: whether to stop, and an exception to hand back."""

    def __init__(self) -> None:
        self.stopped = False
        self.callback_error: BaseException | None = None
        self.keep: list[Any] = []
        self.handle = ffi.new_handle(self)

    def reraise(self) -> None:
        if self.callback_error is not None:
            raise self.callback_error


class _Load(_Stoppable):
    def __init__(self, on_progress: Callable[[float], Any] | None) -> None:
        super().__init__()
        self.on_progress = on_progress

    def stop(self) -> None:
        self.stopped = True


class _Request(_Stoppable):
    """One ``mm_ask_params`` with everything it points to, kept alive for the call."""

    def __init__(
        self, session: Session, prompt: Prompt, media: Sequence[MediaItem], options: Mapping[str, Any]
    ) -> None:
        super().__init__()
        self.session = session
        self.on_piece: Callable[[str], None] | None = None
        self.on_reasoning: Callable[[str], None] | None = None
        self.on_tool_call: Callable[[dict[str, Any]], None] | None = None
        # Whether the call reads the answer as OpenAI's assistant message (last_message).
        self.want_message = False
        self.message: dict[str, Any] | None = None
        self.params = ffi.new("mm_ask_params *", lib.mm_ask_params_default())
        options = dict(options)
        if options.get("tools") is not None:
            options["tools"] = chat.tools_json(options["tools"])
        if options.get("tool_choice") is not None:
            options["tool_choice"] = chat.tool_choice_text(options["tool_choice"])
        self.on_token: Callable[[TokenLogprob, list[TokenLogprob]], None] | None = options.pop("on_token", None)
        if self.on_token is not None:
            self.params.on_token = _on_token_c
            self.params.user_data = self.handle
        if isinstance(prompt, str):
            self.params.prompt = c_string(prompt, self.keep)
            self.params.media, self.params.n_media = c_media(media, self.keep)
        else:
            if not (isinstance(media, Sequence) and len(media) == 0):
                raise TypeError("media go inside the chat messages, not beside them")
            self._messages(prompt)
        fill(self.params, "mm_ask_params", options, self.keep)

    def _messages(self, messages: Sequence[Mapping[str, Any]]) -> None:
        c_messages = ffi.new("mm_message[]", len(messages))
        self.keep.append(c_messages)
        marker = self.session.marker
        exts = []
        for slot, message in zip(c_messages, messages):
            role, body, media = chat.split_message(message, marker)
            slot.role, slot.text = c_string(role, self.keep), c_string(body, self.keep)
            slot.media, slot.n_media = c_media(media, self.keep)
            exts.append(chat.message_ext(message))
        self.params.messages, self.params.n_messages = c_messages, len(messages)
        if any(exts):
            c_exts = ffi.new("mm_message_ext[]", len(messages))
            self.keep.append(c_exts)
            for slot, ext in zip(c_exts, exts):
                for name, value in ext.items():
                    setattr(slot, name, c_string(value, self.keep))
            self.params.message_ext = c_exts

    def stream_to(self, on_piece: Callable[[Any], None], *, events: bool = False) -> None:
        """Streams the answer's text pieces to ``on_piece``; with ``events``, every part of the
        answer as a (kind, value) pair: ("content", text), ("reasoning", text) and
        ("tool_call", a delta entry of OpenAI's ``tool_calls``)."""
        self.params.on_text = _on_text_c
        self.params.user_data = self.handle
        if not events:
            self.on_piece = on_piece
            return
        self.on_piece = lambda piece: on_piece(("content", piece))
        self.on_reasoning = lambda piece: on_piece(("reasoning", piece))
        self.on_tool_call = lambda delta: on_piece(("tool_call", delta))
        self.params.on_reasoning = _on_reasoning_c
        self.params.on_tool_call = _on_tool_call_c

    def cancel(self) -> None:
        """Stops the request: the text callback refuses further pieces, and the library is asked
        to cancel (which also stops media encoding and prompt evaluation)."""
        self.stopped = True
        self.session.cancel()


def _destroy(handle: Any) -> None:
    lib.mm_session_destroy(handle)


class Session:
    """A loaded multimodal model: the text model, its context and its projector, freed together
    by :meth:`close` (or at the end of a ``with`` block).

    Options are the fields of ``mm_session_params`` by name (``n_ctx``, ``n_batch``,
    ``n_threads``, ``n_gpu_layers``, ``seed``, ``mmproj_use_gpu``, ``use_mmap``,
    ``media_marker``, ``chat_template``, ``rpc_servers`` ("host:port,host:port"),
    ``tensor_split`` (a list of shares), ``flash_attn`` (:class:`FlashAttn`), ``kv_type_k``
    and ``kv_type_v`` (:class:`KvType`), ``n_ubatch``, ``use_mlock``, ``n_parallel``, and any
    field a newer header adds); None keeps the library's default. ``on_progress(fraction)``
    follows the load and may return False to cancel it. Ctrl-C during the load cancels it too.

    ``n_parallel`` (default 1, at most :data:`~mm_session.MAX_PARALLEL`) makes a session whose
    forks decode together with it: they share one context with ``n_parallel`` slots (a KV cache
    of ``n_ctx`` positions each), and requests running at the same time on different threads
    (or asyncio tasks) are evaluated in shared steps. Forks beyond ``n_parallel`` still work:
    a request takes a free slot, borrows the slot of the session idle longest, or waits for
    one (:attr:`AskInfo.slot_wait_ms`).

    Calls on one session are serialized by the library; different sessions run in parallel on
    different threads (every call releases the GIL). :meth:`cancel` works from any thread.
    After :meth:`close`, every call raises :class:`~mm_session.SessionClosed`.

    Raises:
        FileNotFound, FileError, ModelLoadError, InvalidArgument: the library's reason.
    """

    model_path: str
    mmproj_path: str | None

    def __init__(
        self,
        model: str | os.PathLike[str],
        mmproj: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        n_batch: int | None = None,
        n_parallel: int | None = None,
        seed: int | None = None,
        chat_template: str | None = None,
        on_progress: Callable[[float], Any] | None = None,
        **options: Any,
    ) -> None:
        _log.sync_level()
        load = _Load(on_progress)
        params = ffi.new("mm_session_params *", lib.mm_session_params_default())
        fill(
            params,
            "mm_session_params",
            dict(
                model_path=model,
                mmproj_path=mmproj,
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_gpu_layers=n_gpu_layers,
                n_batch=n_batch,
                n_parallel=n_parallel,
                seed=seed,
                chat_template=chat_template,
                **options,
            ),
            load.keep,
        )
        params.progress_callback = _on_progress_c
        params.progress_user_data = load.handle
        out = ffi.new("mm_session **")

        def create() -> None:
            status = lib.mm_session_create(params, out)
            load.reraise()
            check(status)

        blocking(create, load.stop)
        self._adopt(out[0], os.fspath(model), None if mmproj is None else os.fspath(mmproj))

    def _adopt(self, handle: Any, model_path: str, mmproj_path: str | None) -> None:
        """Takes ownership of a C session: destroyed by close(), or by the finalizer if the
        object is collected unclosed (a safety net, not the way)."""
        self._handle = handle
        self._finalizer = weakref.finalize(self, _destroy, handle)
        self._close_lock = threading.Lock()
        self.model_path = model_path
        self.mmproj_path = mmproj_path
        self.marker = text(lib.mm_session_marker(handle))

    # -- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        """Frees the projector, the context and the model (the weights stay while forks use
        them). A call running on another thread is cancelled first. Closing twice is a no-op."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def __enter__(self) -> Session:  # noqa: PYI034 (typing.Self is Python 3.11's, and typing_extensions no dependency)
        self._h()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<mm_session.Session {state} model={self.model_path!r} mmproj={self.mmproj_path!r}>"

    def _h(self) -> Any:
        """The C handle, or SessionClosed."""
        if self.closed:
            raise closed_error()
        return self._handle

    def _check(self, status: int) -> None:
        """check(), except that any failure of a session closed meanwhile is SessionClosed."""
        if status != 0 and self.closed:
            raise closed_error()
        check(status)

    # -- requests ------------------------------------------------------------------------

    def ask(
        self,
        prompt: Prompt,
        media: Sequence[MediaItem] = (),
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        min_p: float | None = None,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        grammar: str | None = None,
        **options: Any,
    ) -> str:
        """Asks one question and returns the whole answer.

        Args:
            prompt: the prompt text, or a list of chat messages (see :mod:`mm_session.chat`),
                rendered with the session's chat template.
            media: media items (see :mod:`mm_session.media`) for a text prompt: each goes
                where a marker (``session.marker``) stands, in order, or before the text.
            max_tokens, temperature, top_k, top_p, min_p, seed: sampling; None keeps the
                library's default (256 tokens, 0.8, 40, 0.95, 0.05, the session's seed).
            stop: stop strings: the answer ends before the first one that appears.
            grammar: a GBNF grammar (start rule ``root``) the answer must follow.
            **options: any other field of ``mm_ask_params`` by name: ``repeat_penalty``,
                ``penalty_last_n``, ``frequency_penalty``, ``presence_penalty``, ``typical_p``,
                ``dry_multiplier`` (and ``dry_base``, ``dry_allowed_length``,
                ``dry_penalty_last_n``), ``logit_bias`` (``{token: bias}``, tokens from
                :meth:`tokenize`), ``json_schema`` (a dict or JSON text), ``overflow``,
                ``plain_prompt``, ``tools`` (OpenAI's list of tools), ``tool_choice``,
                ``parallel_tool_calls``, ``reasoning`` (:class:`Reasoning` or its name), ...
                And ``on_token(chosen, top)``: called with each generated token's
                :class:`TokenLogprob` and the ``n_probs`` likeliest ones. With tools, the text
                is the answer's content only: its tool calls are in :meth:`last_message`.

        The session keeps its conversation: what a request shares with the last one (earlier
        turns, their images) is not evaluated again. Ctrl-C cancels the request and the
        session stays usable.
        """
        options.update(
            max_tokens=max_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            min_p=min_p,
            seed=seed,
            stop=stop,
            grammar=grammar,
        )
        request = _Request(self, prompt, media, options)
        return blocking(lambda: self._answer(request)[0], request.cancel)

    def chat(self, messages: Sequence[Mapping[str, Any]], **options: Any) -> str:
        """Asks with chat messages (OpenAI-style dicts, see :mod:`mm_session.chat`) and returns
        the answer; the options are :meth:`ask`'s."""
        return self.ask(messages, **options)

    def stream(self, prompt: Prompt, media: Sequence[MediaItem] = (), **options: Any) -> Iterator[str]:
        """The answer as an iterator of text pieces (whole UTF-8 characters), as it is
        generated; the arguments are :meth:`ask`'s. Breaking out of the loop (or closing the
        iterator) stops generation."""
        request = _Request(self, prompt, media, options)
        return self._pieces(request)

    def _answer(self, request: _Request) -> tuple[str, AskInfo]:
        """Runs the request on this thread: the text ("" when streamed) and its figures (and,
        when the request wants it, its assistant message in ``request.message``)."""
        out = ffi.new("char **") if request.on_piece is None else ffi.NULL
        status = lib.mm_session_ask(self._h(), request.params, out)
        request.reraise()
        self._check(status)
        answer = ""
        if out != ffi.NULL:
            answer = _take_string(out[0])
        if request.want_message:
            request.message = chat.assistant_message(self._last_message_json())
        return answer, self.last_ask()

    def _pieces(
        self, request: _Request, wrap: Callable[[Any], Any] = str, *, events: bool = False
    ) -> Generator[Any, None, AskInfo]:
        """Streams a request's pieces (each passed through ``wrap``; with ``events``, every part
        of the answer, see :meth:`_Request.stream_to`) from a worker thread; returns its
        figures."""
        pieces: queue.SimpleQueue[Any] = queue.SimpleQueue()
        request.stream_to(pieces.put, events=events)
        call = Call(lambda: self._answer(request), request.cancel, on_done=lambda: pieces.put(_END))
        try:
            while True:
                # No `continue` inside the `except`: on CPython 3.11 a KeyboardInterrupt raised
                # by the signal check at that jump escaped this `finally`, and the call ran on.
                try:
                    piece = pieces.get(timeout=POLL_S)
                except queue.Empty:
                    piece = _NOTHING
                if piece is _END:
                    return call.result()[1]
                if piece is not _NOTHING:
                    yield wrap(piece)
        finally:
            if not call.done:
                call.stop()

    # -- asyncio -------------------------------------------------------------------------

    async def ask_async(self, prompt: Prompt, media: Sequence[MediaItem] = (), **options: Any) -> str:
        """:meth:`ask` for asyncio: the request runs on a worker thread while the event loop
        goes on. Cancelling the awaiting task cancels the request (and waits for it to stop)."""
        request = _Request(self, prompt, media, options)
        answer, _info = await _awaited(lambda: self._answer(request), request.cancel)
        return answer

    def stream_async(self, prompt: Prompt, media: Sequence[MediaItem] = (), **options: Any) -> AsyncStream:
        """:meth:`stream` for asyncio: ``async for piece in session.stream_async(...)``.
        Breaking out of the loop, or ``aclose()``, stops generation."""
        return AsyncStream(_Request(self, prompt, media, options))

    # -- llama-cpp-python's API ------------------------------------------------------------

    def create_chat_completion(
        self,
        messages: Sequence[Mapping[str, Any]],
        functions: Any = None,
        function_call: Any = None,
        tools: Any = None,
        tool_choice: Any = None,
        temperature: float = 0.2,
        top_p: float = 0.95,
        top_k: int = 40,
        min_p: float = 0.05,
        typical_p: float = 1.0,
        stream: bool = False,
        stop: str | list[str] | None = None,
        seed: int | None = None,
        response_format: Mapping[str, Any] | None = None,
        max_tokens: int | None = None,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        repeat_penalty: float = 1.0,
        tfs_z: float = 1.0,
        mirostat_mode: int = 0,
        mirostat_tau: float = 5.0,
        mirostat_eta: float = 0.1,
        model: str | None = None,
        logits_processor: Any = None,
        grammar: str | None = None,
        logit_bias: Mapping[int, float] | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        *,
        parallel_tool_calls: bool | None = None,
        reasoning: str | Reasoning | None = None,
    ) -> Any:
        """llama-cpp-python's ``Llama.create_chat_completion``: the same arguments, defaults and
        response shapes. Returns a ``chat.completion`` dict, or with ``stream=True`` an iterator
        of ``chat.completion.chunk`` dicts. ``usage`` counts the request's real tokens.

        Tool calls are OpenAI's: ``tools`` (a list of ``{"type": "function", "function":
        {"name", "description", "parameters"}}``), ``tool_choice`` ("auto", "none", "required"
        or ``{"type": "function", "function": {"name": ...}}``; "required" and a named function
        constrain the answer by a grammar, so that the arguments follow their schema) and
        ``parallel_tool_calls``; the deprecated ``functions`` and ``function_call`` become tools
        and tool_choice. The answer's ``message`` then has ``tool_calls`` (``[{"id", "type":
        "function", "function": {"name", "arguments": JSON text}}]``, with ``content`` None when
        there is nothing else) and ``finish_reason`` is "tool_calls"; chunks carry
        ``delta.tool_calls`` entries by ``index`` (id, type and name on a call's first one,
        then pieces of its arguments). Messages may carry ``tool_calls``, ``tool_call_id``,
        ``name`` and ``reasoning_content``, and role "tool". A model's separated reasoning is
        ``message.reasoning_content`` (``delta.reasoning_content`` in chunks); ``reasoning``
        ("separate", the default, "inline" or "off", see :class:`Reasoning`) changes that.

        Arguments the library has no field for (mirostat, tfs_z, logits_processor, and any
        sampling option this library version lacks) raise :class:`Unsupported` unless they
        keep llama-cpp-python's default value, which means "off".
        """
        if functions is not None and tools is not None:
            raise InvalidArgument(Status.INVALID_ARGUMENT, "create_chat_completion: give tools or functions, not both")
        if functions is not None:
            tools, tool_choice = chat.legacy_functions(functions, function_call)
        elif function_call is not None and tool_choice is None:
            tool_choice = function_call
        _refuse(
            tfs_z=(tfs_z, 1.0),
            mirostat_mode=(mirostat_mode, 0),
            logits_processor=logits_processor,
        )
        options: dict[str, Any] = {
            "temperature": temperature,
            "top_p": top_p,
            "top_k": top_k,
            "min_p": min_p,
            "typical_p": typical_p,
            "seed": seed,
            "stop": stop or None,
            "grammar": grammar,
            "presence_penalty": presence_penalty,
            "frequency_penalty": frequency_penalty,
            "repeat_penalty": repeat_penalty,
            "logit_bias": logit_bias or None,
            "max_tokens": max_tokens if max_tokens and max_tokens > 0 else self.info().n_ctx,
            "tools": tools,
            "tool_choice": tool_choice,
            "parallel_tool_calls": parallel_tool_calls,
            "reasoning": reasoning,
        }
        options.update(_response_format(response_format))
        tokens = Logprobs() if logprobs or top_logprobs else None
        if tokens is not None:
            options.update(on_token=tokens.add, n_probs=top_logprobs or 0)
        request = _Request(self, list(messages), (), options)
        ident, created, name = f"chatcmpl-{uuid.uuid4()}", int(time.time()), model or self.model_path
        if stream:
            return self._chunks(request, ident, created, name, tokens)
        request.want_message = True
        _answer, info = blocking(lambda: self._answer(request), request.cancel)
        assert request.message is not None
        message = request.message
        if functions is not None and message.get("tool_calls"):
            # llama-cpp-python's answer to the deprecated functions: the first call as well.
            message["function_call"] = message["tool_calls"][0]["function"]
        return chat.completion(
            ident,
            created,
            name,
            message,
            chat.finish_reason(info.stop_reason),
            _usage(info),
            None if tokens is None else tokens.take(),
        )

    def _chunks(
        self, request: _Request, ident: str, created: int, name: str, tokens: Logprobs | None
    ) -> Iterator[dict[str, Any]]:
        def taken() -> list[dict[str, Any]] | None:
            return None if tokens is None else tokens.take()

        def delta(event: tuple[str, Any]) -> dict[str, Any]:
            kind, value = event
            if kind == "tool_call":
                part: dict[str, Any] = {"tool_calls": [value]}
            else:
                part = {"reasoning_content" if kind == "reasoning" else "content": value}
            return chat.chunk(ident, created, name, part, logprobs=taken())

        yield chat.chunk(ident, created, name, {"role": "assistant"})
        info = yield from self._pieces(request, delta, events=True)
        yield chat.chunk(ident, created, name, {}, chat.finish_reason(info.stop_reason), taken())

    def apply_template(self, prompt: Prompt, media: Sequence[MediaItem] = (), **options: Any) -> str:
        """The text of a request's prompt without evaluating it: chat messages rendered by the
        session's chat template, with ``tools``, ``tool_choice`` and ``reasoning`` (options as
        :meth:`ask` takes them) as they change it, or a raw prompt; the marker
        (``session.marker``) stands where each media item goes. Media are not decoded."""
        request = _Request(self, prompt, media, options)
        out = ffi.new("char **")
        self._check(lib.mm_session_apply_template(self._h(), request.params, out))
        return _take_string(out[0])

    def last_message(self) -> dict[str, Any]:
        """The session's last finished answer as OpenAI's assistant message, as the library
        gives it: ``{"role": "assistant", "content": text (None when the answer is only tool
        calls), "reasoning_content": ... (when there is some), "tool_calls": [{"id", "type":
        "function", "function": {"name", "arguments"}}] (when there are some)}``. For
        :meth:`ask` and :meth:`stream`, whose result is the text alone."""
        return dict(json.loads(self._last_message_json()))

    def _last_message_json(self) -> str:
        out = ffi.new("char **")
        self._check(lib.mm_session_last_message(self._h(), out))
        return _take_string(out[0])

    # -- the rest of the C API -------------------------------------------------------------

    def cancel(self) -> None:
        """Stops the call running on this session, from any thread; that call raises
        :class:`~mm_session.Cancelled` and the session stays usable. Does not wait. (Calls on
        one session run one at a time: it stops the one running, whichever thread made it.)"""
        if not self.closed:
            lib.mm_session_cancel(self._handle)

    def count_tokens(self, prompt: Prompt, media: Sequence[MediaItem] = (), **options: Any) -> int:
        """The positions the request's prompt would take in the context, without evaluating it
        (media are decoded to count them). A request that does not fit raises ContextFull."""
        request = _Request(self, prompt, media, options)
        count = ffi.new("uint32_t *")
        self._check(lib.mm_session_count_tokens(self._h(), request.params, count))
        return int(count[0])

    def tokenize(self, text: str, *, parse_special: bool = False) -> list[int]:
        """The model's token ids for ``text`` (no BOS), e.g. for ``logit_bias``; with
        ``parse_special`` the text of a control token becomes that token."""
        keep: list[Any] = []
        c_text = c_string(text, keep)
        count = ffi.new("size_t *")
        capacity = len(text.encode("utf-8")) + 8  # tokens are rarely more than bytes
        while True:
            tokens = ffi.new("int32_t[]", capacity)
            self._check(lib.mm_session_tokenize(self._h(), c_text, parse_special, tokens, capacity, count))
            if count[0] <= capacity:
                return list(tokens[0 : count[0]])
            capacity = count[0]

    def reset(self) -> None:
        """Empties the conversation cache: the next request evaluates everything."""
        self._check(lib.mm_session_reset(self._h()))

    def info(self) -> SessionInfo:
        out = _output("mm_session_info")
        self._check(lib.mm_session_get_info(self._h(), out))
        return _from_struct(SessionInfo, out)

    def memory(self) -> MemoryStats:
        out = _output("mm_memory_stats")
        self._check(lib.mm_session_memory(self._h(), out))
        return _from_struct(MemoryStats, out)

    def last_ask(self) -> AskInfo:
        """Figures of the session's last finished request (zeros before the first)."""
        out = _output("mm_ask_info")
        self._check(lib.mm_session_last_ask(self._h(), out))
        return _from_struct(AskInfo, out)

    def save_state(self, path: str | os.PathLike[str]) -> None:
        """Writes the conversation (KV cache and what it holds) to ``path``, replacing it whole."""
        self._check(lib.mm_session_save_state(self._h(), os.fsencode(path)))

    def load_state(self, path: str | os.PathLike[str]) -> None:
        """Replaces the conversation with one saved from the same model and projector files; a
        failure (StateError) leaves the session as it was."""
        self._check(lib.mm_session_load_state(self._h(), os.fsencode(path)))

    def fork(self, *, copy_conversation: bool = False, **options: Any) -> Session:
        """A new session over the same weights (nothing is loaded again) with a context of its
        own; ``options`` are ``mm_fork_params`` fields (``n_ctx``, ``n_batch``, ``n_threads``,
        ``seed``; None or 0: the parent's). With ``copy_conversation`` it starts from a copy of
        this session's conversation. Close each session; the weights go with the last.

        A fork of a session created with ``n_parallel`` > 1 joins its context instead and
        decodes together with it: ``n_ctx``, ``n_batch`` and ``n_threads`` must then be None,
        0 or the parent's (else :class:`~mm_session.InvalidArgument`)."""
        keep: list[Any] = []
        params = ffi.new("mm_fork_params *", lib.mm_fork_params_default())
        fill(params, "mm_fork_params", dict(copy_conversation=copy_conversation, **options), keep)
        out = ffi.new("mm_session **")
        self._check(lib.mm_session_fork(self._h(), params, out))
        forked = Session.__new__(Session)
        forked._adopt(out[0], self.model_path, self.mmproj_path)
        return forked


class AsyncStream:
    """The pieces of a request for ``async for``; the request starts at the first iteration."""

    def __init__(self, request: _Request) -> None:
        self._request = request
        self._call: Call[tuple[str, AskInfo]] | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> str:
        if self._call is None:
            self._start(asyncio.get_running_loop())
        try:
            piece = await self._queue.get()
        except asyncio.CancelledError:
            self._request.cancel()
            raise
        if piece is _END:
            assert self._call is not None
            self._call.result()
            raise StopAsyncIteration
        return str(piece)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        def post(item: Any) -> None:
            _post(loop, self._queue.put_nowait, item)

        self._request.stream_to(post)
        session = self._request.session
        self._call = Call(lambda: session._answer(self._request), self._request.cancel, on_done=lambda: post(_END))

    async def aclose(self) -> None:
        """Stops the request and waits until it has returned."""
        if self._call is not None:
            while not self._call.done:
                self._request.cancel()
                await asyncio.sleep(0.01)

    def __del__(self) -> None:
        if self._call is not None and not self._call.done:
            self._request.cancel()


def _take_string(pointer: Any) -> str:
    """A string the library allocated, as str; frees it."""
    try:
        return str(ffi.string(pointer).decode("utf-8"))
    finally:
        lib.mm_string_free(pointer)


def _post(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    """Schedules fn(*args) on the loop from another thread (nothing if the loop is closed)."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        pass


async def _awaited(work: Callable[[], T], cancel: Callable[[], None]) -> T:
    """Runs work on a worker thread and awaits it without blocking the loop; a cancelled task
    cancels the work and waits for it to stop."""
    loop = asyncio.get_running_loop()
    finished = loop.create_future()
    call = Call(work, cancel, on_done=lambda: _post(loop, _resolve, finished))
    try:
        await finished
    except asyncio.CancelledError:
        while not call.done:
            cancel()
            await asyncio.sleep(0.01)
        raise
    return call.result()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _refuse(**arguments: Any) -> None:
    """Raises Unsupported for a llama-cpp-python argument given a value this library cannot
    honour; a (value, default) pair is refused only when the value differs from the default."""
    for name, value in arguments.items():
        if isinstance(value, tuple):
            value = None if value[0] == value[1] else value[0]
        if value is not None:
            raise Unsupported(Status.UNSUPPORTED, f"create_chat_completion: {name} is not supported by mm_session")


# What response_format {"type": "json_object"} without a schema means: JSON text whose top
# level is an object, as llama.cpp's grammars/json.gbnf has it, with its repetitions written as
# right recursion (which llama.cpp makes of them anyway).
JSON_GRAMMAR = r"""
root        ::= object
value       ::= object | array | string | number | ("true" | "false" | "null") ws
object      ::= "{" ws object-rest
object-rest ::= "}" ws | member members
members     ::= "}" ws | "," ws member members
member      ::= string ":" ws value
array       ::= "[" ws array-rest
array-rest  ::= "]" ws | value elements
elements    ::= "]" ws | "," ws value elements
string      ::= "\"" chars
chars       ::= "\"" ws | char chars
char        ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" hex hex hex hex)
hex         ::= [0-9a-fA-F]
number      ::= "-"? ("0" | [1-9] [0-9]*) ("." [0-9]+)? ([eE] [-+]? [0-9]+)? ws
ws          ::= | " " ws | "\n" ws
"""


def _response_format(response_format: Mapping[str, Any] | None) -> dict[str, Any]:
    """OpenAI's and llama-cpp-python's response_format: "json_object" (with an optional
    "schema") or "json_schema" ({"json_schema": {"schema": ...}}) constrain the answer to JSON:
    a schema through ``json_schema``, any JSON object through :data:`JSON_GRAMMAR`."""
    kind = (response_format or {}).get("type", "text")
    if kind == "text":
        return {}
    assert response_format is not None
    if kind == "json_object":
        schema = response_format.get("schema")
    elif kind == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema")
    else:
        raise Unsupported(Status.UNSUPPORTED, f"response_format {kind!r}: use text, json_object or json_schema")
    return {"grammar": JSON_GRAMMAR} if schema is None else {"json_schema": schema}


def _usage(info: AskInfo) -> dict[str, int]:
    """OpenAI's usage from the request's real counts: the prompt's text tokens plus the
    embeddings of its media, and the tokens generated."""
    prompt = info.prompt_tokens + info.media_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": info.tokens_generated,
        "total_tokens": prompt + info.tokens_generated,
    }


def live_sessions() -> int:
    """Sessions that exist now in this process (created and not yet closed)."""
    return int(lib.mm_live_sessions())


def loaded_models() -> int:
    """Text models (each with its projector) loaded now in this process: a session and its
    forks share one."""
    return int(lib.mm_loaded_models())


__all__ = [
    "JSON_GRAMMAR",
    "AskInfo",
    "AsyncStream",
    "MemoryStats",
    "Session",
    "SessionInfo",
    "TokenLogprob",
    "live_sessions",
    "loaded_models",
]
