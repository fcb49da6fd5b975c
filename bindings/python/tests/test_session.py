"""Sessions: create, ask, stream, chat, errors, media kinds, state, forks, logging."""

from __future__ import annotations

import array
import base64
import gc
import json
import logging
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mm_session
from conftest import COLOURS, ENDLESS_GRAMMAR, QUESTION
from mm_session import Session


def greedy(s: Session, *args, **kwargs) -> str:
    """A greedy answer, stripped, after checking that it ended on end of generation."""
    answer = s.ask(*args, temperature=0, max_tokens=8, **kwargs)
    assert s.last_ask().stop_reason == mm_session.StopReason.EOG
    return answer.strip()


# -- lifetime ------------------------------------------------------------------------------


def test_ask_with_two_images_and_close(tiny_dir: Path) -> None:
    s = Session(tiny_dir / "tiny-llama.gguf", tiny_dir / "tiny-mmproj.gguf", n_ctx=512, n_threads=1)
    assert mm_session.live_sessions() == 1 and mm_session.loaded_models() == 1
    answer = s.ask(
        "Compare the two images.",
        media=[tiny_dir / "tiny-image.png", str(tiny_dir / "tiny-image.png")],
        max_tokens=8,
        seed=1,
    )
    assert isinstance(answer, str)
    info = s.last_ask()
    assert info.media_encoded == 2 and 1 <= info.tokens_generated <= 8
    s.close()
    s.close()
    assert s.closed and mm_session.live_sessions() == 0 and mm_session.loaded_models() == 0


def test_every_call_after_close_raises(tiny: Session, tmp_path: Path) -> None:
    tiny.close()
    calls = [
        lambda: tiny.ask("x"),
        lambda: tiny.chat([{"role": "user", "content": "x"}]),
        lambda: list(tiny.stream("x")),
        lambda: tiny.create_chat_completion([{"role": "user", "content": "x"}]),
        lambda: tiny.count_tokens("x"),
        tiny.reset,
        tiny.info,
        tiny.memory,
        tiny.last_ask,
        tiny.fork,
        lambda: tiny.save_state(tmp_path / "s"),
        lambda: tiny.load_state(tmp_path / "s"),
        lambda: tiny.__enter__(),
    ]
    for call in calls:
        with pytest.raises(mm_session.SessionClosed) as raised:
            call()
        assert raised.value.status == mm_session.Status.INVALID_HANDLE
        assert isinstance(raised.value, mm_session.Error)
    tiny.cancel()  # a no-op, never an error
    assert "closed" in repr(tiny)


def test_an_unclosed_session_is_freed_by_its_finalizer(tiny_dir: Path) -> None:
    s = Session(tiny_dir / "tiny-llama.gguf", n_ctx=256, n_threads=1)
    assert mm_session.live_sessions() == 1
    del s
    gc.collect()
    assert mm_session.live_sessions() == 0


# -- errors --------------------------------------------------------------------------------


def test_a_missing_model_is_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(mm_session.FileNotFound) as raised:
        Session(missing)
    error = raised.value
    assert error.status == mm_session.Status.FILE_NOT_FOUND == 4
    assert error.status.name == "FILE_NOT_FOUND"
    assert str(missing) in error.message and "FILE_NOT_FOUND (4)" in str(error)
    assert isinstance(error, mm_session.FileError)


def test_load_failures_by_family(tiny_dir: Path, mismatch_dir: Path) -> None:
    with pytest.raises(mm_session.ModelLoadError) as raised:
        Session(tiny_dir / "tiny-llama.gguf", mismatch_dir / "tiny-mmproj.gguf", n_threads=1)
    assert raised.value.status == mm_session.Status.PROJECTOR_MISMATCH
    with pytest.raises(mm_session.FileError) as wrong:
        Session(tiny_dir / "tiny-mmproj.gguf", n_threads=1)
    assert wrong.value.status == mm_session.Status.WRONG_FILE_KIND
    with pytest.raises(mm_session.FileError) as directory:
        Session(tiny_dir, n_threads=1)
    assert directory.value.status == mm_session.Status.NOT_A_FILE


