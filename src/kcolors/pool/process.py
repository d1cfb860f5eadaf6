"""The worker processes' side of :mod:`kcolors.pool`: the zygote's loop and each worker's.

The zygote imports the caller's module once and forks a worker for each order it
receives; a worker runs tasks until its caller closes the socket, and ends with
its zygote or its caller, whichever goes first (see :mod:`kcolors.pool`).
"""

import gc
import importlib
import os
import pickle
import resource
import select
import signal
import socket
import threading
import traceback

from .. import kernels
from . import ACK, FRAME, JOB_HEAD, ORDER, PID, PR_SET_PDEATHSIG, _prctl, _receive_exactly, trim_memory


def zygote_main(control_fd, lifeline_fd, warm_up, trim):
    """The zygote's loop: fork a worker for each order until the caller goes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole group: the caller decides
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the workers: no zombies
    control = socket.socket(fileno=control_fd)
    # One thread per task: the pools run one task per core. And the zygote must start no thread at all:
    # a fork has only the thread that forked, so a copied thread pool would never run.
    kernels.THREADS = 1
    module, _, function = warm_up.partition(":")
    module = importlib.import_module(module)
    if function:
        getattr(module, function)()  # every lazy import done once, for all the forks
    gc.freeze()  # the collector then leaves the imported objects alone: forks keep sharing their pages
    me = os.getpid()
    while True:
        ready, _, _ = select.select([control, lifeline_fd], [], [])
        if lifeline_fd in ready:
            os._exit(0)  # end of file: the caller is gone
        try:
            message, fds, _, _ = socket.recv_fds(control, ORDER.size, 1)
        except OSError:
            os._exit(0)
        if len(message) != ORDER.size or not fds:
            os._exit(0)
        pid = os.fork()
        if pid == 0:
            control.close()
            _worker_main(fds[0], lifeline_fd, me, ORDER.unpack(message)[0], trim)
        os.close(fds[0])
        control.sendall(PID.pack(pid))


def _worker_main(fd, lifeline_fd, zygote_pid, memory_cap, trim):
    """Run tasks until the caller closes the socket (or kills this process). Never returns."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _die_with(zygote_pid, lifeline_fd)
        if memory_cap > 0:
            _cap_memory(memory_cap)
        sock = socket.socket(fileno=fd)
        start = _rss()
        while True:
            try:
                function, args, kwargs = _receive_job(sock)
            except EOFError:
                break
            sock.sendall(ACK)
            try:
                reply = ("ok", function(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
                reply = ("error", _describe(exc))
            del function, args, kwargs  # an upload: nothing of it waits here for the next task
            if reply[0] == "error":
                gc.collect()  # what a failed task holds in reference cycles, before the reply needs memory
            if trim:
                trim_memory()  # what the task freed goes back now, not when this idle worker stops
            try:
                data = pickle.dumps((*reply, _rss() - start), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # noqa: BLE001 - a result that does not pickle is the task's bug: say so
                data = pickle.dumps(("error", ("InternalError", f"its result could not be sent back "
                                               f"({type(exc).__name__}: {exc})", None, ""), 0))
            del reply
            sock.sendall(FRAME.pack(len(data)) + data)
            del data
    finally:
        os._exit(0)


def _receive_job(sock):
    """``(function, args, kwargs)`` of the next task (``job_message``); EOFError when the caller has gone."""
    size, count = JOB_HEAD.unpack(_receive_exactly(sock, JOB_HEAD.size))
    lengths = [FRAME.unpack(_receive_exactly(sock, FRAME.size))[0] for _ in range(count)]
    data = _receive_exactly(sock, size)
    return pickle.loads(data, buffers=[_receive_bytes(sock, length) for length in lengths])


def _receive_bytes(sock, size):
    """``size`` bytes as one ``bytes`` (an upload argument), received in place (MSG_WAITALL) unless cut short."""
    pieces, done = [], 0
    while done < size:
        piece = sock.recv(size - done, getattr(socket, "MSG_WAITALL", 0))
        if not piece:
            raise EOFError
        pieces.append(piece)
        done += len(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _rss():
    """Resident bytes of this process (0 where /proc is missing: the worker is then recycled by count only)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        return 0


def _describe(exc):
    """What JobFailed needs: plain strings, and the exception itself where it pickles (the caller may re-raise it)."""
    kind = "MemoryError" if isinstance(exc, MemoryError) else type(exc).__name__
    cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else None
    try:
        details = "".join(traceback.format_exception(exc))
    except MemoryError:
        details = ""
    try:
        pickle.loads(pickle.dumps(exc))
        original = exc.with_traceback(None)
    except Exception:  # noqa: BLE001 - the library's exceptions need not pickle
        original = None
    return kind, str(exc), cause, details, original


def _die_with(zygote_pid, lifeline_fd):
    """End this worker when the zygote or the caller ends, whatever the reason."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != zygote_pid:  # the zygote died before the request above took effect
        os._exit(1)

    def watch():
        while True:  # the lifeline only ever becomes readable at end of file: the caller is gone
            ready, _, _ = select.select([lifeline_fd], [], [], 1.0)
            if ready or os.getppid() != zygote_pid:
                os._exit(1)

    threading.Thread(target=watch, name="kcolors-lifeline", daemon=True).start()


def _cap_memory(extra):
    """Cap the data segment (heap and private mappings) at its present size plus ``extra`` bytes."""
    with open("/proc/self/status") as status:
        data = next((int(line.split()[1]) * 1024 for line in status if line.startswith("VmData:")), 0)
    hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
    limit = data + extra if hard == resource.RLIM_INFINITY else min(data + extra, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
