"""One module per ``kcolors`` subcommand, each with ``add_parser(subparsers)``.

The options are built here from the table (:data:`kcolors.table.OPTIONS`), so that every command spells
them the same way, and the arguments become one checked :class:`~kcolors.options.Options` record
(:func:`options_from_args`): the library never sees argparse's Namespace.
"""

import argparse

from ..errors import UsageError
from ..extras import require
from ..inputs import open_input
from ..options import Dither
from ..table import OPTIONS, TABLE, whole

MB = 2**20


class ExamplesFormatter(argparse.HelpFormatter):
    """argparse's help, the description wrapped as usual, an epilog of examples kept line for line."""

    def _fill_text(self, text, width, indent):
        if text.startswith("example"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class _Refused(argparse.Action):
    """An option a command refuses on purpose: given, it stops with the table's reason, before any work."""

    reason = ""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} does not apply here: {self.reason}")


def _argparse_type(parser, name):
    """``parser`` (text -> value, ValueError saying what is wrong) as an argparse type named ``name``."""
    def parse(text):
        try:
            return parser(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = name
    return parse


# a command's own int options (ranges are checked where the value is used, with a message naming the option)
whole_number = _argparse_type(whole, "whole_number")


DESTS = {"max_input_bytes": "max_input_mb"}  # the command line gives it in MiB


def add_option(parser, option, **changes):
    """The argument of one row of the table (``changes``: the command's own default or help)."""
    kwargs = dict(dest=DESTS.get(option.name, option.name), default=option.default, help=option.help)
    if option.flag:
        kwargs.update(action="store_true")
    else:
        kwargs.update(type=_argparse_type(option.parse, option.name), choices=option.choices,
                      metavar=option.metavar)
        if option.const is not None:
            kwargs.update(nargs="?", const=option.const)
    parser.add_argument(*option.flags, **dict(kwargs, **changes))


def add_options(parser, command, *, skip=(), own=None):
    """The arguments of ``command`` from the table: those it takes, and those it refuses (given, they stop
    with the table's reason); ``skip``: names the command adds itself; ``own``: name -> the command's own
    default and help for that row."""
    for option in OPTIONS:
        reason = option.reason(command)
        if option.name in skip or (command not in option.commands and reason is None):
            continue
        if reason is None:
            add_option(parser, option, **(own or {}).get(option.name, {}))
            continue
        refused = type("Refused", (_Refused,), {"reason": reason})
        parser.add_argument(*option.flags, action=refused, nargs=0 if option.flag else "?", help=argparse.SUPPRESS,
                            default=None, dest=f"refused_{option.name}")


def options_from_args(args, command, palette=None):
    """The checked :class:`~kcolors.options.Options` that the arguments of ``command`` ask for (UsageError naming
    the flag); ``palette``: the Palette that --palette loaded (or its name, to check it is given)."""
    from ..options import Options

    if getattr(args, "scheduler", None):  # before any work: one line naming the extra, exit 2
        require("dask", f"{command} --scheduler")

    given, method = getattr(args, "dither", 0.0), getattr(args, "dither_method", None)  # palette has neither
    strength = given if given or method is None else 1.0
    # no method asked: a plain strength (the selective method on a still, the ordered one on an animation)
    dither = float(strength) if method is None else Dither(strength, method)
    given_fields = {name: getattr(args, DESTS.get(name, name)) for name in Options.__dataclass_fields__
                    if name in TABLE and command in TABLE[name].commands and TABLE[name].reason(command) is None}
    fields = {name: value for name, value in given_fields.items() if value is not None}  # None: the record's default
    fields.update(dither=dither, palette=palette)
    if fields.get("max_input_bytes") is not None:
        fields["max_input_bytes"] *= MB
    flags = dict({o.name: o.flags[-1] for o in OPTIONS}, k="-k")
    return Options(**fields).check(spell=lambda name: flags.get(name, name))


def open_source(args, source=None):
    """The command's input opened once (:func:`kcolors.inputs.open_input`), for every reader that needs it."""
    return open_input(args.input if source is None else source, max_bytes=args.max_input_mb * MB)


def output_beside_input(output, input_path, suffix):
    """``output``, or else INPUT-suffix beside the input (stdin needs an explicit -o)."""
    from pathlib import Path

    if output is not None:
        return output
    if str(input_path) == "-":
        raise UsageError("reading stdin: give the output's name with -o")
    return str(Path(input_path).with_name(f"{Path(input_path).stem}-{suffix}"))
