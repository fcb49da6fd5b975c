"""The build hook: the wheel bundles libmm_session.so and the header it was built with.

Where the library comes from, in order: ``$MM_SESSION_LIB`` (with ``$MM_SESSION_HEADER`` or the
header beside its ``include/``), the source tree this folder belongs to (``target/release``,
built with ``cargo build --release -p mm-session`` when it is not there yet), or the installed
prefix (``pkg-config mm-session``). Nothing is compiled for Python itself: the package calls
the library through cffi in ABI mode, so the wheel is tagged ``py3-none-<platform>``.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
LIB, HEADER = "libmm_session.so", "mm_session.h"


def _from_env():
    lib = os.environ.get("MM_SESSION_LIB")
    if not lib:
        return None
    header = os.environ.get("MM_SESSION_HEADER") or Path(lib).resolve().parent.parent / "include" / HEADER
    return Path(lib), Path(header)


def _from_source_tree():
    if not (REPO / "Cargo.toml").is_file() or not (REPO / "crates" / "capi").is_dir():
        return None
    lib = REPO / "target" / "release" / LIB
    if not lib.is_file():
        print("mm_session: building the library: cargo build --release -p mm-session")
        cargo = os.environ.get("CARGO", "cargo")
        subprocess.run([cargo, "build", "--release", "-p", "mm-session"], cwd=REPO, check=True)
    return lib, REPO / "include" / HEADER


def _from_pkg_config():
    try:
        out = subprocess.run(
            ["pkg-config", "--variable=libdir", "--variable=includedir", "mm-session"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None
    return Path(out[0]) / LIB, Path(out[1]) / HEADER


def find_library():
    """The library and header to bundle."""
    for source in (_from_env, _from_source_tree, _from_pkg_config):
        found = source()
        if found and found[0].is_file() and found[1].is_file():
            return found
    raise SystemExit(
        "mm_session: no libmm_session.so: set MM_SESSION_LIB, build inside the mm-session "
        "repository (with cargo), or `make install` the library (pkg-config mm-session)"
    )


def version():
    """The package's version is the header's: MM_VERSION_MAJOR.MINOR.PATCH."""
    header = find_library()[1].read_text()
    parts = [re.search(rf"#define MM_VERSION_{p} (\d+)", header).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


class BuildWithLibrary(build_py):
    """Copies the library (the file itself, not a link) and its header into mm_session/_lib."""

    def run(self):
        super().run()
        lib, header = find_library()
        target = Path(self.build_lib) / "mm_session" / "_lib"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lib.resolve(), target / LIB)
        shutil.copyfile(header, target / HEADER)


class WithNativeLibrary(Distribution):
    """A distribution that holds a native file: installed as platform code, not pure Python."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    """A wheel for any Python 3 on this platform: it holds a native library, no extension."""

    def get_tag(self):
        return "py3", "none", super().get_tag()[2]


setup(
    version=version(),
    distclass=WithNativeLibrary,
    cmdclass={"build_py": BuildWithLibrary, "bdist_wheel": PlatformWheel},
)
