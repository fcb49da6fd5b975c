"""The binding covers the header it runs with: every export is called, every struct field is
an option or a dataclass field, every status has an exception family."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

import mm_session
from mm_session import _native, _options
from mm_session.enums import C_ENUMS
from mm_session.errors import Error, error_class

PACKAGE = Path(mm_session.__file__).parent
HEADER = mm_session.HEADER_PATH.read_text()


def package_source() -> str:
    return "\n".join(p.read_text() for p in PACKAGE.glob("*.py"))


def test_every_export_is_called_by_the_package() -> None:
    exports = re.findall(r"^[a-z][\w ]*?\**\s*\**(mm_\w+)\(", _native.header_declarations(HEADER), flags=re.MULTILINE)
    assert "mm_session_ask" in exports and len(exports) > 20
    source = package_source()
    missing = [name for name in exports if f"lib.{name}(" not in source and f"lib.{name}," not in source]
    assert not missing, f"exports the package does not bind: {missing}"


@pytest.mark.parametrize(
    "struct,internal",
    [
        ("mm_session_params", {"model_path", "mmproj_path", "progress_callback", "progress_user_data"}),
        (
            "mm_ask_params",
            {
                "prompt",
                "media",
                "n_media",
                "messages",
                "n_messages",
                "message_ext",
                "on_text",
                "on_token",
                "on_reasoning",
                "on_tool_call",
                "user_data",
            },
        ),
        ("mm_fork_params", set()),
    ],
)
def test_every_params_field_is_an_option(struct: str, internal: set) -> None:
    fields = {name for name, _ in mm_session.ffi.typeof(struct).fields}
    counted = {f"n_{name}" for name in fields}
    options = set(_options.names(struct))
    left = {f for f in fields - options - internal - counted if f != "struct_size" and not f.startswith("reserved")}
    assert not left, f"{struct} fields with no option: {left}"


@pytest.mark.parametrize(
    "struct,cls",
    [
        ("mm_session_info", mm_session.SessionInfo),
        ("mm_memory_stats", mm_session.MemoryStats),
        ("mm_ask_info", mm_session.AskInfo),
    ],
)
def test_every_output_field_is_in_its_dataclass(struct: str, cls: type) -> None:
    fields = {name for name, _ in mm_session.ffi.typeof(struct).fields}
    wanted = {f for f in fields if f != "struct_size" and not f.startswith("reserved")}
    assert wanted == {f.name for f in dataclasses.fields(cls)}


def test_every_status_has_a_family_and_a_name() -> None:
    for status in mm_session.Status:
        if status == 0:
            continue
        assert error_class(status) is not Error, f"{status.name} has no exception family"
        assert mm_session.status_str(status) != "unknown status"
    error = error_class(12)(12, "stopped")
    assert isinstance(error, mm_session.Cancelled) and error.status is mm_session.Status.CANCELLED
    unknown = Error(1234, "from a newer library")
    assert unknown.status == 1234 and "1234" in str(unknown)


def test_header_parsing() -> None:
    constants = _native.header_constants(HEADER)
    major, minor, patch = (constants[f"MM_VERSION_{p}"] for p in ("MAJOR", "MINOR", "PATCH"))
    assert constants["MM_VERSION_NUMBER"] == major * 10000 + minor * 100 + patch
    assert mm_session.__version__ == f"{major}.{minor}.{patch}"
    assert constants["MM_SEED_DEFAULT"] == 0xFFFFFFFF == mm_session.SEED_DEFAULT
    computed = _native.header_constants("#define MM_X (1 << 26)\n#define MM_Y (MM_X + 1)\n")
    assert computed == {"MM_X": 1 << 26, "MM_Y": (1 << 26) + 1}
    declarations = _native.header_declarations(HEADER)
    assert "#" not in declarations and "/*" not in declarations and 'extern "C"' not in declarations
    assert mm_session.ffi.sizeof("mm_ask_params") == mm_session.lib.mm_ask_params_default().struct_size
    assert mm_session.ffi.sizeof("mm_session_params") == mm_session.lib.mm_session_params_default().struct_size
    assert mm_session.ffi.sizeof("mm_fork_params") == mm_session.lib.mm_fork_params_default().struct_size


@pytest.mark.parametrize("cls", list(C_ENUMS))
def test_enums_are_the_headers(cls: type) -> None:
    c_name, prefix = C_ENUMS[cls]
    in_header = {}
    for name, value in mm_session.ffi.typeof(c_name).relements.items():
        in_header[name[len(prefix) :] if name.startswith(prefix) else name[len("MM_") :]] = value
    assert {m.name: m.value for m in cls} == in_header


def test_the_library_comes_from_where_expected() -> None:
    """make test-python runs the installed package, which must use the library it bundles."""
    expected = os.environ.get("MM_SESSION_EXPECT_ORIGIN")
    if not expected:
        pytest.skip("MM_SESSION_EXPECT_ORIGIN not set")
    assert mm_session.LIBRARY_ORIGIN == expected, mm_session.LIBRARY_PATH
    assert mm_session.LIBRARY_PATH.parent == PACKAGE / "_lib"
