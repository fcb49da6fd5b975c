"""asyncio: the event loop keeps running while a request runs."""

from __future__ import annotations

import asyncio
import time

import pytest

import mm_session
from mm_session import Session

from conftest import ENDLESS_GRAMMAR


async def ticker(gaps: list, stop: asyncio.Event) -> None:
    """Records the largest gap between its wake-ups, 5 ms apart."""
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


def test_ask_async_leaves_the_loop_running(tiny: Session) -> None:
    async def main() -> str:
        gaps: list = []
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(gaps, stop))
        started = time.perf_counter()
        answer = await tiny.ask_async("x", max_tokens=2000, grammar=ENDLESS_GRAMMAR)
        took = time.perf_counter() - started
        stop.set()
        await tick
        # A loop blocked by the request would show one gap as long as the request; the bound
        # leaves room for a busy machine's scheduling delays.
        assert took > 0.4 and len(gaps) > 20, f"the loop ran during the {took * 1000:.0f} ms request"
        assert max(gaps) < min(0.25, took / 4), f"largest gap {max(gaps) * 1000:.0f} ms of {took * 1000:.0f} ms"
        return answer

    answer = asyncio.run(main())
    assert answer and tiny.last_ask().tokens_generated == 2000


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
    async def main() -> float:
        task = asyncio.create_task(tiny.ask_async("x", max_tokens=100000, grammar=ENDLESS_GRAMMAR))
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.perf_counter() - started

    assert asyncio.run(main()) < 1.0
    assert tiny.ask("usable", max_tokens=2) is not None


def test_async_errors_are_mm_session_errors(tiny: Session) -> None:
    async def main() -> None:
        await tiny.ask_async("x", grammar="root ::= (")

    with pytest.raises(mm_session.InvalidArgument):
        asyncio.run(main())
