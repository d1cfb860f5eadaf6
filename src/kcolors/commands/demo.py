"""``kcolors demo``: flatten the bundled sample photograph, to see what kcolors does."""

import argparse

from . import ExamplesFormatter, compress, whole_number


def add_parser(sub):
    p = sub.add_parser("demo", help="flatten a sample photograph into ./kcolors-demo/ (what a bare kcolors does)",
                       description="Flatten coffee.png, a photograph shipped with scikit-image, to k colours and "
                                   "write kcolors-demo/coffee-kK.png in the current folder, with the usual report. "
                                   "The demo rewrites its own file when run again (no -f needed).",
                       epilog="examples:\n  kcolors demo\n  kcolors demo -k 4",
                       formatter_class=ExamplesFormatter)
    p.add_argument("-k", "--colors", dest="k", type=whole_number, default=16,
                   help="number of colours, 1-256 (default 16)")
    p.set_defaults(run=run)


def run(args):
    """``kcolors compress`` with no input and every other option at its default."""
    parser = argparse.ArgumentParser(prog="kcolors")
    compress.add_parser(parser.add_subparsers())
    full = parser.parse_args(["compress", "-k", str(args.k)])
    return compress.run(full)
