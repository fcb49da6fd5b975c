"""make bench-python: the same multimodal request through llama-cpp-python and through
mm_session, in one run, side by side.

    bench.py MODEL MMPROJ IMAGE [--lcp-python PATH] [--requests N] [--cycles N]

Each library runs in a process of its own (its resident memory is its own) and does, in order:
  * requests: N times the same chat request (a question about two pictures, as file:// URLs,
    greedy, 8 tokens) on one loaded model, each evaluated in full (llama-cpp-python's chat
    handler clears the KV cache before every request; mm_session's is reset to match);
  * cycles: N times create, ask, close; resident memory after the last one.
The mm_session process also measures:
  * python_overhead_pct: its create_chat_completion against the same request through the C
    library itself (mm_session_reset + mm_session_ask called straight through cffi, the
    params built once), interleaved on one session (taking turns at going first), from the
    median CPU time of the process (its worker threads included) a request: the work each
    does. A request runs on one thread, so on a free machine its wall time is its CPU time;
    on a shared one, wall time mostly measures the others' load (the fastest and median wall
    times are printed beside it);
  * the GIL: two threads each asking their own session, against one request alone.
The last line is ``python_overhead_pct=X``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

QUESTION = "What differs between these two pictures?"
MAX_TOKENS = 8
N_CTX = 2048


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def messages(image: Path) -> list[dict[str, Any]]:
    url = image.resolve().as_uri()
    return [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": url}},
                {"type": "image_url", "image_url": {"url": url}},
                {"type": "text", "text": QUESTION},
            ],
        }
    ]


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


class Sampler:
    """Wall and CPU time (of the whole process, worker threads included) of runs of fn."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def run(self) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        self.fn()
        self.wall.append(time.perf_counter() - wall)
        self.cpu.append(time.process_time() - cpu)

    def figures(self) -> dict[str, float]:
        return {"min_ms": min(self.wall) * 1000, "median_ms": median_ms(self.wall), "cpu_ms": median_ms(self.cpu)}


# -- llama-cpp-python ------------------------------------------------------------------------


def side_lcp(args: argparse.Namespace) -> dict[str, Any]:
    import llama_cpp
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Llava15ChatHandler

    def load() -> Any:
        handler = Llava15ChatHandler(clip_model_path=args.mmproj, verbose=False)
        return Llama(
            model_path=args.model,
            chat_handler=handler,
            n_ctx=N_CTX,
            n_threads=1,
            n_threads_batch=1,
            n_gpu_layers=0,
            seed=1,
            verbose=False,
        )

    request = messages(Path(args.image))

    def ask(llm: Any) -> dict[str, Any]:
        return llm.create_chat_completion(messages=request, max_tokens=MAX_TOKENS, temperature=0, seed=1)

    llm = load()
    ask(llm)
    requests = Sampler(lambda: ask(llm))
    for _ in range(args.requests):
        requests.run()
    usage = ask(llm)["usage"]
    llm.close()

    def cycle() -> None:
        llm = load()
        ask(llm)
        llm.close()

    cycle_times, rss_10 = _cycles(cycle, args.cycles)
    return {
        "library": f"llama-cpp-python {llama_cpp.__version__}",
        "request_ms": median_ms(requests.wall),
        "request_cpu_ms": median_ms(requests.cpu),
        "system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "usage": usage,
        "cycle_ms": median_ms(cycle_times),
        "rss_kb_10": rss_10,
        "rss_kb": rss_kb(),
    }


def _cycles(cycle: Callable[[], None], n: int) -> tuple[list[float], int]:
    """Runs `cycle` n times: the time of each, and the RSS (kB) after the 10th."""
    times, rss_10 = [], 0
    for i in range(1, n + 1):
        times.append(timed(cycle))
        if i == 10:
            rss_10 = rss_kb()
    return times, rss_10


# -- mm_session ------------------------------------------------------------------------------


