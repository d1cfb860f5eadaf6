"""Progress of a batch on the terminal: a tqdm bar, or one line per file."""

import contextlib
import sys

from ..errors import printable


class Progress(contextlib.AbstractContextManager):
    """A tqdm bar (count, rate, ETA) on a terminal; one plain line per file otherwise.

    Failures are always printed, even with ``quiet``: they are errors. Names that are
    not valid UTF-8 are printed as :func:`~kcolors.errors.printable` writes them.
    """

    def __init__(self, total, label, *, quiet=False, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.total, self.label, self.quiet, self.count = total, label, quiet, 0
        self.bar = None
        if not quiet and total and _is_terminal(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=label, unit="img", file=self.stream, dynamic_ncols=True, leave=True)

    def advance(self, text, *, failed=False):
        self.count += 1
        if self.bar is None and not self.quiet:
            self._print(f"kcolors: [{self.count}/{self.total}] {'failed: ' if failed else ''}{text}")
        elif failed:
            self._print(f"kcolors: {text}")
        if self.bar is not None:
            self.bar.update(1)

    def _print(self, line):
        line = printable(line)  # a name that is not UTF-8 as \xNN, as the report writes it
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()

    def __exit__(self, *exc):
        self.close()


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _size(n):
    return "?" if n is None else f"{n:,}"
