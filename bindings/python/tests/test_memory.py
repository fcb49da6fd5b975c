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


def assert_flat(samples: dict[int, int]) -> None:
    """Fails when the floor of resident memory over cycles 190-200 is 2 MB above that of cycles
    10-20 (see test_200_cycles_keep_memory_flat), or when a session or model is left."""
    early = min(samples[c] for c in range(10, 21))
    late = min(samples[c] for c in range(190, 201))
    growth = late - early
    print(f"cycles=200 rss_kb_floor_10_20={early} rss_kb_floor_190_200={late} growth_kb={growth}")
    assert growth < 2048, f"RSS grew {growth} kB from cycles 10-20 to 190-200"
    assert mm_session.live_sessions() == 0 and mm_session.loaded_models() == 0


def test_200_cycles_keep_memory_flat(tiny_dir: Path) -> None:
    """Growth is read between the floors of two windows (cycles 10-20 and 190-200): glibc's heap
    moves a single sample by up to 9 MB either way in runs that grow by nothing over 1,000
    cycles, while a leak raises the floor (10 kB a cycle would add 1.8 MB)."""
    model, mmproj, image = tiny_dir / "tiny-llama.gguf", tiny_dir / "tiny-mmproj.gguf", tiny_dir / "tiny-image.png"
    samples = {}
    for cycle in range(1, 201):
        with Session(model, mmproj, n_ctx=512, n_threads=1, seed=1) as s:
            s.ask("Compare the two images.", media=[image, image], max_tokens=8)
        samples[cycle] = rss_kb()
    assert_flat(samples)
