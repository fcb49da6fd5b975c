"""Tool calls and reasoning in OpenAI's shapes: required and named calls that follow their
schema even with random weights, streamed deltas that assemble into the same calls, a round
trip that reuses the cache, the legacy functions, a model's reasoning kept apart, and bad
input refused with InvalidArgument."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import mm_session
from mm_session import Session

WEATHER_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "enum": ["Paris", "Oslo", "Lima"]},
                    "days": {"type": "integer", "minimum": 1, "maximum": 9},
                },
                "required": ["city", "days"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "The time in a time zone.",
            "parameters": {
                "type": "object",
                "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}},
                "required": ["zone"],
                "additionalProperties": False,
            },
        },
    },
]
QUESTION = [{"role": "user", "content": "What is the weather in Oslo for the next 3 days?"}]
SEEDS = range(1, 6)


def validate_call(call: dict[str, Any]) -> None:
    """Checks one of an answer's tool calls against WEATHER_TOOLS' schemas, by hand."""
    assert call["type"] == "function" and call["id"].startswith("call_"), call
    name, arguments = call["function"]["name"], json.loads(call["function"]["arguments"])
    if name == "get_weather":
        assert sorted(arguments) == ["city", "days"], arguments
        assert arguments["city"] in ("Paris", "Oslo", "Lima"), arguments
        days = arguments["days"]
        assert isinstance(days, int) and not isinstance(days, bool) and 1 <= days <= 9, arguments
    else:
        assert name == "get_time", call
        assert arguments == {"zone": "UTC"} or arguments == {"zone": "CET"}, arguments


def calls_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool calls of a tool-call answer, after checking its shape."""
    choice = response["choices"][0]
    assert choice["finish_reason"] == "tool_calls", choice
    message = choice["message"]
    assert message["role"] == "assistant" and set(message) <= {"role", "content", "tool_calls"}, message
    assert message["content"] is None or isinstance(message["content"], str), message
    assert message["tool_calls"], message
    for call in message["tool_calls"]:
        validate_call(call)
    return list(message["tool_calls"])


def assembled(chunks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """Streamed chunks' tool call deltas assembled by index (arguments joined in order), and
    the content pieces joined (None when there were none)."""
    calls: dict[int, dict[str, Any]] = {}
    content = None
    for chunk in chunks[1:-1]:
        delta = chunk["choices"][0]["delta"]
        assert chunk["choices"][0]["finish_reason"] is None
        if "content" in delta:
            content = (content or "") + delta["content"]
        for entry in delta.get("tool_calls", []):
            index, function = entry["index"], entry["function"]
            if index not in calls:
                # A call's first delta names it.
                assert entry["type"] == "function" and entry["id"] and function["name"], entry
                calls[index] = {"id": entry["id"], "type": "function", "function": {**function}}
            else:
                assert "id" not in entry and "name" not in function, entry
                calls[index]["function"]["arguments"] += function["arguments"]
    assert sorted(calls) == list(range(len(calls)))
    return [calls[i] for i in sorted(calls)], content


# -- the "Done when": required and named calls follow their schema ----------------------------


def test_required_tool_calls_follow_their_schema(tiny: Session) -> None:
    for seed in SEEDS:
        response = tiny.create_chat_completion(
            QUESTION, tools=WEATHER_TOOLS, tool_choice="required", seed=seed, temperature=1.0
        )
        calls = calls_of(response)
        assert len(calls) == 1, response
        info = tiny.last_ask()
        assert info.stop_reason == mm_session.StopReason.TOOL_CALLS and info.tool_calls == 1
        assert response["usage"]["completion_tokens"] == info.tokens_generated > 0
    # Several calls in one answer, when allowed: each one follows its schema.
    for seed in SEEDS:
        response = tiny.create_chat_completion(
            QUESTION,
            tools=WEATHER_TOOLS,
            tool_choice="required",
            parallel_tool_calls=True,
            seed=seed,
            temperature=1.0,
        )
        calls = calls_of(response)
        assert len({c["id"] for c in calls}) == len(calls) == tiny.last_ask().tool_calls


def test_a_named_function_is_the_one_called(tiny: Session) -> None:
    for name in ("get_time", "get_weather"):
        choice = {"type": "function", "function": {"name": name}}
        for seed in SEEDS:
            response = tiny.create_chat_completion(
                QUESTION, tools=WEATHER_TOOLS, tool_choice=choice, seed=seed, temperature=1.0
            )
            calls = calls_of(response)
            assert [c["function"]["name"] for c in calls] == [name], calls
    # The tool_choice may also be the name alone, as the C field takes it.
    response = tiny.create_chat_completion(QUESTION, tools=WEATHER_TOOLS, tool_choice="get_weather", seed=1)
    assert [c["function"]["name"] for c in calls_of(response)] == ["get_weather"]


def test_streamed_tool_call_deltas_assemble_into_the_answer(tiny: Session) -> None:
    for seed, choice in [(1, "required"), (2, {"type": "function", "function": {"name": "get_weather"}})]:
        options: dict[str, Any] = {"tools": WEATHER_TOOLS, "tool_choice": choice, "seed": seed, "temperature": 1.0}
        whole = tiny.create_chat_completion(QUESTION, **options)
        chunks = list(tiny.create_chat_completion(QUESTION, stream=True, **options))
        assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
        assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}
        calls, content = assembled(chunks)
        assert calls == calls_of(whole)
        assert content == whole["choices"][0]["message"]["content"]


