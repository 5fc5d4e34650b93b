"""Image files as the format readers find them: which names are images, and their size.

The size comes from the file's header alone (PNG, JPEG, GIF): a reader needs it where
the annotation file does not say it (a VOC file without ``size``, a YOLO box checked to
one pixel), and reading a header is a few hundred bytes, not a decoded image.
"""

from __future__ import annotations

import os
import struct

__all__ = ["IMAGE_SUFFIXES", "image_size"]

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".jfif"}
)
"""File name endings (lower case) that the readers take for images."""


def image_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """Width and height of a PNG, JPEG or GIF from its header (``None`` if unknown)."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                w, h = struct.unpack(">II", head[16:24])
                return int(w), int(h)
            if head[:6] in (b"GIF87a", b"GIF89a"):
                w, h = struct.unpack("<HH", head[6:10])
                return int(w), int(h)
            if head.startswith(b"\xff\xd8"):
                f.seek(2)
                while True:
                    marker = f.read(2)
                    if len(marker) < 2 or marker[0] != 0xFF:
                        return None
                    kind = marker[1]
                    if kind in (0xD8, 0x01) or 0xD0 <= kind <= 0xD7:
                        continue
                    (length,) = struct.unpack(">H", f.read(2))
                    if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):
                        h, w = struct.unpack(">xHH", f.read(5))
                        return int(w), int(h)
                    f.seek(length - 2, os.SEEK_CUR)
    except (OSError, struct.error):
        return None
    return None
