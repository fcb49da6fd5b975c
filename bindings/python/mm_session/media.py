"""Media items: what a request may carry besides text.

An item is any of:

* a path (``str`` or ``pathlib.Path``) of an image or audio file (PNG, JPEG, GIF, BMP, PNM,
  WebP; WAV, FLAC, MP3);
* ``bytes`` (or ``bytearray``, ``memoryview``): the contents of such a file;
* a NumPy ``uint8`` array of shape (H, W, 3): raw RGB pixels;
* a PIL image (converted to RGB when it is in another mode);
* raw mono audio, 32-bit float samples at the projector's sample rate
  (``Session.info().audio_sample_rate``): an ``array.array('f')``, a 1-D NumPy ``float32``
  array, or :class:`Pcm` around any of those or a list of floats;
* :class:`Rgb`: raw pixels from any bytes-like object, without NumPy.

NumPy and PIL are never imported here: their objects are recognised by their type's module.
Buffers are passed to the library without a copy and kept alive for the call.
"""

from __future__ import annotations

import array
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

from ._native import ffi
from .enums import MediaKind

_FILE, _ENCODED, _RGB, _PCM = MediaKind.FILE, MediaKind.ENCODED, MediaKind.RGB, MediaKind.PCM_F32


@dataclass(frozen=True)
class Pcm:
    """Mono audio as 32-bit float samples at the projector's sample rate: an
    ``array.array('f')``, a NumPy float32 array, any buffer of float32, or a list of floats."""

    samples: Any


@dataclass(frozen=True)
class Rgb:
    """Raw pixels, 3 bytes (R, G, B) each, row after row: ``len(pixels) == width * height * 3``."""

    pixels: Any
    width: int
    height: int


MediaItem = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, Pcm, Rgb, Any]


def c_media(items: Sequence[MediaItem], keep: list[Any]) -> tuple[Any, int]:
    """A C array of ``mm_media`` for ``items`` (NULL when empty) and its length; the buffers
    it points to are appended to ``keep``."""
    if isinstance(items, (str, bytes, os.PathLike)) or not isinstance(items, Sequence):
        items = [items]
    if not items:
        return ffi.NULL, 0
    array_ = ffi.new("mm_media[]", len(items))
    keep.append(array_)
    for slot, item in zip(array_, items):
        _fill(slot, item, keep)
    return array_, len(items)


def _fill(m: Any, item: Any, keep: list[Any]) -> None:
    module = type(item).__module__
    if isinstance(item, (str, os.PathLike)):
        path = ffi.new("char[]", os.fsencode(item))
        keep.append(path)
        m.kind, m.path = _FILE, path
    elif isinstance(item, (bytes, bytearray, memoryview)):
        _data(m, _ENCODED, item, keep)
    elif isinstance(item, Rgb):
        m.width, m.height = item.width, item.height
        _data(m, _RGB, item.pixels, keep)
    elif isinstance(item, Pcm):
        _data(m, _PCM, _f32(item.samples), keep)
    elif isinstance(item, array.array) and item.typecode == "f":
        _data(m, _PCM, item, keep)
    elif module == "numpy":
        _numpy(m, item, keep)
    elif module.startswith("PIL.") and hasattr(item, "tobytes"):
        image = item if item.mode == "RGB" else item.convert("RGB")
        m.width, m.height = image.size
        _data(m, _RGB, image.tobytes(), keep)
    else:
        raise TypeError(
            f"unsupported media item of type {type(item).__name__}: give a path, bytes, "
            "a uint8 (H, W, 3) array, a PIL image, or mm_session.Pcm(samples)"
        )


def _numpy(m: Any, a: Any, keep: list[Any]) -> None:
    """A uint8 (H, W, 3) array is an image; a 1-D float32 array is audio."""
    if a.dtype.name == "uint8" and a.ndim == 3 and a.shape[2] == 3:
        m.height, m.width = a.shape[0], a.shape[1]
        _data(m, _RGB, a, keep)
    elif a.dtype.name == "float32" and a.ndim == 1:
        _data(m, _PCM, a, keep)
    else:
        raise TypeError(
            f"unsupported array: dtype {a.dtype}, shape {a.shape} (images are uint8 (H, W, 3), audio is 1-D float32)"
        )


def _f32(samples: Any) -> Any:
    """Samples as a float32 buffer: buffers pass as they are, lists become array('f')."""
    if isinstance(samples, (list, tuple)):
        return array.array("f", samples)
    return samples


def _data(m: Any, kind: int, buffer: Any, keep: list[Any]) -> None:
    """Points ``m`` at a buffer, without a copy unless it is not contiguous."""
    if type(buffer).__module__ == "numpy" and not buffer.flags.c_contiguous:
        buffer = buffer.copy(order="C")
    data = ffi.from_buffer("uint8_t[]", buffer)
    keep.append(data)
    m.kind, m.data, m.size = kind, data, len(data)
