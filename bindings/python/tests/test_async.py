"""asyncio: the event loop keeps running while a request runs."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import mm_session
from conftest import ENDLESS_GRAMMAR, WAIT_S
from mm_session import Session

# As in test_threads.py, no test asserts a duration: what the loop did while a request was known
# to be in progress shows whether it ran.


def test_ask_async_leaves_the_loop_running(tiny: Session) -> None:
    """While the request runs, the event loop runs other tasks: at its 1st, 100th and 200th
    token, the request's on_token callback (on the worker thread) holds it until a ticker task on
    the loop has ticked twice more. A loop blocked by the request could not tick, and the
    callback would give up after WAIT_S, failing the request."""
    checkpoints = (1, 100, 200)
    ticks = 0
    tokens = 0
    held = []

    def on_token(_chosen: object, _top: object) -> None:
        nonlocal tokens
        tokens += 1
        if tokens in checkpoints:
            target, deadline = ticks + 2, time.monotonic() + WAIT_S
            while ticks < target:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the event loop did not run while the request was at token {tokens}")
                time.sleep(0.001)
            held.append(tokens)

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0.001)
            ticks += 1

    async def main() -> str:
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(stop))
        started = time.perf_counter()
        answer = await tiny.ask_async("x", max_tokens=200, grammar=ENDLESS_GRAMMAR, on_token=on_token)
        print(f"{ticks} ticks during the {(time.perf_counter() - started) * 1000:.0f} ms request")
        stop.set()
        await tick
        return answer

    answer = asyncio.run(main())
    assert held == list(checkpoints)
    assert answer and tiny.last_ask().tokens_generated == 200


def test_stream_async_gives_the_same_text(tiny: Session) -> None:
    async def main() -> list:
        return [piece async for piece in tiny.stream_async("Describe", max_tokens=16, seed=5)]

    pieces = asyncio.run(main())
    tiny.reset()
    assert "".join(pieces) == tiny.ask("Describe", max_tokens=16, seed=5)


def test_breaking_out_of_stream_async_stops_generation(tiny: Session) -> None:
    async def main() -> None:
        stream = tiny.stream_async("x", max_tokens=100000, grammar=ENDLESS_GRAMMAR)
        n = 0
        async for _piece in stream:
            n += 1
            if n == 3:
                break
        await stream.aclose()

    asyncio.run(main())
    assert tiny.last_ask().stop_reason == mm_session.StopReason.NONE or tiny.last_ask().tokens_generated < 100
    tiny.ask("usable", max_tokens=2)
    assert tiny.last_ask().tokens_generated <= 2


def test_cancelling_the_task_cancels_the_request(tiny: Session) -> None:
    """Cancelling the task that awaits ask_async, once the request is generating, cancels the
    request: it ends cancelled, not at its end (a full context), and the session stays usable."""
    generating = threading.Event()

    async def main() -> None:
        task = asyncio.create_task(
            tiny.ask_async("x", max_tokens=100000, grammar=ENDLESS_GRAMMAR, on_token=lambda _c, _t: generating.set())
        )
        deadline = time.monotonic() + WAIT_S
        while not generating.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert generating.is_set(), "the request never generated a token"
        started = time.perf_counter()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        print(f"the task ended {(time.perf_counter() - started) * 1000:.0f} ms after its cancel")

    asyncio.run(main())
    info = tiny.last_ask()
    assert info.stop_reason == mm_session.StopReason.NONE and info.tokens_generated >= 1, info
    assert tiny.ask("usable", max_tokens=2) is not None


def test_async_errors_are_mm_session_errors(tiny: Session) -> None:
    async def main() -> None:
        await tiny.ask_async("x", grammar="root ::= (")

    with pytest.raises(mm_session.InvalidArgument):
        asyncio.run(main())
