"""Whole collections: flatten many images on local cores or on a Dask cluster.

The data path of one run:

1. :func:`plan` turns the inputs (files, folders searched recursively, glob
   patterns) into :class:`Job` s, each an input and the output that mirrors it
   under the output folder. Nothing is read yet.
2. A runner, :class:`LocalPool` (a process pool on this machine, the default)
   or :class:`DaskCluster` (a running Dask distributed scheduler), calls
   :func:`process_file` on every job. The task is a pure function of the job:
   it reads the input and writes its output atomically, so a task rerun after
   a worker died writes the same bytes again and a killed batch leaves no
   partial file.
3. With a shared palette, :func:`image_histogram` runs first on every image,
   the histograms are summed (they add up), one palette is fitted on the sum
   (:func:`fit_shared_palette`) and every image is then recoloured with it.

One bad file never stops a batch: its task returns a row with
``status="failed"`` and the reason, and the rest go on. :class:`Batch` holds
the rows (one per file, with the figures of ``kcolors compress --json``),
writes the report and sums them up.
"""

import collections
import contextlib
import csv
import glob
import io
import json
import os
import signal
import sys
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from PIL import Image

from . import __version__, kernels
from .encode import encode
from .errors import InputError, KcolorsError, OutputError, OutputExistsError, UsageError
from .io import load_image, output_format, write_bytes
from .quantize import check_options, fit_palette, ordered_over, quantize

BATCH_FAILED = 7  # exit code: some files failed, the others were written
DONE, SKIPPED, FAILED = "done", "skipped", "failed"

# --format choices. JPEG is left out: its encoder brings back the colours the palette removed.
OUTPUT_FORMATS = ("keep", "png", "gif", "webp", "tif", "bmp")
# With --format keep, inputs in these formats keep their extension; the rest (JPEG, lossy
# WebP, and formats kcolors does not write) become PNG, which holds a palette exactly.
KEEP_SUFFIXES = (".png", ".gif", ".tif", ".tiff", ".bmp")

REPORT_COLUMNS = ("input", "output", "status", "error", "bytes_in", "bytes_out", "width", "height", "k",
                  "space", "engine", "dither", "colors_in", "colors_out", "psnr", "delta_e", "delta_e_sample",
                  "seconds", "palette", "shares")


@dataclass(frozen=True)
class Settings:
    """The quantizing options every task needs (those of ``kcolors compress``)."""

    k: int = 16
    space: str = "rgb"
    dither: float = 0.0
    engine: str = "fast"
    seed: int = 0
    max_pixels: int = None

    def check(self):
        check_options(self.k, self.space, self.dither, self.engine)
        return self


class Job(NamedTuple):
    """One file to do. ``source`` and ``output`` are absolute (a Dask worker has another
    working folder); ``input_name`` and ``output_name`` are the paths as the user wrote them."""

    index: int
    source: str
    output: str
    input_name: str
    output_name: str


# --------------------------------------------------------------------------- finding the inputs


def image_extensions():
    """File extensions Pillow can read (lower case, with the dot)."""
    Image.init()
    return frozenset(Image.registered_extensions())


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
    rejected: list  # (job, reason) of inputs that cannot be done (two inputs with one output)
    ignored: int  # files skipped while searching folders: hidden, or not images by their extension
    warnings: list


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
    found, root, ignored, notes = find_inputs(inputs, exclude=outdir_abs)
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
    return Plan(jobs, rejected, ignored, notes)


def find_inputs(inputs, exclude=None):
    """The image files named by ``inputs`` (see :func:`plan`), each once, in order.

    Returns
    -------
    (names, root, ignored, notes)
        ``root``: the deepest folder holding every input; ``ignored``: files
        passed over in folders; ``notes``: inputs that found nothing.
    """
    names, roots, notes, ignored, seen = [], [], [], 0, set()
    for argument in map(str, inputs):
        files, root, skipped = _expand(argument, exclude, image_extensions())
        ignored += skipped
        roots.append(root)
        if not files:
            notes.append(f"{argument}: no images found" if os.path.isdir(argument) else f"{argument}: matches no file")
        for name in files:
            if os.path.abspath(name) not in seen:  # named twice (a file and its folder): done once
                seen.add(os.path.abspath(name))
                names.append(name)
    return names, (os.path.commonpath(roots) if roots else os.getcwd()), ignored, notes


