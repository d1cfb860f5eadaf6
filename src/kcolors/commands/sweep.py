"""``kcolors sweep``: flatten an image at every k of a range and show them all."""

import argparse
import sys
from pathlib import Path

from ..errors import OutputError, OutputExistsError, UsageError
from ..extras import require
from ..io import load_image
from ..output import check_output, print_line, write_bytes
from ..sweep import SUGGEST_METHODS, knee, metrics_csv, suggest_curve
from ..sweep_job import make_sweep
from . import add_options, open_source, options_from_args, whole_number

DESCRIPTION = """\
Flatten an image at each k of a range or list and write an animation cycling
through them, smallest k first, ending with the original picture: GIF (.gif),
animated WebP (.webp) or APNG (.png, .apng), by the output's extension. A GIF
frame holds at most 256 colours, so in a GIF the original (last) frame is
written with a 256-colour palette (Pillow's octree colours, each pixel mapped
to the nearest; exact when the image has at most 256 colours); in WebP and
APNG it is lossless.
The colour histogram is built once and the fits run in parallel."""

EPILOG = """\
--suggest: the knee (Kneedle) of the 90th percentile of the pixels' ΔE2000
against k, the error of the worst-served tenth of the picture, where small
vivid areas lost at low k show. k and the curve are both scaled to 0-1, and
the suggested k is the one lying farthest below the straight line from the
first k to the last, where one more colour stops paying for itself. Sweep a
range of at least 3 k. --suggest-method inertia takes the knee of the k-means
inertia instead (the old way: cheaper, but it can suggest a k that leaves a
photo nearly grey). With --curve, the percentile curve and the knee are drawn.

examples:
  kcolors sweep photo.jpg -k 2-15 -o sweep.gif --label
  kcolors sweep photo.jpg -k 2,4,8,16 -o sweep.webp --sheet sheet.png --metrics k.csv
  kcolors sweep photo.jpg -k 2-24 --suggest --curve quality.png"""


