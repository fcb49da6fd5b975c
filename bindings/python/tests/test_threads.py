"""Threads: the GIL is released during calls, cancel() from another thread, Ctrl-C, close()
during a call."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import pytest

import mm_session
from conftest import ENDLESS_GRAMMAR, WAIT_S
from mm_session import Session

# No test here asserts a duration or a speed: each one proves what it checks by what happened
# while a call was known to be in progress (a request that only a cancel ends before its context
# is full, an on_token callback that waits for another thread), so that a slow or busy machine
# cannot fail it. The durations they print are for reading only.


def long_request(s: Session, tokens: int = 100000, **options: Any) -> str:
    """A request that generates until max_tokens or a full context (the tiny pair's 4,096
    positions): it ends early only when cancelled."""
    return s.ask("x", max_tokens=tokens, grammar=ENDLESS_GRAMMAR, temperature=1.0, **options)


def when(event: threading.Event, action: Callable[[], object]) -> threading.Thread:
    """Runs action on a new thread once event is set (nothing if it is not set within WAIT_S)."""

    def wait_then_act() -> None:
        if event.wait(WAIT_S):
            action()

    thread = threading.Thread(target=wait_then_act)
    thread.start()
    return thread


def on_first_token(event: threading.Event) -> Callable[[Any, Any], None]:
    """An on_token callback that sets event: the request is generating."""
    return lambda _chosen, _top: event.set()


def cancel_holding_the_gil(s: Session) -> Callable[[], None]:
    """mm_session_cancel(s) called through ctypes.PyDLL, which keeps the GIL for the whole call
    (cffi releases it): a cancel made this way can only reach the library while no other thread
    holds the GIL."""
    cancel = ctypes.PyDLL(str(mm_session.LIBRARY_PATH)).mm_session_cancel
    cancel.argtypes, cancel.restype = [ctypes.c_void_p], ctypes.c_int
    handle = int(mm_session.ffi.cast("uintptr_t", s._handle))
    return lambda: cancel(handle)


def test_other_python_threads_run_during_a_call(tiny: Session) -> None:
    """Another Python thread runs while the library works on a call (which runs no Python code
    of its own: no callback). That thread counts, and every 1,000 counts cancels the request
    without letting go of the GIL; the request, which nothing else ends before its context is
    full, ends cancelled. Had the call held the GIL, each of those cancels would have come before
    the call began (the call ignores those) or after it ended, and the request would have filled
    the context."""
    cancel = cancel_holding_the_gil(tiny)
    counted = 0
    running = True

    def count() -> None:
        nonlocal counted
        while running:
            counted += 1
            if counted % 1000 == 0:
                cancel()

    counter = threading.Thread(target=count)
    counter.start()
    started = time.perf_counter()
    try:
        with pytest.raises(mm_session.Cancelled):
            long_request(tiny)
    finally:
        running = False
        counter.join()
    elapsed = time.perf_counter() - started
    print(f"counted {counted} during a {elapsed * 1000:.0f} ms call")
    info = tiny.last_ask()
    assert info.stop_reason == mm_session.StopReason.NONE, info  # it did not run to its end
    long_request(tiny, 3)
    assert tiny.last_ask().tokens_generated == 3


def test_two_sessions_on_two_threads_run_in_parallel(bench_dir: Path) -> None:
    """Two threads asking their own session are inside the library at the same time: each
    request, at its first token, waits in its on_token callback until the other request has
    reached its first token too. Calls serialized across sessions (a lock shared by sessions,
    in the library or in the binding) would leave the first request waiting for one that cannot
    start, and the barrier would break (after WAIT_S). (That the calls let go of the GIL is
    test_other_python_threads_run_during_a_call's part.)"""
    image = bench_dir / "tiny-image.png"
    model, mmproj = bench_dir / "tiny-llama.gguf", bench_dir / "tiny-mmproj.gguf"
    both = threading.Barrier(2, timeout=WAIT_S)
    met: list[int] = []
    failures: list[BaseException] = []
    with Session(model, mmproj, n_ctx=1024, n_threads=1) as a, Session(model, mmproj, n_ctx=1024, n_threads=1) as b:

        def request(s: Session) -> None:
            first = [True]

            def on_token(_chosen: object, _top: object) -> None:
                if first[0]:
                    first[0] = False
                    met.append(both.wait())

            try:  # the grammar rules out an answer that ends before its first token
                s.ask("Describe", [image, image], max_tokens=8, grammar=ENDLESS_GRAMMAR, on_token=on_token)
            except BaseException as error:  # noqa: BLE001 (any failure on the thread, reported below)
                failures.append(error)

        threads = [threading.Thread(target=request, args=(s,)) for s in (a, b)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"two requests on two threads: {(time.perf_counter() - started) * 1000:.0f} ms")
        assert not failures, failures
        assert sorted(met) == [0, 1]
        assert a.last_ask().tokens_generated == b.last_ask().tokens_generated == 8


def test_cancel_from_another_thread(tiny: Session) -> None:
    """cancel() from another thread, once the request is generating, stops it: the library looks
    for a cancel before each decoding step, so at most the token being made follows it."""
    generating = threading.Event()
    counted = [0, 0]  # tokens so far, tokens when cancel() returned

    def on_token(_chosen: object, _top: object) -> None:
        counted[0] += 1
        generating.set()

    def cancel() -> None:
        tiny.cancel()
        counted[1] = counted[0]

    canceller = when(generating, cancel)
    with pytest.raises(mm_session.Cancelled) as raised:
        long_request(tiny, on_token=on_token)
    canceller.join()
    assert raised.value.status == mm_session.Status.CANCELLED
    assert 1 <= counted[1] <= counted[0] <= counted[1] + 1, counted
    assert tiny.last_ask().tokens_generated == counted[0]
    long_request(tiny, 3)
    assert tiny.last_ask().tokens_generated == 3


@contextmanager
def ctrl_c_at_first_token() -> Iterator[Callable[[Any, Any], None]]:
    """An on_token callback that raises SIGINT at the first token (as Ctrl-C would), then holds
    the request there until the main thread's handler has run: the KeyboardInterrupt reaches
    the main thread while the call is known to be in progress, however busy the machine. The
    handler is Python's own (it raises KeyboardInterrupt), noting only that it ran."""
    handled = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        handled.set()
        signal.default_int_handler(signum, frame)

    def on_token(_chosen: Any, _top: Any) -> None:
        if not handled.is_set():
            signal.raise_signal(signal.SIGINT)
            handled.wait(WAIT_S)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield on_token
    finally:
        signal.signal(signal.SIGINT, previous)


def test_keyboard_interrupt_cancels_the_request(tiny: Session) -> None:
    """SIGINT (as Ctrl-C would be) while the request is generating interrupts the waiting main
    thread: the call is cancelled and the session stays usable."""
    assert threading.current_thread() is threading.main_thread()
    started = time.perf_counter()
    with ctrl_c_at_first_token() as on_token, pytest.raises(KeyboardInterrupt):
        long_request(tiny, on_token=on_token)
    print(f"interrupted after {(time.perf_counter() - started) * 1000:.0f} ms")
    info = tiny.last_ask()
    assert info.stop_reason == mm_session.StopReason.NONE and info.tokens_generated >= 1  # the call did not finish
    long_request(tiny, 3)
    assert tiny.last_ask().tokens_generated == 3


def test_keyboard_interrupt_during_a_stream(tiny: Session) -> None:
    """SIGINT while the main thread reads a stream that is generating: the stream stops and the
    session stays usable."""
    pieces = 0
    with ctrl_c_at_first_token() as on_token, pytest.raises(KeyboardInterrupt):
        for _piece in tiny.stream("x", max_tokens=100000, grammar=ENDLESS_GRAMMAR, on_token=on_token):
            pieces += 1
    info = tiny.last_ask()
    assert pieces < 100000 and 1 <= info.tokens_generated < 100000
    # Stopped by the cancel (NONE) or by the text callback, which refuses pieces once the stream
    # is stopped (CALLBACK); not run to its end.
    assert info.stop_reason in (mm_session.StopReason.NONE, mm_session.StopReason.CALLBACK)
    assert len(tiny.ask("again", max_tokens=2)) >= 0


def test_close_during_a_call_on_another_thread(tiny_dir: Path) -> None:
    """close() while another thread's request is generating: that request raises SessionClosed."""
    s = Session(tiny_dir / "tiny-llama.gguf", n_ctx=4096, n_threads=1)
    generating = threading.Event()
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            long_request(s, on_token=on_first_token(generating))
        except mm_session.Error as error:
            errors.append(error)

    worker = threading.Thread(target=ask)
    worker.start()
    try:
        assert generating.wait(WAIT_S), "the request never generated a token"
    finally:
        s.close()
    worker.join(WAIT_S)
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], mm_session.SessionClosed)
    assert mm_session.live_sessions() == 0