def _expand(argument, outdir_abs, extensions):
    """(files, root folder of the mirrored tree, files passed over) of one input argument."""
    if os.path.isdir(argument):
        return _walk(argument, outdir_abs, extensions)
    if glob.has_magic(argument) and not os.path.exists(argument):
        root = _pattern_root(argument)
        matches = sorted(p for p in glob.glob(argument, recursive=True)
                         if os.path.isfile(p) and _outside(p, outdir_abs, root))
        return matches, os.path.abspath(root), 0
    # a file named explicitly, or a path that does not exist: tried, so that the problem is reported
    return [argument], os.path.dirname(os.path.abspath(argument)), 0


def _walk(folder, outdir_abs, extensions):
    files, ignored = [], 0
    root = os.path.abspath(folder)
    for here, dirs, names in os.walk(folder):
        # hidden folders (.git, caches) and the output folder are not searched
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and _outside(os.path.join(here, d), outdir_abs, root))
        for name in sorted(names):
            path = os.path.join(here, name)
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in extensions \
                    or not os.path.isfile(path):
                ignored += 1
            else:
                files.append(path)
    return files, root, ignored


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


# --------------------------------------------------------------------------- the tasks (run in workers)


def failed_row(job, error):
    """The report row of a file that could not be done."""
    return _row(job, FAILED, error=error)


def _row(job, status, **figures):
    row = dict.fromkeys(REPORT_COLUMNS)
    row.update(input=job.input_name, output=job.output_name, status=status, **figures)
    return row


def _message(exc, job):
    """One line naming the file as the user wrote it (workers see absolute paths)."""
    if isinstance(exc, KcolorsError):
        text = str(exc)
    elif isinstance(exc, MemoryError):
        text = f"{job.source}: out of memory (try a smaller image or --max-pixels)"
    else:
        text = f"{job.source}: internal error: {type(exc).__name__}: {exc}"
    text = text.replace(job.source, job.input_name)
    return text.replace(job.output, job.output_name) if job.output else text


def _single_threaded():
    """Tasks run side by side on every core already: the kernels must not split work over threads."""
    kernels.THREADS = 1


