"""Planning a batch: the input images (files, folders, glob patterns) and the output path of each."""

import errno
import glob
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..errors import UsageError
from ..io import accepted_extensions
from ..output import KEEP_SUFFIXES, OUTPUT_FORMATS, output_name, output_suffix  # noqa: F401 -- batch's names


class Job(NamedTuple):
    """One file to do. ``source`` and ``output`` are absolute (a Dask worker has another
    working folder); ``input_name`` and ``output_name`` are the paths as the user wrote them."""

    index: int
    source: str
    output: str
    input_name: str
    output_name: str


def image_extensions():
    """File extensions a folder search takes: those of the decoders kcolors allows (lower case, with the dot).

    Not every format Pillow registers: PostScript, PDF and the exotic formats
    are refused when read, and a folder search passes them over.
    """
    return accepted_extensions()


@dataclass
class Plan:
    """What :func:`plan` found: the jobs, inputs that will fail before any work, and notes."""

    jobs: list
    rejected: list  # (job, reason) of inputs that cannot be done (two inputs with one output, unreadable folders)
    ignored: int  # files skipped while searching folders: hidden, or not images by their extension
    warnings: list


class Found(NamedTuple):
    """What :func:`find_inputs` found."""

    names: list  # the image files, each once, in order
    root: str  # the deepest folder holding every input
    ignored: int  # files passed over in folders
    notes: list  # inputs that found nothing
    unreadable: list  # (folder, reason) of folders that could not be searched


def plan(inputs, outdir, fmt="keep", *, k=16, delta_e=None, psnr=None):
    """Find the input images and the output path of each: ``STEM-kK.EXT`` (:func:`kcolors.output.output_name`).

    Parameters
    ----------
    inputs : list of str or Path
        Files, folders (searched recursively; hidden files and files whose
        extension Pillow does not read are passed over) and glob patterns
        (``**`` matches folders at any depth). A file named explicitly is
        always tried, so a missing or non-image file is reported, not dropped.
    outdir : str or Path or None
        None: each output beside its input (several inputs given to ``kcolors``). Else outputs mirror the
        inputs' folder tree under it, from the deepest
        folder that holds every input. Files already under ``outdir`` are not
        inputs (so a rerun of ``kcolors batch . -o out`` does not flatten ``out/``),
        wherever links lead: what counts is the folder's real path.
    fmt : str
        One of :data:`OUTPUT_FORMATS`; ``"keep"`` keeps PNG, GIF, TIFF and BMP
        and writes PNG for the rest.
    k, delta_e, psnr
        What the names say: ``photo-k16.png``, or the quality targets when
        given (``photo-de4.png``, ``photo-psnr40.png``), whose k is known only
        after the search. So a rerun at another k or target never takes the
        last run's outputs for its own (``--skip-existing``).

    Returns
    -------
    Plan

    Raises
    ------
    UsageError
        Unknown format, or an output that would overwrite an input by any path
        (a linked output folder or subfolder, a link or hard link to an input).
    """
    if fmt not in OUTPUT_FORMATS:
        raise UsageError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, not {fmt!r}")
    outdir_abs = None if outdir is None else os.path.abspath(outdir)
    found, root, ignored, notes, unreadable = find_inputs(inputs, exclude=outdir_abs)
    jobs, rejected, seen_outputs = [], [], {}
    real = _RealPaths()
    guard = _InputGuard(found, real)
    for name in found:
        source = os.path.abspath(name)
        named = output_name(source, k, fmt, delta_e=delta_e, psnr=psnr)
        if outdir is None:  # beside the input
            output, shown = os.path.join(os.path.dirname(source), named), os.path.join(os.path.dirname(name), named)
        else:
            relative = os.path.join(os.path.dirname(os.path.relpath(source, root)), named)
            output, shown = os.path.join(outdir_abs, relative), os.path.join(str(outdir), relative)
        job = Job(len(jobs) + len(rejected), source, output, name, shown)
        guard.check(job)
        real_output = real.written(job.output)  # two names, one file (a linked folder): a clash too
        if real_output in seen_outputs:
            rejected.append((job, f"{job.output_name}: is also the output of {seen_outputs[real_output]}; "
                                  "rename one or choose another --format"))
            continue
        seen_outputs[real_output] = name
        jobs.append(job)
    for folder, reason in unreadable:  # a row each in the report: images may be missing from the batch
        rejected.append((Job(len(jobs) + len(rejected), os.path.abspath(folder), "", folder, ""), reason))
    return Plan(jobs, rejected, ignored, notes)


