#!/usr/bin/env python3
"""llama-cpp-python's figures for the stages of `make bench` it can run (docs/performance.md, "Benchmarks").

    python3 scripts/bench-llama-cpp-python.py FIXTURES [MODEL] [RUNS]

FIXTURES is the folder `make bench` writes (build/bench-fixtures: tiny/ and bench/); MODEL the
real text model of the bench's model stages (Gemma 3 270M). Each stage runs what the bench's
stage of the same name runs, the way a llama-cpp-python user writes it: the requests through
`Llava15ChatHandler` (mtmd, images as file:// URLs), the model stages through `Llama` with one
thread, n_ctx 2048 and n_batch 512, greedy sampling, and a `reset()` before each request so that
nothing is reused. Prints `stage=NAME lcp_ms=X` (medians of RUNS, default 11; wall time, or each
call's thread CPU time with MM_BENCH_CLOCK=cpu), for llama-cpp-python's default (flash attention
off) and, for the model stages, with `flash_attn=True` (the library's default is auto: on, on a
CPU).
"""

import os
import statistics
import sys
import time

from llama_cpp import Llama
from llama_cpp.llama_chat_format import Llava15ChatHandler

CLOCK = time.thread_time if os.environ.get("MM_BENCH_CLOCK") == "cpu" else time.perf_counter
N_CTX = 2048
PREFILL_TOKENS = 420
SENTENCE = ("The old lighthouse keeper counted the ships that passed the northern cape each night, "
            "wrote their names in a worn ledger, and wondered where the sea would carry them next. ")


def timed(f):
    t = CLOCK()
    f()
    return (CLOCK() - t) * 1e3


def stage(name, runs, f):
    f()  # warm-up
    ms = statistics.median(timed(f) for _ in range(runs))
    print(f"stage={name} lcp_ms={ms:.3f}", flush=True)


def llama(model, **kw):
    return Llama(model_path=model, n_ctx=N_CTX, n_batch=512, n_ubatch=512, n_threads=1, n_threads_batch=1, verbose=False, **kw)


def request_stage(name, pair, images, text, max_tokens, runs):
    handler = Llava15ChatHandler(clip_model_path=os.path.join(pair, "tiny-mmproj.gguf"), verbose=False)
    llm = llama(os.path.join(pair, "tiny-llama.gguf"), chat_handler=handler)
    content = [{"type": "image_url", "image_url": {"url": "file://" + os.path.abspath(i)}} for i in images]
    content.append({"type": "text", "text": text})
    messages = [{"role": "user", "content": content}]
    stage(name, runs, lambda: llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=0.0))
    llm.close()


def prefill_prompt(llm):
    text, i = "", 0
    while len(llm.tokenize(text.encode(), add_bos=True, special=True)) < PREFILL_TOKENS:
        text += f"{i}. {SENTENCE}"
        i += 1
    return text


def model_stages(model, runs, suffix, **kw):
    stage("create_model" + suffix, runs, lambda: llama(model, **kw).close())
    llm = llama(model, **kw)
    prompt = prefill_prompt(llm)

    def complete(text, max_tokens):
        llm.reset()
        return llm.create_completion(text, max_tokens=max_tokens, temperature=0.0)

    stage("prefill_model" + suffix, runs, lambda: complete(prompt, 1))
    stage("generation_model" + suffix, runs, lambda: complete("Write a long story about a dragon who learns to cook. Chapter 1:", 128))
    out = complete("Write a long story about a dragon who learns to cook. Chapter 1:", 128)
    print(f"prefill_tokens={len(llm.tokenize(prompt.encode(), add_bos=True, special=True))} generation_tokens={out['usage']['completion_tokens']}")
    llm.close()


def main():
    fixtures = sys.argv[1]
    model = sys.argv[2] if len(sys.argv) > 2 else None
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 11
    tiny, bench = os.path.join(fixtures, "tiny"), os.path.join(fixtures, "bench")
    tiny_image = os.path.join(tiny, "tiny-image.png")
    request_stage("request_tiny", tiny, [tiny_image, tiny_image], "Compare these two images.", 8, runs * 2)
    request_stage("request_bench", bench, [os.path.join(bench, "bench-image.png")], "Describe this in one line.", 16, runs)
    if model:
        runs = max(3, -(-runs // 3))
        model_stages(model, runs, "")
        model_stages(model, runs, "_flash_attn", flash_attn=True)


if __name__ == "__main__":
    main()
