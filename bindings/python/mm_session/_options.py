"""Options named like the C struct fields they set.

``Session(n_ctx=2048)`` sets ``mm_session_params.n_ctx``, ``ask(..., top_k=20)`` sets
``mm_ask_params.top_k``: every field of the header is an option, so a field added to the C
structs is an option here without a line of Python. Values convert by the field's C type:
numbers and booleans as they are, enums from their member or its name, strings (``char *``)
from str, bytes or a path, string arrays with an ``n_<field>`` count from a sequence of str,
and struct arrays with a count from a sequence of tuples or dicts (or a mapping, whose items
are the tuples: ``logit_bias={token: bias}``). Integer fields that hold an enum's value
(``overflow``, ``reasoning``) take its member or its name (``reasoning="inline"``). ``None``
keeps the library's default.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from ._native import ffi
from .enums import Overflow, Reasoning

# Fields the binding sets itself, never options.
_INTERNAL = {"struct_size", "user_data", "prompt", "media", "n_media", "messages", "n_messages", "message_ext"}
# Integer fields that hold an enum's value, so that they take its members' names as well.
_NAMED = {"overflow": Overflow, "reasoning": Reasoning}


def settable(struct_type: str) -> dict[str, Any]:
    """The fields of a C struct that options may set, by name, with their cffi field objects."""
    fields = dict(ffi.typeof(struct_type).fields)
    counts = {f"n_{name}" for name in fields}
    return {
        name: field
        for name, field in fields.items()
        if name not in _INTERNAL
        and name not in counts
        and not name.startswith("reserved")
        and field.type.kind != "function"
        and not _is_void_pointer(field.type)
    }


def _is_void_pointer(ctype: Any) -> bool:
    return bool(ctype.kind == "pointer" and ctype.item.cname == "void")


def fill(struct: Any, struct_type: str, options: Mapping[str, Any], keep: list[Any]) -> None:
    """Sets ``struct``'s fields (a cdata pointer to ``struct_type``) from ``options``; the C
    memory that values point to is appended to ``keep``, which must outlive the call."""
    fields = settable(struct_type)
    for name, value in options.items():
        if value is None:
            continue
        field = fields.get(name)
        if field is None:
            raise TypeError(f"unknown option {name!r} ({struct_type} has: {', '.join(sorted(fields))})")
        _set(struct, name, field.type, value, keep)


def _set(struct: Any, name: str, ctype: Any, value: Any, keep: list[Any]) -> None:
    if ctype.kind == "enum" and isinstance(value, str):
        value = ctype.relements[value]
    elif name in _NAMED and isinstance(value, str):
        members = _NAMED[name].__members__
        if value.upper() not in members:
            raise ValueError(f"{name}={value!r}: expected one of {', '.join(m.lower() for m in members)}")
        value = members[value.upper()]
    elif ctype.kind == "pointer" and ctype.item.cname == "char":
        value = c_string(value, keep)
    elif ctype.kind == "pointer":
        items = _items(value)
        if ctype.item.kind == "pointer":  # an array of strings
            items = [c_string(item, keep) for item in items]
        array = ffi.new(f"{ctype.item.cname}[]", items)
        keep.append(array)
        setattr(struct, f"n_{name}", len(items))
        value = array
    setattr(struct, name, value)


def _items(value: Any) -> list[Any]:
    """A sequence option as a list: a str is one item, a mapping gives its items."""
    if isinstance(value, (str, bytes)):
        return [value]
    if isinstance(value, Mapping):
        return list(value.items())
    return list(value)


def c_string(value: Any, keep: list[Any]) -> Any:
    """A NUL-terminated copy of a str, bytes or path (a dict or list becomes JSON text)."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    if isinstance(value, os.PathLike):
        value = os.fsencode(value)
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, bytes):
        raise TypeError(f"expected str, bytes or a path, got {type(value).__name__}")
    if b"\0" in value:
        raise ValueError("strings passed to mm-session cannot contain NUL characters")
    buffer = ffi.new("char[]", value)
    keep.append(buffer)
    return buffer


def names(struct_type: str) -> Iterable[str]:
    """The option names of a struct, sorted."""
    return sorted(settable(struct_type))
