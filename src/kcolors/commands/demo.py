"""``kcolors demo``: flatten the bundled sample photograph, to see what kcolors does."""

import argparse

from ..table import TABLE
from . import ExamplesFormatter, add_option, compress


def add_parser(sub):
    p = sub.add_parser("demo", help="flatten a sample photograph into ./kcolors-demo/ (what a bare kcolors does)",
                       description="Flatten coffee.png, the sample photograph shipped with kcolors, to k colours and "
                                   "write kcolors-demo/coffee-kK.png in the current folder, with the usual report. "
                                   "The demo rewrites its own file when run again (no -f needed).",
                       epilog="examples:\n  kcolors demo\n  kcolors demo -k 4",
                       formatter_class=ExamplesFormatter)
    add_option(p, TABLE["k"])
    p.set_defaults(run=run)


def run(args):
    """``kcolors compress`` with no input and every other option at its default."""
    parser = argparse.ArgumentParser(prog="kcolors")
    compress.add_parser(parser.add_subparsers())
    full = parser.parse_args(["compress", "-k", str(args.k)])
    return compress.run(full)