def side_mm(args: argparse.Namespace) -> dict[str, Any]:
    import mm_session
    from mm_session import Session, ffi, lib

    request = messages(Path(args.image))

    def load() -> Session:
        return Session(args.model, args.mmproj, n_ctx=N_CTX, n_threads=1, seed=1)

    def ask(s: Session) -> dict[str, Any]:
        s.reset()
        return s.create_chat_completion(messages=request, max_tokens=MAX_TOKENS, temperature=0, seed=1)

    with load() as s:
        direct = Sampler(_c_request(ffi, lib, s, Path(args.image)))
        package = Sampler(lambda: ask(s))
        plain_ask = Sampler(
            lambda: (
                s.reset(),
                s.ask(
                    f"{s.marker}\n{s.marker}\n{QUESTION}",
                    [args.image] * 2,
                    max_tokens=MAX_TOKENS,
                    temperature=0,
                    seed=1,
                ),
            )
        )
        samplers = [direct, package, plain_ask]
        for sampler in samplers:
            sampler.fn()  # warm-up
        for i in range(args.requests):  # interleaved, so that the machine's load falls on all
            for sampler in samplers[i % 3 :] + samplers[: i % 3]:
                sampler.run()
        usage = ask(s)["usage"]
    gil = _gil(load, lambda s: s.ask(QUESTION, [args.image] * 2, max_tokens=MAX_TOKENS, temperature=0))

    def cycle() -> None:
        with load() as s:
            ask(s)

    cycle_times, rss_10 = _cycles(cycle, args.cycles)
    c, chat, plain = direct.figures(), package.figures(), plain_ask.figures()
    return {
        "library": f"mm_session {mm_session.__version__}",
        "request_ms": chat["median_ms"],
        "request_cpu_ms": chat["cpu_ms"],
        "usage": usage,
        "c": c,
        "chat": chat,
        "ask": plain,
        "overhead_pct": (chat["cpu_ms"] - c["cpu_ms"]) / c["cpu_ms"] * 100,
        "cycle_ms": median_ms(cycle_times),
        "rss_kb_10": rss_10,
        "rss_kb": rss_kb(),
        "live_sessions": mm_session.live_sessions(),
        "system_info": mm_session.build_info(),
        **gil,
    }


def _c_request(ffi: Any, lib: Any, s: Any, image: Path) -> Callable[[], None]:
    """The same chat request through the C library alone: params built once, then
    mm_session_reset and mm_session_ask on the session's handle."""
    keep = [
        ffi.new("char[]", str(image).encode()),
        ffi.new("char[]", b"user"),
        ffi.new("char[]", f"{s.marker}\n{s.marker}\n{QUESTION}".encode()),
    ]
    media = ffi.new("mm_media[2]")
    for m in media:
        m.kind, m.path = 1, keep[0]
    message = ffi.new("mm_message *")
    message.role, message.text, message.media, message.n_media = keep[1], keep[2], media, 2
    params = ffi.new("mm_ask_params *", lib.mm_ask_params_default())
    params.messages, params.n_messages = message, 1
    params.max_tokens, params.temperature, params.seed = MAX_TOKENS, 0.0, 1
    out = ffi.new("char **")
    handle = s._handle

    def run() -> None:
        lib.mm_session_reset(handle)
        if lib.mm_session_ask(handle, params, out) != 0:
            raise RuntimeError(ffi.string(lib.mm_last_error()).decode())
        lib.mm_string_free(out[0])

    run.keep = (keep, media, message, params, out)  # type: ignore[attr-defined]
    return run


def _gil(load: Callable[[], Any], ask: Callable[[Any], Any]) -> dict[str, Any]:
    """One request alone against two at once on two threads, each on its own session."""
    sessions = [load(), load()]
    try:

        def together(chosen: list[Any]) -> float:
            threads = [threading.Thread(target=lambda s=s: (s.reset(), ask(s))) for s in chosen]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return time.perf_counter() - started

        together(sessions)
        one = statistics.median(together(sessions[:1]) for _ in range(5))
        two = statistics.median(together(sessions) for _ in range(5))
    finally:
        for s in sessions:
            s.close()
    return {"gil_one_ms": one * 1000, "gil_two_ms": two * 1000, "gil_speedup": 2 * one / two}


