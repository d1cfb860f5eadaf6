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
``status="failed"`` and the reason, and the rest go on. That holds for a file
that crashes its worker or runs past the time limit (its worker is killed), and
for a folder that cannot be searched (a row of its own). Worker processes never
outlive the batch process, however it ends. :class:`Batch` holds
the rows (one per file, with the figures of ``kcolors compress --json``),
writes the report and sums them up.

Where each part lives:

- ``planning.py``: the inputs and their outputs (:func:`plan`, :func:`find_inputs`,
  :func:`output_suffix`, :class:`Plan`, :class:`Job`, :data:`OUTPUT_FORMATS`).
- ``tasks.py``: the work on one file, run in the workers (:func:`process_file`,
  :func:`image_histogram`, :func:`failed_row`, :class:`Settings` (the one
  :class:`~kcolors.options.Options` record, by its old name),
  :data:`REPORT_COLUMNS`, :data:`FIGURE_COLUMNS`, the statuses).
- ``shared.py``: shared palettes (:func:`fit_shared_palette`,
  :class:`HistogramSum`, :func:`collection_palette`, :func:`palette_of`).
- ``local.py``: the local process pool (:class:`LocalPool`, :func:`default_jobs`, the time
  limit: :data:`DEFAULT_TIME_LIMIT`, :func:`default_time_limit`).
- ``cluster.py``: the Dask runner (:class:`DaskCluster`; it raises :class:`~kcolors.errors.NoWorkerError`) and :func:`make_runner`.
- ``progress.py``: the progress bar or lines (:class:`Progress`).
- ``report.py``: the report file (:func:`check_report_path`, :func:`write_report`).
- ``run.py``: the :class:`Batch` class and :data:`BATCH_FAILED`; it stops soon on :class:`~kcolors.errors.Terminated` (SIGTERM).
"""

from .cluster import DEFAULT_WORKER_TIMEOUT, NO_WORKER, DaskCluster, make_runner
from .local import DEFAULT_TIME_LIMIT, LocalPool, default_jobs, default_time_limit
from .planning import (KEEP_SUFFIXES, OUTPUT_FORMATS, Found, Job, Plan, find_inputs, image_extensions, output_suffix,
                       plan)
from .progress import Progress
from .report import check_report_path, write_report
from ..errors import NoWorkerError, Terminated
from .run import BATCH_FAILED, Batch
from .shared import HistogramSum, collection_palette, fit_shared_palette, palette_of
from .tasks import (DONE, FAILED, FIGURE_COLUMNS, REPORT_COLUMNS, SKIPPED, Settings, failed_row, image_histogram,
                    process_file)

__all__ = [
    "BATCH_FAILED", "DEFAULT_TIME_LIMIT", "DEFAULT_WORKER_TIMEOUT", "DONE", "FAILED", "FIGURE_COLUMNS", "KEEP_SUFFIXES",
    "NO_WORKER", "OUTPUT_FORMATS", "REPORT_COLUMNS", "SKIPPED", "Batch", "DaskCluster", "Found", "HistogramSum",
    "Job", "LocalPool", "NoWorkerError", "Plan", "Progress", "Settings", "Terminated", "check_report_path",
    "collection_palette", "default_jobs", "default_time_limit", "failed_row", "find_inputs", "fit_shared_palette",
    "image_extensions", "image_histogram", "make_runner", "output_suffix", "palette_of", "plan", "process_file",
    "write_report",
]
