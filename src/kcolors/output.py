"""Writing results safely: the format from the extension, every output checked before any work, files
written to a temporary beside them and renamed into place (all of a command's outputs, or none), never an
overwrite without ``force``, never the input itself, standard output errors as exit codes."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import OutputError, OutputExistsError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable

# Extension -> Pillow format. PNG/GIF/TIFF/BMP hold a palette; WebP is written lossless.
FORMATS = {
    ".png": "PNG", ".apng": "PNG", ".gif": "GIF", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
    ".bmp": "BMP", ".jpg": "JPEG", ".jpeg": "JPEG",
}
# --format choices. JPEG is left out: its encoder brings back the colours the palette removed.
OUTPUT_FORMATS = ("keep", "png", "gif", "webp", "tif", "bmp")
# With --format keep, inputs in these formats keep their extension; the rest (JPEG, lossy
# WebP, and formats kcolors does not write) become PNG, which holds a palette exactly.
KEEP_SUFFIXES = (".png", ".gif", ".tif", ".tiff", ".bmp")
_umask_lock = threading.Lock()
# A temporary file is named .NAME.PID-XXXXXXXX.part: beside NAME, a dot, the process id (at most 7 digits: Linux's
# pid_max is at most 2**22), a dash, 8 random characters and .part. Where that is longer than the file system allows,
# NAME is cut and a digest of the whole name added (see temporary_prefix); reserving 7 digits, not this process's
# own, makes the cut the same for every writer, so that the next run finds a dead writer's file.
PID_DIGITS = 7
TEMPORARY_EXTRA = len("..") + PID_DIGITS + len("-") + 8 + len(".part")
DEFAULT_NAME_MAX = 255  # where the file system does not say (os.pathconf)


def output_format(path: str | os.PathLike[str]) -> str:
    """Pillow format for an output path, from its extension ("-" is PNG)."""
    if str(path) == "-":
        return "PNG"
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise UsageError(f"{path}: unknown output extension {ext or '(none)'!r}; use one of {known}")
    return FORMATS[ext]


def output_suffix(path, fmt="keep"):
    """The output extension for an input ``path`` under ``--format fmt``.

    >>> output_suffix("a/photo.JPG"), output_suffix("icon.gif"), output_suffix("icon.gif", "png")
    ('.png', '.gif', '.png')
    """
    if fmt != "keep":
        return "." + fmt
    suffix = Path(path).suffix.lower()
    return suffix if suffix in KEEP_SUFFIXES else ".png"


def output_tag(k, delta_e=None, psnr=None):
    """What an output's name says of the settings: ``-kK``, or the quality targets when there are any.

    A target's k is known only after the search, so a name by k could not be
    told beforehand (``--skip-existing``); the target is known, and a rerun at
    another target makes other names, as a rerun at another k does.

    >>> output_tag(16), output_tag(16, delta_e=4), output_tag(16, psnr=40), output_tag(8, 2.5, 38.5)
    ('-k16', '-de4', '-psnr40', '-de2.5-psnr38.5')
    """
    targets = [f"-de{delta_e:g}"] if delta_e is not None else []
    targets += [f"-psnr{psnr:g}"] if psnr is not None else []
    return "".join(targets) or f"-k{k}"


def output_name(input_path, k, fmt="keep", *, delta_e=None, psnr=None):
    """The one naming rule of every output made from an input: ``STEM`` + :func:`output_tag` + :func:`output_suffix`.

    The same for ``compress`` (beside the input, or ``-o FOLDER/``), batch
    (which puts it in the input's mirrored subfolder) and the web page's
    download name. A file name only, without folder; an input without a name
    (an upload's ``""``) is called ``image``.

    >>> output_name("shots/photo.jpg", 16), output_name("icon.GIF", 4), output_name("a.png", 16, delta_e=4)
    ('photo-k16.png', 'icon-k4.gif', 'a-de4.png')
    """
    path = Path(input_path)
    return (path.stem or "image") + output_tag(k, delta_e, psnr) + output_suffix(path, fmt)


def make_output_folder(folder):
    """Create ``folder`` (and its parents) for the outputs, or say why not (OutputError): batch's ``-o`` and
    ``compress -o FOLDER/``, which the README promises for any name ending in /."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{folder}: is a file, not a folder") from None
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create the output folder ({exc.strerror or exc})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{folder}: output folder is not writable")


def check_output(path: str | os.PathLike[str], *, input_path: str | os.PathLike[str] | None = None, force: bool = False,
                 extensions: Iterable[str] | None = None) -> None:
    """Refuse, before any work, an output that could not or should not be written.

    ``extensions`` lists the endings allowed (default: the image formats of ``FORMATS``).
    """
    if extensions is None:
        output_format(path)
    elif Path(path).suffix.lower() not in extensions:
        ext = Path(path).suffix.lower()
        raise UsageError(f"{path}: unknown output extension {ext or '(none)'!r}; use one of {', '.join(extensions)}")
    if str(path) == "-":
        check_stdout()
        return
    path = Path(path)
    folder = _folder(path)
    _check_name_length(path, folder)  # first: pathlib's checks below raise on a name too long
    if input_path is not None and str(input_path) != "-" and _same_file(path, Path(input_path)):
        raise UsageError(f"{path}: output is the input; choose another output name")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name")
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: exists; use -f/--force to overwrite")
    _check_folder(path, folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: folder {folder} is not writable")


def _folder(path):
    return path.parent if str(path.parent) else Path(".")


def _check_folder(path, folder):
    """OutputError unless ``folder`` is a folder, saying why: missing, a symbolic-link loop, not a folder."""
    try:
        mode = os.stat(folder).st_mode
    except FileNotFoundError:
        raise OutputError(f"{path}: folder {folder} does not exist") from None
    except OSError as exc:
        why = "is a symbolic-link loop" if exc.errno == errno.ELOOP else f"cannot be resolved ({exc.strerror or exc})"
        raise OutputError(f"{path}: folder {folder} {why}") from None
    if not stat.S_ISDIR(mode):
        raise OutputError(f"{path}: {folder} is not a folder")


def name_max(folder):
    """The longest file name, in bytes, that ``folder``'s file system takes."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return DEFAULT_NAME_MAX


def _check_name_length(path, folder):
    """OutputError for a name the file system cannot hold, before any work (else it fails only when written)."""
    length, limit = len(os.fsencode(path.name)), name_max(folder)
    if length > limit:
        raise OutputError(f"{path}: the name is too long for the file system ({length} bytes, at most {limit}); "
                          "choose a shorter one")


def _same_file(a, b):
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except (OSError, RuntimeError):  # RuntimeError: a symbolic-link loop (reported when the input is read)
        return False


def write_bytes(path: str | os.PathLike[str], data: bytes, *, force: bool = False) -> None:
    """Write ``data`` atomically: a temporary file beside ``path``, then a rename.

    A failure leaves ``path`` as it was and no temporary file behind. ``"-"``
    writes standard output. See :func:`write_files`.
    """
    write_files([(path, data)], force=force)


def write_files(outputs, *, force=False):
    """Write every ``(path, data)`` of ``outputs``, or none of them.

    Each goes to a temporary file beside its path, ``.NAME.PID-XXXX.part``;
    only when all are written are they renamed into place, so a failure (a
    full disk, a folder that went away) leaves every path as it was and no
    temporary file behind. The process id in the name tells a dead writer's
    litter (removed here, before writing) from a live writer's file. A new
    file's mode follows the umask; an overwritten file keeps its mode.
    ``"-"`` writes standard output (last, after the files).
    """
    to_stdout = [data for path, data in outputs if str(path) == "-"]
    if to_stdout:
        check_stdout()
    files = [(Path(path), data) for path, data in outputs if str(path) != "-"]
    for path, _ in files:
        if path.is_dir():  # a rename onto a folder would fail after the others were in place
            raise OutputError(f"{path}: is a folder; give a file name")
        if path.exists() and not force:
            raise OutputExistsError(f"{path}: exists; use -f/--force to overwrite")
    temporaries, placed, current = [], [], None
    try:
        for current, data in files:
            remove_stale_temporaries(current)
            temporaries.append((_write_temporary(current, data), current, current.exists()))
        for tmp, current, existed in temporaries:
            os.replace(tmp, current)
            placed.append((current, existed))
        temporaries = []
    except OSError as exc:
        for path, existed in placed:  # a rename failed after others: take back the new files
            if not existed:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        raise OutputError(f"{current}: cannot write ({exc.strerror or exc})") from None
    finally:
        for tmp, _, _ in temporaries:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    for data in to_stdout:
        write_stdout(data)


# How a temporary file is made: created here or not at all (O_EXCL), not through a link, not inherited by
# programs started meanwhile; mode 0600 until it is complete.
TEMPORARY_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def temporary_beside(path):
    """A new temporary file's name beside ``path``: ``.NAME.PID-XXXXXXXX.part``, 8 random hex digits (the
    name :func:`remove_stale_temporaries` knows). Named before it is made (``os.open(name, TEMPORARY_FLAGS,
    0o600)``), so that a signal at any moment after its creation finds its name to remove it; not through
    ``tempfile.mkstemp``, whose import (with shutil, bz2, lzma and random) was 3 ms of every start-up."""
    return os.path.join(_folder(path), f"{temporary_prefix(path)}{os.getpid()}-{os.urandom(4).hex()}.part")


def _write_temporary(path, data):
    """``data`` in a new temporary file beside ``path``, synced, with the mode ``path`` should have."""
    tmp = temporary_beside(path)
    try:
        with os.fdopen(os.open(tmp, TEMPORARY_FLAGS, 0o600), "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), _mode_for(path))
    except FileExistsError:  # the name was already taken: that file is not ours to remove
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _mode_for(path):
    """An overwritten file keeps its mode; a new one gets 0666 less the umask (as any program's new file)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask():
    """The process's umask, read without changing it (os.umask would, for a moment, for every thread)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_lock:  # elsewhere: set and restore it, briefly
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def remove_stale_temporaries(path):
    """Remove the temporary files of ``path`` left by writers that are no longer running.

    A writer killed before it could clean up (SIGKILL, a power cut) leaves
    ``.NAME.PID-XXXX.part`` (see :func:`temporary_prefix`); a file whose PID
    is alive belongs to a writer at work and is left alone.
    """
    path = Path(path)
    folder = _folder(path)
    prefix = temporary_prefix(path)
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not (entry.name.startswith(prefix) and entry.name.endswith(".part")):
                continue
            pid = entry.name[len(prefix):].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def temporary_prefix(path):
    """How the temporary files of ``path`` begin: ``.NAME.``, then the writer's PID, ``-XXXXXXXX.part``.

    Where that name would be longer than the file system takes (a NAME of
    more than about 230 bytes), NAME is cut, between characters, and followed
    by ``~`` and 8 hex digits of a digest of the whole name: ``.NAME-CUT~1a2b3c4d.``.
    The same for every writer of ``path``, and another output's cut name
    differs by its digest.
    """
    path = Path(path)
    encoded = os.fsencode(path.name)
    room = name_max(_folder(path)) - TEMPORARY_EXTRA
    if len(encoded) <= room:
        return f".{path.name}."
    import hashlib  # here: 3 ms of every start-up, for names of over 230 bytes only

    digest = hashlib.sha256(encoded).hexdigest()[:8]
    return f".{_cut(path.name, room - len(digest) - 1)}~{digest}."


def _cut(name, size):
    """The longest start of ``name`` whose file-system bytes fit in ``size``, whole characters only."""
    used = 0
    for end, char in enumerate(name):
        used += len(os.fsencode(char))
        if used > size:
            return name[:end]
    return name


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def check_stdout():
    """Refuse, before any work, a standard output that is closed (OutputError) or a terminal (UsageError)."""
    refuse_closed_stdout()
    refuse_terminal()


def refuse_closed_stdout():
    """OutputError when standard output is closed (``>&-``): Python then has no ``sys.stdout``, and ``print``
    would write nothing, silently."""
    if sys.stdout is None:
        raise OutputError("standard output: cannot write (it is closed)")


def refuse_terminal():
    """UsageError when standard output is a terminal: image bytes there are noise, and can upset it (as gzip)."""
    try:
        tty = sys.stdout is not None and os.isatty(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # no real file descriptor (replaced by a test, closed)
        tty = False
    if tty:
        raise UsageError("standard output is a terminal: kcolors writes no image there; redirect it "
                         "(> out.png) or give a file name with -o")


def write_stdout(data):
    """Bytes to standard output; a full disk or closed standard output is an OutputError (exit 5), not a crash.

    A closed pipe (``| head``) raises BrokenPipeError, which the command line ends quietly.
    """
    refuse_closed_stdout()
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(f"standard output: cannot write ({exc.strerror or exc})") from None


def print_line(text):
    """A line of text to standard output, as :func:`write_stdout`."""
    write_stdout((text + "\n").encode())
