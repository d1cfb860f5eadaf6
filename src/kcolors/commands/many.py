"""``kcolors a.png b.jpg c.gif -k 32``: several inputs on the command line, each flattened as pngquant does.

A small batch (:class:`kcolors.batch.Batch`): the same jobs (:func:`kcolors.batch.plan`), task
(:func:`kcolors.batch.process_file`, over :mod:`kcolors.job`), progress, per-file lines and exit codes.
Each output goes beside its input (``-o FOLDER/``: in that folder, batch's mirrored subfolders), named by
the one rule (:func:`kcolors.output.output_name`); ``--json`` prints one JSON object per file (JSON Lines).
"""

import json
import os
import sys

from ..batch import Batch, LocalPool, default_time_limit, make_runner
from ..errors import InputError, UsageError, printable
from ..output import print_line, refuse_closed_stdout
from ..palette import Palette
from ..palette_files import palette_source
from . import options_from_args

# Up to this many files, of this many bytes in all, run in this process, one after another: starting the worker
# processes costs about 0.3 s, as much as flattening two or three photographs of 0.4 MP (0.1-0.15 s each, about
# 0.7 MB as PNG). Measured on 2 cores, Kodak PNGs at k=16 (a fresh process each): 2 files 0.27 s here against
# 0.54 s on workers, 3 files 0.46 / 0.72, 4 files 0.62 / 0.56, 6 files 0.92 / 0.88. Larger files (the bytes)
# or more of them go to batch's workers, where they run side by side, each under batch's time limit.
IN_PROCESS_FILES = 4
IN_PROCESS_BYTES = 4 * 2**20


def run(args, inputs):
    """Flatten every one of ``inputs`` as ``args`` ask; the exit code (0, 7 when a file failed, 99 when a
    quality target was missed and nothing failed)."""
    _refuse(args, inputs)
    options = options_from_args(args, "compress", palette=args.palette)
    if args.palette:
        palette_source(args.palette)  # a palette file or an image, told by its name
    if args.json:
        refuse_closed_stdout()  # before the work, not once the images are written
    palette = Palette.load(args.palette, args.space) if args.palette else None
    batch = Batch(inputs, args.output, options.replace(palette=None), force=args.force)
    for line in [*batch.notes, *batch.refused]:
        print(printable(f"kcolors: {line}"), file=sys.stderr)
    with _runner(args, inputs) as runner:
        batch.run(runner, palette=palette, quiet=args.quiet, figures=args.json)
    if args.json:
        for row in batch.report_rows():
            print_line(json.dumps({key: printable(value) if isinstance(value, str) else value
                                   for key, value in row.items()}))
    if not args.quiet:
        print(batch.summary(), file=sys.stderr)
    if batch.missed_note():  # as compress's exit 99, said even with --quiet
        print(batch.missed_note(), file=sys.stderr)
    return batch.exit_code()


def _refuse(args, inputs):
    """The refusals of several inputs, before any work (UsageError, exit 2; a folder: InputError, exit 3)."""
    if "-" in map(str, inputs):
        raise UsageError("- (standard input) is one input: it cannot be read among several inputs")
    if args.output is not None and str(args.output) == "-":
        raise UsageError("-o - (standard output) takes one image: with several inputs, give a folder or no -o")
    if args.output is not None and not (str(args.output).endswith("/") or os.path.isdir(args.output)):
        raise UsageError(f"{args.output}: with several inputs, -o names a folder (end it with /)")
    if args.palette_out:
        raise UsageError("--palette-out saves one image's palette: with several inputs, give one input "
                         "(kcolors batch --shared-palette --palette-out saves a palette shared by all)")
    if args.strips:
        raise UsageError("--strips is for one input: with several inputs, each PNG or TIFF over the strip "
                         "threshold is read in strips on its own")
    for name in inputs:
        if os.path.isdir(name):
            raise InputError(f"{name}: is a folder, not an image; to flatten the images in it, use: "
                             f"kcolors batch {name} -o OUTDIR")


def _runner(args, inputs):
    """A few small files in this process (:data:`IN_PROCESS_FILES`, :data:`IN_PROCESS_BYTES`), more on batch's
    worker processes (or Dask)."""
    if args.scheduler is None and len(inputs) <= IN_PROCESS_FILES and sum(map(_size, inputs)) <= IN_PROCESS_BYTES:
        return LocalPool(jobs=1, time_limit=None)  # runs its tasks inline: no process to start
    return make_runner(None, args.scheduler, time_limit=default_time_limit(args.engine))


def _size(name):
    try:
        return os.path.getsize(name)
    except OSError:  # missing: its row will say so
        return 0