def test_ask_with_tools_and_last_message(tiny: Session) -> None:
    """The request keywords of ask() and stream() are the C fields: tools, tool_choice; the text
    is the content, and the calls are in last_message()."""
    answer = tiny.ask(QUESTION, tools=WEATHER_TOOLS, tool_choice="get_time", temperature=1.0, seed=3, max_tokens=256)
    message = tiny.last_message()
    assert message["role"] == "assistant" and message["content"] is None and answer == ""
    validate_call(message["tool_calls"][0])
    assert message["tool_calls"][0]["function"]["name"] == "get_time"
    assert tiny.last_ask().stop_reason == mm_session.StopReason.TOOL_CALLS
    pieces = list(tiny.stream(QUESTION, tools=WEATHER_TOOLS, tool_choice="required", max_tokens=256))
    assert "".join(pieces) == (tiny.last_message()["content"] or "")
    assert tiny.last_ask().tool_calls == 1


# -- a round trip ----------------------------------------------------------------------------


def test_a_tool_round_trip_reuses_the_cache(tiny: Session) -> None:
    first = tiny.create_chat_completion(
        QUESTION, tools=WEATHER_TOOLS, tool_choice={"type": "function", "function": {"name": "get_weather"}}, seed=4
    )
    [call] = calls_of(first)
    assistant = first["choices"][0]["message"]
    result = {"role": "tool", "tool_call_id": call["id"], "name": "get_weather", "content": '{"sky": "rain"}'}
    messages = [*QUESTION, assistant, result, {"role": "user", "content": "Should I take an umbrella?"}]
    rendered = tiny.apply_template(messages, tools=WEATHER_TOOLS)
    assert call["id"] in rendered and '{\\"sky\\": \\"rain\\"}' in rendered and "umbrella" in rendered
    # Arguments given as a dict render as the same JSON text.
    as_dict = copy.deepcopy(messages)
    function = as_dict[1]["tool_calls"][0]["function"]
    function["arguments"] = json.loads(function["arguments"])
    assert tiny.apply_template(as_dict, tools=WEATHER_TOOLS) == rendered

    second = tiny.create_chat_completion(as_dict, tools=WEATHER_TOOLS, max_tokens=4, seed=4)
    choice = second["choices"][0]
    assert choice["finish_reason"] in ("length", "stop", "tool_calls"), choice
    info = tiny.last_ask()
    # Everything the first request evaluated is still in the cache.
    assert info.positions_reused >= first["usage"]["prompt_tokens"] > 0, info
    assert second["usage"]["prompt_tokens"] == info.prompt_tokens > info.positions_reused

    # A result for a call no message made is refused, naming the id.
    stray = copy.deepcopy(messages)
    stray[2]["tool_call_id"] = "call_nobodymadethis"
    with pytest.raises(mm_session.InvalidArgument, match="call_nobodymadethis"):
        tiny.create_chat_completion(stray, tools=WEATHER_TOOLS, max_tokens=4)


def test_legacy_functions_become_tools(tiny: Session) -> None:
    functions = [t["function"] for t in WEATHER_TOOLS]
    response = tiny.create_chat_completion(QUESTION, functions=functions, function_call={"name": "get_time"}, seed=2)
    message = response["choices"][0]["message"]
    [call] = message["tool_calls"]
    validate_call(call)
    assert call["function"]["name"] == "get_time" and response["choices"][0]["finish_reason"] == "tool_calls"
    assert message["function_call"] == call["function"]  # as llama-cpp-python answers functions
    with pytest.raises(mm_session.InvalidArgument, match="not both"):
        tiny.create_chat_completion(QUESTION, functions=functions, tools=WEATHER_TOOLS)


