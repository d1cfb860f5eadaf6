"""The ``kcolors`` command: parse, check, call the library, report.

Each subcommand lives in ``kcolors/commands/<name>.py`` with ``add_parser``
and ``run``; this module only dispatches and turns errors into one line on
stderr and a documented exit code (see ``errors.EXIT_CODES``).
"""

import argparse
import functools
import os
import signal
import sys
import threading
import warnings

from . import __version__
from .errors import EXIT_CODES, KcolorsError, Terminated, printable

COMMANDS = ("compress", "palette", "demo", "sweep", "plot", "compare", "batch", "serve")


def _columns():
    """The help's width as argparse finds it, without ``shutil`` (whose import, with bz2 and lzma, was 2.6 ms of
    every start-up: argparse makes a formatter for each option it adds): $COLUMNS, else the terminal's, else 80."""
    try:
        return int(os.environ.get("COLUMNS", "")) or os.get_terminal_size(sys.__stdout__.fileno()).columns
    except (ValueError, OSError, AttributeError):
        return 80


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (``kcolors: …``) and exit code 2, like every other refusal."""

    def __init__(self, *args, **options):
        layout = options.get("formatter_class", argparse.HelpFormatter)
        options["formatter_class"] = functools.partial(layout, width=_columns() - 2)  # argparse leaves 2 columns
        super().__init__(*args, **options)

    def error(self, message):
        _error(f"{self.prog.split()[-1]}: {message}" if " " in self.prog else message)
        sys.exit(2)


def build_parser(commands=COMMANDS):
    """The argument parser; only the subcommands in ``commands`` are built in full (their modules imported).

    The others stand as bare names, so that ``kcolors --version`` or one
    command does not pay for importing every command's modules (sweeps,
    batches, the web server) at start-up.
    """
    parser = _Parser(
        prog="kcolors",
        description="Flatten images to k colours with k-means (k-means++ seeding) and write them small.",
        epilog="Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items()),
    )
    parser.add_argument("-V", "--version", action="version", version=f"kcolors {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _command_module(name) if name in commands else None
        if module is not None:
            module.add_parser(sub)
        elif name not in commands and len(commands) != 1:  # one command asked for: the others are not needed
            sub.add_parser(name, add_help=False)
    return parser


def _command_module(name):
    import importlib

    try:
        return importlib.import_module(f".commands.{name}", __package__)
    except ModuleNotFoundError as exc:
        if exc.name == f"{__package__}.commands.{name}":
            return None  # a command not built yet
        raise


def main(argv=None):
    """Entry point of the ``kcolors`` command; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and (guess := _mistyped_command(argv[0])):
        _error(f"{argv[0]}: no such command, nor a file; did you mean {guess}? (kcolors --help lists the commands)")
        return 2
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help", "-V", "--version"):
        argv = ["compress", *argv]  # `kcolors photo.jpg -k 8` and a bare `kcolors` mean compress
    # the one command asked for is built in full; the help lists them all
    parser = build_parser(COMMANDS if argv[0] in ("-h", "--help") else (argv[0],))
    args, extra = parser.parse_known_args(argv)  # exits 2 with a usage line on bad options
    if extra and argv[0] == "compress" and not any(word.startswith("-") and word != "-" for word in extra):
        args.input += extra  # inputs after options (`kcolors a.png -k 8 b.png`), as pngquant takes them
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    warnings.showwarning = _warning_line
    if args.command != "serve":  # the server's own handler shuts it down gracefully
        _terminate_cleanly()
    try:
        _check_environment()
        return args.run(args) or 0
    except KcolorsError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Terminated:
        _error("terminated")
        return Terminated.exit_code
    except BrokenPipeError:
        return 1
    except MemoryError:
        _error("out of memory (try a smaller image or --max-pixels)")
        return 1
    except Exception as exc:  # a bug: one line, the traceback only on request
        from .options import debug

        if debug():
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (set KCOLORS_DEBUG=1 for the traceback)")
        return 1


def _check_environment():
    """Refuse a bad KCOLORS_* value before any work (UsageError, exit 2), and warn of one kcolors does not read."""
    from .options import ENVIRONMENT, check_environment

    for name in check_environment():
        _error(f"warning: {name} is set, but kcolors reads no such variable (it reads {', '.join(ENVIRONMENT)})")


def _mistyped_command(word):
    """The command ``word`` looks like a typing slip of (``swep``: sweep), or None.

    Only for a word that is not a command, not a file that exists and does not
    look like a path or an option (no dot, slash or leading dash): anything
    else is an input for compress, whose own message says what is wrong with it.
    """
    if word in COMMANDS or not word or word.startswith("-") or any(c in word for c in "./\\") \
            or os.path.lexists(word):
        return None
    import difflib

    close = difflib.get_close_matches(word.lower(), COMMANDS, n=1, cutoff=0.7)
    return close[0] if close else None


def _terminate_cleanly():
    def handler(signum, frame):
        raise Terminated

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def _error(message):
    print(printable(f"kcolors: {message}"), file=sys.stderr)  # a name that is not UTF-8 as \xNN


_warned = set()


def _warning_line(message, category, filename, lineno, file=None, line=None):
    """A warning as one line, each text once: a decoder complains each time it opens a file (an animation
    check and the decoding both open it), and warnings' own once-filter forgets within catch_warnings."""
    if str(message) not in _warned:
        _warned.add(str(message))
        print(printable(f"kcolors: warning: {message}"), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
