"""``kcolors batch``: flatten a whole collection, on local cores or on a Dask cluster."""

import sys

from ..batch import OUTPUT_FORMATS, Batch, Settings, check_report_path, make_runner
from ..errors import UsageError
from ..palette import Palette, palette_format
from . import add_quantize_options, check_k, whole_number


def add_parser(sub):
    p = sub.add_parser(
        "batch", help="flatten many images: files, folders and patterns, on every core or on a Dask cluster",
        description="Flatten every image of the inputs to k colours and write them under OUTDIR, mirroring the "
                    "inputs' folders. Runs on all local cores, or on a running Dask distributed scheduler with "
                    "--scheduler. One bad file never stops the batch: it is reported and the exit code is 7.")
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
    p.add_argument("--skip-existing", action="store_true",
                   help="leave outputs that exist alone: resume a batch that was stopped")
    p.add_argument("-f", "--force", action="store_true", help="overwrite outputs that exist")
    p.add_argument("--shared-palette", action="store_true",
                   help="fit one palette on the whole collection (summed histograms) and recolour every image with it")
    p.add_argument("--palette", metavar="FILE", help="recolour every image with this palette (.gpl .json .txt)")
    p.add_argument("--palette-out", metavar="FILE", help="save the shared palette (.gpl .json .txt)")
    p.add_argument("--report", metavar="FILE", help="write a row per file with its figures (.csv or .json)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary (failures still shown)")
    p.set_defaults(run=run)


def run(args):
    palette = _check(args)
    settings = Settings(k=args.k, space=args.space, dither=args.dither, engine=args.engine, seed=args.seed,
                        max_pixels=args.max_pixels)
    batch = Batch(args.inputs, args.outdir, settings, fmt=args.format, skip_existing=args.skip_existing,
                  force=args.force)
    for note in batch.notes:
        print(f"kcolors: warning: {note}", file=sys.stderr)
    with make_runner(args.jobs, args.scheduler) as runner:
        if not args.quiet:
            plural = "s" if batch.ignored > 1 else ""
            passed = f" ({batch.ignored} other file{plural} passed over)" if batch.ignored else ""
            print(f"kcolors: {batch.total} images{passed}, {len(batch.todo)} to do, on {runner.describe()}",
                  file=sys.stderr)
        try:
            batch.run(runner, palette=palette, shared=args.shared_palette, quiet=args.quiet)
        except KeyboardInterrupt:
            _finish(batch, args, interrupted=True)  # what was done is kept and reported: resume with --skip-existing
            raise
    _finish(batch, args)
    return batch.exit_code()


def _check(args):
    """Every refusal before any work; returns the palette of --palette (or None)."""
    check_k(args.k)
    if args.palette and args.shared_palette:
        raise UsageError("--palette gives the palette and --shared-palette fits one; choose one")
    if args.palette and args.engine != "fast":
        raise UsageError("--palette skips fitting, so --engine does not apply")
    if args.palette_out:
        if not args.shared_palette:
            raise UsageError("--palette-out saves the palette of --shared-palette; add that option")
        palette_format(args.palette_out)
    if args.report:
        check_report_path(args.report)
    return Palette.load(args.palette, args.space) if args.palette else None


def _finish(batch, args, *, interrupted=False):
    if args.report:
        batch.write_report(args.report)
    if batch.palette is not None and args.palette_out:
        batch.palette.save(args.palette_out)
    if not args.quiet:
        if batch.palette is not None:
            print(f"kcolors: shared palette: {' '.join(batch.palette.hex())}", file=sys.stderr)
        print(batch.summary(interrupted=interrupted), file=sys.stderr)
        written = [name for name, wanted in ((args.report, True), (args.palette_out, batch.palette is not None))
                   if name and wanted]
        if written:
            print(f"kcolors: wrote {', '.join(written)}", file=sys.stderr)