def test_request_errors_by_family(tiny: Session, tiny_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(mm_session.InvalidArgument) as bad_grammar:
        tiny.ask("x", grammar="root ::= (")
    assert isinstance(bad_grammar.value, ValueError)
    with pytest.raises(mm_session.MediaError) as count:
        tiny.ask(f"{tiny.marker} and {tiny.marker}", media=[tiny_dir / "tiny-image.png"])
    assert count.value.status == mm_session.Status.MEDIA_COUNT
    with pytest.raises(mm_session.MediaError):
        tiny.ask("x", media=[b"not an image"])
    with pytest.raises(mm_session.FileNotFound):
        tiny.ask("x", media=[tmp_path / "missing.png"])
    with pytest.raises(mm_session.ContextFull):
        tiny.ask("word " * 5000)
    assert tiny.ask("still usable", max_tokens=2) is not None


def test_session_options_reach_the_library(tiny_dir: Path) -> None:
    """Options of every C type: a string list of servers, an array of floats with its count."""
    model = tiny_dir / "tiny-llama.gguf"
    with pytest.raises(mm_session.InvalidArgument, match="rpc_servers"):
        Session(model, n_threads=1, rpc_servers="not a server list")
    with pytest.raises(mm_session.RemoteError) as remote:
        Session(model, n_threads=1, rpc_servers="127.0.0.1:1")
    assert remote.value.status == mm_session.Status.REMOTE
    with pytest.raises(mm_session.InvalidArgument, match="tensor_split has 2 entries"):
        Session(model, n_threads=1, tensor_split=[3.0, 1.0])  # the array and its count arrive
    with Session(
        model,
        n_threads=1,
        n_batch=64,
        use_mmap=False,
        chat_template="chatml",
        flash_attn=mm_session.FlashAttn.ON,
        kv_type_k=mm_session.KvType.F16,
        kv_type_v=mm_session.KvType.F16,
        n_ubatch=32,
        use_mlock=False,
    ) as s:
        s.ask("x", max_tokens=1)
    with pytest.raises(mm_session.ModelLoadError, match="q8_0"):  # the tiny model's heads are 16 wide
        Session(model, n_threads=1, flash_attn=mm_session.FlashAttn.ON, kv_type_k=mm_session.KvType.Q8_0)
    with pytest.raises(mm_session.InvalidArgument, match="kv_type_k"):
        Session(model, n_threads=1, kv_type_k=7)
    info = mm_session.build_info()
    assert info.startswith(f"mm-session {mm_session.version()}") and "CPU" in info


def test_text_only_session_refuses_images(tiny_dir: Path) -> None:
    with Session(tiny_dir / "tiny-llama.gguf", n_threads=1) as s:
        with pytest.raises(mm_session.Unsupported):
            s.ask("x", media=[tiny_dir / "tiny-image.png"])
        assert not s.info().supports_vision


def test_options_are_the_c_fields(tiny: Session) -> None:
    with pytest.raises(TypeError, match="unknown option 'no_such_option'"):
        tiny.ask("x", no_such_option=1)
    with pytest.raises(TypeError, match="unknown option"):
        tiny.ask("x", struct_size=4)
    with pytest.raises(mm_session.InvalidArgument):
        tiny.ask("x", max_tokens=0)
    tiny.ask("x", max_tokens=2, overflow=mm_session.Overflow.DROP_OLDEST, plain_prompt=True, top_k=5)
    with pytest.raises(ValueError, match="NUL"):
        tiny.ask("a\0b")
    with pytest.raises(TypeError, match="inside the chat messages"):
        tiny.ask([{"role": "user", "content": "x"}], media=["a.png"])


# -- answers that depend on the image: the pair that sees -----------------------------------


def test_each_media_kind_reaches_the_model(seeing: Session, seeing_dir: Path) -> None:
    red_png = seeing_dir / "seeing-red.png"
    assert greedy(seeing, QUESTION, [red_png]) == "red"
    assert greedy(seeing, QUESTION, [str(seeing_dir / "seeing-blue.png")]) == "blue"
    assert greedy(seeing, QUESTION, [(seeing_dir / "seeing-green.png").read_bytes()]) == "green"
    for name, rgb in COLOURS.items():
        pixels = np.full((32, 32, 3), rgb, dtype=np.uint8)
        assert greedy(seeing, QUESTION, [pixels]) == name, "numpy"
    assert greedy(seeing, QUESTION, [Image.new("RGB", (40, 24), COLOURS["yellow"])]) == "yellow"
    assert greedy(seeing, QUESTION, [Image.new("RGBA", (32, 32), (0, 0, 255, 255))]) == "blue"
    assert greedy(seeing, QUESTION, [mm_session.Rgb(bytes(COLOURS["white"]) * 20 * 20, 20, 20)]) == "white"
    wide = np.zeros((32, 64, 3), dtype=np.uint8)
    wide[:, :, 1] = 255
    assert greedy(seeing, QUESTION, [wide[:, ::2]]) == "green", "a strided (non-contiguous) array"
    with pytest.raises(TypeError):
        seeing.ask(QUESTION, media=[np.zeros((4, 4), dtype=np.uint8)])


def test_create_chat_completion_like_llama_cpp_python(seeing: Session, seeing_dir: Path) -> None:
    uri = "data:image/png;base64," + base64.b64encode((seeing_dir / "seeing-red.png").read_bytes()).decode()
    messages = [
        {
            "role": "user",
            "content": [{"type": "text", "text": QUESTION}, {"type": "image_url", "image_url": {"url": uri}}],
        }
    ]
    response = seeing.create_chat_completion(messages=messages, temperature=0, max_tokens=8)
    assert response["object"] == "chat.completion" and response["id"].startswith("chatcmpl-")
    assert isinstance(response["created"], int) and response["model"] == seeing.model_path
    choice = response["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": choice["message"]["content"]}
    assert choice["message"]["content"].strip() == "red" and choice["finish_reason"] == "stop"
    info = seeing.last_ask()
    assert info.media_items == 1 and info.media_tokens > 0 and info.prompt_tokens > 0
    assert info.prompt_positions == info.prompt_tokens + info.media_positions
    prompt_tokens = info.prompt_tokens + info.media_tokens
    assert response["usage"] == {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": info.tokens_generated,
        "total_tokens": prompt_tokens + info.tokens_generated,
    }
    # A follow-up: the whole conversation again; the first picture comes from the cache.
    messages += [
        choice["message"],
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "And this one?"},
                {"type": "image_url", "image_url": str(seeing_dir / "seeing-blue.png")},
            ],
        },
    ]
    follow_up = seeing.create_chat_completion(messages, temperature=0, max_tokens=8, model="mine")
    assert follow_up["choices"][0]["message"]["content"].strip() == "blue" and follow_up["model"] == "mine"
    assert seeing.last_ask().media_encoded == 1 and seeing.last_ask().positions_reused > 0


