"""Errors kcolors raises, each carrying the exit code the command line uses.

The codes are documented in the README ("Exit codes"); keep the two in step.

Every class pickles whole (class, message, exit code): batch's workers send them back to the parent.
"""

import os
from errno import ENOENT


class KcolorsError(Exception):
    """Base class: a problem explained in one line, with an exit code."""

    exit_code: int = 1


class UsageError(KcolorsError, ValueError):
    """An option or argument is out of range or does not fit the others."""

    exit_code = 2


class InputError(KcolorsError):
    """The input cannot be read as an image (missing, empty, truncated, not an image)."""

    exit_code = 3


class MissingFileError(InputError, FileNotFoundError):
    """The input file does not exist: an InputError (exit 3) that ``except FileNotFoundError`` and
    ``except OSError`` catch too.

    Its text is kcolors' one line (``"photo.png: no such file"``), not OSError's
    ``[Errno 2] ...`` form; ``errno`` is ENOENT and ``filename`` the name as given
    (None when not given).

    Parameters
    ----------
    message : str
        The line to show.
    filename : str, optional
        The missing file's name.
    """

    exit_code = 3
    # Class attributes in place of OSError's own slots, which would change str() (to "[Errno 2] ...: 'x'") and
    # be lost by pickle; an instance's filename goes to its __dict__, which pickle keeps.
    errno: int = ENOENT
    strerror: str = os.strerror(ENOENT)
    filename: "str | None" = None

    def __init__(self, message: str, filename: "str | None" = None) -> None:
        super().__init__(message)
        if filename is not None:
            self.filename = filename


class TooLargeError(InputError):
    """The image has more pixels (in any frame or page) or more frames than allowed (decompression-bomb guards)."""

    exit_code = 4


class OutputError(KcolorsError):
    """The output cannot be written (folder missing or not writable, disk error)."""

    exit_code = 5


class OutputExistsError(OutputError):
    """The output exists and --force was not given."""

    exit_code = 6


class NoWorkerError(KcolorsError):
    """``batch --scheduler``: every Dask worker died or left, and none came back within the worker timeout."""

    exit_code = 8


class Terminated(BaseException):
    """SIGTERM, raised where the program is (by the command line's handler) so that every ``finally`` runs:
    temporary files removed, a batch's workers stopped and its report written.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` on the way swallows it.
    """

    exit_code: int = 143


class LargerError(KcolorsError):
    """``--skip-if-larger``: the output would be larger than the input, so nothing was written (pngquant's code)."""

    exit_code = 98


class QualityError(KcolorsError):
    """Even 256 colours miss the requested quality target (the result is still written)."""

    exit_code = 99


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "unexpected internal error (a bug: please report it)",
    2: "invalid option or argument (or image bytes asked for on a terminal)",
    3: "cannot read the input (missing, empty, truncated, not an image, a symbolic-link loop)",
    4: "image (any frame or page) larger than --max-pixels, or of more frames than --max-frames (decompression-bomb "
       "guards), or a pipe sending more than --max-input-mb",
    5: "cannot write the output (a folder missing or not writable, a full disk, standard output closed)",
    6: "output exists (use -f/--force)",
    7: "batch, or several inputs: some files failed (the others were written)",
    8: "batch: stopped, the Dask cluster had no worker for --worker-timeout seconds (what was done is kept)",
    98: "--skip-if-larger: the output would be larger than the input, so nothing was written",
    99: "quality target missed even at 256 colours (the 256-colour result is written; batch: when nothing failed)",
    130: "interrupted (Ctrl-C)",
    143: "terminated (SIGTERM); no partial or temporary file is left",
}


def printable(text: str) -> str:
    r"""``text`` as kcolors shows or writes it (stderr, reports): names that are not valid UTF-8 escaped.

    Python keeps the bytes of such a name as lone surrogates (``caf\udce9.png``),
    which no UTF-8 stream or file can take. One rule everywhere, Python's
    ``backslashreplace``: each such byte as ``\xNN``, any other lone surrogate as
    ``\uNNNN``. Valid text is unchanged.

    >>> import os
    >>> printable(os.fsdecode(b"caf\xe9.png")), printable("café.png")
    ('caf\\xe9.png', 'café.png')
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "".join(_printable_char(char) for char in text)


def _printable_char(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a name that was not valid UTF-8 (os.fsdecode's surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return char
