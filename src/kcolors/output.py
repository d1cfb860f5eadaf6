"""Writing results safely: the format from the extension, every output checked before any work, files
written to a temporary beside them and renamed into place (all of a command's outputs, or none), never an
overwrite without ``force``, never the input itself, standard output errors as exit codes."""

import contextlib
import os
import stat
import sys
import tempfile
import threading
from pathlib import Path

from .errors import OutputError, OutputExistsError, UsageError

# Extension -> Pillow format. PNG/GIF/TIFF/BMP hold a palette; WebP is written lossless.
FORMATS = {
    ".png": "PNG", ".apng": "PNG", ".gif": "GIF", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
    ".bmp": "BMP", ".jpg": "JPEG", ".jpeg": "JPEG",
}
_umask_lock = threading.Lock()


def output_format(path):
    """Pillow format for an output path, from its extension ("-" is PNG)."""
    if str(path) == "-":
        return "PNG"
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise UsageError(f"{path}: unknown output extension {ext or '(none)'!r}; use one of {known}")
    return FORMATS[ext]


def check_output(path, *, input_path=None, force=False, extensions=None):
    """Refuse, before any work, an output that could not or should not be written.

    ``extensions`` lists the endings allowed (default: the image formats of ``FORMATS``).
    """
    if extensions is None:
        output_format(path)
    elif Path(path).suffix.lower() not in extensions:
        ext = Path(path).suffix.lower()
        raise UsageError(f"{path}: unknown output extension {ext or '(none)'!r}; use one of {', '.join(extensions)}")
    if str(path) == "-":
        refuse_terminal()
        return
    path = Path(path)
    if input_path is not None and str(input_path) != "-" and _same_file(path, Path(input_path)):
        raise UsageError(f"{path}: output is the input; choose another output name")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name")
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: exists; use -f/--force to overwrite")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: folder {folder} is not writable")


def _same_file(a, b):
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except (OSError, RuntimeError):  # RuntimeError: a symbolic-link loop (reported when the input is read)
        return False


def write_bytes(path, data, *, force=False):
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
        refuse_terminal()
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


def _write_temporary(path, data):
    """``data`` in a new temporary file beside ``path``, synced, with the mode ``path`` should have."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), _mode_for(path))
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
    ``.NAME.PID-XXXX.part``; a file whose PID is alive belongs to a writer at
    work and is left alone.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    prefix = f".{path.name}."
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not (entry.name.startswith(prefix) and entry.name.endswith(".part")):
                continue
            pid = entry.name[len(prefix):].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


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
    """Bytes to standard output; a full disk or closed pipe is an OutputError (exit 5), not a crash."""
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
