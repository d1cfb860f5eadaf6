"""``kcolors demo``: flatten the bundled sample photograph, to see what kcolors does."""

from . import compress


def add_parser(sub):
    p = sub.add_parser("demo", help="flatten a sample photograph into ./kcolors-demo/")
    p.add_argument("-k", "--colors", dest="k", type=int, default=16, help="number of colours (default 16)")
    p.set_defaults(run=run)


def run(args):
    parser_defaults = dict(input=None, output=None, space="rgb", dither=0.0, engine="fast", seed=0,
                           max_pixels=None, force=True, palette=None, palette_out=None, json=False, quiet=False)
    for key, value in parser_defaults.items():
        setattr(args, key, value)
    return compress.run(args)