def process_file(job, settings, palette=None):
    """Flatten one image and write its output; return its report row.

    A pure function of its arguments: run twice, it writes the same bytes
    (atomically, replacing the output), which is what makes reruns after a
    worker died safe. Never raises for a bad file: the row says ``failed``.

    Parameters
    ----------
    job : Job
    settings : Settings
    palette : Palette, optional
        Recolour with this palette (shared or given) instead of fitting one.

    Returns
    -------
    dict
        The columns of :data:`REPORT_COLUMNS`.
    """
    _single_threaded()
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's notes on odd files are not the user's concern here
            result = quantize(job.source, settings.k, space=settings.space, dither=settings.dither,
                              engine=settings.engine, seed=settings.seed, palette=palette,
                              max_pixels=settings.max_pixels)
            data = encode(result, output_format(job.output), icc=result.picture.icc)
        try:
            os.makedirs(os.path.dirname(job.output), exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{job.output}: cannot create its folder ({exc.strerror or exc})") from None
        write_bytes(job.output, data, force=True)  # the plan checked it was free (or --force was given)
        figures = result.metrics()
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop the batch
        return failed_row(job, _message(exc, job))
    figures.update(bytes_in=result.picture.n_bytes, bytes_out=len(data),
                   seconds=round(time.perf_counter() - started, 4))
    return _row(job, DONE, **figures)


def image_histogram(job, max_pixels=None):
    """The colour histogram of one image: ``(Histogram, None)``, or ``(None, reason)``."""
    _single_threaded()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_image(job.source, max_pixels=max_pixels).histogram()[0], None
    except Exception as exc:  # noqa: BLE001
        return None, _message(exc, job)


def fit_shared_palette(histogram, settings):
    """One palette for a whole collection, fitted on its summed histogram.

    Ordered like :func:`~kcolors.quantize`'s palettes (most used colour first,
    unused ones dropped), so the collection's palette is the one ``quantize``
    would fit on all its images put side by side into one picture.

    Returns
    -------
    (Palette, shares)
        ``shares``: each colour's fraction of all the collection's pixels.
    """
    palette = fit_palette(histogram, settings.k, space=settings.space, engine=settings.engine, seed=settings.seed)
    palette, counts = ordered_over(palette, histogram)
    return palette, counts / max(counts.sum(), 1.0)


class HistogramSum:
    """Sums many histograms in groups, so memory holds a few of them at a time, not all."""

    def __init__(self, group=16):
        self.group, self.parts = group, []

    def add(self, histogram):
        self.parts.append(histogram)
        if len(self.parts) > self.group:
            self.parts = [self.total()]

    def total(self):
        parts = self.parts
        while len(parts) > 1:  # pairwise, so each merge joins histograms of similar size
            parts = [sum(parts[i:i + 2]) for i in range(0, len(parts), 2)]
        return parts[0] if parts else None


# --------------------------------------------------------------------------- runners


def default_jobs():
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _init_worker():
    # Ctrl-C reaches the whole process group; the main process decides what stops,
    # and a worker finishes the file it is writing (writes are atomic anyway).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _single_threaded()


class LocalPool:
    """Runs tasks in worker processes on this machine (``jobs=1``: in this process).

    Use as a context manager; :meth:`map_unordered` may be called several times
    (a shared-palette batch has two rounds) on the same processes. Scripts that
    use it need the ``if __name__ == "__main__":`` guard: workers start with
    ``forkserver`` and import the main module.

    A file that kills its worker (out of memory, a crash in a decoder) does not
    stop the batch: the pool is restarted, the few files that were in hand are
    retried one at a time, and the one whose worker dies again is reported failed.
    """

    def __init__(self, jobs=None):
        self.jobs = default_jobs() if jobs is None else int(jobs)
        if self.jobs < 1:
            raise UsageError(f"--jobs must be at least 1, not {self.jobs}")
        self._pool = None
        self._in_hand = {}  # future -> item: submitted, result not yielded yet

    def describe(self):
        return f"{self.jobs} local worker{'s' if self.jobs > 1 else ''}"

    def map_unordered(self, function, items, **kwargs):
        """Yield ``(item, result)`` as tasks finish; ``result`` is an exception if the task could not run."""
        pending = collections.deque(items)
        if self.jobs == 1 or len(pending) <= 1:
            yield from self._inline(function, pending, kwargs)
            return
        while pending:
            suspects = yield from self._run(function, pending, kwargs)
            for item in suspects:  # one of them killed its worker: alone, a second death names it
                yield item, self._run_alone(function, item, kwargs)

    def _run(self, function, pending, kwargs):
        """Run ``pending`` with a few tasks in hand per worker; on a worker's death, return the items in hand."""
        pool, self._in_hand = self._executor(), {}
        try:
            while pending or self._in_hand:
                while pending and len(self._in_hand) < 2 * self.jobs:  # bounded: a crash puts few files in doubt
                    item = pending.popleft()
                    self._in_hand[pool.submit(function, item, **kwargs)] = item
                wait(self._in_hand, return_when=FIRST_COMPLETED)
                for future in [f for f in self._in_hand if f.done() and not _broken(f)]:
                    yield self._in_hand.pop(future), _outcome(future)
                if any(_broken(f) for f in self._in_hand):
                    suspects = list(self._in_hand.values())
                    self._in_hand = {}
                    self._restart()
                    return suspects
            return []
        finally:
            for future in self._in_hand:
                future.cancel()

    def _run_alone(self, function, item, kwargs):
        future = self._executor().submit(function, item, **kwargs)
        wait([future])
        if _broken(future):
            self._restart()
            return InputError("its worker process died on it (out of memory, or a crash while decoding)")
        return _outcome(future)

    def drain(self):
        """After an interrupt: wait for the tasks that were running and yield their ``(item, result)``.

        They run to the end anyway (a worker never leaves a half-written file),
        so what they did is reported rather than lost.
        """
        running = {f: item for f, item in self._in_hand.items() if not f.cancelled()}
        self._in_hand = {}
        for future in as_completed(running):
            yield running[future], _outcome(future)

    @staticmethod
    def _inline(function, items, kwargs):
        saved = kernels.THREADS
        try:
            for item in items:
                yield item, function(item, **kwargs)
        finally:
            kernels.THREADS = saved

    def _executor(self):
        if self._pool is None:
            import multiprocessing

            # forkserver: workers start from a clean process, not a copy of this one and its threads
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["kcolors.batch"])
            self._pool = ProcessPoolExecutor(self.jobs, mp_context=context, initializer=_init_worker)
        return self._pool

    def _restart(self):
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _broken(future):
    """True when the task's worker process died (the pool then fails every task it held)."""
    return future.done() and isinstance(future.exception(), BrokenProcessPool)


