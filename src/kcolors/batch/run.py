"""The :class:`Batch` class: plans a run, drives a runner over the jobs, holds and sums up the rows."""

import contextlib
import os
import time
from pathlib import Path

from ..errors import InputError, OutputError, OutputExistsError, QualityError, Terminated, UsageError
from ..output import make_output_folder, temporary_prefix
from .cluster import DaskCluster
from .planning import plan
from .progress import Progress, _size
from .report import write_report
from .shared import collection_palette
from .tasks import DONE, FAILED, SKIPPED, Settings, _row, failed_row, process_file

BATCH_FAILED = 7  # exit code: some files failed, the others were written
TERMINATE_GRACE = 3.0  # seconds the files in hand get to finish after SIGTERM, before their workers are killed


class Batch:
    """A planned batch: its jobs, and the report rows filled in as files finish.

    Parameters
    ----------
    inputs, outdir, fmt
        As for :func:`plan` (``outdir`` None: each output beside its input).
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
        self.outdir = None if outdir is None else Path(outdir)
        if self.outdir is not None and self.outdir.exists() and not self.outdir.is_dir():
            raise OutputError(f"{outdir}: is a file, not a folder")
        # the outputs' names say k, or the quality targets where there are any (their k is known only after the search)
        found = plan(inputs, outdir, fmt, k=self.settings.k, delta_e=self.settings.target_delta_e,
                     psnr=self.settings.target_psnr)
        self.notes = found.warnings
        self.refused = [reason for _, reason in found.rejected]  # failed before any work: print them first
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
            self.rows[job.index] = _row(job, SKIPPED, bytes_in=_file_size(job.source), bytes_out=_file_size(job.output))
        return [job for job in self.jobs if job.index not in self.rows]

    def run(self, runner, *, palette=None, shared=False, quiet=False, stream=None, figures=True):
        """Do every job still to do; returns self (its rows tell how each file went).

        Parameters
        ----------
        runner : LocalPool or DaskCluster
            On Ctrl-C (KeyboardInterrupt), the files in hand are finished and
            reported before the exception goes on; on :class:`Terminated`,
            those that finish within ``TERMINATE_GRACE`` seconds (the others'
            workers are killed, leaving no output).
        palette : Palette, optional
            Recolour every image with it instead of fitting one per image.
        shared : bool
            Fit one palette on the whole collection first (see :func:`collection_palette`);
            it is kept in ``self.palette`` and ``self.shares``.
        figures : bool
            Fill in the rows' figures (:data:`~kcolors.batch.tasks.FIGURE_COLUMNS`:
            colours, PSNR, ΔE2000, palette); without them those columns are None,
            which saves about a tenth of the work when no report will show them.
            The outputs are the same either way.
        """
        started = time.perf_counter()
        try:
            if self.outdir is not None:  # else beside the inputs, in their own folders
                make_output_folder(self.outdir)
            if isinstance(runner, DaskCluster):  # an input this machine sees, and the output folder
                seen = [job.source for job in self.jobs[:1000] if os.path.exists(job.source)][:1]
                runner.check_paths(seen + ([str(self.outdir.resolve())] if self.outdir else []))
            if shared:
                self.palette, self.shares, failures = collection_palette(
                    self.jobs, self.settings, runner, quiet=quiet, stream=stream)
                for job, reason in failures:
                    self.rows[job.index] = failed_row(job, reason)
                palette = self.palette
            todo = [job for job in self.todo if job.index not in self.rows]
            with Progress(len(todo), "flatten", quiet=quiet, stream=stream) as progress:
                try:
                    for job, row in runner.map_unordered(process_file, todo, settings=self.settings,
                                                         palette=palette, figures=figures):
                        self._record(job, row, progress)
                except (KeyboardInterrupt, Terminated) as exc:
                    # files the workers were finishing: report them (after SIGTERM soon: files not finished
                    # within the grace are not done)
                    for job, row in runner.drain(within=TERMINATE_GRACE if isinstance(exc, Terminated) else None):
                        self._record(job, row, progress)
                    raise
            _remove_temporary_files(todo)
        finally:
            self.seconds = time.perf_counter() - started
        return self

    def _record(self, job, row, progress):
        if isinstance(row, Exception):
            row = failed_row(job, f"{job.input_name}: {row}")
        self.rows[job.index] = row
        sizes = f"{_size(row['bytes_in'])} -> {_size(row['bytes_out'])} bytes"
        if row["status"] == FAILED:
            progress.advance(row["error"], failed=True)
        elif row["status"] == SKIPPED and row["error"]:  # --skip-if-larger: not written, not a failure
            progress.advance(f"{row['input']}: skipped: {row['error']} ({sizes})")
        else:
            missed = f"; {row['target_missed']}" if row.get("target_missed") else ""  # exit 99 at the end
            progress.advance(f"{row['input']} -> {row['output']} ({sizes}{missed})")

    # ------------------------------------------------------------------ results

    def report_rows(self):
        """One row per file, in input order (files not reached yet, after an interrupt, left out)."""
        return [self.rows[index] for index in sorted(self.rows)]

    def counts(self):
        """``{"done": n, "skipped": n, "failed": n}``."""
        statuses = [row["status"] for row in self.report_rows()]
        return {status: statuses.count(status) for status in (DONE, SKIPPED, FAILED)}

    def exit_code(self):
        """0; :data:`BATCH_FAILED` when any file failed; else 99 (QualityError's, as ``compress``) when a
        quality target was missed (even 256 colours: that result was written)."""
        if self.counts()[FAILED]:
            return BATCH_FAILED
        return QualityError.exit_code if any(row.get("target_missed") for row in self.rows.values()) else 0

    def missed_note(self):
        """A line saying how many files missed their quality target (written with 256 colours), or None."""
        missed = sum(1 for row in self.rows.values() if row.get("target_missed"))
        if not missed:
            return None
        return (f"kcolors: {missed} file{'s' if missed > 1 else ''} missed the quality target even with 256 colours "
                "(written so); exit 99")

    def summary(self, *, interrupted=False, stopped=None):
        """One line: done, skipped, failed, time and rate, bytes before -> after of the files done (when any).

        ``interrupted``: by the user (Ctrl-C); ``stopped``: how else it ended early
        (``"terminated"``, ``"stopped"`` when no Dask worker was left). When every
        output existed already (``--skip-existing``), it begins "nothing to do".
        """
        c = self.counts()
        rows = self.report_rows()
        done = [row for row in rows if row["status"] == DONE]
        before = sum(row["bytes_in"] or 0 for row in done)
        after = sum(row["bytes_out"] or 0 for row in done)
        rate = f", {len(done) / self.seconds:.1f} images/s" if done and self.seconds > 0 else ""
        change = f" ({100.0 * (after - before) / before:+.1f}%)" if before else ""
        sizes = f"; {before:,} -> {after:,} bytes{change}" if done else ""  # not "0 -> 0 bytes"
        head = f"{'interrupted' if interrupted else stopped} after {c[DONE]} done" if interrupted or stopped \
            else f"{c[DONE]} done"
        if not (interrupted or stopped) and rows and all(row["status"] == SKIPPED and not row["error"] for row in rows):
            head = f"nothing to do: every output exists (--skip-existing); {head}"
        return (f"kcolors: {head}, {c[SKIPPED]} skipped, {c[FAILED]} failed of {self.total} "
                f"in {self.seconds:.1f} s{rate}{sizes}")

    def remove_temporary_files(self):
        """Remove what killed workers left half-written (call only once no task of this batch is running)."""
        _remove_temporary_files(self.todo)

    def write_report(self, path):
        """Write the rows to a ``.csv`` or ``.json`` file (atomically, replacing an older report)."""
        write_report(self.report_rows(), path)


def _remove_temporary_files(jobs):
    """Remove the temporary files a killed worker left beside these outputs.

    A task killed while writing leaves ``.NAME.PID-XXXX.part`` (the name
    :func:`kcolors.output.write_bytes` gives its temporary file, NAME cut where
    too long: :func:`kcolors.output.temporary_prefix`); the rerun wrote
    the output itself, so what is left is litter. Called when every task has
    ended, so no writer is still at work.
    """
    prefixes_by_folder = {}
    for job in jobs:
        prefixes_by_folder.setdefault(os.path.dirname(job.output), set()).add(temporary_prefix(job.output))
    for folder, prefixes in prefixes_by_folder.items():
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                prefix = entry.name.rsplit(".", 2)[0] + "." if entry.name.startswith(".") else None
                if entry.name.endswith(".part") and prefix in prefixes:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def _file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return None
