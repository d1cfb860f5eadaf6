"""The work on one file, run in the workers: flatten an image and write it (:func:`kcolors.job.flatten_file`:
still or animated, a quality target, strips for an image too large to hold), or make its histogram."""

import os
import time
import warnings

from .. import kernels
from ..errors import KcolorsError, OutputError
from ..io import load_image
from ..job import flatten_file
from ..options import Options, dither_method
from .planning import overwrites_input

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
LARGER = "larger than input"  # the error column of a row skipped by Options.skip_if_larger (not a failure)

REPORT_COLUMNS = ("input", "output", "status", "error", "note", "bytes_in", "bytes_out", "width", "height", "k",
                  "space", "engine", "dither", "dither_method", "colors_in", "colors_out", "psnr", "delta_e",
                  "delta_e_sample", "seconds", "palette", "shares", "frames", "target_missed")
Settings = Options  # the name batch's callers knew: every task takes the one options record


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
    """Flatten one image (every frame of an animation) and write its output; return its report row.

    A pure function of its arguments: run twice, it writes the same bytes
    (atomically, replacing the output), which is what makes reruns after a
    worker died safe. Never raises for a bad file: the row says ``failed``.

    Parameters
    ----------
    job : Job
    settings : Options
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
    options = settings if palette is None else settings.replace(palette=palette)
    try:
        try:
            os.makedirs(os.path.dirname(job.output), exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{job.output}: cannot create its folder ({exc.strerror or exc})") from None
        if overwrites_input(job.output, job.source):  # the plan refused it: a link planted in the output tree since
            raise OutputError(f"{job.output}: output would overwrite the input {job.source}; not written")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's notes on odd files are not the user's concern here
            # the plan checked the output was free (or --force was given)
            flat = flatten_file(job.source, job.output, options, force=True, figures=figures)
        result = flat.result
        values = result.metrics() if figures else _cheap_metrics(result)
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop the batch
        return failed_row(job, _message(exc, job))
    values.update(note=_named("; ".join(getattr(result.picture, "notes", ())), job),  # how the file was read
                  target_missed=_named(flat.missed, job), bytes_in=flat.bytes_in, bytes_out=flat.bytes_out,
                  seconds=round(time.perf_counter() - started, 4),
                  dither=float(result.dither), dither_method=dither_method(result.dither), frames=flat.frames)
    if flat.larger:  # nothing written; the figures kept, bytes_out what it would have been
        return dict(_row(job, SKIPPED, error=LARGER, **values), output=None)
    return _row(job, DONE, **values)


def _named(text, job):
    """``text`` (or None, when empty) with the file named as the user wrote it (workers see absolute paths)."""
    return text.replace(job.source, job.input_name) if text else None


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
