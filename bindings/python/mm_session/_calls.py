"""Running a blocking C call so that Python stays in charge.

A cffi call releases the GIL, so other Python threads run while the library works. What a
blocking call cannot do by itself is notice Ctrl-C: Python runs signal handlers on the main
thread, between bytecodes. So a call made on the main thread runs on a worker thread while the
main thread waits for it; a KeyboardInterrupt there cancels the call, waits for it to return
and propagates, and the session stays usable. The same worker serves streaming (the consumer
iterates while the library produces) and asyncio (the event loop is told when it is done).
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")

# How often a waiting thread looks for signals: a signal delivered to another thread only
# wakes the main thread at its next look.
POLL_S = 0.1


class _Workers:
    """Worker threads, kept for reuse. A new thread for every call would cost more than its
    start: glibc gives threads their own malloc arenas (up to 8 per core), each keeping freed
    memory, and the process's resident memory grew by 16 MB over 200 create/ask/close cycles
    that way. Reused threads keep it flat. A call takes the most recently idle thread, or
    starts one when all are busy, so the pool is as large as the most calls ever running at
    once (plus one)."""

    def __init__(self) -> None:
        self._idle: list[queue.SimpleQueue[Callable[[], None]]] = []
        self._lock = threading.Lock()

    def run(self, job: Callable[[], None]) -> None:
        """Runs job on an idle worker thread, or on a new one."""
        with self._lock:
            jobs = self._idle.pop() if self._idle else None
        if jobs is None:
            jobs = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(jobs,), name="mm_session-worker", daemon=True).start()
        jobs.put(job)

    def _serve(self, jobs: queue.SimpleQueue[Callable[[], None]]) -> None:
        while True:
            jobs.get()()
            with self._lock:
                self._idle.append(jobs)

    def forget(self) -> None:
        """In a forked child: the workers' threads were not copied, so none is idle."""
        self._idle = []
        self._lock = threading.Lock()


_workers = _Workers()
os.register_at_fork(after_in_child=_workers.forget)


class Call(Generic[T]):
    """One C call running on a worker thread.

    ``work`` does the call (and raises its error, on the worker thread, where the library's
    message belongs); ``cancel`` asks the library to stop it and must be safe at any time;
    ``on_done`` runs on the worker thread when the call has returned.
    """

    def __init__(
        self, work: Callable[[], T], cancel: Callable[[], None], on_done: Callable[[], None] | None = None
    ) -> None:
        self._work = work
        self._cancel = cancel
        self._on_done = on_done
        self._done = threading.Event()
        self._result: T | None = None
        self._error: BaseException | None = None
        _workers.run(self._run)

    def _run(self) -> None:
        try:
            self._result = self._work()
        except BaseException as error:  # noqa: BLE001 (any exception, KeyboardInterrupt too, is handed on)
            self._error = error
        finally:
            self._done.set()
            if self._on_done is not None:
                self._on_done()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def result(self) -> T:
        """The call's result, or its exception raised here (after it is done)."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._result  # type: ignore[return-value]  # set by _run when there is no error

    def wait(self) -> T:
        """Waits for the call and returns its result; on KeyboardInterrupt, stops the call first."""
        try:
            while not self._done.wait(POLL_S):
                pass
        except KeyboardInterrupt:
            self.stop()
            raise
        return self.result()

    def stop(self) -> None:
        """Cancels the call and waits until it has returned. The cancel is repeated until then,
        since one sent before the worker entered the library would be lost; further
        KeyboardInterrupts do not cut the wait short (the call stops within a graph step)."""
        while True:
            try:
                self._cancel()
                if self._done.wait(0.05):
                    return
            except KeyboardInterrupt:
                continue


def blocking(work: Callable[[], T], cancel: Callable[[], None]) -> T:
    """Runs ``work`` where Ctrl-C can stop it: through a worker on the main thread, directly on
    any other thread (signals never interrupt those)."""
    if threading.current_thread() is threading.main_thread():
        return Call(work, cancel).wait()
    return work()
