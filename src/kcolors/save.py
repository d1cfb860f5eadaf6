"""Writing a result to a file (or standard output), safely."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .encode import encode
from .errors import OutputExistsError
from .output import check_output, output_format, write_bytes

if TYPE_CHECKING:
    import os

    from .result import Quantization


def save(result: Quantization, path: str | os.PathLike[str], *, force: bool = False) -> int:
    """Write ``result`` to ``path`` in the format its extension names; return the bytes written.

    Refuses to overwrite without ``force`` and to overwrite the input; writes a
    temporary file and renames it, so a failure never leaves a damaged file.
    ``"-"`` writes PNG to standard output.
    """
    fmt = output_format(path)
    try:
        check_output(path, input_path=result.picture.path, force=force)
        data = encode(result, fmt, icc=result.picture.icc)
        write_bytes(path, data, force=force)
    except OutputExistsError:  # the command line's answer is -f/--force; here it is an argument
        raise OutputExistsError(f"{path}: exists; pass force=True to overwrite") from None
    return len(data)
