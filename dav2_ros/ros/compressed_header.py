"""Width and height of a JPEG or PNG payload read from its header, without decoding.

A compressed image declares its size up front; a hostile or broken publisher can
declare a huge one in a few hundred bytes (a 410 KB PNG of zeros decodes to 12000x12000,
826 MB and 5 s). Reading the header first lets the node refuse such a frame cheaply.
"""

from __future__ import annotations

import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG), CC (DAC) share the range.
_JPEG_SOF = {0xC0 + n for n in range(16)} - {0xC4, 0xC8, 0xCC}
_JPEG_NO_LENGTH = {0x01, 0xD8, *range(0xD0, 0xD8)}  # markers without a length field


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) declared by a PNG or JPEG header; None if not found or another format."""
    if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None  # not at a marker: broken stream, the decoder will say so
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_NO_LENGTH:
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _JPEG_SOF:
            if position + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return width, height
        if marker == 0xDA or length < 2:  # scan data before any frame header
            return None
        position += 2 + length
    return None
