"""Planning a batch: the input images (files, folders, glob patterns) and the output path of each."""

import glob
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..errors import UsageError
from ..io import accepted_extensions

# --format choices. JPEG is left out: its encoder brings back the colours the palette removed.
OUTPUT_FORMATS = ("keep", "png", "gif", "webp", "tif", "bmp")
# With --format keep, inputs in these formats keep their extension; the rest (JPEG, lossy
# WebP, and formats kcolors does not write) become PNG, which holds a palette exactly.
KEEP_SUFFIXES = (".png", ".gif", ".tif", ".tiff", ".bmp")


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


def output_suffix(path, fmt="keep"):
    """The output extension for an input ``path`` under ``--format fmt``.

    >>> output_suffix("a/photo.JPG"), output_suffix("icon.gif"), output_suffix("icon.gif", "png")
    ('.png', '.gif', '.png')
    """
    if fmt != "keep":
        return "." + fmt
    suffix = Path(path).suffix.lower()
    return suffix if suffix in KEEP_SUFFIXES else ".png"


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


def plan(inputs, outdir, fmt="keep"):
    """Find the input images and the output path of each.

    Parameters
    ----------
    inputs : list of str or Path
        Files, folders (searched recursively; hidden files and files whose
        extension Pillow does not read are passed over) and glob patterns
        (``**`` matches folders at any depth). A file named explicitly is
        always tried, so a missing or non-image file is reported, not dropped.
    outdir : str or Path
        Outputs mirror the inputs' folder tree under it, from the deepest
        folder that holds every input. Files already under ``outdir`` are not
        inputs (so a rerun of ``kcolors batch . -o out`` does not flatten ``out/``).
    fmt : str
        One of :data:`OUTPUT_FORMATS`; ``"keep"`` keeps PNG, GIF, TIFF and BMP
        and writes PNG for the rest.

    Returns
    -------
    Plan

    Raises
    ------
    UsageError
        Unknown format, or an output that would overwrite its input.
    """
    if fmt not in OUTPUT_FORMATS:
        raise UsageError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, not {fmt!r}")
    outdir_abs = os.path.abspath(outdir)
    found, root, ignored, notes, unreadable = find_inputs(inputs, exclude=outdir_abs)
    jobs, rejected, seen_outputs = [], [], {}
    for name in found:
        source = os.path.abspath(name)
        relative = str(Path(os.path.relpath(source, root)).with_suffix(output_suffix(source, fmt)))
        job = Job(len(jobs) + len(rejected), source, os.path.join(outdir_abs, relative), name,
                  os.path.join(str(outdir), relative))
        if job.output == source:
            raise UsageError(f"{job.output_name}: output would overwrite the input; choose another output folder")
        if job.output in seen_outputs:
            rejected.append((job, f"{job.output_name}: is also the output of {seen_outputs[job.output]}; "
                                  "rename one or choose another --format"))
            continue
        seen_outputs[job.output] = name
        jobs.append(job)
    for folder, reason in unreadable:  # a row each in the report: images may be missing from the batch
        rejected.append((Job(len(jobs) + len(rejected), os.path.abspath(folder), "", folder, ""), reason))
    return Plan(jobs, rejected, ignored, notes)


def find_inputs(inputs, exclude=None):
    """The image files named by ``inputs`` (see :func:`plan`), each once, in order.

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


def _expand(argument, outdir_abs, extensions):
    """(files, root folder of the mirrored tree, files passed over, unreadable folders) of one input argument."""
    if os.path.isdir(argument):
        return _walk(argument, outdir_abs, extensions)
    if glob.has_magic(argument) and not os.path.exists(argument):
        root = _pattern_root(argument)
        matches = sorted(p for p in glob.glob(argument, recursive=True)
                         if os.path.isfile(p) and _outside(p, outdir_abs, root))
        # glob passes over folders it cannot list, silently: with "**" any folder below the root counts
        unreadable = _unreadable_folders(root, outdir_abs) if "**" in argument else []
        return matches, os.path.abspath(root), 0, unreadable
    # a file named explicitly, or a path that does not exist: tried, so that the problem is reported
    return [argument], os.path.dirname(os.path.abspath(argument)), 0, []


def _walk(folder, outdir_abs, extensions):
    files, ignored, unreadable = [], 0, {}
    root = os.path.abspath(folder)

    def cannot_search(error):  # os.walk passes over a folder it cannot list; the batch must say so
        unreadable.setdefault(error.filename, _unreadable(error.filename, error))

    for here, dirs, names in os.walk(folder, onerror=cannot_search):
        # hidden folders (.git, caches) and the output folder are not searched
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and _outside(os.path.join(here, d), outdir_abs, root))
        for name in sorted(names):
            path = os.path.join(here, name)
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in extensions:
                ignored += 1
                continue
            try:
                is_file = stat.S_ISREG(os.stat(path).st_mode)
            except (FileNotFoundError, NotADirectoryError):  # a dangling link: not an image
                is_file = False
            except OSError as exc:  # listed but not looked at: a folder without search (x) permission
                unreadable.setdefault(here, _unreadable(here, exc))
                continue
            if is_file:
                files.append(path)
            else:
                ignored += 1
    return files, root, ignored, sorted(unreadable.items())


def _unreadable_folders(folder, outdir_abs):
    """The folders below ``folder`` that cannot be listed, as :func:`_walk` reports them (for glob patterns)."""
    unreadable = {}
    root = os.path.abspath(folder)
    for here, dirs, _ in os.walk(folder, onerror=lambda error: unreadable.setdefault(
            error.filename, _unreadable(error.filename, error))):
        dirs[:] = [d for d in dirs if not d.startswith(".") and _outside(os.path.join(here, d), outdir_abs, root)]
    return sorted(unreadable.items())


def _unreadable(folder, error):
    return f"{folder}: cannot search this folder ({error.strerror or error}); the images in it were not done"


def _outside(path, outdir_abs, root):
    """False for paths inside the output folder, unless the input itself lies in it."""
    if outdir_abs is None:
        return True
    path = os.path.abspath(path)
    inside = os.path.commonpath([path, outdir_abs]) == outdir_abs
    root_inside = os.path.commonpath([os.path.abspath(root), outdir_abs]) == outdir_abs
    return not inside or root_inside


def _pattern_root(pattern):
    """The folder part of a glob pattern before its first wildcard."""
    parts = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return os.path.join(*parts) if parts else "."