def _outcome(future):
    """A finished local task's result, or the exception that kept it from running."""
    error = future.exception()
    return error if error is not None else future.result()


def _probe(paths):
    """Run on every Dask worker: its kcolors version and whether it sees ``paths``."""
    return __version__, [os.path.exists(p) for p in paths]


class DaskCluster:
    """Runs tasks on a running Dask distributed scheduler (``tcp://HOST:PORT``).

    The workers need kcolors installed and the input and output folders at the
    same paths (a shared file system). A task whose worker dies is given to
    another worker by the scheduler; one that kills several workers in a row
    (``distributed.scheduler.allowed-failures``, 3 by default) is reported failed.
    """

    def __init__(self, address, *, timeout=10, wait_for_workers=30):
        try:
            from distributed import Client
        except ImportError:
            raise UsageError("--scheduler needs Dask distributed: pip install 'dask[distributed]'") from None
        self.address = address
        _check_address(address)
        try:
            self.client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"--scheduler {address}: cannot connect ({exc}); is `dask scheduler` running "
                             "there?") from None
        try:
            self.client.wait_for_workers(1, timeout=wait_for_workers)
        except (TimeoutError, OSError):
            self.close()
            raise UsageError(f"--scheduler {address}: no worker joined in {wait_for_workers} s; start some with "
                             f"`dask worker {address}`") from None

    def describe(self):
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        threads = sum(w.get("nthreads", 1) for w in workers)
        return f"Dask scheduler {self.address} ({len(workers)} workers, {threads} threads)"

    def check_paths(self, paths):
        """Refuse, before any work, workers that lack kcolors or do not see the files."""
        try:
            answers = self.client.run(_probe, list(paths))
        except Exception as exc:  # noqa: BLE001 - whatever the worker raised, say what it needs
            raise UsageError(f"--scheduler {self.address}: the workers cannot run kcolors "
                             f"({type(exc).__name__}: {exc}); install kcolors on every worker") from None
        for worker, (version, seen) in sorted(answers.items()):
            for path, ok in zip(paths, seen):
                if not ok:
                    raise UsageError(f"worker {worker} does not see {path}: the workers need the input files "
                                     "and the output folder at the same paths (a shared file system)")
            if version != __version__:
                warnings.warn(f"worker {worker} has kcolors {version}, this is {__version__}")

    def map_unordered(self, function, items, **kwargs):
        """Yield ``(item, result)`` as tasks finish; ``result`` is an exception if the task could not run."""
        from distributed import as_completed as dask_completed

        items = list(items)
        if not items:
            return
        # pure=False: every run gets fresh keys, never a result cached from another client's run
        futures = self.client.map(function, items, pure=False, **kwargs)
        item_of = {future.key: item for future, item in zip(futures, items)}
        try:
            for future in dask_completed(futures, loop=self.client.loop):
                if future.status == "error":
                    result = InputError(f"the task failed on the cluster ({type(future.exception()).__name__}: "
                                        f"{future.exception()})")
                else:
                    result = future.result()
                future.release()
                yield item_of[future.key], result
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    @staticmethod
    def drain():
        """After an interrupt: nothing (the cluster's tasks were cancelled)."""
        return iter(())

    def close(self):
        with contextlib.suppress(Exception):
            self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _check_address(address):
    """Refuse an address Dask cannot use before trying it (a failed Client is slow to give up)."""
    from distributed.comm import parse_address
    from distributed.comm.registry import get_backend

    try:
        scheme, location = parse_address(address)
        get_backend(scheme)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--scheduler {address}: not a scheduler address ({exc}); write tcp://HOST:PORT") from None
    if not location:
        raise UsageError(f"--scheduler {address}: not a scheduler address; write tcp://HOST:PORT")


