"""Many k at once: sweeps over a range of k, the knee of the quality curve, quality targets.

Every function here reads the image and builds its colour histogram once
(:meth:`Picture.histogram` keeps it), then fits each k on that histogram. The
fits of a sweep run in parallel in forked processes that inherit the
histogram (see :func:`sweep_steps`).
"""

import csv
import io
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import blend, kernels
from .colorspace import DEFAULT_SPACE, to_premultiplied, to_space
from .errors import UsageError
from .io import load_image
from .options import for_frames
from .palette import Palette
from .remap import colour_labels
from .quantize import MAX_K, check_options, fit_palettes, flattest, quantize, recolour
from .effort import DEFAULT_EFFORT
from .weighing import fitting_histogram

METRIC_COLUMNS = ("k", "colors", "psnr", "delta_e", "inertia", "png_bytes")
@dataclass
class Step:
    """One k of a sweep: the result and its figures.

    Attributes
    ----------
    k : int
    result : Quantization
    inertia : float
        The k-means objective: pixel-weighted sum of squared distances from each
        colour to its nearest palette colour, in the clustering space.
    png_bytes : int or None
        Size of the result as an indexed PNG (when asked for).
    """

    k: int
    result: object
    inertia: float = None
    png_bytes: int = None

    def row(self):
        """The figures of the metrics CSV, in ``METRIC_COLUMNS`` order."""
        r = self.result
        psnr = "inf" if math.isinf(r.psnr) else round(r.psnr, 4)
        return [self.k, r.colors_out, psnr, round(r.delta_e, 4), round(self.inertia, 2), self.png_bytes]


def inertia(result):
    """Pixel-weighted sum of squared distances to the nearest palette colour, in the result's space."""
    histogram, _ = result.picture.histogram()
    if len(histogram) == 0 or len(result.palette) == 0:
        return 0.0
    if result.palette.shape[1] == 3 and result.space == "blend":  # a slice at a time for many colours
        return blend.inertia(histogram, result.palette)
    if result.palette.shape[1] == 3:
        _, total = kernels.assign(histogram.points(result.space), to_space(result.palette, result.space),
                                  weights=histogram.counts)
        return float(total)
    # colour with alpha: premultiplied distances to the entries the rules of transparency allow
    points = to_premultiplied(histogram.colors, histogram.opacity, result.space)
    entries = to_premultiplied(result.palette[:, :3], result.palette[:, 3], result.space)
    nearest = entries[colour_labels(histogram, result.palette, result.space)]
    return float(histogram.counts @ ((points - nearest) ** 2).sum(axis=1))


def sweep(image, ks, *, space=DEFAULT_SPACE, dither=0.0, engine="fast", seed=0, max_pixels=None, figures=True,
          png_bytes=False, workers=None, effort=DEFAULT_EFFORT):
    """Flatten one image at every k of ``ks``, reading it and building its histogram once.

    Parameters
    ----------
    image : path, bytes, array, PIL image or Picture
    ks : iterable of int
        The k values (each 1-256); the steps come back in ascending k.
    space, dither, engine, seed, max_pixels, effort
        As for :func:`kcolors.quantize`, but a plain number for ``dither`` means the ordered method
        (:func:`~kcolors.options.for_frames`): the frames of a sweep are seen one after another.
    figures : bool
        Work out each result's PSNR, mean ΔE2000 and inertia on the worker
        threads (else PSNR and ΔE are computed when first read, and inertia
        is None).
    png_bytes : bool
        Also measure each result's size as an indexed PNG (costs an encode per k).
    workers : int, optional
        Threads fitting in parallel (default: one per core).

    Returns
    -------
    list of Step
    """
    return list(sweep_steps(image, ks, space=space, dither=dither, engine=engine, seed=seed, max_pixels=max_pixels,
                            figures=figures, png_bytes=png_bytes, workers=workers, effort=effort))