def test_a_forked_child_gets_forked_errors_not_a_hang(tiny: Session) -> None:
    """A child forked after sessions exist cannot use them (the library says FORKED); its calls
    still go through worker threads of its own, since the parent's were not copied."""
    tiny.ask("x", max_tokens=2)  # the parent's worker threads exist now
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            tiny.ask("x", max_tokens=2)
        except mm_session.Forked:
            code = 0
        except BaseException:  # noqa: BLE001 (any other outcome is a failure: exit code 4)
            code = 4
        os._exit(code)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung")
    assert os.waitstatus_to_exitcode(status) == 0
    assert tiny.ask("x", max_tokens=2) is not None


def test_sessions_used_from_many_threads(tiny_dir: Path) -> None:
    """Several threads share one session (the library serializes the calls) while others use
    forks of it."""
    with Session(tiny_dir / "tiny-llama.gguf", tiny_dir / "tiny-mmproj.gguf", n_ctx=1024, n_threads=1) as base:
        forks = [base.fork() for _ in range(2)]
        failures: list[BaseException] = []

        def work(s: Session) -> None:
            try:
                for _ in range(5):
                    s.ask("Describe", [tiny_dir / "tiny-image.png"], max_tokens=4)
            except BaseException as error:  # noqa: BLE001 (any failure on the thread, reported below)
                failures.append(error)

        threads = [threading.Thread(target=work, args=(s,)) for s in [base, base, *forks]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for f in forks:
            f.close()
        assert not failures
