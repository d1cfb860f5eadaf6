"""``kcolors batch``: flatten a whole collection, on local cores or on a Dask cluster."""

import glob
import os
import signal
import sys

from ..batch import (OUTPUT_FORMATS, Batch, LocalPool, NoWorkerError, Terminated, check_report_path,
                     default_time_limit, make_runner)
from ..errors import InputError, UsageError, printable
from ..palette import Palette
from ..palette_files import palette_format
from ..table import TABLE
from . import ExamplesFormatter, add_options, options_from_args


def add_parser(sub):
    p = sub.add_parser(
        "batch", help="flatten many images: files, folders and patterns, on every core or on a Dask cluster",
        description="Flatten every image of the inputs to k colours and write them under OUTDIR, mirroring the "
                    "inputs' folders. Runs on all local cores, or on a running Dask distributed scheduler with "
                    "--scheduler. One bad file never stops the batch: it is reported and the exit code is 7.",
        epilog="examples:\n"
               "  kcolors batch photos/ -o flat/ -k 16\n"
               "  kcolors batch 'shots/**/*.jpg' -o flat/ --format png --report report.csv\n"
               "  kcolors batch photos/ -o flat/ --shared-palette --palette-out shared.gpl\n"
               "  kcolors batch photos/ -o flat/ --skip-existing     (resume a stopped batch)",
        formatter_class=ExamplesFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders (searched recursively) and glob patterns (quote them: 'shots/**/*.png')")
    p.add_argument("-o", "--outdir", required=True, metavar="OUTDIR", help="folder for the outputs (made if needed)")
    p.add_argument("--format", choices=OUTPUT_FORMATS, default="keep", help=TABLE["format"].help)
    add_options(p, "batch", skip=("output", "format"))
    p.set_defaults(run=run)


def run(args):
    settings = options_from_args(args, "batch", palette=args.palette)  # the path for now, loaded once checked
    _check(args)
    if args.keep and args.shared_palette:
        raise UsageError("--keep does not apply with --shared-palette yet")
    palette = Palette.load(args.palette, args.space) if args.palette else None
    settings = settings.replace(palette=None)  # given to each task (batch.run), as a shared palette is
    batch = Batch(args.inputs, args.outdir, settings, fmt=args.format, skip_existing=args.skip_existing,
                  force=args.force)
    for note in batch.notes:
        print(printable(f"kcolors: warning: {note}"), file=sys.stderr)  # names not UTF-8 as \xNN
    for reason in batch.refused:  # failures, so shown even with --quiet
        print(printable(f"kcolors: {reason}"), file=sys.stderr)
    time_limit = default_time_limit(args.engine) if args.timeout is None else args.timeout or None
    # SIGTERM raises Terminated in the main thread (kcolors.cli installs the handler): the batch stops its workers
    with make_runner(args.jobs, args.scheduler, time_limit=time_limit, worker_timeout=args.worker_timeout) as runner:
        if not args.quiet:
            plural = "s" if batch.ignored > 1 else ""
            passed = f" ({batch.ignored} other file{plural} passed over)" if batch.ignored else ""
            print(f"kcolors: {batch.total} images{passed}, {len(batch.todo)} to do, on {runner.describe()}",
                  file=sys.stderr)
        try:
            # the figures (ΔE2000 above all) only for the report that shows them: the outputs are the same
            batch.run(runner, palette=palette, shared=args.shared_palette, quiet=args.quiet,
                      figures=bool(args.report))
        except KeyboardInterrupt:
            _finish(batch, args, interrupted=True)  # what was done is kept and reported: resume with --skip-existing
            raise
        except NoWorkerError:
            _finish(batch, args, stopped="stopped")  # likewise; the error itself is the last line
            raise
        except Terminated:
            # SIGTERM asks to stop soon: the files in hand had a few seconds to finish (Batch.run), the workers of
            # the others are killed (outputs are whole or absent), their temporary files removed, the rest reported
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            runner.close()
            if isinstance(runner, LocalPool):  # its workers are gone; a Dask worker may still be writing
                batch.remove_temporary_files()
            _finish(batch, args, stopped="terminated")
            raise
    _finish(batch, args)
    return batch.exit_code()


def _check(args):
    """Every refusal before any work but the options' own (options_from_args)."""
    # a path that is not there is a slip of the keyboard, not a bad file: refuse before anything is made
    missing = [name for name in args.inputs if not glob.has_magic(name) and not os.path.lexists(name)]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(f"{missing[0] or repr('')}: no such file or folder{more}; nothing was done")
    if args.palette and args.shared_palette:
        raise UsageError("--palette gives the palette and --shared-palette fits one; choose one")
    if args.palette_out:
        if not args.shared_palette:
            raise UsageError("--palette-out saves the palette of --shared-palette; add that option")
        palette_format(args.palette_out)
    if args.report:
        check_report_path(args.report)
    if args.worker_timeout is not None and not args.scheduler:
        raise UsageError("--worker-timeout is for Dask workers; add --scheduler")
    if args.worker_timeout == 0:
        raise UsageError("--worker-timeout must be more than 0 seconds")


def _finish(batch, args, *, interrupted=False, stopped=None):
    if args.report:
        batch.write_report(args.report)
    if batch.palette is not None and args.palette_out:
        batch.palette.save(args.palette_out)
    if not args.quiet:
        if batch.palette is not None:
            print(f"kcolors: shared palette: {' '.join(batch.palette.hex())}", file=sys.stderr)
        print(batch.summary(interrupted=interrupted, stopped=stopped), file=sys.stderr)
        written = [name for name, wanted in ((args.report, True), (args.palette_out, batch.palette is not None))
                   if name and wanted]
        if written:
            print(printable(f"kcolors: wrote {', '.join(written)}"), file=sys.stderr)
    if batch.missed_note():  # exit 99, as compress's, said even with --quiet
        print(batch.missed_note(), file=sys.stderr)