def sweep_steps(image, ks, *, space=DEFAULT_SPACE, dither=0.0, engine="fast", seed=0, max_pixels=None, figures=True,
                png_bytes=False, workers=None, effort=DEFAULT_EFFORT):
    """As :func:`sweep`, but a generator: each Step is yielded, smallest k first, as soon as it is ready.

    All fits start at once, so the caller can use the first steps (encode them
    as animation frames) while the later ones are fitted. The options are
    checked and the image read before the first step is asked for.

    The fits run in worker processes forked with the histogram already built
    (the k-means loop is Python between its compiled steps, so threads would
    mostly wait for one another); each returns only its palette. The
    recolouring and the figures of each k then run on threads here, reusing
    the picture's histogram and pixel index. Called from a thread other than
    the main one, or where other threads run (a server), or where processes
    cannot be forked, the fits run on the threads instead.
    """
    ks = sorted(set(int(k) for k in ks))
    if not ks:
        raise UsageError("a sweep needs at least one k")
    dither = for_frames(dither)
    for k in ks:
        check_options(k, space, dither, engine)
    picture = load_image(image, max_pixels=max_pixels)
    # built here, once, before the workers share it (and with it the picture's own)
    histogram = fitting_histogram(picture, space=space, dither=dither, engine=engine, effort=effort)
    workers = min(workers or os.cpu_count() or 1, len(ks))

    def finish(k, fitted):
        result = _result(picture, k, fitted, space=space, dither=dither, engine=engine, seed=seed, effort=effort)
        step = Step(k, result)
        if figures:
            result.psnr, result.delta_e  # noqa: B018 -- computed on this thread, cached on the result
            step.inertia = inertia(result)
        if png_bytes:
            from .encode import encode

            step.png_bytes = len(encode(result, "PNG"))
        return step

    threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kcolors-sweep")
    processes = None
    if workers > 1 and len(ks) > 1 and _can_fork():
        import multiprocessing  # here: it costs every `kcolors compress` (which imports find_k) ~10 ms to start
        from concurrent.futures import ProcessPoolExecutor

        processes = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                                        initializer=_worker_start, initargs=(histogram,))
        fits = [processes.submit(_worker_fit, k, space, engine, seed, effort) for k in ks]  # smallest first
        steps = [threads.submit(lambda k=k, fit=fit: finish(k, fit.result())) for k, fit in zip(ks, fits)]
    else:
        steps = [threads.submit(finish, k, None) for k in ks]
    return _in_order(steps, threads, processes)


def _in_order(futures, *pools):
    try:
        for future in futures:
            yield future.result()
    finally:
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


_worker_histogram = None


def _can_fork():
    """Fork only from the main thread of a program running no other threads of its own.

    Forking copies one thread; a lock another thread held at that moment stays
    held in the child. Servers and other threaded callers get the thread pool.
    """
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    return all(t is threading.main_thread() or t.name.startswith("kcolors") for t in threading.enumerate())


def _worker_start(histogram):
    global _worker_histogram
    _worker_histogram = histogram
    kernels.THREADS = 1  # the processes already fill the cores


def _worker_fit(k, space, engine, seed, effort):
    return [palette.colors for palette in fit_palettes(_worker_histogram, k, space=space, engine=engine, seed=seed,
                                                       effort=effort)]


def _result(picture, k, fitted, *, space, dither, engine, seed, effort=DEFAULT_EFFORT):
    """The Quantization of ``picture`` at ``k``: as :func:`quantize`, from palettes already fitted (:func:`fit_palettes`) if given.

    Like ``quantize``, the palette is put in order of use (most used first)
    and colours no pixel takes are dropped.
    """
    if fitted is None:
        return quantize(picture, k, space=space, dither=dither, engine=engine, seed=seed, effort=effort)
    palette = flattest(picture, [Palette(colors, space) for colors in fitted])
    return recolour(picture, palette, reorder=True, k=k, dither=dither, engine=engine, effort=effort)


