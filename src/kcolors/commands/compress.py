"""``kcolors compress``: flatten one image to k colours and write it."""

import os
import sys
import time
from pathlib import Path

from ..errors import LargerError, QualityError, UsageError, printable
from ..inputs import refuse_empty_name
from ..job import check_palette_out, flatten_file, in_strips
from ..output import check_output, make_output_folder, output_format, output_name, print_line, refuse_closed_stdout
from ..palette import Palette
from ..palette_files import palette_source
from ..sample import sample_path
from . import ExamplesFormatter, add_options, options_from_args

DEMO_FOLDER = Path("kcolors-demo")
EPILOG = """examples:
  kcolors photo.jpg -k 8                     writes photo-k8.png beside it
  kcolors photo.jpg -k 32 -o small.png --space lab --dither 0.5
  kcolors photo.jpg -o flat/                 writes flat/photo-k16.png (icon.gif: flat/icon-k16.gif)
  kcolors photo.jpg --target-delta-e 2       writes photo-de2.png with the smallest k whose mean ΔE2000 is at most 2
  kcolors photo.png -k 64 --skip-if-larger   writes photo-k64.png only if it is smaller (else exit 98)
  kcolors - -k 4 < in.png > out.png          standard input to standard output
  kcolors a.png b.jpg c.gif -k 32            writes a-k32.png, b-k32.png, c-k32.gif, each beside its input"""


def add_parser(sub):
    p = sub.add_parser("compress", help="flatten an image to k colours (the default command)",
                       description="Flatten an image to k colours with k-means and write it; PNG output is an "
                                   "indexed PNG with the smallest bit depth that holds k colours.",
                       epilog=EPILOG, formatter_class=ExamplesFormatter)
    p.add_argument("input", nargs="*", metavar="INPUT",
                   help="image file, or - for stdin (default: a sample photograph); an animated GIF, WebP or PNG "
                        "file stays animated, every frame flattened with one palette fitted on all of them, "
                        "durations and loop count kept; several files are each flattened, as by kcolors batch "
                        "(exit 7 if any failed)")
    p.add_argument("-o", "--output", help="output file, its extension names the format (.png .gif .webp .tif "
                                          ".bmp .jpg); - for stdout (never a terminal); an existing folder, or a "
                                          "name ending in /, for INPUT-kK.EXT in it, made if missing (default: "
                                          "INPUT-kK.EXT beside the input; EXT is the input's for PNG, GIF, TIFF "
                                          "and BMP, else .png; with a quality target INPUT-de2.EXT, "
                                          "INPUT-psnr40.EXT); with several inputs, a folder only")
    add_options(p, "compress", skip=("output",))
    p.set_defaults(run=run)


def default_output(source, options, folder=None):
    """The one naming rule (:func:`kcolors.output.output_name`: INPUT-kK.EXT, or INPUT-de2.EXT by a quality
    target, known before the search) beside the input, or in ``folder`` (-o FOLDER/); the demo's in
    kcolors-demo/; stdin's is "-"."""
    if str(source) == "-":
        return "-"
    path = Path(sample_path() if source is None else source)
    name = output_name(path, options.k, delta_e=options.target_delta_e, psnr=options.target_psnr)
    return Path(folder or (DEMO_FOLDER if source is None else path.parent)) / name


def output_folder(output):
    """The folder that ``-o`` names (an existing folder, or a name ending in a slash), or None for a file."""
    if output is None or str(output) == "-":
        return None
    if str(output).endswith("/") or os.path.isdir(output):  # False for a name too long, which check_output refuses
        return Path(output)
    return None


