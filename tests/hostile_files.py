"""Hostile images made in memory, small or of any size, shared by the tests and benchmarks/bench_hostile.py.

Each function returns the bytes of one file. Most are written byte by byte (a GIF, TIFF, ICO or PNG is a
few headers and chunks), so that a file of 20,000 frames or 10,000 pages takes milliseconds to make (Pillow
takes 95 s to write 10,000 TIFF pages) and so that a header can say what the pixels are not.
"""

import io
import struct
import zlib

import numpy as np
from PIL import Image


# --------------------------------------------------------------------------- PNG


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_of_zeros(width, height, *, colour_type=0, depth=1, rows_at_once=256):
    """A PNG of ``width`` x ``height`` black pixels, deflated as it goes (a 20000x20000 RGB one is 1.2 MB)."""
    samples = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    row = b"\0" + bytes((width * samples * depth + 7) // 8)
    deflate, parts = zlib.compressobj(9), []
    for top in range(0, height, rows_at_once):
        parts.append(deflate.compress(row * min(rows_at_once, height - top)))
    parts.append(deflate.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"".join(parts)) + \
        png_chunk(b"IEND", b"")


def png_with_chunk(png, kind, data):
    """``png`` with one more chunk just after IHDR."""
    return png[:33] + png_chunk(kind, data) + png[33:]


def text_bomb(png, inflated):
    """``png`` with a zTXt chunk of zeros that inflates to ``inflated`` bytes."""
    deflate = zlib.compressobj(9)
    block = bytes(1 << 20)
    parts = [deflate.compress(block) for _ in range(inflated >> 20)] + [deflate.flush()]
    return png_with_chunk(png, b"zTXt", b"Comment\0\0" + b"".join(parts))


def wrong_idat_checksum(png):
    """``png`` with its first IDAT chunk's CRC wrong (as PngSuite's xcsn0g01)."""
    at = png.index(b"IDAT") - 4
    length = struct.unpack(">I", png[at:at + 4])[0]
    crc_at = at + 8 + length
    out = bytearray(png)
    out[crc_at:crc_at + 4] = struct.pack(">I", zlib.crc32(png[at + 4:crc_at]) ^ 0xFFFFFFFF)
    return bytes(out)


def grey16_with_colour_key(key=3000):
    """A 4x4 16-bit grey PNG whose pixels of value ``key`` are transparent by its tRNS (as PngSuite's tbwn0g16),
    and the array of its samples."""
    samples = (np.arange(16, dtype=np.uint16).reshape(4, 4) * 1000)
    buffer = io.BytesIO()
    Image.fromarray(samples).save(buffer, "PNG", transparency=key)
    return buffer.getvalue(), samples


def apng(count, size=(1, 1)):
    """An APNG of ``count`` frames of ``size`` (Pillow's writer; alternate colours so none are merged)."""
    frames = [Image.new("RGB", size, (255 * (i % 2), 40, 90)) for i in range(count)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:], duration=20)
    return buffer.getvalue()


# --------------------------------------------------------------------------- GIF


def _gif_frame(width, height, index, left=0, top=0):
    """A graphic control block and one frame of colour ``index`` (1-bit LZW, codes of 3 bits)."""
    codes, bits, value = [], 0, 0
    for i in range(width * height):  # a clear code every two pixels keeps the code size at 3 bits
        codes += [4, index] if i % 2 == 0 else [index]
    codes.append(5)
    out = bytearray()
    for code in codes:
        value |= code << bits
        bits += 3
        while bits >= 8:
            out.append(value & 0xFF)
            value >>= 8
            bits -= 8
    if bits:
        out.append(value)
    blocks = b"".join(bytes([len(out[i:i + 255])]) + bytes(out[i:i + 255]) for i in range(0, len(out), 255))
    return (b"\x21\xf9\x04\x04\x02\x00\x00\x00" + b"\x2c" + struct.pack("<HHHH", left, top, width, height) +
            b"\x00\x02" + blocks + b"\x00")


def gif(count, size=(1, 1), *, later=None):
    """A GIF of ``count`` frames of ``size`` (black and white in turn), the last one claiming ``later`` (a
    (width, height)) when given: its canvas then grows when that frame is reached."""
    width, height = size
    head = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frames = [_gif_frame(width, height, i % 2) for i in range(count - (later is not None))]
    if later is not None and later[0] * later[1] <= 1 << 16:
        frames.append(_gif_frame(*later, 1))
    elif later is not None:  # only the descriptor: a few codes of data, as in a 58-byte bomb
        frames.append(b"\x2c" + struct.pack("<HHHH", 0, 0, *later) + b"\x00\x02\x02\x44\x01\x00")
    return head + loop + b"".join(frames) + b"\x3b"