def metrics_csv(steps):
    """The sweep's figures as CSV text: one row per k, columns ``METRIC_COLUMNS``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    writer.writerows(step.row() for step in steps)
    return out.getvalue()


def knee(ks, values):
    """The k at the knee (elbow) of a decreasing, flattening curve such as inertia against k.

    Kneedle (Satopää et al., 2011): both axes are scaled to 0-1, and the knee is
    the point that lies farthest below the straight line joining the first
    and last points -- where adding colours stops paying. Needs at least three
    points; with fewer, the smallest k is returned.

    Examples
    --------
    >>> knee([1, 2, 3, 4, 5, 6], [100, 40, 10, 8, 7, 6])
    3
    """
    ks = np.asarray(ks, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if len(ks) < 3 or values[0] == values[-1]:
        return int(ks[0])
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    y = (values - values[-1]) / (values[0] - values[-1])  # 1 at the first k, 0 at the last
    return int(ks[np.argmax((1.0 - x) - y)])


# The suggested k is the knee of this percentile of the pixels' ΔE2000 against k.
SUGGEST_PERCENTILE = 90
SUGGEST_METHODS = ("tail", "inertia")


def suggest(steps, method="tail"):
    """The k at the knee (see :func:`knee`) of one of the sweep's curves.

    ``"tail"`` (the default): the curve of the 90th percentile of the pixels'
    CIEDE2000 ΔE (:func:`tail_delta_e`), the error of the worst-served tenth
    of the picture. Small, vivid areas (a rider's jersey, a flower) are what
    a few colours lose first; their pixels are that tail, and a mean (or the
    inertia) averages them away. On the 13 photos of ``../shared/images``,
    k = 2-16, the tail knee keeps 68% of the chroma of the vivid pixels (C* > 25)
    against 64% for the inertia knee, at a mean ΔE2000 of 6.21 against 6.56, with
    0.6 more colours on average; on the motocross photo (kodim05) it suggests 6,
    the first k with the riders' red, where the inertia knee suggests a near-grey 5.

    ``"inertia"``: the knee of the k-means objective (:attr:`Step.inertia`), the
    suggestion before; cheaper, but blind to small colourful areas.
    """
    return knee([s.k for s in steps], suggest_curve(steps, method))


def suggest_curve(steps, method="tail"):
    """The values :func:`suggest` takes the knee of, one per step: 90th-percentile ΔE2000s or inertias."""
    if method not in SUGGEST_METHODS:
        raise UsageError(f"suggest method must be one of {', '.join(SUGGEST_METHODS)}, not {method!r}")
    if method == "inertia":
        return [s.inertia if s.inertia is not None else inertia(s.result) for s in steps]
    if len(steps) < 3:  # no knee to find: knee() returns the smallest k
        return [0.0] * len(steps)
    return [tail_delta_e(s.result) for s in steps]


def tail_delta_e(result, percentile=SUGGEST_PERCENTILE, *, sample=20_000, seed=0):
    """The ``percentile``-th percentile of the pixels' CIEDE2000 ΔE between a result and its original.

    Estimated on a seeded sample of ``sample`` pixels (the same pixels for every
    result of one picture). With transparency, each pixel's ΔE is the mean of its
    differences composited over black and over white (as :attr:`Quantization.delta_e`
    is); fully transparent pixels are left out.
    """
    from .colorspace import rgb2lab
    from .metrics import BACKGROUNDS, ciede2000, composite

    picture = result.picture
    original = picture.rgb.reshape(-1, 3)
    keep = np.arange(len(original)) if picture.mask is None else np.flatnonzero(picture.mask.reshape(-1))
    if len(keep) == 0:
        return 0.0
    if len(keep) > sample:
        keep = np.sort(np.random.default_rng(seed).choice(keep, size=sample, replace=False))
    # the sampled pixels' palette entries, looked up from the labels: no whole-image copy of the result
    labels = result.labels.reshape(-1)[keep]
    palette = result.as_palette()
    before, after = original[keep], np.vstack([palette.rgb, np.zeros((1, 3), np.uint8)])[labels]
    if picture.alpha is None and palette.alpha is None:
        distances = ciede2000(rgb2lab(before), rgb2lab(after))
    else:
        full = np.full(len(keep), 255, np.uint8)
        alpha0 = full if picture.alpha is None else picture.alpha.reshape(-1)[keep]
        alpha1 = full if palette.alpha is None else np.append(palette.alpha, np.uint8(0))[labels]
        distances = np.mean([ciede2000(rgb2lab(composite(before, alpha0, bg)), rgb2lab(composite(after, alpha1, bg)))
                             for bg in BACKGROUNDS], axis=0)
    return float(np.percentile(distances, percentile))


# --------------------------------------------------------------------------- quality targets


def find_k(image, *, target_delta_e=None, target_psnr=None, max_k=MAX_K, space=DEFAULT_SPACE, dither=0.0,
           engine="fast", seed=0, max_pixels=None):
    """The smallest k (at most ``max_k``) whose result meets the quality target(s).

    Quality rises with k, so the search doubles k (1, 2, 4, ...) until the
    target is met, then halves the gap between the last miss and the first
    hit: about ``2 log2(k)`` fits on one histogram instead of one per k. It
    ends with k - 1 fitted and missing the target (or k = 1).

    Returns
    -------
    (Quantization, bool, int)
        The result at the chosen k, whether it meets the target (False when
        even ``max_k`` colours miss: the result is then the ``max_k`` one), and
        the number of fits the search made.
    """
    if target_delta_e is None and target_psnr is None:
        raise UsageError("give a quality target: a mean ΔE2000 or a PSNR")
    check_targets(target_delta_e, target_psnr)
    check_options(max_k, space, dither, engine)
    picture = load_image(image, max_pixels=max_pixels)
    tried = {}

    def ok(k):
        """Whether k reaches the targets: mean ΔE2000 at most target_delta_e, PSNR at least target_psnr."""
        if k not in tried:
            tried[k] = quantize(picture, k, space=space, dither=dither, engine=engine, seed=seed)
        return ((target_delta_e is None or tried[k].delta_e <= target_delta_e)
                and (target_psnr is None or tried[k].psnr >= target_psnr))

    # invariant once the doubling ends: `miss` misses (or is below the least k), `hit` meets;
    # with transparent pixels the least k is 2 (one entry is the transparent one)
    least = 2 if picture.histogram()[0].transparent > 0 else 1
    miss, hit = least - 1, least
    while not ok(hit):
        if hit == max_k:
            return tried[max_k], False, len(tried)
        miss, hit = hit, min(2 * hit, max_k)
    while hit - miss > 1:
        middle = (miss + hit) // 2
        if ok(middle):
            hit = middle
        else:
            miss = middle
    return tried[hit], True, len(tried)


def check_targets(delta_e=None, psnr=None):
    """Refuse targets that mean nothing: ΔE must be above 0, PSNR above 0 dB (both finite)."""
    if delta_e is not None and not 0 < delta_e < math.inf:
        raise UsageError(f"--target-delta-e must be a number above 0, not {delta_e}")
    if psnr is not None and not 0 < psnr < math.inf:
        raise UsageError(f"--target-psnr must be a number of dB above 0, not {psnr}")


def target_missed(result, target_delta_e=None, target_psnr=None):
    """The message when even ``result`` (256 colours) misses the targets: a mean ΔE2000, a PSNR (None: not set)."""
    got = []
    if target_delta_e is not None:
        got.append(f"mean ΔE2000 {result.delta_e:.2f} (target at most {target_delta_e:g})")
    if target_psnr is not None:
        got.append(f"PSNR {result.psnr:.2f} dB (target at least {target_psnr:g})")
    return (f"{result.picture.name}: even {result.k} colours miss the target: {', '.join(got)}; "
            f"wrote the {result.k}-colour result")