# -- the run ---------------------------------------------------------------------------------


def run_side(python: str, side: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        python,
        __file__,
        args.model,
        args.mmproj,
        args.image,
        "--side",
        side,
        "--requests",
        str(args.requests),
        "--cycles",
        str(args.cycles),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # its stderr goes into the error
    if done.returncode != 0:
        raise RuntimeError(f"{side} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def lcp_available(python: str) -> str:
    """Why llama-cpp-python cannot run ("" when it can)."""
    if not python or not os.path.exists(python):
        return f"no llama-cpp-python interpreter at {python or '(none given)'}"
    check = subprocess.run(
        [python, "-c", "import llama_cpp; print(llama_cpp.__version__)"], capture_output=True, text=True, check=False
    )
    return "" if check.returncode == 0 else f"llama_cpp does not import with {python}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("mmproj")
    parser.add_argument("image")
    parser.add_argument("--lcp-python", default="")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--side", choices=["mm", "lcp"])
    args = parser.parse_args()
    if args.side:
        print(json.dumps(side_mm(args) if args.side == "mm" else side_lcp(args)))
        return

    print(
        f"request: 2 images ({Path(args.image).name}) + a question, greedy, max_tokens={MAX_TOKENS}, n_ctx={N_CTX}, "
        f"n_threads=1; {args.requests} requests, {args.cycles} create/ask/close cycles; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    results = []
    why_not = lcp_available(args.lcp_python)
    if why_not:
        print(f"llama-cpp-python column skipped: {why_not}")
    else:
        try:
            results.append(run_side(args.lcp_python, "lcp", args))
        except RuntimeError as error:
            print(f"llama-cpp-python column skipped: {error}")
    mm = run_side(sys.executable, "mm", args)
    results.append(mm)

    width = 26
    print(f"{'':32}" + "".join(f"{r['library']:>{width}}" for r in results))
    rows = [
        ("time per request (ms)", lambda r: f"{r['request_ms']:.1f}"),
        ("CPU time per request (ms)", lambda r: f"{r['request_cpu_ms']:.1f}"),
        ("prompt + completion tokens", lambda r: f"{r['usage']['prompt_tokens']} + {r['usage']['completion_tokens']}"),
        ("create/ask/close cycle (ms)", lambda r: f"{r['cycle_ms']:.1f}"),
        (f"RSS after {args.cycles} cycles (MB)", lambda r: f"{r['rss_kb'] / 1024:.1f}"),
        (f"RSS growth, cycle 10-{args.cycles} (MB)", lambda r: f"{(r['rss_kb'] - r['rss_kb_10']) / 1024:.1f}"),
    ]
    for label, cell in rows:
        print(f"{label:32}" + "".join(f"{cell(r):>{width}}" for r in results))
    print(f"{'one request (ms)':32}{'wall fastest':>14}{'wall median':>14}{'CPU median':>14}{'CPU over C':>12}")
    for label, key in (("C library alone (cffi)", "c"), ("create_chat_completion", "chat"), ("ask", "ask")):
        f = mm[key]
        over = (f["cpu_ms"] - mm["c"]["cpu_ms"]) / mm["c"]["cpu_ms"] * 100
        print(f"{label:32}{f['min_ms']:14.2f}{f['median_ms']:14.2f}{f['cpu_ms']:14.2f}{over:+11.2f}%")
    print(
        f"GIL: one request alone {mm['gil_one_ms']:.1f} ms, two on two threads {mm['gil_two_ms']:.1f} ms: "
        f"speedup {mm['gil_speedup']:.2f} (2.00 with two free cores)"
    )
    for r in results:
        if "system_info" in r:
            print(f"{r['library']} llama.cpp build: {r['system_info']}")
    print(f"live_sessions={mm['live_sessions']}")
    print(f"python_overhead_pct={mm['overhead_pct']:.2f}")


if __name__ == "__main__":
    main()
