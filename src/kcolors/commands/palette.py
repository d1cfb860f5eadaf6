"""``kcolors palette``: print an image's k-colour palette, save it, draw it as swatches."""

import json
import sys

from ..io import load_image
from ..palette_files import palette_format
from ..quantize import quantize
from . import ExamplesFormatter, add_options, open_source, options_from_args


def add_parser(sub):
    p = sub.add_parser("palette", help="print the k-colour palette of an image (and draw swatches)",
                       description="Fit a k-colour palette and print it, most used colour first, with each "
                                   "colour's share of the pixels.",
                       epilog="examples:\n"
                              "  kcolors palette photo.jpg -k 8\n"
                              "  kcolors palette photo.jpg -k 8 -o swatch.png --palette-out photo.gpl\n"
                              "  kcolors palette --from photos/ -k 16 --json",
                       formatter_class=ExamplesFormatter)
    p.add_argument("input", nargs="?", help="image file, or - for stdin")
    p.add_argument("--from", dest="from_dir", metavar="DIR", nargs="+",
                   help="the one palette of a whole collection: folders (searched recursively), files or patterns; "
                        "fitted on the summed histograms of every image, in parallel on all cores")
    # -k 16, as compress: the palette printed or saved (--palette-out) is the one `kcolors IMG` fits
    add_options(p, "palette")  # --dither and --dither-method are refused with the table's reason
    p.add_argument("-o", "--output", metavar="SWATCH", help="also draw the palette as a swatch image (.png ...)")
    p.add_argument("--palette-out", metavar="FILE", help="save the palette (.gpl .json .txt)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing swatch image")
    p.add_argument("--json", action="store_true", help="print JSON instead of lines")
    p.set_defaults(run=run)


def run(args):
    from ..errors import UsageError
    from ..output import check_output, refuse_closed_stdout

    if args.input is None and not args.from_dir:
        raise UsageError("palette needs an image (or --from DIR for a collection)")
    if args.input is not None and args.from_dir:
        raise UsageError("give an image or --from DIR, not both")
    options = options_from_args(args, "palette")
    refuse_closed_stdout()  # the palette is printed there: say so before any work, not print nothing
    if args.palette_out:
        palette_format(args.palette_out)
    if args.output:
        check_output(args.output, input_path=args.input, force=args.force)
    status = 0
    if args.from_dir:  # the shared palette of a collection; unreadable files are listed, not fatal
        from ..batch import BATCH_FAILED, palette_of

        palette, shares, failures = palette_of(args.from_dir, options, quiet=True)
        if failures:
            print(f"kcolors: {len(failures)} file(s) left out of the palette", file=sys.stderr)
            status = BATCH_FAILED
    else:
        with open_source(args) as source:
            picture = load_image(source, max_pixels=options.max_pixels, max_frames=options.max_frames)
            result = quantize(picture, options.k, space=options.space, engine=options.engine, seed=options.seed,
                              effort=options.effort)
        palette, shares = result.as_palette(), result.shares
    print_palette(palette.hex(), shares, as_json=args.json)
    if args.palette_out:
        palette.save(args.palette_out)
    if args.output:
        from ..pictures import save_swatch

        save_swatch(palette.colors, shares, args.output, force=args.force)
        print(f"kcolors: wrote {args.output}", file=sys.stderr)
    return status


def print_palette(hexes, shares, *, as_json=False):
    """The palette on standard output, a colour and its share a line (or one JSON object); a full disk or
    closed standard output is exit 5 (:func:`kcolors.output.print_line`)."""
    from ..output import print_line

    if as_json:
        print_line(json.dumps({"palette": hexes, "shares": [round(float(s), 6) for s in shares]}))
        return
    lines = [f"{code}  {100 * share:6.2f}%" for code, share in zip(hexes, shares)]
    if lines:
        print_line("\n".join(lines))
