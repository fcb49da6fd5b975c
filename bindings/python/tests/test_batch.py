"""Sessions that decode together (``n_parallel``): a session and its forks share one context, and
requests asked at the same time from threads or asyncio tasks are evaluated in shared steps.

The test models answer in microseconds, so requests started together rarely overlap by
themselves: each request's on_token callback waits at its first token until every request has
one (a barrier, as crates/capi/tests/capi/batch.rs does at its first piece). The next tokens of
all of them are then queued together, and the library's step takes them in one decode. As in
test_threads.py, no test asserts a duration.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import pytest

import mm_session
from conftest import COLOURS, QUESTION, WAIT_S
from mm_session import Session
from test_memory import assert_flat, rss_kb

COLOUR_NAMES = list(COLOURS)


def meet_at_first_token(barrier: threading.Barrier) -> Callable[[Any, Any], None]:
    """An on_token callback that waits on ``barrier`` at its request's first token (only)."""
    met = False

    def on_token(_chosen: Any, _top: Any) -> None:
        nonlocal met
        if not met:
            met = True
            barrier.wait(WAIT_S)

    return on_token


@contextmanager
def group(parent: Session, n: int) -> Iterator[list[Session]]:
    """The parent and ``n - 1`` forks of it, all closed at the end (the parent too)."""
    sessions = [parent]
    try:
        sessions.extend(parent.fork() for _ in range(n - 1))
        yield sessions
    finally:
        for s in reversed(sessions):
            s.close()


def seeing_session(seeing_dir: Path, n_parallel: int) -> Session:
    return Session(
        seeing_dir / "seeing-llama.gguf",
        seeing_dir / "seeing-mmproj.gguf",
        n_ctx=512,
        n_threads=1,
        n_parallel=n_parallel,
    )


def colour(i: int) -> str:
    return COLOUR_NAMES[i % len(COLOUR_NAMES)]


def at_once(sessions: list[Session], ask: Callable[[int, Session], str]) -> list[str]:
    """``ask(i, session)`` for every session at once, one thread each, started together; the
    answers, or the first failure raised here."""
    start = threading.Barrier(len(sessions))
    answers: list[str | None] = [None] * len(sessions)
    failures: list[BaseException] = []

    def run(i: int, s: Session) -> None:
        try:
            start.wait(WAIT_S)
            answers[i] = ask(i, s)
        except BaseException as error:  # noqa: BLE001 (any failure on the thread, raised below)
            failures.append(error)

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert not any(t.is_alive() for t in threads), "a request never ended"
    if failures:
        raise failures[0]
    return [a for a in answers if a is not None]


def test_eight_sessions_asked_from_threads_each_see_their_own_picture(seeing_dir: Path) -> None:
    """A session with n_parallel=8 and 7 forks, asked at once from 8 threads about a picture of
    its own: each answers its own colour, and the requests shared steps."""
    with group(seeing_session(seeing_dir, 8), 8) as sessions:
        info = sessions[0].info()
        assert (info.n_parallel, info.n_ctx) == (8, 512) and info.n_batch > 0
        assert sessions[7].info().n_parallel == 8, "a fork joins its parent's context"
        memory = sessions[0].memory()
        assert memory.context_shared_by == 8 and memory.shared_by == 8
        meet = threading.Barrier(len(sessions))

        def ask(i: int, s: Session) -> str:
            picture = seeing_dir / f"seeing-{colour(i)}.png"
            return s.ask(QUESTION, [picture], temperature=0, max_tokens=8, on_token=meet_at_first_token(meet))

        answers = at_once(sessions, ask)
        assert [a.strip() for a in answers] == [colour(i) for i in range(len(sessions))]
        infos = [s.last_ask() for s in sessions]
        assert all(i.stop_reason == mm_session.StopReason.EOG for i in infos), infos
        assert all(i.slot_wait_ms == 0 for i in infos), "eight slots for eight sessions: no wait"
        assert max(i.most_together for i in infos) > 1, f"sessions asked at once shared no step: {infos}"


