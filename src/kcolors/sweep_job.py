"""A sweep of one source, as ``kcolors sweep`` and the web's ``/api/sweep`` both make it.

Equal frames in a row (k at or above the picture's colour count) are shown once, for as long as they would have
been in all: the WebP and APNG encoders merge them anyway, and GIF does as they do."""

from collections import namedtuple
from itertools import chain

import numpy as np

from .effort import DEFAULT_EFFORT
from .animation import encode_animation, gif_original, sweep_frames
from .colorspace import DEFAULT_SPACE
from .sweep import sweep_steps

MadeSweep = namedtuple("MadeSweep", "steps data labels")


def make_sweep(picture, ks, fmt=None, *, space=DEFAULT_SPACE, dither=0.0, engine="fast", seed=0, workers=None,
               figures=False, png_bytes=False, label=False, duration=500, hold_last=2000, loop=0,
               effort=DEFAULT_EFFORT):
    """Flatten ``picture`` at every k of ``ks`` and, given a format, make the animation: each k, then the original.

    Parameters
    ----------
    picture : Picture
    ks : iterable of int
    fmt : {"GIF", "WEBP", "PNG"}, optional
        The animation's format; None makes only the steps.
    space, dither, engine, seed, workers, figures, png_bytes, effort
        As for :func:`kcolors.sweep.sweep_steps`.
    label : bool
        Caption each frame ``"k = 5"`` (and ``"original"``); captioned frames all differ, so none is merged.
    duration, hold_last, loop : int
        Milliseconds each k shows, and the original; times to play (0: forever).

    Returns
    -------
    MadeSweep
        ``steps`` (list of sweep.Step, smallest k first); ``data`` (the animation's bytes, or None);
        ``labels``, what each frame shows: "k = 5 (5 colours)", "k = 3-15 (3 colours)" for one
        frame shown for several k, "original", or "k = 3-15 (3 colours) = original".
    """
    made = MadeSweep([], None, [])
    stream = sweep_steps(picture, ks, space=space, dither=dither, engine=engine, seed=seed, figures=figures,
                         png_bytes=png_bytes, workers=workers, effort=effort)
    if fmt is None:
        made.steps.extend(stream)
        return made
    # each step kept as it comes: the frames are encoded while the larger k are still being fitted
    steps = (made.steps.append(step) or step for step in stream)
    original = gif_original(picture) if fmt == "GIF" else None  # a GIF frame holds at most 256 colours
    durations = []  # filled as the frames come: encode_animation reads it once every frame is in
    shown = _shown_once(steps, picture if original is None else original, not label, (duration, hold_last),
                        durations, made.labels)
    frames = sweep_frames(shown, picture, fmt, label=label, original=original)
    return made._replace(data=encode_animation(frames, fmt, durations, loop=loop,
                                               transparent=picture.alpha is not None))


def _shown_once(steps, original, merge, times, durations, labels):
    """The first step of each run of equal frames, noting each frame's duration and label (the original's last);
    a last run equal to the original is not passed on: the original's frame stands for it."""
    run, (duration, hold_last) = [], times
    for step in chain(steps, [None]):  # None: the original, after the last k
        if run and not (merge and _same(run[-1].result, original if step is None else step.result)):
            durations.append(duration * len(run))
            labels.append(_label(run))
            yield run[0]
            run = []
        if step is not None:
            run.append(step)
    durations.append(duration * len(run) + hold_last)
    labels.append(f"{_label(run)} = original" if run else "original")


def _label(run):
    span = f"k = {run[0].k}" if len(run) == 1 else f"k = {run[0].k}-{run[-1].k}"
    return f"{span} ({run[-1].result.colors_out} colours)"


def _same(result, other):
    """Whether a result shows the same pixels as ``other``, a result or the picture (colour counts first: cheap)."""
    colours = other.colors_out if hasattr(other, "colors_out") else result.colors_in
    return result.colors_out == colours and np.array_equal(result.rgb, other.rgb) and \
        np.array_equal(result.alpha, other.alpha)
