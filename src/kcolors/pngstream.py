"""An indexed PNG written as a stream: zlib pieces into IDAT chunks of a temporary file, renamed when complete.

libdeflate, which :mod:`kcolors.encode` uses for images held in memory, takes
its whole input at once; zlib's stream can be fed a strip at a time. Pieces
compressed apart, each primed with the 32 KiB before it (``zdict``) and ending
on a sync flush, join into one deflate stream (as pigz makes one), so strips can
be compressed side by side, here on threads or on Dask workers: the stream is
the zlib header, the pieces in order, one empty final block and the Adler-32 of
the whole (:func:`adler32_combine` joins the pieces' own).
"""

import contextlib
import os
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .encode import png_bytes
from .errors import OutputError, OutputExistsError
from .output import TEMPORARY_FLAGS, _mode_for, remove_stale_temporaries, temporary_beside

# zlib level of the streamed IDAT, measured on the index map of a 100 MP photo, per 4 MP strip: at k = 256, level 6
# (zlib's default) 0.27 s and 1.3% larger than libdeflate 7 (0.14 s, which the in-memory path uses but cannot
# stream), level 4 0.12 s and 4% larger; at k = 16, level 6 0.07 s and 3.5% larger, level 4 0.03 s and 11%.
LEVEL = 6
FINAL_BLOCK = b"\x03\x00"  # an empty final block of fixed Huffman codes: ends the joined deflate segments
WINDOW = 32768  # deflate's window: how much of the strip before a strip's compressor is primed with


def zlib_header(level):
    """The two bytes that open a zlib stream compressed at ``level``."""
    return zlib.compress(b"", level)[:2]


def deflate_piece(raw, primer, level):
    """``raw`` as raw deflate blocks ending on a byte boundary (sync flush), back-references into ``primer``."""
    compressor = (zlib.compressobj(level, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, primer) if primer
                  else zlib.compressobj(level, zlib.DEFLATED, -15, 9))
    return compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH)


def adler32_combine(adler1, adler2, len2):
    """Adler-32 of A + B from those of A and B and B's length (zlib's adler32_combine)."""
    base = 65521
    rem = len2 % base
    sum1 = adler1 & 0xFFFF
    sum2 = (rem * sum1) % base
    sum1 = (sum1 + (adler2 & 0xFFFF) + base - 1) % base
    sum2 = (sum2 + ((adler1 >> 16) & 0xFFFF) + ((adler2 >> 16) & 0xFFFF) + base - rem) % base
    return sum1 | (sum2 << 16)


def header(width, height, colours, alphas=None, icc=None):
    """The chunks before IDAT, from :func:`kcolors.encode.png_bytes` itself (palette, tRNS, bit depth, iCCP)
    for a 1x1 image, with the real size put in IHDR; ``.bits``: the bit depth."""
    data = png_bytes(np.zeros((1, 1), np.uint8), colours, alphas, icc)
    chunks, at = [], 8
    while at < len(data):
        (length,), kind = struct.unpack(">I", data[at:at + 4]), data[at + 4:at + 8]
        body = data[at + 8:at + 8 + length]
        at += 12 + length
        if kind == b"IDAT":
            break
        if kind == b"IHDR":
            body = struct.pack(">II", width, height) + body[8:]
        chunks.append(chunk(kind, body))
    return SimpleNamespace(chunks=chunks, bits=data[8 + 8 + 8])


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write_png(path, head, pieces, *, force=False):
    """Write the PNG of ``head`` (its chunks before IDAT) and ``pieces`` (the zlib stream) to ``path``.

    All or nothing, as :func:`kcolors.output.write_files`: a temporary file
    beside ``path`` (``.NAME.PID-XXXX.part``), synced, renamed into place when
    complete; any error or signal on the way removes it. Returns the bytes written.
    """
    path = Path(path)
    remove_stale_temporaries(path)
    tmp = temporary_beside(path)  # named before it exists: a signal at any moment after removes it
    try:
        with os.fdopen(os.open(tmp, TEMPORARY_FLAGS, 0o600), "wb") as fh:
            fh.write(b"\x89PNG\r\n\x1a\n" + b"".join(head.chunks))
            for piece in pieces:
                if piece:
                    fh.write(chunk(b"IDAT", piece))
            fh.write(chunk(b"IEND", b""))
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), _mode_for(path))
            n_bytes = fh.tell()
        if path.exists() and not force:
            raise OutputExistsError(f"{path}: exists; use -f/--force to overwrite")
        os.replace(tmp, path)
    except BaseException as exc:  # an error or a signal: the temporary file goes, unless its name was another's
        if not isinstance(exc, FileExistsError):
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise
    return n_bytes
