"""The worker side of the local pool: a process that runs one task at a time and dies with its batch.

A worker must never outlive the batch process, however that process ends (Ctrl-C,
SIGTERM, SIGKILL, a crash): an orphaned worker keeps the caller's stderr pipe open,
so a script that waits for the batch's output waits for ever. Two mechanisms, one in
the kernel and one in Python, because either alone leaves a gap:

1. The worker's parent is the forkserver, not the batch. Each worker closes its copy
   of the forkserver's "alive" pipe, so the batch process is the last holder of that
   pipe's write end and the forkserver exits as soon as the batch is gone; and each
   worker asks the kernel (``PR_SET_PDEATHSIG``) for SIGKILL when the forkserver
   exits. This works even while the worker is stuck in C code that holds the GIL.
2. A watchdog thread reads the "lifeline", a pipe whose only write end is held by the
   pool in the batch process; end of file means the batch is gone, and the worker
   ends itself. This covers the forkserver staying alive for another reason (another
   part of the program also starts processes with it) and systems without prctl.

With both gone, nothing holds the resource tracker's pipe either, and it exits too.
"""

import contextlib
import os
import signal
import sys
import threading

from ..errors import InputError
from .tasks import _single_threaded

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def main(conn, lifeline):
    """Run ``(function, item, kwargs)`` tasks received on ``conn`` until ``None`` or end of file."""
    _bind_to_batch(lifeline)
    # Ctrl-C reaches the whole process group; the batch process decides what stops,
    # and a worker finishes the file it is writing (writes are atomic anyway).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _single_threaded()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        function, item, kwargs = message
        try:
            outcome = function(item, **kwargs)
        except Exception as exc:  # noqa: BLE001 - sent back: the pool reports it against the item
            outcome = exc
        try:
            conn.send(outcome)
        except (EOFError, OSError):
            return
        except Exception as exc:  # noqa: BLE001 - the outcome would not pickle: say so instead
            conn.send(InputError(f"internal error: its result could not be sent back ({type(exc).__name__}: {exc})"))


def _bind_to_batch(lifeline):
    """Make this process end when the batch process ends (see the module's docstring)."""
    _release_forkserver()
    _die_with_parent()
    threading.Thread(target=_watch, args=(lifeline,), name="kcolors-lifeline", daemon=True).start()


def _release_forkserver():
    # Every process the forkserver starts inherits the write end of its "alive" pipe,
    # which keeps the forkserver running as long as any of them lives. A worker starts
    # no process, so it lets go of it: then the batch process alone keeps it alive.
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None


def _die_with_parent():
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _watch(lifeline):
    """Block on the lifeline; end this process when the batch process is gone (end of file)."""
    try:
        lifeline.recv_bytes()  # nothing is ever sent: this returns only at end of file
    except (EOFError, OSError):
        pass
    os._exit(70)  # no cleanup: the batch that wanted the result is gone
