"""Tiny valid images written by the tests themselves (no network, no imaging library)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

__all__ = ["png", "write_png"]


def png(width: int, height: int, rgb: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    """A solid-colour PNG of ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def write_png(
    path: Path, width: int, height: int, rgb: tuple[int, int, int] = (200, 80, 40)
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png(width, height, rgb))
    return path