# -- reasoning -------------------------------------------------------------------------------

# ChatML that shows an earlier answer's reasoning in <think> tags: llama.cpp's chat layer
# learns from it where reasoning goes, and parses it out of an answer.
THINKING_TEMPLATE = """{%- for m in messages -%}
<|im_start|>{{ m.role }}
{% if m.role == 'assistant' and m.reasoning_content %}<think>
{{ m.reasoning_content }}
</think>
{% endif %}{{ m.content }}<|im_end|>
{% endfor -%}
{%- if add_generation_prompt -%}<|im_start|>assistant
{% endif -%}"""
# An answer that thinks first, whatever the weights.
THINKING_GRAMMAR = 'root ::= "<think>\\nplan it\\n</think>\\nHello"'


def test_reasoning_is_kept_apart(tiny_dir: Path) -> None:
    with Session(tiny_dir / "tiny-llama.gguf", n_ctx=1024, n_threads=1, seed=1, chat_template=THINKING_TEMPLATE) as s:
        messages = [{"role": "user", "content": "Hi"}]
        response = s.create_chat_completion(messages, grammar=THINKING_GRAMMAR)
        message = response["choices"][0]["message"]
        assert message["content"] == "Hello" and message["reasoning_content"].strip() == "plan it", message
        assert response["choices"][0]["finish_reason"] == "stop"
        chunks = list(s.create_chat_completion(messages, grammar=THINKING_GRAMMAR, stream=True))
        deltas = [c["choices"][0]["delta"] for c in chunks]
        assert "".join(d.get("reasoning_content", "") for d in deltas) == message["reasoning_content"]
        assert "".join(d.get("content", "") for d in deltas) == "Hello"
        # Inline: the text as the model wrote it.
        for reasoning in ("inline", mm_session.Reasoning.INLINE):
            inline = s.create_chat_completion(messages, grammar=THINKING_GRAMMAR, reasoning=reasoning)
            assert inline["choices"][0]["message"] == {
                "role": "assistant",
                "content": "<think>\nplan it\n</think>\nHello",
            }
        assert s.ask(messages, grammar=THINKING_GRAMMAR, reasoning="separate") == "Hello"
        # An earlier answer's reasoning goes back to the template.
        follow_up = [*messages, message, {"role": "user", "content": "And?"}]
        assert "<think>\nplan it" in s.apply_template(follow_up)
        with pytest.raises(ValueError, match="separate, inline, off"):
            s.ask(messages, reasoning="sometimes")


# -- bad input -------------------------------------------------------------------------------


def test_bad_tools_are_invalid_arguments(tiny: Session) -> None:
    with pytest.raises(mm_session.InvalidArgument, match="tools is a list of tools"):
        tiny.create_chat_completion(QUESTION, tools=WEATHER_TOOLS[0])
    with pytest.raises(mm_session.InvalidArgument, match="tools is a list of tools"):
        tiny.create_chat_completion(QUESTION, tools=42)
    with pytest.raises(mm_session.InvalidArgument, match="each of tools is a dict"):
        tiny.create_chat_completion(QUESTION, tools=["get_weather"])
    with pytest.raises(mm_session.InvalidArgument, match="not a JSON array"):
        tiny.create_chat_completion(QUESTION, tools="get_weather", tool_choice="required")
    with pytest.raises(mm_session.InvalidArgument, match="tool_choice is"):
        tiny.create_chat_completion(QUESTION, tools=WEATHER_TOOLS, tool_choice={"type": "function"})
    with pytest.raises(mm_session.InvalidArgument, match="not among the tools"):
        tiny.create_chat_completion(QUESTION, tools=WEATHER_TOOLS, tool_choice="get_news")
    with pytest.raises(mm_session.InvalidArgument, match="a tool call is a dict"):
        tiny.create_chat_completion([*QUESTION, {"role": "assistant", "content": None, "tool_calls": ["x"]}])
    with pytest.raises(mm_session.InvalidArgument, match="'tool_call_id' is a str"):
        tiny.create_chat_completion([*QUESTION, {"role": "tool", "tool_call_id": 7, "content": "x"}])
    # The session stays usable.
    assert calls_of(tiny.create_chat_completion(QUESTION, tools=WEATHER_TOOLS, tool_choice="required", seed=1))
