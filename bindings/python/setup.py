"""The build hook: the wheel bundles libmm_session.so and the header it was built with.

Where the library comes from, in order:

* ``$MM_SESSION_LIB_DIR``: a folder of built libraries (``make portable-lib``'s
  build/portable-lib): every ``.so`` file in it is bundled under its own name (links become
  copies: a wheel holds no links), with ``$MM_SESSION_HEADER`` or the repository's header;
* ``$MM_SESSION_LIB`` (with ``$MM_SESSION_HEADER`` or the header beside its ``include/``);
* an unpacked sdist: its ``rust/`` folder holds the Rust workspace, which cargo builds for a
  portable CPU level (``$MM_SESSION_BUILD_CPU``, default x86-64-v3), never for the building machine's,
  with the Cargo features of ``$MM_SESSION_FEATURES`` (``cuda``, ``vulkan``: none by default);
* the source tree this folder belongs to (``target/release``, built with
  ``cargo build --release -p mm-session`` when it is not there yet);
* the installed prefix (``pkg-config mm-session``).

Nothing is compiled for Python itself: the package calls the library through cffi in ABI mode,
so the wheel is tagged ``py3-none-<platform>``. ``setup.py sdist`` (``make sdist``) copies the
workspace files git tracks into the sdist's ``rust/`` folder.
"""

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SDIST_WORKSPACE = HERE / "rust"
LIB, HEADER = "libmm_session.so", "mm_session.h"
# What an sdist needs to build the library: the workspace, its lock file, cargo's settings, the
# header, and the script that turns a CPU level into llama.cpp's GGML_* options.
WORKSPACE_FILES = ["Cargo.toml", "Cargo.lock", ".cargo/config.toml", "crates", "include", "scripts/ggml-cpu-flags.sh"]


def _is_workspace(path):
    return (path / "Cargo.toml").is_file() and (path / "crates" / "capi").is_dir()


def _libraries_in(folder):
    """Every .so file of a folder (libmm_session.so, libmm_session.so.X.Y, CPU-level variants)."""
    return sorted(p for p in Path(folder).iterdir() if re.search(r"\.so(\.[0-9.]+)?$", p.name))


def _from_lib_dir():
    folder = os.environ.get("MM_SESSION_LIB_DIR")
    if not folder:
        return None
    header = Path(os.environ.get("MM_SESSION_HEADER") or REPO / "include" / HEADER)
    return _libraries_in(folder), header


def _from_env():
    lib = os.environ.get("MM_SESSION_LIB")
    if not lib:
        return None
    header = os.environ.get("MM_SESSION_HEADER") or Path(lib).resolve().parent.parent / "include" / HEADER
    return [Path(lib)], Path(header)


def _cargo():
    cargo = os.environ.get("CARGO", "cargo")
    if shutil.which(cargo) is None:
        raise SystemExit(
            "mm_session: building this package from source needs Rust's cargo, which is not on the PATH. "
            "Install Rust with rustup (https://rustup.rs: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh), "
            "open a new shell, and run pip again; or install a prebuilt wheel instead."
        )
    return cargo


