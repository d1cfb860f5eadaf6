"""Worker processes that can be killed: the core that batch's local pool and the web server's pool share.

A thread cannot be stopped (a decoder that loops, a task past its time limit, one whose client hung up), and
the memory a thread frees stays in its process's heap. A process can be killed, and its memory goes back.

- The **zygote** (:class:`Zygote`) runs the same Python and ``sys.path``, imports the caller's module
  (``warm_up``) once for every worker, and forks workers on order (2 ms, copy on write); single-threaded,
  so forking it is safe. Its loop and the workers' are in :mod:`kcolors.pool.process`.
- A **worker** runs tasks one at a time: a module-level function, by name, and its arguments, pickled, on a
  socket pair; large bytes-like arguments (an upload) travel beside the pickle, without a copy. It
  acknowledges each task (:data:`ACK`), runs it, and sends back the outcome and how much it grew.
- :class:`Worker` is the caller's handle, without blocking (:meth:`~Worker.send`, :meth:`~Worker.receive`):
  a blocking scheduler (:mod:`kcolors.batch.local`, ``select``) and an async one (:mod:`kcolors.web.workers`,
  anyio) drive the same workers. The caller kills a worker on a time-out or a cancellation, and replaces
  one that is spent (:attr:`Worker.reusable`: after :data:`MAX_TASKS` tasks, or once it holds
  :data:`RECYCLE_BYTES` more than at its start), never after every task.
- A worker's data segment (``RLIMIT_DATA``) may be capped: a task that needs more fails with MemoryError.

Nothing outlives its caller, however the caller ends (SIGKILL too). It alone holds the write end of a
*lifeline* pipe that the zygote and the workers watch: at end of file they exit. A worker stuck in C code
cannot run its watch thread, so the kernel also kills it when the zygote ends (``PR_SET_PDEATHSIG``).
From pebble: a process per running task, killed when it overruns, replaced after ``max_tasks``. From loky:
reusable workers that die with their parent, a pipe whose end of file tells them. Ours: the memory cap,
recycling by growth, cancellation, the zygote and the out-of-band uploads.
"""

import contextlib
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading

FRAME = struct.Struct("!Q")  # each message: its length, then a pickle
JOB_HEAD = struct.Struct("!QQ")  # a task: its pickle's length and how many buffers follow it (a FRAME each)
OUT_OF_BAND_BYTES = 64 * 1024  # bytes-like arguments from this size are sent as they are, not pickled
ORDER = struct.Struct("!q")  # to the zygote: the new worker's memory cap in bytes (0: none)
PID = struct.Struct("!q")
ACK = b"\x06"  # a worker has read its task (before this, a dead worker had not started it)
MAX_TASKS = 100  # then a fresh worker: whatever a task may have left behind goes with the old one
RECYCLE_BYTES = 128 * 1024 * 1024  # a worker that grew more than this since it started is not kept
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
LOST = "the worker ended without an answer (out of memory, or a crash in a decoder)"
# One thread per task, as the pools run one task per core; and numpy's BLAS threads would be copied into
# every fork for nothing (a fork keeps only the thread that forked).
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class JobFailed(Exception):
    """A task raised: the class names of the exception (``kind``) and of its ``__cause__``, its text, a traceback.

    ``original`` is the exception itself where it could travel back (pickled), else None.
    """

    def __init__(self, kind, message, cause=None, details="", original=None):
        super().__init__(f"{kind}: {message}")
        self.kind, self.message, self.cause, self.details, self.original = kind, message, cause, details, original


class WorkerLost(Exception):
    """The worker ended without an answer (killed by the system, or crashed in a decoder)."""


class NotStarted(Exception):
    """The worker ended before it read its task: the task may go to another, no harm done."""


class Zygote:
    """The caller's handle on a zygote process, which :meth:`fork` asks for a new :class:`Worker`.

    ``warm_up``: ``"module"`` or ``"module:function"``, imported (and called) in the zygote. ``trim``: each
    worker gives its free heap pages back after each task (an idle server's workers hold little), at the cost
    of faulting them in again for the next (a batch's workers keep them; they are recycled once they grew).
    """

    def __init__(self, warm_up="kcolors", trim=False):
        self.warm_up, self.trim = warm_up, trim
        self._lock = threading.Lock()
        self._process = self._control = self._lifeline = None

    def start(self):
        """Start the zygote if it is not running (it then imports ``warm_up`` on its own)."""
        with self._lock:
            self._start()

    def _start(self):
        if self._process is not None and self._process.poll() is None:
            return
        self._close()
        read_end, self._lifeline = os.pipe()  # not inheritable: only the processes named below get it
        ours, theirs = socket.socketpair()
        code = (f"import sys; sys.path[:] = {sys.path!r}; from kcolors.pool.process import zygote_main; "
                f"zygote_main({theirs.fileno()}, {read_end}, {self.warm_up!r}, {self.trim!r})")
        try:
            self._process = subprocess.Popen([sys.executable, "-c", code], pass_fds=(theirs.fileno(), read_end),
                                             stdin=subprocess.DEVNULL, env=dict(os.environ, **ONE_THREAD))
        finally:
            theirs.close()
            os.close(read_end)
        self._control = ours

    def fork(self, memory_cap=0):
        """A new :class:`Worker`, its data segment capped at ``memory_cap`` more bytes (0: no cap); blocks."""
        ours, theirs = socket.socketpair()
        try:
            with self._lock:
                for attempt in (1, 2):  # a zygote that died (killed by hand) is started again, once
                    self._start()
                    try:
                        socket.send_fds(self._control, [ORDER.pack(int(memory_cap))], [theirs.fileno()])
                        reply = _receive_exactly(self._control, PID.size)
                        break
                    except (OSError, EOFError):
                        self._close()
                        if attempt == 2:
                            raise WorkerLost("the worker processes could not be started") from None
        finally:
            theirs.close()
        return Worker(PID.unpack(reply)[0], ours)

    def _close(self):
        if self._control is not None:
            self._control.close()
        if self._lifeline is not None:
            os.close(self._lifeline)  # the zygote and its workers see end of file and exit
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = self._control = self._lifeline = None

    def stop(self):
        """Stop the zygote and, with it, every worker it forked."""
        with self._lock:
            self._close()


