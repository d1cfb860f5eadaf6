"""Shared palettes: one palette fitted on the summed histograms of a whole collection."""

import os
import warnings

from ..errors import InputError
from ..quantize import fit_palette, ordered_over
from .cluster import DaskCluster, make_runner
from .planning import Job, find_inputs
from .progress import Progress
from .tasks import Settings, image_histogram


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
        for job, outcome in runner.map_unordered(image_histogram, jobs, max_pixels=settings.max_pixels,
                                                 max_frames=settings.max_frames):
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


def palette_of(inputs, settings=Settings(), *, jobs=None, scheduler=None, quiet=False, stream=None,
               **runner_options):
    """The shared palette of a collection, without writing images (``kcolors palette --from``).

    ``runner_options`` go to :func:`make_runner` (``time_limit``, ``worker_timeout``).

    Returns
    -------
    (Palette, shares, failures)
        As :func:`collection_palette`; ``failures`` are ``(input, reason)``, folders
        that could not be searched among them.
    """
    settings.check()
    found = find_inputs(inputs)
    for note in found.notes + [reason for _, reason in found.unreadable]:
        warnings.warn(note)
    if not found.names:
        raise InputError("no images found in " + ", ".join(map(str, inputs)))
    todo = [Job(i, os.path.abspath(name), "", name, "") for i, name in enumerate(found.names)]
    with make_runner(jobs, scheduler, **runner_options) as runner:
        if isinstance(runner, DaskCluster):
            runner.check_paths([job.source for job in todo[:1000] if os.path.exists(job.source)][:1])
        palette, shares, failures = collection_palette(todo, settings, runner, quiet=quiet, stream=stream)
    return palette, shares, [(job.input_name, reason) for job, reason in failures] + found.unreadable