def add_parser(sub):
    p = sub.add_parser("sweep", help="flatten at every k of a range: animation, contact sheet, metrics, curve",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="image file, or - for stdin")
    p.add_argument("-o", "--output", help="the animation: .gif, .webp, .png or .apng (default: INPUT-sweep.gif "
                                          "beside the input, when no other output is asked for)")
    p.add_argument("--duration", type=whole_number, default=500, metavar="MS",
                   help="milliseconds each frame shows (default 500; GIF keeps hundredths of a second)")
    p.add_argument("--hold-last", type=whole_number, default=2000, metavar="MS",
                   help="milliseconds the last frame (the original) shows (default 2,000)")
    p.add_argument("--loop", type=whole_number, default=0, metavar="N",
                   help="times to play the animation, 0 = forever (default 0)")
    p.add_argument("--label", action="store_true",
                   help='caption each frame "k = 5" (drawn in the frame\'s own colours; the last "original")')
    p.add_argument("--frames", metavar="DIR", help="also write each frame as a PNG into DIR (made if missing)")
    p.add_argument("--sheet", metavar="FILE", help="also write a contact sheet: every k captioned, the original last")
    p.add_argument("--cell", type=whole_number, default=256, metavar="PX",
                   help="width of a contact-sheet cell in pixels (default 256)")
    p.add_argument("--metrics", metavar="FILE.csv",
                   help="also write k, colours, PSNR, mean ΔE2000, inertia and PNG bytes per k as CSV")
    p.add_argument("--curve", metavar="FILE", help="also plot PSNR and ΔE against k (.png, .svg or .pdf)")
    p.add_argument("--suggest", action="store_true",
                   help="print the k at the knee of the quality curve on stdout (see below)")
    p.add_argument("--suggest-method", choices=SUGGEST_METHODS, default="tail",
                   help="the curve --suggest takes the knee of: tail, the 90th percentile of the pixels' ΔE2000 "
                        "(default), or inertia")
    add_options(p, "sweep")
    p.add_argument("-j", "--jobs", type=whole_number, default=None, metavar="N",
                   help="fits run in parallel (default: one per core)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("-q", "--quiet", action="store_true", help="no report on stderr")
    p.set_defaults(run=run)


def run(args):
    ks, options = args.ks, options_from_args(args, "sweep")  # a plain dither: the ordered method (for_frames)
    output, fmt = _check(args, ks)
    with open_source(args) as source:
        picture = load_image(source, max_pixels=options.max_pixels, max_frames=options.max_frames)
    figures = bool(args.metrics or args.curve or args.suggest or not args.quiet)
    made = make_sweep(picture, ks, fmt, space=options.space, dither=options.dither, engine=options.engine,
                      seed=options.seed, effort=options.effort,
                      workers=args.jobs, figures=figures, png_bytes=bool(args.metrics), label=args.label,
                      duration=args.duration, hold_last=args.hold_last, loop=args.loop)
    steps, written = made.steps, []
    if output:
        write_bytes(output, made.data, force=args.force)
        written.append(output)
    if args.frames:
        written.extend(_write_frames(args, steps, picture))
    if args.sheet:
        from ..pictures import contact_sheet, save_image

        save_image(contact_sheet(steps, picture, cell=args.cell), args.sheet, force=args.force)
        written.append(args.sheet)
    if args.metrics:
        write_bytes(args.metrics, metrics_csv(steps).encode(), force=args.force)
        written.append(args.metrics)
    ks_done = [s.k for s in steps]
    curve = suggest_curve(steps, args.suggest_method) if (args.suggest or args.curve) and len(steps) >= 3 else None
    k_knee = knee(ks_done, curve) if curve is not None else None
    if args.curve:
        from ..plots import curve_figure, save_figure

        fig = curve_figure(ks_done, [s.result.psnr for s in steps], [s.result.delta_e for s in steps],
                           knee=k_knee, title=Path(picture.name).name,
                           tail=curve if curve is not None and args.suggest_method == "tail" else None)
        save_figure(fig, args.curve, force=args.force)
        written.append(args.curve)
    if not args.quiet:
        _report(picture, steps, written, k_knee if args.suggest else None, args.suggest_method)
    if args.suggest:
        print_line(str(k_knee))  # a full disk or closed standard output: exit 5
    return 0


def _check(args, ks):
    """Every refusal before any work; returns (animation output or None, its format or None)."""
    from ..animation import animation_format
    from ..plots import FIGURE_FORMATS

    if args.suggest and len(ks) < 3:
        raise UsageError(f"--suggest needs at least 3 values of k to find a knee, not {len(ks)}")
    if args.loop < 0:
        raise UsageError(f"--loop must be 0 (forever) or more, not {args.loop}")
    for name in ("duration", "hold_last"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1 ms, not {getattr(args, name)}")
    output = args.output
    if output is None and not (args.frames or args.sheet or args.metrics or args.curve or args.suggest):
        if args.input == "-":
            raise UsageError("reading stdin: give the animation's name with -o")
        output = str(Path(args.input).with_name(Path(args.input).stem + "-sweep.gif"))
    fmt = None
    if output:
        fmt = animation_format(output)
        check_output(output, input_path=args.input, force=args.force)
    if args.sheet:
        check_output(args.sheet, input_path=args.input, force=args.force)
    if args.metrics:
        check_output(args.metrics, input_path=args.input, force=args.force, extensions=(".csv",))
    if args.curve:
        require("plot", "sweep --curve")  # matplotlib draws it
        check_output(args.curve, input_path=args.input, force=args.force, extensions=FIGURE_FORMATS)
    if args.frames:
        _check_frames(args, ks)
    return output, fmt


def _frame_paths(folder, stem, ks):
    width = len(str(max(ks)))
    return [Path(folder) / f"{stem}-k{k:0{width}d}.png" for k in ks] + [Path(folder) / f"{stem}-original.png"]


def _check_frames(args, ks):
    folder = Path(args.frames)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder (--frames needs a folder)")
    if not folder.exists() and not folder.parent.is_dir():
        raise OutputError(f"{folder}: folder {folder.parent} does not exist")
    stem = "frame" if args.input == "-" else Path(args.input).stem
    for path in _frame_paths(folder, stem, ks):
        if path.exists() and not args.force:
            raise OutputExistsError(f"{path}: exists; use -f/--force to overwrite")


def _write_frames(args, steps, picture):
    from ..animation import png_frames
    from ..pictures import save_image

    folder = Path(args.frames)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot make the folder ({exc.strerror or exc})") from None
    stem = "frame" if args.input == "-" else Path(args.input).stem
    paths = _frame_paths(folder, stem, [s.k for s in steps])
    for frame, path in zip(png_frames(steps, picture, label=args.label), paths):
        save_image(frame, path, force=args.force)
    return [f"{folder}/ ({len(paths)} PNG frames)"]


def _report(picture, steps, written, knee, method="tail"):
    w, h = picture.size
    lines = [f"kcolors: {picture.name} {w}x{h}, {len(picture.histogram()[0]):,} colours",
             "      k  colours  PSNR (dB)  mean ΔE2000"]
    for s in steps:
        psnr = "inf" if s.result.psnr == float("inf") else f"{s.result.psnr:.2f}"
        lines.append(f"    {s.k:3d}  {s.result.colors_out:7d}  {psnr:>9}  {s.result.delta_e:11.2f}")
    if knee is not None:
        curve = "the inertia curve" if method == "inertia" else "the 90th-percentile ΔE2000 curve"
        lines.append(f"kcolors: suggested k = {knee} (the knee of {curve})")
    lines += [f"kcolors: wrote {path}" for path in written]
    print("\n".join(lines), file=sys.stderr)