class Worker:
    """One worker process: its pid, the caller's end of its socket (non-blocking), a pidfd to kill it safely."""

    def __init__(self, pid, sock):
        self.pid, self.sock = pid, sock
        self.tasks, self.idle_since, self.task = 0, None, None  # ``task``: the caller's note while it works
        self.reusable = True  # False once a task failed, or the worker is spent: the caller kills it then
        self._head, self._body, self._done = bytearray(), None, 0
        sock.setblocking(False)
        try:  # a pidfd names this process and no other, even once its pid is reused
            self.pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.pidfd = None

    def send(self, piece):
        """Send what the socket takes of ``piece`` now; the bytes sent (0: full). NotStarted if the worker is gone."""
        try:
            return self.sock.send(piece)
        except BlockingIOError:
            return 0
        except OSError:
            raise NotStarted from None

    def send_all(self, job):
        """Send :func:`job_message`'s pieces, waiting as needed (for callers that may block)."""
        for piece in job:
            view = memoryview(piece)
            while view:
                sent = self.send(view)
                if not sent:
                    select.select([], [self.sock], [])
                view = view[sent:]

    def receive(self):
        """Read what the worker sent, without blocking: its reply (a pickle, received in place) once whole, else None.

        Raises NotStarted if the worker ended before it acknowledged the task, WorkerLost if after.
        """
        try:
            while self._body is None:
                chunk = self.sock.recv(1 + FRAME.size - len(self._head))
                if not chunk or not self._head and chunk[:1] != ACK:
                    raise WorkerLost(LOST) if self._head else NotStarted
                self._head += chunk
                if len(self._head) == 1 + FRAME.size:
                    self._body, self._done = bytearray(FRAME.unpack_from(self._head, 1)[0]), 0
            while self._done < len(self._body):
                received = self.sock.recv_into(memoryview(self._body)[self._done:])
                if not received:
                    raise WorkerLost(LOST)
                self._done += received
        except BlockingIOError:
            return None
        except OSError:
            raise WorkerLost(LOST) from None
        reply, self._head, self._body = self._body, bytearray(), None
        return reply

    def outcome(self, reply):
        """A reply's value; JobFailed if the task raised. Counts the task and notes whether to keep the worker."""
        status, value, grown = pickle.loads(reply)
        self.tasks += 1
        self.reusable = status == "ok" and self.tasks < MAX_TASKS and grown < RECYCLE_BYTES
        if status == "ok":
            return value
        raise JobFailed(*value)

    def kill(self):
        if self.sock.fileno() < 0:
            return  # killed already: its pid may belong to another process by now
        with contextlib.suppress(OSError):  # already gone
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGKILL)
        if "anyio" in sys.modules:  # a task of an event loop waiting on it (a server stopping) is told
            with contextlib.suppress(Exception):  # outside the event loop: nobody waits on it
                sys.modules["anyio"].notify_closing(self.sock)
        self.sock.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def job_message(function, args, kwargs):
    """The task as the pieces to send: a head and the pickle, then each large argument as it is (a view).

    Pickle protocol 5 leaves the arguments wrapped in ``PickleBuffer`` out of band (pickling a 25 MB upload
    would copy it). The wrappers are released at once, and plain views sent in their place: a view that still
    exports its buffer must never be left to the garbage collector (CPython cannot clear it, and crashes),
    and a task that fails leaves its frames, views included, in a traceback's reference cycle.
    """
    wrapped = [pickle.PickleBuffer(arg) if _large_bytes(arg) else arg for arg in args]
    ours, sent = {id(buffer) for buffer in wrapped if isinstance(buffer, pickle.PickleBuffer)}, []

    def out_of_band(buffer):  # only the large arguments: numpy's arrays elsewhere stay in the pickle
        if id(buffer) in ours:
            sent.append(buffer)
        return id(buffer) not in ours

    try:
        data = pickle.dumps((function, tuple(wrapped), kwargs), protocol=5, buffer_callback=out_of_band)
    finally:
        for buffer in wrapped:
            if isinstance(buffer, pickle.PickleBuffer):
                buffer.release()
    views = [memoryview(arg).cast("B") for arg in args if _large_bytes(arg)]  # in the order pickle met them
    if len(views) != len(sent):
        raise RuntimeError("a task's out-of-band buffers are not its large arguments")
    del sent
    head = JOB_HEAD.pack(len(data), len(views)) + b"".join(FRAME.pack(view.nbytes) for view in views)
    return [head + data, *views]


def _large_bytes(value):
    """A view (which pickle refuses in band), or bytes large enough to be worth sending as they are."""
    return isinstance(value, memoryview) or (isinstance(value, (bytes, bytearray))
                                             and len(value) >= OUT_OF_BAND_BYTES)


def libc_function(name):
    """A function of the C library (ctypes), or None off Linux or where it lacks it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None


_malloc_trim = libc_function("malloc_trim")
_prctl = libc_function("prctl")


def trim_memory():
    """Give the heap's free pages back (glibc's malloc_trim): glibc keeps what was freed, for later."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def _receive_exactly(sock, size):
    data = bytearray(size)
    view, done = memoryview(data), 0
    while done < size:
        n = sock.recv_into(view[done:])
        if not n:
            raise EOFError
        done += n
    return data