def run(args):
    if len(args.input) > 1:  # several inputs: each flattened, as a small batch
        from .many import run as run_many

        return run_many(args, args.input)
    args.input = args.input[0] if args.input else None
    started = time.perf_counter()
    if args.input is not None:
        refuse_empty_name(args.input)  # before INPUT-kK.png is made of its name
    demo = args.input is None
    source = sample_path() if demo else args.input
    options = options_from_args(args, "compress", palette=args.palette)  # the path for now, loaded once checked
    folder = output_folder(args.output)
    if folder is not None and str(source) == "-":
        raise UsageError(f"reading stdin: give the output's file name with -o, not a folder ({args.output})")
    named = args.output is not None and folder is None  # else by the naming rule (default_output)
    output = args.output if named else default_output(args.input, options, folder)
    rewrite = demo and args.output is None  # the demo may redo its own file
    force = args.force or rewrite
    if rewrite:
        DEMO_FOLDER.mkdir(exist_ok=True)
    _check(args, source, output, force, folder)
    if args.palette:
        options = options.replace(palette=Palette.load(args.palette, args.space))
    strips = "--strips" if args.strips else "--scheduler" if args.scheduler else None
    figures = dict(palette_out=args.palette_out, strips=strips, figures=args.json or not args.quiet,
                   name=Path(source).name if demo else None)
    if args.scheduler is None:
        flat = flatten_file(source, output, options, force=force, **figures)
    else:
        from ..batch.cluster import DaskCluster

        in_strips(options, source, output, output_format(output), strips, args.palette_out)  # before connecting
        with DaskCluster(args.scheduler) as cluster:
            cluster.check_paths([str(Path(source).resolve()), str(Path(output).resolve().parent)])
            flat = flatten_file(source, output, options, force=force, client=cluster.client, **figures)
    if flat.larger:
        raise LargerError(f"{flat.name}: not written: the output would be {flat.bytes_out:,} bytes, larger than the "
                          f"input's {flat.bytes_in:,} (--skip-if-larger)")
    report = args.json or not args.quiet
    if report and options.targeted and not flat.missed and not args.quiet:
        both = "both targets" if args.target_delta_e is not None and args.target_psnr is not None else "the target"
        print(f"kcolors: chose k = {flat.result.k}, the smallest k that meets {both} ({flat.fits} fits)",
              file=sys.stderr)
    if report:
        _report(args, flat, started, note=" (the demo rewrites its own file)" if rewrite else "")
    if args.palette_out and not args.quiet:
        print(printable(f"kcolors: wrote {args.palette_out}"), file=sys.stderr)
    if flat.missed:
        raise QualityError(flat.missed)
    return 0


def _report(args, flat, started, note=""):
    """The figures: one JSON object on stdout (--json), the summary on stderr (unless --quiet), after the
    notes on how the input was read (:attr:`kcolors.io.Picture.notes`: its first page of several), a line each."""
    notes = list(getattr(flat.result.picture, "notes", ()))
    figures = dict(flat.result.metrics(), input=flat.name, output=str(flat.output), bytes_in=flat.bytes_in,
                   bytes_out=flat.bytes_out, seconds=round(time.perf_counter() - started, 4), notes=notes)
    if flat.frames:
        figures.update(frames=flat.frames)
    if args.json:
        import json  # --json only

        print_line(json.dumps(figures))
    if not args.quiet:
        for line in notes:
            print(printable(f"kcolors: {line}"), file=sys.stderr)
        print(printable(summary(figures) + note), file=sys.stderr)  # a name that is not UTF-8 as \xNN


def _check(args, source, output, force, folder=None):
    """Every refusal before any work: nothing is read or written when an option is wrong; ``folder``: that of
    -o FOLDER/."""
    if args.json:
        refuse_closed_stdout()  # before the work, not once the image is written
    if args.json and str(output) == "-":
        raise UsageError("--json and -o - both write to stdout; choose one")
    if args.palette:
        palette_source(args.palette)  # a palette file or an image, told by its name
    if folder is not None:  # -o FOLDER/: made, as batch makes its own (the last check: nothing else is wrong)
        make_output_folder(folder)
    check_output(output, input_path=source, force=force)
    if args.palette_out:
        check_palette_out(args.palette_out, source, output)


def summary(f):
    """The stderr report: one line of figures, one naming the output."""
    psnr = "inf (lossless)" if f["psnr"] is None else f"{f['psnr']:.2f} dB"
    sampled = "" if f["delta_e_sample"] is None else f" (on {f['delta_e_sample']:,} sampled pixels)"
    size = ""
    if f["bytes_in"]:
        change = 100.0 * (f["bytes_out"] - f["bytes_in"]) / f["bytes_in"]
        size = f", {f['bytes_in']:,} -> {f['bytes_out']:,} bytes ({change:+.1f}%)"
    else:
        size = f", {f['bytes_out']:,} bytes"
    frames = f" (frame 1 of {f['frames']}, one palette for all)" if f.get("frames") else ""
    return (f"kcolors: {f['input']} {f['width']}x{f['height']}{frames}: "
            f"{f['colors_in']:,} -> {f['colors_out']} colours, "
            f"PSNR {psnr}, mean ΔE2000 {f['delta_e']:.2f}{sampled}{size}, {f['seconds']:.2f} s\n"
            f"kcolors: wrote {f['output']}")
