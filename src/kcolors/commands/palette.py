"""``kcolors palette``: print an image's k-colour palette, save it, draw it as swatches."""

import argparse
import json
import sys

from ..io import load_image
from ..palette import palette_format
from ..quantize import quantize
from . import ExamplesFormatter, add_quantize_options, check_k, open_source


def add_parser(sub):
    p = sub.add_parser("palette", help="print the k-colour palette of an image (and draw swatches)",
                       description="Fit a k-colour palette and print it, most used colour first, with each "
                                   "colour's share of the pixels.",
                       epilog="examples:\n"
                              "  kcolors palette photo.jpg -k 8\n"
                              "  kcolors palette photo.jpg -k 8 -o swatch.png --palette-out photo.gpl\n"
                              "  kcolors palette --from photos/ -k 16 --json",
                       formatter_class=ExamplesFormatter,
                       conflict_handler="resolve")  # so that the dither options below replace the shared ones
    p.add_argument("input", nargs="?", help="image file, or - for stdin")
    p.add_argument("--from", dest="from_dir", metavar="DIR", nargs="+",
                   help="the one palette of a whole collection: folders (searched recursively), files or patterns; "
                        "fitted on the summed histograms of every image, in parallel on all cores")
    # 16, as compress: the palette printed or saved (--palette-out) is the one `kcolors IMG` fits
    add_quantize_options(p, k_default=16)
    for option, default in (("--dither", 0.0), ("--dither-method", None)):  # hidden, and refused if given
        p.add_argument(option, nargs="?", default=default, action=_NothingToDither, help=argparse.SUPPRESS)
    p.add_argument("-o", "--output", metavar="SWATCH", help="also draw the palette as a swatch image (.png ...)")
    p.add_argument("--palette-out", metavar="FILE", help="save the palette (.gpl .json .txt)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing swatch image")
    p.add_argument("--json", action="store_true", help="print JSON instead of lines")
    p.set_defaults(run=run)


class _NothingToDither(argparse.Action):
    """Refuses --dither and --dither-method, which the shared fitting options bring but which change nothing a
    palette holds: dithering only places the palette's colours in an image (exit 2, not silently ignored)."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} changes nothing a palette holds (it applies when an image is recoloured); "
                     "leave it out")


def run(args):
    from ..errors import UsageError
    from ..output import check_output, refuse_closed_stdout

    if args.input is None and not args.from_dir:
        raise UsageError("palette needs an image (or --from DIR for a collection)")
    if args.input is not None and args.from_dir:
        raise UsageError("give an image or --from DIR, not both")
    check_k(args.k)
    refuse_closed_stdout()  # the palette is printed there: say so before any work, not print nothing
    if args.palette_out:
        palette_format(args.palette_out)
    if args.output:
        check_output(args.output, input_path=args.input, force=args.force)
    status = 0
    if args.from_dir:
        palette, shares, status = _collection(args)
    else:
        with open_source(args) as source:
            picture = load_image(source, max_pixels=args.max_pixels, max_frames=args.max_frames)
            result = quantize(picture, args.k, space=args.space, engine=args.engine, seed=args.seed)
        palette, shares = result.as_palette(), result.shares
    print_palette(palette.hex(), shares, as_json=args.json)
    if args.palette_out:
        palette.save(args.palette_out)
    if args.output:
        from ..pictures import save_swatch

        save_swatch(palette.colors, shares, args.output, force=args.force)
        print(f"kcolors: wrote {args.output}", file=sys.stderr)
    return status


def _collection(args):
    """The shared palette of ``--from``: (palette, shares, exit code); unreadable files are listed, not fatal."""
    from ..batch import BATCH_FAILED, Settings, palette_of

    settings = Settings(k=args.k, space=args.space, engine=args.engine, seed=args.seed, max_pixels=args.max_pixels,
                        max_frames=args.max_frames)
    palette, shares, failures = palette_of(args.from_dir, settings, quiet=True)
    if failures:
        print(f"kcolors: {len(failures)} file(s) left out of the palette", file=sys.stderr)
    return palette, shares, BATCH_FAILED if failures else 0


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
