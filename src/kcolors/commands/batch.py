"""``kcolors batch``: flatten a whole collection, on local cores or on a Dask cluster."""

import argparse
import glob
import os
import signal
import sys

from ..batch import (DEFAULT_WORKER_TIMEOUT, NO_WORKER, OUTPUT_FORMATS, Batch, LocalPool, NoWorkerError, Settings,
                     Terminated, check_report_path, default_time_limit, make_runner)
from ..errors import InputError, UsageError, printable
from ..palette import Palette, palette_format
from . import ExamplesFormatter, add_keep_option, add_quantize_options, check_k, check_keep_option, whole_number


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
    add_quantize_options(p)
    p.add_argument("--format", choices=OUTPUT_FORMATS, default="keep",
                   help="output format (default keep: PNG, GIF, TIFF and BMP stay as they are, JPEG, WebP and the "
                        "rest become PNG, which holds a palette exactly)")
    p.add_argument("-j", "--jobs", type=whole_number, default=None, metavar="N",
                   help="worker processes on this machine (default: every core)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run on this Dask distributed scheduler instead (the workers need kcolors and the files at "
                        "the same paths)")
    p.add_argument("--timeout", type=_seconds, default=None, metavar="SECONDS",
                   help="time limit for one file: one that takes longer has its worker process killed (Dask: "
                        "restarted) and is reported failed, and the batch goes on (default 300; 3,000 with --engine "
                        "sklearn or simple; 0: no limit)")
    p.add_argument("--worker-timeout", type=_seconds, default=None, metavar="SECONDS",
                   help=f"with --scheduler: stop with exit code {NO_WORKER} when the cluster has had no worker for "
                        f"this long (default {DEFAULT_WORKER_TIMEOUT:g})")
    p.add_argument("--skip-existing", action="store_true",
                   help="leave outputs that exist alone: resume a batch that was stopped")
    p.add_argument("-f", "--force", action="store_true", help="overwrite outputs that exist")
    p.add_argument("--skip-if-larger", action="store_true",
                   help="write no output larger than its input (in bytes): the row says skipped, not failed")
    p.add_argument("--shared-palette", action="store_true",
                   help="fit one palette on the whole collection (summed histograms) and recolour every image with it")
    p.add_argument("--palette", metavar="FILE", help="recolour every image with this palette (.gpl .json .txt)")
    add_keep_option(p)
    p.add_argument("--palette-out", metavar="FILE", help="save the shared palette (.gpl .json .txt)")
    p.add_argument("--report", metavar="FILE", help="write a row per file with its figures (.csv or .json)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary (failures still shown)")
    p.set_defaults(run=run)


def run(args):
    palette = _check(args)
    settings = Settings(k=args.k, space=args.space, dither=args.dither, engine=args.engine, seed=args.seed,
                        max_pixels=args.max_pixels, skip_if_larger=args.skip_if_larger, keep=args.keep,
                        max_frames=args.max_frames)
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


def _seconds(text):
    """A number of seconds, 0 or more (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {text}")
    return value


def _check(args):
    """Every refusal before any work; returns the palette of --palette (or None)."""
    check_k(args.k)
    # a path that is not there is a slip of the keyboard, not a bad file: refuse before anything is made
    missing = [name for name in args.inputs if not glob.has_magic(name) and not os.path.lexists(name)]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(f"{missing[0] or repr('')}: no such file or folder{more}; nothing was done")
    if args.palette and args.shared_palette:
        raise UsageError("--palette gives the palette and --shared-palette fits one; choose one")
    if args.palette and args.engine != "fast":
        raise UsageError("--palette skips fitting, so --engine does not apply")
    check_keep_option(args)
    if args.keep and args.shared_palette:
        raise UsageError("--keep does not apply with --shared-palette yet")
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
    return Palette.load(args.palette, args.space) if args.palette else None


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
