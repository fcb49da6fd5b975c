"""Threads: the GIL is released during calls, cancel() from another thread, Ctrl-C, close()
during a call."""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from pathlib import Path
from typing import List

import pytest

import mm_session
from mm_session import Session

from conftest import ENDLESS_GRAMMAR


def long_request(s: Session, tokens: int = 100000) -> str:
    """A request that generates until max_tokens or a full context (about 1 ms a token)."""
    return s.ask("x", max_tokens=tokens, grammar=ENDLESS_GRAMMAR, temperature=1.0)


def later(seconds: float, action) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_other_python_threads_run_during_a_call(tiny: Session) -> None:
    """A thread that only counts gets nearly nothing while a call holds the GIL, and counts
    freely while the call runs without it."""
    counted = 0
    running = True

    def count() -> None:
        nonlocal counted
        while running:
            counted += 1

    counter = threading.Thread(target=count)
    counter.start()
    try:
        started = time.perf_counter()
        long_request(tiny, 300)
        elapsed = time.perf_counter() - started
    finally:
        running = False
        counter.join()
    assert tiny.last_ask().tokens_generated == 300
    # With the GIL held by the call, the counter would run only between calls (a few switch
    # intervals); here it counts for most of the call's time.
    assert counted > 100_000, (counted, elapsed)


def idle_cores(seconds: float = 0.5) -> float:
    """How many cores were idle over the last ``seconds`` (from /proc/stat)."""
    def sample() -> list:
        with open("/proc/stat") as stat:
            return [int(x) for x in stat.readline().split()[1:]]

    before = sample()
    time.sleep(seconds)
    after = sample()
    delta = [b - a for a, b in zip(before, after)]
    idle = delta[3] + delta[4]  # idle, iowait
    return idle / sum(delta) * (os.cpu_count() or 1)


def test_two_sessions_on_two_threads_run_in_parallel(bench_dir: Path) -> None:
    """Two threads asking their own session take about the time of one when two cores are free."""
    free = idle_cores()
    if free < 1.8:
        pytest.skip(f"needs two free cores ({free:.1f} of {os.cpu_count()} idle)")
    image = bench_dir / "tiny-image.png"
    model, mmproj = bench_dir / "tiny-llama.gguf", bench_dir / "tiny-mmproj.gguf"
    with Session(model, mmproj, n_ctx=1024, n_threads=1) as a, Session(model, mmproj, n_ctx=1024, n_threads=1) as b:
        def request(s: Session) -> None:
            s.reset()
            s.ask("Describe", [image, image], max_tokens=8)

        def timed(sessions: List[Session]) -> float:
            threads = [threading.Thread(target=request, args=(s,)) for s in sessions]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return time.perf_counter() - started

        request(a)  # warm-up
        one = statistics.median(timed([a]) for _ in range(3))
        two = statistics.median(timed([a, b]) for _ in range(3))
    assert two < 1.5 * one, f"one request {one * 1000:.0f} ms, two in parallel {two * 1000:.0f} ms"


def test_cancel_from_another_thread(tiny: Session) -> None:
    timer = later(0.2, tiny.cancel)
    started = time.perf_counter()
    with pytest.raises(mm_session.Cancelled) as raised:
        long_request(tiny)
    timer.join()
    assert time.perf_counter() - started < 2.0
    assert raised.value.status == mm_session.Status.CANCELLED
    long_request(tiny, 3)
    assert tiny.last_ask().tokens_generated == 3


def test_keyboard_interrupt_cancels_the_request(tiny: Session) -> None:
    """SIGINT raised by another thread (as Ctrl-C would be) interrupts the waiting main thread:
    the call is cancelled and the session stays usable."""
    assert threading.current_thread() is threading.main_thread()
    timer = later(0.3, lambda: signal.raise_signal(signal.SIGINT))
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        long_request(tiny)
    elapsed = time.perf_counter() - started
    timer.join()
    assert elapsed < 2.0, elapsed
    assert tiny.last_ask().stop_reason == mm_session.StopReason.NONE  # the interrupted call did not finish
    long_request(tiny, 3)
    assert tiny.last_ask().tokens_generated == 3


def test_keyboard_interrupt_during_a_stream(tiny: Session) -> None:
    timer = later(0.3, lambda: signal.raise_signal(signal.SIGINT))
    pieces = 0
    with pytest.raises(KeyboardInterrupt):
        for _piece in tiny.stream("x", max_tokens=100000, grammar=ENDLESS_GRAMMAR):
            pieces += 1
    timer.join()
    assert 0 < pieces < 100000
    assert len(tiny.ask("again", max_tokens=2)) >= 0


def test_close_during_a_call_on_another_thread(tiny_dir: Path) -> None:
    s = Session(tiny_dir / "tiny-llama.gguf", n_ctx=4096, n_threads=1)
    errors: List[BaseException] = []

    def ask() -> None:
        try:
            long_request(s)
        except mm_session.Error as error:
            errors.append(error)

    worker = threading.Thread(target=ask)
    worker.start()
    time.sleep(0.2)
    s.close()
    worker.join(5)
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
        except BaseException:
            code = 4
        os._exit(code)
    deadline = time.monotonic() + 20
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
        failures: List[BaseException] = []

        def work(s: Session) -> None:
            try:
                for _ in range(5):
                    s.ask("Describe", [tiny_dir / "tiny-image.png"], max_tokens=4)
            except BaseException as error:  # reported below
                failures.append(error)

        threads = [threading.Thread(target=work, args=(s,)) for s in [base, base, *forks]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for f in forks:
            f.close()
        assert not failures
