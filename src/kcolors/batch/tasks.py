"""The work on one file, run in the workers: flatten an image and write it, or make its histogram."""

import os
import time
import warnings
from dataclasses import dataclass

from .. import kernels
from ..encode import encode
from ..errors import KcolorsError, OutputError
from ..io import load_image
from ..output import output_format, write_bytes
from ..quantize import check_options, quantize
from .planning import overwrites_input

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
LARGER = "larger than input"  # the error column of a row skipped by Settings.skip_if_larger (not a failure)

REPORT_COLUMNS = ("input", "output", "status", "error", "note", "bytes_in", "bytes_out", "width", "height", "k",
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
    skip_if_larger: bool = False  # write no output larger than its input: the row says skipped (LARGER)
    keep: str = None  # locked colours, "#rrggbb,#rrggbbaa,...": quantize's keep
    max_frames: int = None  # frames, pages or images a file may hold (None: io.DEFAULT_MAX_FRAMES)

    def check(self):
        check_options(self.k, self.space, self.dither, self.engine)
        return self


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


# The columns of a row worked out from the result (mean ΔE2000 above all costs time: about a tenth
# of the whole task on a Kodak-size photo at k=16); left out (None) when no report will show them.
FIGURE_COLUMNS = ("colors_in", "colors_out", "psnr", "delta_e", "delta_e_sample", "palette", "shares")


def process_file(job, settings, palette=None, figures=True):
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
    figures : bool
        Work out the figures (:data:`FIGURE_COLUMNS`); without them those
        columns are None. The output file is the same either way.

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
            picture = load_image(job.source, max_pixels=settings.max_pixels, max_frames=settings.max_frames)
            result = quantize(picture, settings.k, space=settings.space, dither=settings.dither,
                              engine=settings.engine, seed=settings.seed, palette=palette, keep=settings.keep)
            data = encode(result, output_format(job.output), icc=result.picture.icc)
        bytes_in = result.picture.n_bytes
        if settings.skip_if_larger and bytes_in and len(data) > bytes_in:  # nothing written; the figures kept
            values = result.metrics() if figures else _cheap_metrics(result)
            values.update(error=LARGER, note=_note(picture, job), bytes_in=bytes_in, bytes_out=len(data),
                          seconds=round(time.perf_counter() - started, 4))
            return dict(_row(job, SKIPPED, **values), output=None)  # bytes_out: what it would have been
        try:
            os.makedirs(os.path.dirname(job.output), exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{job.output}: cannot create its folder ({exc.strerror or exc})") from None
        if overwrites_input(job.output, job.source):  # the plan refused it: a link planted in the output tree since
            raise OutputError(f"{job.output}: output would overwrite the input {job.source}; not written")
        write_bytes(job.output, data, force=True)  # the plan checked it was free (or --force was given)
        values = result.metrics() if figures else _cheap_metrics(result)
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop the batch
        return failed_row(job, _message(exc, job))
    values.update(note=_note(picture, job), bytes_in=result.picture.n_bytes, bytes_out=len(data),
                  seconds=round(time.perf_counter() - started, 4))
    return _row(job, DONE, **values)


def _note(picture, job):
    """The report's note column: how the file was read (its first page of several), named as the user wrote it."""
    return "; ".join(note.replace(job.source, job.input_name) for note in picture.notes) or None


def _cheap_metrics(result):
    """The columns of :meth:`~kcolors.result.Quantization.metrics` that take no work (not :data:`FIGURE_COLUMNS`)."""
    w, h = result.picture.size
    return {"width": w, "height": h, "k": result.k, "space": result.space, "engine": result.engine,
            "dither": result.dither}


def image_histogram(job, max_pixels=None, max_frames=None):
    """The colour histogram of one image: ``(Histogram, None)``, or ``(None, reason)``."""
    _single_threaded()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_image(job.source, max_pixels=max_pixels, max_frames=max_frames).histogram()[0], None
    except Exception as exc:  # noqa: BLE001
        return None, _message(exc, job)
