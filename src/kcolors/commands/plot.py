"""``kcolors plot``: the pixels of an image as points in 3-D colour space."""

import argparse
import sys
from pathlib import Path

from ..errors import UsageError
from ..extras import require
from ..io import load_image
from . import add_options, open_source, options_from_args, output_beside_input, whole_number

OUTPUTS = (".png", ".svg", ".pdf", ".html")


DESCRIPTION = """\
Draw the pixels as points in 3-D colour space, each in its own colour: RGB
(axes Red, Green, Blue, 0-255) or, with --space lab, oklab or din99, that
space (a, b and lightness L upwards), the spaces every command takes. Large
images are sampled (--sample); the title says how many points are shown.
With -k, the k-means cluster centres are drawn large on top. A .html output
is a rotatable view (drag to turn, scroll to zoom) that needs no network;
its box is fitted to the points."""

EPILOG = """\
examples:
  kcolors plot photo.jpg -k 8 -o space.png
  kcolors plot photo.jpg --space oklab -o space.html   (rotatable, works offline)
  kcolors plot photo.jpg -k 8 --space din99 -o din99.png"""


def add_parser(sub):
    p = sub.add_parser("plot", help="plot the pixels as points in 3-D colour space (PNG, or interactive HTML)",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="image file, or - for stdin")
    p.add_argument("-o", "--output", help=".png .svg .pdf, or .html for an interactive view that opens offline "
                                          "(default: INPUT-space.png beside the input)")
    p.add_argument("--sample", type=whole_number, default=20_000, metavar="N",
                   help="draw at most N pixels, chosen at random (default 20,000)")
    add_options(p, "plot", own={
        "k": dict(default=None, help="also fit k colours (1-256) and draw the cluster centres"),
        "space": dict(help="plot (and cluster) in sRGB (blend, the default, and rgb), CIELAB, OKLab (x100: L "
                           "0-100, a and b about -35..35) or DIN99 (L 0-100, a and b about -35..40)"),
        "seed": dict(help="seed of the sample and of k-means++ (default 0)")})
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="no report on stderr")
    p.set_defaults(run=run)


def run(args):
    from ..plots import save_figure, space_figure, space_html, space_sample
    from ..output import check_output, write_bytes

    options = options_from_args(args, "plot")  # without -k, the record's default k, unused: no centres are drawn
    if not 1 <= args.sample <= 1_000_000:
        raise UsageError(f"--sample must be between 1 and 1,000,000 points, not {args.sample}")
    output = output_beside_input(args.output, args.input, "space.png")
    check_output(output, input_path=args.input, force=args.force, extensions=OUTPUTS)
    ext = Path(output).suffix.lower()
    if ext != ".html":  # the HTML plot is written by hand; the others are drawn by matplotlib
        require("plot", f"plot to {ext}")
    with open_source(args) as source:
        picture = load_image(source, max_pixels=options.max_pixels, max_frames=options.max_frames)
    centres = None
    if args.k is not None:
        from ..quantize import quantize

        centres = quantize(picture, options.k, space=options.space, engine=options.engine, seed=options.seed,
                           effort=options.effort).palette
    colours, total = space_sample(picture, args.sample, seed=options.seed)
    title = Path(picture.name).name
    if ext == ".html":
        text = space_html(colours, total, centres=centres, space=options.space, title=title)
        write_bytes(output, text.encode("utf-8"), force=args.force)
    else:
        save_figure(space_figure(colours, total, centres=centres, space=options.space, title=title), output,
                    force=args.force)
    if not args.quiet:
        print(f"kcolors: plotted {len(colours):,} of {total:,} pixels; wrote {output}", file=sys.stderr)
    return 0