# --------------------------------------------------------------------------- TIFF


def tiff(sizes, *, real=True):
    """A little-endian TIFF of 8-bit grey pages of ``sizes`` [(width, height), ...].

    With ``real=False`` a page's strip is one byte whatever its size (a header that claims what the data
    does not hold: it is never meant to be decoded).
    """
    out = bytearray(b"II*\0\0\0\0\0")
    link = 4  # where the offset of the next directory goes
    for index, (width, height) in enumerate(sizes):
        strip = bytes([(index * 37) % 256]) * (width * height if real else 1)
        strip_at = len(out)
        out += strip
        if len(out) % 2:
            out += b"\0"
        entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, strip_at),
                   (277, 3, 1), (278, 4, max(height, 1)), (279, 4, len(strip))]
        directory = len(out)
        out[link:link + 4] = struct.pack("<I", directory)
        out += struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            out += struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", value, 0) if kind == 3 else
                                                         struct.pack("<I", value))
        link = len(out)
        out += b"\0\0\0\0"
    return bytes(out)


def tiff_with_warnings_then_damage(width=64, height=64):
    """A TIFF that makes Pillow warn three times (tags whose data lies past the end of the file) and then
    fails to decode: its strip holds 10 of its rows."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (269, 2, 1000, 0x7FFF0000), (270, 2, 1000, 0x7FFF0000), (271, 2, 1000, 0x7FFF0000),
               (273, 4, 1, 0), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, width * height)]
    strip_at = 8 + 2 + 12 * len(entries) + 4
    entries[8] = (273, 4, 1, strip_at)
    directory = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *entry) for entry in entries)
    return b"II*\0" + struct.pack("<I", 8) + directory + b"\0\0\0\0" + bytes(range(256)) * (width * 10 // 256)


# --------------------------------------------------------------------------- ICO, MPO, WebP, AVIF


def ico(entry, claimed=(16, 16), bpp=32):
    """An ICO of one entry (the bytes of a PNG, or of a BMP without its file header) whose directory says
    ``claimed``."""
    width, height = (0 if side >= 256 else side for side in claimed)
    head = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", width, height, 0, 0, 1, bpp, len(entry), 22)
    return head + entry


def dib(width, height):
    """A BMP entry of an ICO, 32-bit: its header counts the AND mask's rows (twice the height); the pixels
    and the mask are there only for ``width`` x ``height`` small ones."""
    header = struct.pack("<IiiHHIIiiII", 40, width, height * 2, 1, 32, 0, 0, 0, 0, 0, 0)
    pixels = bytes(width * height * 4) if width * height <= 1 << 16 else b""
    mask = bytes(((width + 31) // 32 * 4) * height) if width * height <= 1 << 16 else b""
    return header + pixels + mask


def png_bytes(size, colour=(200, 30, 30)):
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def mpo(sizes):
    """An MPO (a JPEG carrying more images, as phones write) of red, then blue, ... images of ``sizes``."""
    colours = [(200, 30, 30), (30, 30, 200), (30, 200, 30)]
    images = [Image.new("RGB", size, colours[i % 3]) for i, size in enumerate(sizes)]
    buffer = io.BytesIO()
    images[0].save(buffer, "MPO", save_all=True, append_images=images[1:], quality=95)
    return buffer.getvalue()


def webp(count, size=(1, 1)):
    """An animated lossless WebP of ``count`` frames (alternate colours so none are merged)."""
    frames = [Image.new("RGB", size, (255 * (i % 2), 40, 90)) for i in range(count)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], duration=20, lossless=True, method=0)
    return buffer.getvalue()


def avif(count, size=(8, 8)):
    """An AVIF of ``count`` frames (None when this Pillow has no AVIF encoder)."""
    frames = [Image.new("RGB", size, (255 * (i % 2), 40, 90)) for i in range(count)]
    buffer = io.BytesIO()
    try:
        frames[0].save(buffer, "AVIF", save_all=True, append_images=frames[1:], duration=20)
    except (KeyError, OSError, ValueError):
        return None
    return buffer.getvalue()
