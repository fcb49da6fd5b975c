"""The memory promise, from Python: create, ask with two images, close, 200 times."""

from __future__ import annotations

from pathlib import Path

import mm_session
from mm_session import Session


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def test_200_cycles_keep_memory_flat(tiny_dir: Path) -> None:
    model, mmproj, image = tiny_dir / "tiny-llama.gguf", tiny_dir / "tiny-mmproj.gguf", tiny_dir / "tiny-image.png"
    rss_10 = 0
    for cycle in range(1, 201):
        with Session(model, mmproj, n_ctx=512, n_threads=1, seed=1) as s:
            s.ask("Compare the two images.", media=[image, image], max_tokens=8)
        if cycle == 10:
            rss_10 = rss_kb()
    growth = rss_kb() - rss_10
    print(f"cycles=200 rss_kb_10={rss_10} growth_kb={growth}")
    assert growth < 2048, f"RSS grew {growth} kB from cycle 10 to 200"
    assert mm_session.live_sessions() == 0 and mm_session.loaded_models() == 0