def make_runner(jobs=None, scheduler=None):
    """A :class:`DaskCluster` when ``scheduler`` is given, else a :class:`LocalPool`."""
    if scheduler is not None:
        if jobs is not None:
            raise UsageError("--jobs sets the local pool; with --scheduler the Dask workers' threads do the work")
        return DaskCluster(scheduler)
    return LocalPool(jobs)


# --------------------------------------------------------------------------- progress


class Progress:
    """A tqdm bar (count, rate, ETA) on a terminal; one plain line per file otherwise.

    Failures are always printed, even with ``quiet``: they are errors.
    """

    def __init__(self, total, label, *, quiet=False, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.total, self.label, self.quiet, self.count = total, label, quiet, 0
        self.bar = None
        if not quiet and total and _is_terminal(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=label, unit="img", file=self.stream, dynamic_ncols=True, leave=True)

    def advance(self, text, *, failed=False):
        self.count += 1
        if self.bar is None and not self.quiet:
            self._print(f"kcolors: [{self.count}/{self.total}] {'failed: ' if failed else ''}{text}")
        elif failed:
            self._print(f"kcolors: {text}")
        if self.bar is not None:
            self.bar.update(1)

    def _print(self, line):
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _size(n):
    return "?" if n is None else f"{n:,}"


# --------------------------------------------------------------------------- the batch


class Batch:
    """A planned batch: its jobs, and the report rows filled in as files finish.

    Parameters
    ----------
    inputs, outdir, fmt
        As for :func:`plan`.
    settings : Settings
    skip_existing : bool
        Outputs that exist are left alone (status ``skipped``): a resumed batch
        does only what is left.
    force : bool
        Overwrite outputs that exist. Without either flag, existing outputs
        make the batch refuse before any work.

    Raises
    ------
    UsageError, InputError, OutputError, OutputExistsError
        Before anything is read or written.
    """

    def __init__(self, inputs, outdir, settings=Settings(), *, fmt="keep", skip_existing=False, force=False):
        if skip_existing and force:
            raise UsageError("--skip-existing keeps existing outputs and --force overwrites them; choose one")
        self.settings = settings.check()
        self.outdir = Path(outdir)
        if self.outdir.exists() and not self.outdir.is_dir():
            raise OutputError(f"{outdir}: is a file, not a folder")
        found = plan(inputs, outdir, fmt)
        self.notes = found.warnings
        self.ignored = found.ignored
        self.jobs, self.total = found.jobs, len(found.jobs) + len(found.rejected)
        # job index -> report row, filled in as files finish
        self.rows = {job.index: failed_row(job, reason) for job, reason in found.rejected}
        if not self.jobs and not found.rejected:
            raise InputError("no images found in " + ", ".join(map(str, inputs)))
        self.todo = self._skip_done(skip_existing, force)
        self.palette, self.shares = None, None
        self.seconds = 0.0

    def _skip_done(self, skip_existing, force):
        existing = [job for job in self.jobs if os.path.lexists(job.output)]
        if existing and not (skip_existing or force):
            more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
            raise OutputExistsError(f"{existing[0].output_name}{more} exist; use --skip-existing to do only what is "
                                    "left, or -f/--force to overwrite")
        if not skip_existing:
            return list(self.jobs)
        for job in existing:
            self._set(job, _row(job, SKIPPED, bytes_in=_file_size(job.source), bytes_out=_file_size(job.output)))
        return [job for job in self.jobs if job.index not in self.rows]

    def _set(self, job, row):
        self.rows[job.index] = row

    def run(self, runner, *, palette=None, shared=False, quiet=False, stream=None):
        """Do every job still to do; returns self (its rows tell how each file went).

        Parameters
        ----------
        runner : LocalPool or DaskCluster
        palette : Palette, optional
            Recolour every image with it instead of fitting one per image.
        shared : bool
            Fit one palette on the whole collection first (see :func:`collection_palette`);
            it is kept in ``self.palette`` and ``self.shares``.
        """
        started = time.perf_counter()
        try:
            self._make_outdir()
            if isinstance(runner, DaskCluster):  # an input this machine sees, and the output folder
                seen = [job.source for job in self.jobs[:1000] if os.path.exists(job.source)][:1]
                runner.check_paths(seen + [str(self.outdir.resolve())])
            if shared:
                self.palette, self.shares, failures = collection_palette(
                    self.jobs, self.settings, runner, quiet=quiet, stream=stream)
                for job, reason in failures:
                    self._set(job, failed_row(job, reason))
                palette = self.palette
            todo = [job for job in self.todo if job.index not in self.rows]
            with Progress(len(todo), "flatten", quiet=quiet, stream=stream) as progress:
                try:
                    for job, row in runner.map_unordered(process_file, todo, settings=self.settings,
                                                         palette=palette):
                        self._record(job, row, progress)
                except KeyboardInterrupt:
                    for job, row in runner.drain():  # files the workers were finishing: report them
                        self._record(job, row, progress)
                    raise
            _remove_temporary_files(todo)
        finally:
            self.seconds = time.perf_counter() - started
        return self

    def _record(self, job, row, progress):
        if isinstance(row, Exception):
            row = failed_row(job, f"{job.input_name}: {row}")
        self._set(job, row)
        if row["status"] == FAILED:
            progress.advance(row["error"], failed=True)
        else:
            progress.advance(f"{row['input']} -> {row['output']} "
                             f"({_size(row['bytes_in'])} -> {_size(row['bytes_out'])} bytes)")

    def _make_outdir(self):
        try:
            self.outdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{self.outdir}: cannot create the output folder ({exc.strerror or exc})") from None
        if not os.access(self.outdir, os.W_OK | os.X_OK):
            raise OutputError(f"{self.outdir}: output folder is not writable")

    # ------------------------------------------------------------------ results

    def report_rows(self):
        """One row per file, in input order (files not reached yet, after an interrupt, left out)."""
        return [self.rows[index] for index in sorted(self.rows)]

    def counts(self):
        """``{"done": n, "skipped": n, "failed": n}``."""
        statuses = [row["status"] for row in self.report_rows()]
        return {status: statuses.count(status) for status in (DONE, SKIPPED, FAILED)}

    def exit_code(self):
        """0, or :data:`BATCH_FAILED` when any file failed."""
        return BATCH_FAILED if self.counts()[FAILED] else 0

    def summary(self, *, interrupted=False):
        """One line: done, skipped, failed, time and rate, bytes before -> after of the files done."""
        c = self.counts()
        done = [row for row in self.report_rows() if row["status"] == DONE]
        before = sum(row["bytes_in"] or 0 for row in done)
        after = sum(row["bytes_out"] or 0 for row in done)
        rate = f", {len(done) / self.seconds:.1f} images/s" if done and self.seconds > 0 else ""
        change = f" ({100.0 * (after - before) / before:+.1f}%)" if before else ""
        head = f"interrupted after {c[DONE]} done" if interrupted else f"{c[DONE]} done"
        return (f"kcolors: {head}, {c[SKIPPED]} skipped, {c[FAILED]} failed of {self.total} "
                f"in {self.seconds:.1f} s{rate}; {before:,} -> {after:,} bytes{change}")

    def write_report(self, path):
        """Write the rows to a ``.csv`` or ``.json`` file (atomically, replacing an older report)."""
        write_report(self.report_rows(), path)


def _remove_temporary_files(jobs):
    """Remove the temporary files a killed worker left beside these outputs.

    A task killed while writing leaves ``.NAME.XXXX.part`` (the name
    :func:`kcolors.io.write_bytes` gives its temporary file); the rerun wrote
    the output itself, so what is left is litter. Called when every task has
    ended, so no writer is still at work.
    """
    names_by_folder = {}
    for job in jobs:
        names_by_folder.setdefault(os.path.dirname(job.output), set()).add(os.path.basename(job.output))
    for folder, names in names_by_folder.items():
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                base = entry.name[1:].rsplit(".", 2)[0] if entry.name.startswith(".") else None
                if entry.name.endswith(".part") and base in names:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def _file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def collection_palette(jobs, settings, runner, *, quiet=False, stream=None):
    """Fit one palette on every image of a collection, in parallel.

    Each image's histogram is made by a task; they are summed as they arrive
    and one k-means fit is made on the sum.

    Returns
    -------
    (Palette, shares, failures)
        ``failures``: ``(job, reason)`` of the images that could not be read.

    Raises
    ------
    InputError
        When no image could be read.
    """
    total, failures = HistogramSum(), []
    with Progress(len(jobs), "histograms", quiet=quiet, stream=stream) as progress:
        for job, outcome in runner.map_unordered(image_histogram, jobs, max_pixels=settings.max_pixels):
            histogram, reason = (None, f"{job.input_name}: {outcome}") if isinstance(outcome, Exception) else outcome
            if histogram is None:
                failures.append((job, reason))
                progress.advance(reason, failed=True)
            else:
                total.add(histogram)
                progress.advance(f"{job.input_name}: {len(histogram):,} colours")
    histogram = total.total()
    if histogram is None:
        raise InputError("no image of the collection could be read, so there is no palette to fit")
    palette, shares = fit_shared_palette(histogram, settings)
    return palette, shares, failures


def palette_of(inputs, settings=Settings(), *, jobs=None, scheduler=None, quiet=False, stream=None):
    """The shared palette of a collection, without writing images (``kcolors palette --from``).

    Returns
    -------
    (Palette, shares, failures)
        As :func:`collection_palette`; ``failures`` are ``(input, reason)``.
    """
    settings.check()
    names, _, _, notes = find_inputs(inputs)
    for note in notes:
        warnings.warn(note)
    if not names:
        raise InputError("no images found in " + ", ".join(map(str, inputs)))
    todo = [Job(i, os.path.abspath(name), "", name, "") for i, name in enumerate(names)]
    with make_runner(jobs, scheduler) as runner:
        if isinstance(runner, DaskCluster):
            runner.check_paths([job.source for job in todo[:1000] if os.path.exists(job.source)][:1])
        palette, shares, failures = collection_palette(todo, settings, runner, quiet=quiet, stream=stream)
    return palette, shares, [(job.input_name, reason) for job, reason in failures]


# --------------------------------------------------------------------------- reports


def check_report_path(path):
    """Refuse, before any work, a report name that is neither .csv nor .json."""
    if Path(str(path)).suffix.lower() not in (".csv", ".json"):
        raise UsageError(f"{path}: the report must be a .csv or .json file")


def write_report(rows, path):
    """Write report rows as CSV (lists as space-separated values) or JSON (a list of objects)."""
    check_report_path(path)
    if Path(str(path)).suffix.lower() == ".json":
        text = json.dumps(rows, indent=1) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=REPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: " ".join(map(str, value)) if isinstance(value, list) else value
                             for key, value in row.items()})
        text = buffer.getvalue()
    write_bytes(path, text.encode(), force=True)