class _InputGuard:
    """Refuses an output that is an input under another name, before any work.

    An output is written to a temporary file beside it, then renamed into place:
    the rename replaces the directory entry, so what it lands on is the output's
    folder, resolved, plus its name. That is an input when it is the real path
    of any input (an output folder, or a folder in the output tree, that is a
    link into the inputs; an input that is a link to where an output goes; the
    output of one input landing on another). An output that exists already is
    compared by identity too (device and inode): a hard link, or a link, to an input.
    """

    def __init__(self, names, real):
        self.names, self.real = names, real
        self.by_real_path = {}
        for name in names:
            self.by_real_path.setdefault(real.file(name), name)
        self._by_identity = None  # made when the first existing output is met

    def check(self, job):
        """Raise UsageError when ``job`` would write over an input."""
        name = self.by_real_path.get(self.real.written(job.output))
        if name is None and os.path.lexists(job.output):
            name = self._identities().get(_identity(job.output))
        if name is not None:
            raise UsageError(f"{job.output_name}: output would overwrite the input {name}; "
                             "choose another output folder")

    def _identities(self):
        if self._by_identity is None:
            self._by_identity = {}
            for name in self.names:
                self._by_identity.setdefault(_identity(name), name)
            self._by_identity.pop(None, None)
        return self._by_identity


def overwrites_input(output, source):
    """Whether writing ``output`` (a rename in its folder) would land on the file ``source``.

    :func:`plan` refuses such outputs; a task checks again just before it
    writes, in case a link was planted in the output tree meanwhile.
    """
    real = _RealPaths()
    if real.written(output) == real.file(source):
        return True
    return os.path.lexists(output) and _identity(output) is not None and _identity(output) == _identity(source)