def test_create_chat_completion_stream_gives_chunks(seeing: Session, seeing_dir: Path) -> None:
    url = (seeing_dir / "seeing-green.png").resolve().as_uri()
    messages = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": QUESTION}],
        }
    ]
    chunks = list(seeing.create_chat_completion(messages, stream=True, temperature=0, max_tokens=8))
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.strip() == "green"
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}


def test_image_urls_over_http(seeing: Session, seeing_dir: Path) -> None:
    """An http:// image URL is fetched, as llama-cpp-python does (a server on 127.0.0.1)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(seeing_dir))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/seeing-yellow.png"
        messages = [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": QUESTION}],
            }
        ]
        response = seeing.create_chat_completion(messages, temperature=0, max_tokens=8)
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
    assert response["choices"][0]["message"]["content"].strip() == "yellow"


def test_chat_messages_with_python_media(seeing: Session) -> None:
    red = np.full((32, 32, 3), COLOURS["red"], dtype=np.uint8)
    answer = seeing.chat([{"role": "user", "content": QUESTION, "media": [red]}], temperature=0, max_tokens=8)
    assert answer.strip() == "red"


def test_llama_cpp_python_arguments_it_cannot_honour(tiny: Session) -> None:
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(mm_session.Unsupported, match="mirostat_mode"):
        tiny.create_chat_completion(messages, mirostat_mode=2)
    with pytest.raises(mm_session.Unsupported, match="tfs_z"):
        tiny.create_chat_completion(messages, tfs_z=0.5)
    with pytest.raises(mm_session.Unsupported, match="logits_processor"):
        tiny.create_chat_completion(messages, logits_processor=[lambda ids, logits: logits])
    # Their defaults mean "off", and pass.
    tiny.create_chat_completion(messages, max_tokens=2, tfs_z=1.0, mirostat_mode=0)
    with pytest.raises(mm_session.InvalidArgument):
        tiny.create_chat_completion(messages, max_tokens=2, repeat_penalty=0.0)


def test_json_response_formats_constrain_the_answer(tiny: Session) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    formats = [
        {"type": "json_object"},
        {"type": "json_object", "schema": schema},
        {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
    ]
    for seed, response_format in enumerate(formats):
        response = tiny.create_chat_completion(
            [{"role": "user", "content": "json"}],
            max_tokens=300,
            seed=seed,
            temperature=1.0,
            response_format=response_format,
        )
        choice = response["choices"][0]
        assert choice["finish_reason"] == "stop", choice
        answer = json.loads(choice["message"]["content"])
        assert isinstance(answer, dict)
        if "schema" in response_format or "json_schema" in response_format:
            assert isinstance(answer["n"], int)
    answer = tiny.ask("json", max_tokens=300, json_schema=json.dumps(schema), temperature=1.0, seed=9)
    assert isinstance(json.loads(answer)["n"], int)


def test_logprobs_like_openai(tiny: Session) -> None:
    response = tiny.create_chat_completion(
        [{"role": "user", "content": "x"}], max_tokens=12, seed=2, logprobs=True, top_logprobs=3
    )
    content = response["choices"][0]["logprobs"]["content"]
    assert len(content) == response["usage"]["completion_tokens"]
    for entry in content:
        assert entry["logprob"] <= 0 and len(entry["top_logprobs"]) == 3
        assert entry["top_logprobs"][0]["logprob"] >= entry["logprob"]
    if response["choices"][0]["finish_reason"] == "length":  # no stop string cut the text
        text = bytes(b for entry in content for b in entry["bytes"]).decode("utf-8", "replace")
        assert text == response["choices"][0]["message"]["content"]
    chunks = list(
        tiny.create_chat_completion(
            [{"role": "user", "content": "x"}], max_tokens=12, seed=2, logprobs=True, stream=True
        )
    )
    streamed = [e for c in chunks[1:] for e in c["choices"][0]["logprobs"]["content"]]
    assert [e["token"] for e in streamed] == [e["token"] for e in content]
    assert all(e["top_logprobs"] == [] for e in streamed)


def test_tokenize_logit_bias_and_on_token(tiny: Session) -> None:
    tokens = tiny.tokenize("hello world")
    assert tokens and all(isinstance(t, int) for t in tokens)
    assert tiny.tokenize("<|im_end|>", parse_special=True) != tiny.tokenize("<|im_end|>")
    seen: list = []
    tiny.ask(
        "x",
        max_tokens=3,
        logit_bias={tokens[0]: 100.0},
        n_probs=2,
        on_token=lambda chosen, top: seen.append((chosen, top)),
    )
    assert len(seen) == 3 and all(chosen.token == tokens[0] for chosen, _top in seen)
    assert all(len(top) == 2 and isinstance(top[0], mm_session.TokenLogprob) for _chosen, top in seen)

    def fails(_chosen: object, _top: object) -> None:
        raise RuntimeError("from on_token")

    with pytest.raises(RuntimeError, match="from on_token"):
        tiny.ask("x", max_tokens=50, on_token=fails)
    tiny.ask(
        "x",
        max_tokens=4,
        repeat_penalty=1.3,
        penalty_last_n=16,
        frequency_penalty=0.5,
        presence_penalty=0.5,
        typical_p=0.9,
        dry_multiplier=0.8,
        dry_base=1.75,
        dry_allowed_length=2,
        dry_penalty_last_n=-1,
    )


def test_max_tokens_and_stop(tiny: Session) -> None:
    response = tiny.create_chat_completion([{"role": "user", "content": "x"}], max_tokens=3, grammar=ENDLESS_GRAMMAR)
    assert response["choices"][0]["finish_reason"] == "length" and response["usage"]["completion_tokens"] == 3
    answer = tiny.ask("x", max_tokens=50, grammar='root ::= "abc" "-" [a-z]+', stop=["-"], temperature=0)
    assert answer == "abc" and tiny.last_ask().stop_reason == mm_session.StopReason.STRING


# -- streaming -----------------------------------------------------------------------------


def test_stream_gives_the_same_text_as_ask(tiny: Session, tiny_dir: Path) -> None:
    image = tiny_dir / "tiny-image.png"
    answer = tiny.ask("Describe", [image], max_tokens=24, seed=7)
    tiny.reset()
    pieces = list(tiny.stream("Describe", [image], max_tokens=24, seed=7))
    assert "".join(pieces) == answer and len(pieces) > 1
    assert all(isinstance(p, str) for p in pieces)


def test_breaking_out_of_a_stream_stops_generation(tiny: Session) -> None:
    """The request stops, cancelled (NONE) or refused by the text callback (CALLBACK), rather than
    run to max_tokens (how many tokens it made meanwhile depends on how busy the machine is)."""
    for n, _piece in enumerate(tiny.stream("x", max_tokens=3000, grammar=ENDLESS_GRAMMAR), start=1):
        if n == 5:
            break
    info = tiny.last_ask()
    assert info.stop_reason in (mm_session.StopReason.NONE, mm_session.StopReason.CALLBACK), info
    assert 5 <= info.tokens_generated < 3000, info
    tiny.ask("usable", max_tokens=3, grammar=ENDLESS_GRAMMAR)
    assert tiny.last_ask().tokens_generated == 3


# -- the rest of the API --------------------------------------------------------------------


def test_info_memory_and_last_ask(tiny: Session, tiny_dir: Path) -> None:
    info = tiny.info()
    assert (info.n_ctx, info.n_past, info.supports_vision, info.supports_audio) == (4096, 0, True, False)
    assert info.marker == tiny.marker == "<__media__>"
    assert tiny.last_ask().stop_reason == mm_session.StopReason.NONE
    tiny.ask("x", [tiny_dir / "tiny-image.png"], max_tokens=2)
    assert tiny.info().n_past > 0
    memory = tiny.memory()
    assert memory.model_host > 0 and memory.kv_host > 0 and memory.projector_host > 0 and memory.shared_by == 1
    assert memory.host >= memory.model_host + memory.kv_host and memory.gpu == 0
    assert tiny.count_tokens("x", [tiny_dir / "tiny-image.png"]) == tiny.last_ask().prompt_positions


def test_save_and_load_state(tiny: Session, tiny_dir: Path, tmp_path: Path) -> None:
    image = tiny_dir / "tiny-image.png"
    tiny.ask("Describe", [image], max_tokens=4)
    state = tmp_path / "chat.mmstate"
    tiny.save_state(state)
    tiny.reset()
    tiny.load_state(str(state))
    tiny.ask("Describe", [image], max_tokens=4)
    assert tiny.last_ask().media_encoded == 0 and tiny.last_ask().positions_reused > 0
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(mm_session.StateError) as corrupt:
        tiny.load_state(state)
    assert corrupt.value.status == mm_session.Status.STATE_CORRUPT


def test_fork_shares_the_weights(tiny: Session, tiny_dir: Path) -> None:
    tiny.ask("Describe", [tiny_dir / "tiny-image.png"], max_tokens=2)
    with tiny.fork(copy_conversation=True, n_ctx=1024) as child:
        assert mm_session.live_sessions() == 2 and mm_session.loaded_models() == 1
        assert child.info().n_ctx == 1024 and child.memory().shared_by == 2
        child.ask("Describe", [tiny_dir / "tiny-image.png"], max_tokens=2)
        assert child.last_ask().media_encoded == 0
        tiny.close()
        assert mm_session.loaded_models() == 1, "the fork keeps the weights"
        child.ask("more", max_tokens=2)
    assert mm_session.loaded_models() == 0


def test_progress_callback_and_its_cancel(tiny_dir: Path) -> None:
    seen = []
    with Session(tiny_dir / "tiny-llama.gguf", tiny_dir / "tiny-mmproj.gguf", n_threads=1, on_progress=seen.append):
        pass
    assert seen and seen[-1] == pytest.approx(1.0)
    with pytest.raises(mm_session.Cancelled):
        Session(tiny_dir / "tiny-llama.gguf", n_threads=1, on_progress=lambda p: False)

    def fails(_p: float) -> bool:
        raise RuntimeError("from the callback")

    with pytest.raises(RuntimeError, match="from the callback"):
        Session(tiny_dir / "tiny-llama.gguf", n_threads=1, on_progress=fails)


def test_audio_as_file_and_pcm(audio_dir: Path) -> None:
    with Session(audio_dir / "tiny-llama.gguf", audio_dir / "tiny-audio-mmproj.gguf", n_threads=1) as s:
        rate = s.info().audio_sample_rate
        assert s.info().supports_audio and rate > 0
        s.ask("Listen", [audio_dir / "tiny-tone.wav"], max_tokens=2)
        assert s.last_ask().media_encoded == 1
        with wave.open(str(audio_dir / "tiny-tone.wav")) as w:
            assert w.getframerate() == rate and w.getsampwidth() == 2
            ints = array.array("h", w.readframes(w.getnframes()))
        samples = array.array("f", (x / 32768 for x in ints))
        for item in (
            samples,
            mm_session.Pcm(samples),
            mm_session.Pcm(list(samples)),
            np.asarray(samples, dtype=np.float32),
        ):
            s.reset()
            s.ask("Listen", [item], max_tokens=2)
            assert s.last_ask().media_encoded == 1
        with pytest.raises(mm_session.InvalidArgument):
            s.ask("Listen", [array.array("f", [0.0] * (rate * 601))])
        s.reset()
        wav = base64.b64encode((audio_dir / "tiny-tone.wav").read_bytes()).decode()
        s.create_chat_completion(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_audio", "input_audio": {"data": wav, "format": "wav"}},
                        {"type": "text", "text": "What is this sound?"},
                    ],
                }
            ],
            max_tokens=2,
        )
        assert s.last_ask().media_encoded == 1


def test_library_logs_reach_python_logging(tiny_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    model, mmproj = tiny_dir / "tiny-llama.gguf", tiny_dir / "tiny-mmproj.gguf"
    with caplog.at_level(logging.INFO, logger="mm_session"), Session(model, mmproj, n_threads=1):
        pass
    records = [r for r in caplog.records if r.name == "mm_session"]
    assert any("projector" in r.getMessage() or "load" in r.getMessage() for r in records), records[:3]
    assert all(not r.getMessage().endswith("\n") for r in records)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="mm_session"), Session(model, n_threads=1):
        pass
    assert not [r for r in caplog.records if r.name == "mm_session" and r.levelno < logging.ERROR]
