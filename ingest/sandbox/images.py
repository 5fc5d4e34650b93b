"""Image dimensions read from the first bytes of PNG, GIF and JPEG data, without decoding.

The sandbox uses them for Clarifai's 85-megapixel limit on image bytes; anything else
(including bytes that are not an image at all) has unknown dimensions and passes.
"""

from __future__ import annotations

import struct

__all__ = ["MAX_IMAGE_BYTES", "MAX_MEGAPIXELS", "dimensions"]

MAX_IMAGE_BYTES = 20 * 1024 * 1024
"""Largest image Clarifai accepts (20 MB)."""
MAX_MEGAPIXELS = 85
"""Most pixels per image, in millions."""

_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def dimensions(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` of PNG, GIF or JPEG ``data``, or None when not recognised."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:2] == b"\xff\xd8":
        return _jpeg(data)
    return None


def _jpeg(data: bytes) -> tuple[int, int] | None:
    i = 2
    end = len(data)
    while i + 4 <= end:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF and i + 9 <= end:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(width), int(height)
        i += 2 + length
    return None
