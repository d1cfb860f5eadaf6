"""One module per ``kcolors`` subcommand, each with ``add_parser(subparsers)``.

Shared option groups live here so that every command spells them the same way.
"""

import argparse

from ..colorspace import SPACES
from ..options import DITHER_METHODS, Dither
from ..errors import UsageError
from ..io import DEFAULT_MAX_FRAMES, DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_PIXELS, open_input

MB = 2**20


class ExamplesFormatter(argparse.HelpFormatter):
    """argparse's help, the description wrapped as usual, an epilog of examples kept line for line."""

    def _fill_text(self, text, width, indent):
        if text.startswith("example"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def whole_number(text):
    """An int option (ranges are checked where the value is used, with a message naming the option)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    return value


def seed_number(text):
    """--seed: a whole number 0 <= seed < 2**32 (kcolors.options.check_seed), refused before any work."""
    from ..options import check_seed

    value = whole_number(text)
    try:
        check_seed(value)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("seed ")) from None
    return value


def pixel_count(text):
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 pixel, not {value}")
    return value


def unit_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"dither strength must be between 0 and 1, not {text}")
    return value


def combine_dither(args):
    """Make ``args.dither`` the :class:`~kcolors.options.Dither` that --dither and --dither-method ask for
    (a command's own default method is ``args.dither_default``)."""
    strength = args.dither if args.dither or args.dither_method is None else 1.0
    args.dither = Dither(strength, args.dither_method or getattr(args, "dither_default", "selective"))


def frame_count(text):
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 frame, not {value}")
    return value


def add_quantize_options(parser, *, k_default=16, with_k=True):
    """-k, --space, --dither, --engine, --seed, --max-pixels, --max-frames: the options of every fitting command."""
    if with_k:
        parser.add_argument("-k", "--colors", dest="k", type=whole_number, default=k_default,
                            help=f"number of colours, 1-256 (default {k_default:,})")
    parser.add_argument("--space", choices=SPACES, default="rgb",
                        help="colour space of the clustering and mapping: rgb (the default: best PSNR), din99 "
                             "(lowest mean ΔE2000: closest to the eye), lab (the smallest files), oklab")
    parser.add_argument("--dither", type=unit_float, nargs="?", const=1.0, default=0.0, metavar="STRENGTH",
                        help="dithering, strength 0-1 (1 if given alone; default off): error diffusion only where "
                             "it helps, in smooth gradients that would band, not in flat areas or across edges")
    parser.add_argument("--dither-method", choices=DITHER_METHODS, default=None,
                        help="how to dither (implies --dither): selective (the default, as above), fs (classic "
                             "Floyd-Steinberg on every pixel), ordered (a fixed Bayer pattern that stays still "
                             "from frame to frame)")
    parser.set_defaults(prepare=combine_dither)
    parser.add_argument("--engine", choices=("fast", "sklearn", "simple"), default="fast",
                        help="fast: k-means on the colour histogram (default); sklearn: scikit-learn KMeans on "
                             "every pixel; simple: the from-scratch numpy k-means")
    parser.add_argument("--seed", type=seed_number, default=0,
                        help="random seed of k-means++, 0 to 4,294,967,295 (default 0)")
    parser.add_argument("--max-pixels", type=pixel_count, default=None, metavar="N",
                        help=f"refuse larger images (default {DEFAULT_MAX_PIXELS:,}, Pillow's limit), checked on "
                             "every frame and page before any is decoded")
    parser.add_argument("--max-frames", type=frame_count, default=DEFAULT_MAX_FRAMES, metavar="N",
                        help=f"refuse files of more frames, pages or images (default {DEFAULT_MAX_FRAMES:,}), "
                             "counted from the headers before any is decoded")
    add_input_limit(parser)


class _Refused(argparse.Action):
    """An option a command refuses on purpose: given, it stops with the table's reason, before any work."""

    reason = ""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} does not apply here: {self.reason}")


def _argparse_type(option):
    def parse(text):
        try:
            return option.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = option.name
    return parse


DESTS = {"max_input_bytes": "max_input_mb"}  # the command line gives it in MiB


def add_options(parser, command, *, skip=()):
    """The arguments of ``command`` from :data:`kcolors.options.OPTIONS`: those it takes, and those it refuses
    (given, they stop with the table's reason); ``skip``: names the command adds itself."""
    from ..table import OPTIONS

    for option in OPTIONS:
        reason = option.reason(command)
        if option.name in skip or (command not in option.commands and reason is None):
            continue
        if reason is not None:
            refused = type("Refused", (_Refused,), {"reason": reason})
            parser.add_argument(*option.flags, action=refused, nargs=0 if option.flag else "?",
                                help=argparse.SUPPRESS, default=None, dest=f"refused_{option.name}")
            continue
        kwargs = dict(dest=DESTS.get(option.name, option.name), default=option.default, help=option.help)
        if option.flag:
            kwargs.update(action="store_true")
        else:
            kwargs.update(type=_argparse_type(option), choices=option.choices, metavar=option.metavar)
            if option.const is not None:
                kwargs.update(nargs="?", const=option.const)
        parser.add_argument(*option.flags, **kwargs)


def options_from_args(args, command, palette=None):
    """The checked :class:`~kcolors.options.Options` that the arguments of ``command`` ask for (UsageError naming
    the flag); ``palette``: the Palette that --palette loaded."""
    from ..options import Dither, Options
    from ..table import OPTIONS, TABLE

    strength = args.dither if args.dither or args.dither_method is None else 1.0
    # no method asked: a plain strength (the selective method on a still, the ordered one on an animation)
    dither = float(strength) if args.dither_method is None else Dither(strength, args.dither_method)
    fields = {name: getattr(args, DESTS.get(name, name)) for name in Options.__dataclass_fields__
              if name in TABLE and command in TABLE[name].commands and TABLE[name].reason(command) is None}
    fields.update(dither=dither, palette=palette)
    if fields.get("max_input_bytes") is not None:
        fields["max_input_bytes"] *= MB
    flags = dict({o.name: o.flags[-1] for o in OPTIONS}, k="-k")
    return Options(**fields).check(spell=lambda name: flags.get(name, name))


def add_input_limit(parser):
    """--max-input-mb: how much a pipe or standard input may send (a file is read in place, without limit)."""
    parser.add_argument("--max-input-mb", type=pixel_count, default=DEFAULT_MAX_INPUT_BYTES // MB, metavar="MB",
                        help=f"refuse more than this many MiB from a pipe or stdin, which are held in memory "
                             f"(default {DEFAULT_MAX_INPUT_BYTES // MB:,}); files are read in place")


def add_keep_option(parser):
    """--keep: locked colours, in the palette exactly (kcolors.quantize's ``keep``)."""
    parser.add_argument("--keep", metavar="COLOUR[,COLOUR...]", default=None,
                        help="colours the palette must hold exactly, #rrggbb or #rrggbbaa, comma-separated; they "
                             "count within k and k-means fits the others around them (fast engine only)")


def check_keep_option(args):
    """Refuse a bad --keep before any work (a colour that is none, more than k, with --palette or another engine)."""
    if not args.keep:
        return
    from ..options import check_keep

    if getattr(args, "palette", None):
        raise UsageError("--keep does not apply with --palette: that palette is already fixed")
    try:
        check_keep(args.keep, args.k, args.engine)
    except UsageError as exc:  # the library's messages say keep (its argument); here it is the option
        raise UsageError(f"--{exc}" if str(exc).startswith("keep") else str(exc)) from None


def open_source(args, source=None):
    """The command's input opened once (:func:`kcolors.io.open_input`), for every reader that needs it."""
    return open_input(args.input if source is None else source, max_bytes=args.max_input_mb * MB)


def check_k(k):
    """k in range: 1 to MAX_K, what a palette image holds (the commands not yet built from the options table)."""
    from ..options import check_options

    check_options(k)


def output_beside_input(output, input_path, suffix):
    """``output``, or else INPUT-suffix beside the input (stdin needs an explicit -o)."""
    from pathlib import Path

    if output is not None:
        return output
    if str(input_path) == "-":
        raise UsageError("reading stdin: give the output's name with -o")
    return str(Path(input_path).with_name(f"{Path(input_path).stem}-{suffix}"))