def _identity(path):
    """(device, inode) of the file ``path`` leads to, or None (missing, a dangling link or a loop)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


class _RealPaths:
    """Real paths (every link resolved), each folder resolved once: a batch of many files has few folders."""

    def __init__(self):
        self._folders = {}

    def folder(self, folder):
        real = self._folders.get(folder)
        if real is None:
            real = self._folders[folder] = os.path.realpath(folder)
        return real

    def file(self, path):
        """The real path of the file ``path`` leads to (a link followed)."""
        path = os.path.abspath(path)
        return os.path.realpath(path) if os.path.islink(path) else self.written(path)

    def written(self, output):
        """Where writing ``output`` lands: its folder with every link resolved, plus its own name.

        Not the real path of ``output`` itself: the rename that puts an output in
        place replaces a link there rather than writing through it.
        """
        folder, name = os.path.split(output)
        return os.path.join(self.folder(folder), name)


def find_inputs(inputs, exclude=None):
    """The image files named by ``inputs`` (see :func:`plan`), each once, in order.

    ``exclude``: a folder (the output folder) whose files are left out, unless an
    input argument lies in it; compared by real path.

    Returns
    -------
    Found
    """
    names, roots, notes, ignored, seen, unreadable = [], [], [], 0, set(), []
    for argument in map(str, inputs):
        files, root, skipped, failed = _expand(argument, exclude, image_extensions())
        ignored += skipped
        roots.append(root)
        unreadable += failed
        if not files and not failed:
            notes.append(f"{argument}: no images found" if os.path.isdir(argument) else f"{argument}: matches no file")
        for name in files:
            if os.path.abspath(name) not in seen:  # named twice (a file and its folder): done once
                seen.add(os.path.abspath(name))
                names.append(name)
    return Found(names, os.path.commonpath(roots) if roots else os.getcwd(), ignored, notes, unreadable)


def _expand(argument, outdir, extensions):
    """(files, root folder of the mirrored tree, files passed over, unreadable folders) of one input argument."""
    if os.path.isdir(argument):
        return _walk(argument, outdir, extensions)
    if glob.has_magic(argument) and not os.path.exists(argument):
        root = _pattern_root(argument)
        outside = _Outside(outdir, root)
        matches = sorted(p for p in glob.glob(argument, recursive=True) if os.path.isfile(p) and outside(p))
        # glob passes over folders it cannot list, silently: with "**" any folder below the root counts
        unreadable = _unreadable_folders(root, outside) if "**" in argument else []
        return matches, os.path.abspath(root), 0, unreadable
    # a file named explicitly, or a path that does not exist: tried, so that the problem is reported
    return [argument], os.path.dirname(os.path.abspath(argument)), 0, []


def _walk(folder, outdir, extensions):
    files, ignored, unreadable = [], 0, {}
    root = os.path.abspath(folder)
    outside = _Outside(outdir, root)

    def cannot_search(error):  # os.walk passes over a folder it cannot list; the batch must say so
        unreadable.setdefault(error.filename, _unreadable(error.filename, error))

    for here, dirs, names in os.walk(folder, onerror=cannot_search):
        # hidden folders (.git, caches) and the output folder are not searched
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and outside(os.path.join(here, d)))
        for name in sorted(names):
            path = os.path.join(here, name)
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in extensions:
                ignored += 1
                continue
            try:
                kind = _kind(path, outside)
            except OSError as exc:  # listed but not looked at: a folder without search (x) permission
                unreadable.setdefault(here, _unreadable(here, exc))
                continue
            if kind == "image":
                files.append(path)
            elif kind == "other":
                ignored += 1
    return files, root, ignored, sorted(unreadable.items())


def _kind(path, outside):
    """"image" (a regular file, or a link to one), "output" (a link into the output folder) or "other".

    "other": a folder, a device, a dangling link or a link that loops, passed
    over. Raises OSError when the folder holding ``path`` cannot be searched.
    """
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        if not outside(path):  # its file lies in the output folder: an output, like the folder's own files
            return "output"
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG):
                return "other"  # a broken link: not an image, and the rest of its folder is fine
            raise
    return "image" if stat.S_ISREG(mode) else "other"


def _unreadable_folders(folder, outside):
    """The folders below ``folder`` that cannot be listed, as :func:`_walk` reports them (for glob patterns)."""
    unreadable = {}
    for here, dirs, _ in os.walk(folder, onerror=lambda error: unreadable.setdefault(
            error.filename, _unreadable(error.filename, error))):
        dirs[:] = [d for d in dirs if not d.startswith(".") and outside(os.path.join(here, d))]
    return sorted(unreadable.items())


def _unreadable(folder, error):
    return f"{folder}: cannot search this folder ({error.strerror or error}); the images in it were not done"


class _Outside:
    """Whether a path lies outside the output folder (or the search began inside it: then every path counts).

    Compared by real paths, links resolved: an output folder that is a link into
    the inputs (``-o flat``, ``flat -> in/flat``) is still left out, so a rerun
    does not flatten the last run's outputs again.
    """

    def __init__(self, outdir, root):
        self.outdir = None if outdir is None else os.path.realpath(outdir)
        self.everything = outdir is None or _under(os.path.realpath(root), self.outdir)

    def __call__(self, path):
        return self.everything or not _under(os.path.realpath(path), self.outdir)


def _under(path, folder):
    return os.path.commonpath([path, folder]) == folder


def _pattern_root(pattern):
    """The folder part of a glob pattern before its first wildcard."""
    parts = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return os.path.join(*parts) if parts else "."
