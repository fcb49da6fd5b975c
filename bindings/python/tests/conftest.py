"""Shared fixtures: the generated model pairs (mm-fixtures) and sessions on them.

The Makefile passes the fixture folders in MM_FIXTURES_DIR (tiny pair), MM_SEEING_DIR (the
pair that names a picture's colour), MM_AUDIO_DIR (tiny pair with an audio projector) and
MM_BENCH_DIR (the larger pair); a folder not given is generated into a temporary folder with the
repository's target/release/mm-fixtures. Sessions use one thread (the machine has two cores,
shared) and are closed at the end of each test.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import mm_session

REPO = Path(__file__).resolve().parents[3]
FIXTURES_TOOL = REPO / "target" / "release" / "mm-fixtures"
COLOURS = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}
QUESTION = "What colour is this picture?"
# Never satisfied: generation goes on until max_tokens or a full context.
ENDLESS_GRAMMAR = "root ::= [a-z] root"
# How long a test waits for something that must happen (a token, a thread's end): reached only
# when something is stuck, never by a slow or busy machine. Tests assert no time or speed.
WAIT_S = 60.0


def _fixture_dir(tmp_path_factory: pytest.TempPathFactory, env: str, *args: str) -> Path:
    given = os.environ.get(env)
    if given:
        return Path(given)
    folder = tmp_path_factory.mktemp(env.lower())
    subprocess.run([str(FIXTURES_TOOL), str(folder), *args], check=True, capture_output=True)
    return folder


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fixture_dir(tmp_path_factory, "MM_FIXTURES_DIR")


@pytest.fixture(scope="session")
def seeing_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fixture_dir(tmp_path_factory, "MM_SEEING_DIR", "--seeing")


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fixture_dir(tmp_path_factory, "MM_AUDIO_DIR", "--audio")


@pytest.fixture(scope="session")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fixture_dir(tmp_path_factory, "MM_BENCH_DIR", "--size", "bench")


@pytest.fixture(scope="session")
def mismatch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A projector whose output size differs from the tiny model's embedding size."""
    folder = tmp_path_factory.mktemp("mismatch")
    subprocess.run([str(FIXTURES_TOOL), str(folder), "--proj-out", "7"], check=True, capture_output=True)
    return folder


@pytest.fixture
def tiny(tiny_dir: Path) -> Iterator[mm_session.Session]:
    with mm_session.Session(
        tiny_dir / "tiny-llama.gguf", tiny_dir / "tiny-mmproj.gguf", n_ctx=4096, n_threads=1, seed=1
    ) as s:
        yield s


@pytest.fixture
def seeing(seeing_dir: Path) -> Iterator[mm_session.Session]:
    with mm_session.Session(
        seeing_dir / "seeing-llama.gguf", seeing_dir / "seeing-mmproj.gguf", n_ctx=1024, n_threads=1
    ) as s:
        yield s


@pytest.fixture(autouse=True)
def no_session_left() -> Iterator[None]:
    """Every test closes what it creates."""
    yield
    assert mm_session.live_sessions() == 0
