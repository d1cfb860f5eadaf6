"""An input opened once, for every reader that needs it: a file read in place, a stream held in memory.

A pipe, a FIFO, process substitution (``<(...)``) and standard input cannot be read twice (the header checks,
the animation check and the decoder each read the input), so they are read into memory once, up to a limit.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

from .errors import InputError, MissingFileError, TooLargeError

if TYPE_CHECKING:
    from typing import TypeAlias

    StrPath: TypeAlias = "str | os.PathLike[str]"
    FileSource: TypeAlias = "StrPath | bytes | bytearray | IO[bytes]"

DEFAULT_MAX_INPUT_BYTES = 256 * 2**20  # from a pipe, FIFO or standard input, which must be held in memory


@dataclass
class Input:
    """An input opened once: a seekable binary ``file``, its ``name`` for messages, ``path`` (None for a
    stream) and size ``n_bytes``. Use as a context manager; :func:`open_input` makes one."""

    file: IO[bytes]
    name: str
    path: Path | None = None
    n_bytes: int = 0

    def rewound(self) -> IO[bytes]:
        self.file.seek(0)
        return self.file

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Input:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def refuse_empty_name(source: object) -> None:
    """InputError for an input named "" (which Path would take for the current folder)."""
    if not str(source):
        raise InputError("the input's name is empty: give an image file, or - for standard input")


def open_input(source: FileSource, *, max_bytes: int | None = None) -> Input:
    """Open ``source`` once, for every reader that needs it (the animation check, the decoder).

    A regular file is read through the file itself, so a huge one never sits
    in memory. A pipe, FIFO, process substitution (``<(...)``) or ``"-"``
    (standard input) cannot be read twice, so it is read into memory once, up
    to ``max_bytes`` (TooLargeError beyond: ``/dev/zero`` ends there).
    """
    cap = DEFAULT_MAX_INPUT_BYTES if max_bytes is None else int(max_bytes)
    if isinstance(source, (bytes, bytearray)):
        return _checked_input(io.BytesIO(bytes(source)), "<bytes>", None, len(source))
    if hasattr(source, "read"):
        stream = cast("IO[bytes]", source)
        name = getattr(stream, "name", "<stream>")
        if getattr(stream, "seekable", lambda: False)():
            size = stream.seek(0, os.SEEK_END)
            return _checked_input(stream, str(name), None, size)
        return _spooled(stream, str(name), None, cap)
    if str(source) == "-":
        return _spooled(sys.stdin.buffer, "<stdin>", None, cap)
    refuse_empty_name(source)
    path = Path(source)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            import shlex  # here: 1.5 ms of every start-up (its regular expression), for this message only

            raise InputError(f"{path}: is a folder, not an image; "  # say how to do what was meant
                             f"to flatten the images in it, use: kcolors batch {shlex.quote(str(path))} -o OUTDIR")
        fh = open(path, "rb")  # noqa: SIM115 -- closed by Input
    except FileNotFoundError:
        raise MissingFileError(f"{path}: no such file", filename=str(path)) from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:  # a symbolic-link loop, a name too long, ...
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISREG(info.st_mode):
        return _checked_input(fh, str(path), path, info.st_size)
    with fh:
        return _spooled(fh, str(path), path, cap)


def _spooled(stream: IO[bytes], name: str, path: Path | None, cap: int) -> Input:
    """Read a stream into memory once, at most ``cap`` bytes."""
    chunks, size = [], 0
    try:
        while True:
            chunk = stream.read(min(1 << 20, cap + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                raise TooLargeError(f"{name}: more than {cap:,} bytes from a stream; raise the limit with "
                                    "--max-input-mb")
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror or exc})") from None
    return _checked_input(io.BytesIO(b"".join(chunks)), name, path, size)


def _checked_input(fh: IO[bytes], name: str, path: Path | None, size: int) -> Input:
    if not size:
        fh.close()
        raise InputError(f"{name}: empty file, not an image")
    return Input(fh, name, path, size)
