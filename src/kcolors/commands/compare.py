"""``kcolors compare``: the original and its flattened versions side by side."""

import sys

from ..errors import UsageError
from ..io import load_image
from ..output import check_output
from ..options import Dither
from ..sweep import sweep
from . import add_options, open_source, options_from_args, output_beside_input, whole_number


def add_parser(sub):
    p = sub.add_parser("compare", help="the original and flattened versions side by side, captioned",
                       description='Draw the original and its flattening at each k in a row, captioned '
                                   '"original", "k = 2 (2 colours)", ...',
                       epilog="example: kcolors compare photo.jpg -k 2,5,16 -o side.png")
    p.add_argument("input", help="image file, or - for stdin")
    p.add_argument("-o", "--output", help="the picture (.png .webp .gif .tif .bmp .jpg; default: INPUT-compare.png "
                                          "beside the input)")
    p.add_argument("--width", type=whole_number, default=None, metavar="PX",
                   help="width of each panel in pixels (default: the image's own width)")
    # a row of two by default, few colours and many (the sweep's 2-15 would draw 14 panels)
    add_options(p, "compare", own={"ks": dict(default="4,16", help="the k values: a range (2-6), a list (2,5) or "
                                               "both; default 4,16")})
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="no report on stderr")
    p.set_defaults(run=run)


def run(args):
    from ..pictures import save_image, side_by_side

    ks, options = args.ks, options_from_args(args, "compare")
    if len(ks) > 16:
        raise UsageError(f"compare draws at most 16 versions in a row, not {len(ks)}; use sweep --sheet for more")
    if args.width is not None and not 16 <= args.width <= 8192:
        raise UsageError(f"--width must be between 16 and 8192 pixels, not {args.width}")
    output = output_beside_input(args.output, args.input, "compare.png")
    check_output(output, input_path=args.input, force=args.force)
    with open_source(args) as source:
        picture = load_image(source, max_pixels=options.max_pixels, max_frames=options.max_frames)
    # stills side by side: a plain strength dithers by the selective method (a sweep's frames would take ordered)
    dither = options.dither if isinstance(options.dither, Dither) else Dither(options.dither, "selective")
    steps = sweep(picture, ks, space=options.space, dither=dither, engine=options.engine, seed=options.seed,
                  effort=options.effort)
    save_image(side_by_side([s.result for s in steps], picture, width=args.width), output, force=args.force)
    if not args.quiet:
        print(f"kcolors: wrote {output}", file=sys.stderr)
    return 0