def test_eight_sessions_asked_with_asyncio_gather(seeing_dir: Path) -> None:
    """The same with ask_async and asyncio.gather: each request runs on a worker thread of its
    own, and they meet at their first tokens."""
    with group(seeing_session(seeing_dir, 8), 8) as sessions:
        meet = threading.Barrier(len(sessions))

        async def main() -> list[str]:
            return await asyncio.gather(
                *(
                    s.ask_async(
                        QUESTION,
                        [seeing_dir / f"seeing-{colour(i)}.png"],
                        temperature=0,
                        max_tokens=8,
                        on_token=meet_at_first_token(meet),
                    )
                    for i, s in enumerate(sessions)
                )
            )

        answers = asyncio.run(main())
        assert [a.strip() for a in answers] == [colour(i) for i in range(len(sessions))]
        assert max(s.last_ask().most_together for s in sessions) > 1


def test_more_forks_than_slots_wait_for_a_slot(tiny_dir: Path) -> None:
    """Four sessions on two slots, asked at once: every request completes (those that found
    no free slot waited for one), and each session keeps its own conversation."""
    parent = Session(tiny_dir / "tiny-llama.gguf", n_ctx=512, n_threads=1, seed=1, n_parallel=2)
    with group(parent, 4) as sessions:
        assert [s.memory().context_shared_by for s in sessions] == [4] * 4
        answers = at_once(sessions, lambda i, s: s.ask(f"Session {i} says" + " word" * (i + 1), max_tokens=6))
        assert len(answers) == 4
        infos = [s.last_ask() for s in sessions]
        assert all(i.tokens_generated > 0 and i.slot_wait_ms >= 0 for i in infos), infos
        for i, s in enumerate(sessions):
            again = s.ask(f"Session {i} says" + " word" * (i + 1), max_tokens=2)
            assert again is not None and s.last_ask().positions_reused > 0, f"session {i} lost its cache"


def test_n_parallel_out_of_range_is_an_invalid_argument(tiny_dir: Path) -> None:
    for n_parallel in (0, mm_session.MAX_PARALLEL + 1):
        with pytest.raises(mm_session.InvalidArgument, match="n_parallel"):
            Session(tiny_dir / "tiny-llama.gguf", n_ctx=256, n_threads=1, n_parallel=n_parallel)
    with Session(tiny_dir / "tiny-llama.gguf", n_ctx=256, n_threads=1, n_parallel=2) as s:
        with pytest.raises(mm_session.InvalidArgument):
            s.fork(n_ctx=512)  # a fork keeps the shared context's sizes
        with s.fork(n_ctx=256) as same:
            assert same.info().n_parallel == 2
    with Session(tiny_dir / "tiny-llama.gguf", n_ctx=256, n_threads=1) as alone:
        info, memory = alone.info(), alone.memory()
        assert info.n_parallel == 1 and memory.context_shared_by == 1
        alone.ask("x", max_tokens=2)
        assert alone.last_ask().most_together == 1 and alone.last_ask().slot_wait_ms == 0


def test_batched_cycles_keep_memory_flat(tiny_dir: Path) -> None:
    """Create a session with n_parallel=4, fork 3, ask all four at once, close them: 200 times.
    Growth is read between the floors of two windows, as in test_memory.py (a leak raises the
    floor; single samples move with glibc's heap). The four requests run on a pool of threads
    kept for the whole test: a new thread per request would give glibc new malloc arenas."""
    model = tiny_dir / "tiny-llama.gguf"
    samples = {}
    with ThreadPoolExecutor(4) as pool:
        for cycle in range(1, 201):
            with group(Session(model, n_ctx=256, n_threads=1, seed=1, n_parallel=4), 4) as sessions:
                asks = [pool.submit(s.ask, f"Cycle {cycle} session {i}", max_tokens=6) for i, s in enumerate(sessions)]
                for a in asks:
                    a.result(WAIT_S)
            samples[cycle] = rss_kb()
    assert_flat(samples)