def _from_sdist():
    """An unpacked sdist: builds rust/ for a portable CPU level, as `make build PORTABLE=1` does."""
    if not _is_workspace(SDIST_WORKSPACE):
        return None
    cargo = _cargo()
    env = dict(os.environ)
    target_dir = Path(env.setdefault("CARGO_TARGET_DIR", str(SDIST_WORKSPACE / "target")))
    if platform.machine() in ("x86_64", "AMD64"):
        cpu = env.get("MM_SESSION_BUILD_CPU", "x86-64-v3")
        flags = subprocess.run(
            ["sh", str(SDIST_WORKSPACE / "scripts" / "ggml-cpu-flags.sh"), cpu],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        env.update(flag.split("=", 1) for flag in flags)
        # RUSTFLAGS overrides .cargo/config.toml's target-cpu=native.
        env["RUSTFLAGS"] = subprocess.run(
            ["sh", str(SDIST_WORKSPACE / "scripts" / "ggml-cpu-flags.sh"), "--rustflags", cpu],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    else:
        cpu = env.get("MM_SESSION_BUILD_CPU", "generic")
        env["RUSTFLAGS"] = f"-C target-cpu={cpu}"
    # Cargo features of crates/capi (cuda, vulkan, ...: docs/building.md), comma-separated.
    features = env.get("MM_SESSION_FEATURES", "")
    command = [cargo, "build", "--release", "-p", "mm-session"] + (["--features", features] if features else [])
    print(f"mm_session: building the library for {cpu}: {' '.join(command[1:])} (llama.cpp takes minutes)")
    subprocess.run(command, cwd=SDIST_WORKSPACE, env=env, check=True)
    return [target_dir / "release" / LIB], SDIST_WORKSPACE / "include" / HEADER


def _from_source_tree():
    if not _is_workspace(REPO):
        return None
    lib = REPO / "target" / "release" / LIB
    if not lib.is_file():
        print("mm_session: building the library: cargo build --release -p mm-session")
        subprocess.run([_cargo(), "build", "--release", "-p", "mm-session"], cwd=REPO, check=True)
    return [lib], REPO / "include" / HEADER


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
    return [Path(out[0]) / LIB], Path(out[1]) / HEADER


def find_library():
    """The library files to bundle (the first is or holds libmm_session.so) and their header."""
    for source in (_from_lib_dir, _from_env, _from_sdist, _from_source_tree, _from_pkg_config):
        found = source()
        if found and found[0] and all(p.is_file() for p in found[0]) and found[1].is_file():
            libs = found[0]
            if len(libs) > 1 and LIB not in [p.name for p in libs]:
                raise SystemExit(f"mm_session: no {LIB} among {[str(p) for p in libs]}")
            return libs, found[1]
    raise SystemExit(
        "mm_session: no libmm_session.so: set MM_SESSION_LIB_DIR or MM_SESSION_LIB, build inside the "
        "mm-session repository (with cargo), or `make install` the library (pkg-config mm-session)"
    )


def find_header():
    """The header that gives the version, found without building anything."""
    for candidate in (
        os.environ.get("MM_SESSION_HEADER"),
        os.environ.get("MM_SESSION_LIB")
        and Path(os.environ["MM_SESSION_LIB"]).resolve().parent.parent / "include" / HEADER,
        SDIST_WORKSPACE / "include" / HEADER,
        REPO / "include" / HEADER,
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return find_library()[1]


def version():
    """The package's version is the header's: MM_VERSION_MAJOR.MINOR.PATCH."""
    header = find_header().read_text()
    parts = [re.search(rf"#define MM_VERSION_{p} (\d+)", header).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


class BuildWithLibrary(build_py):
    """Copies the library files (the files themselves, not links) and their header into
    mm_session/_lib, where the package loads libmm_session.so from."""

    def run(self):
        super().run()
        libs, header = find_library()
        target = Path(self.build_lib) / "mm_session" / "_lib"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for lib in libs:
            # One library given alone (MM_SESSION_LIB, a build tree) is bundled as libmm_session.so.
            name = lib.name if len(libs) > 1 else LIB
            shutil.copyfile(lib.resolve(), target / name)
        shutil.copyfile(header, target / HEADER)


class SdistWithWorkspace(sdist):
    """Adds the Rust workspace (the files git tracks, never target/ or build/) as rust/."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        if not _is_workspace(REPO):
            if _is_workspace(SDIST_WORKSPACE):  # an sdist made from an unpacked sdist
                shutil.copytree(SDIST_WORKSPACE, Path(base_dir) / "rust", ignore=shutil.ignore_patterns("target"))
                return
            raise SystemExit("mm_session: an sdist is made inside the mm-session repository")
        tracked = (
            subprocess.run(["git", "ls-files", "-z", "--", *WORKSPACE_FILES], cwd=REPO, capture_output=True, check=True)
            .stdout.decode()
            .split("\0")
        )
        for name in filter(None, tracked):
            dest = Path(base_dir) / "rust" / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest)


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
    cmdclass={"build_py": BuildWithLibrary, "bdist_wheel": PlatformWheel, "sdist": SdistWithWorkspace},
)
