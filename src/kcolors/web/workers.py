"""The web server's jobs in processes that can be killed, forked from a zygote.

A thread cannot be stopped: a decoder that loops, a job past its time limit or one
whose client hung up would run on, and the memory a thread frees stays in the
server's heap. A process can be killed, and its memory goes back when it ends.

- The **zygote** (one per server process, :data:`ZYGOTE`) is started with the
  same Python and ``sys.path``; it imports kcolors, runs a small job of each kind
  so that every lazy import is done, and forks workers on order. It stays
  single-threaded, so forking it is safe.
- A **worker** (a fork: 2 ms, copy on write) runs jobs one at a time: a
  module-level function, by name, and its arguments, pickled, on a socket pair;
  large bytes-like arguments (the upload) travel beside the pickle, out of band,
  sent from the server's own buffer and received as ``bytes``: no copy is made
  on the server. It acknowledges each job, runs it and sends back the result.
- :class:`Pool` (one per app) runs at most ``concurrency`` jobs at once, each
  within its time limit, and kills the worker (SIGKILL) on a time-out, a
  cancellation (the client hung up) or a failed job. A worker that succeeded
  waits for the next job, which then skips the fork and the 3,400 copy-on-write
  page faults (10 ms) of a fresh one; it is stopped after ``idle_seconds``
  without work, after ``MAX_JOBS`` jobs, or once it holds ``RECYCLE_BYTES``
  more than at its start: every job's memory goes back within seconds.

Nothing outlives the server. It alone holds the write end of a *lifeline* pipe
that the zygote and the workers watch: when the server ends, however it ends,
they see end-of-file and exit. Workers also have the kernel kill them when the
zygote dies (``PR_SET_PDEATHSIG``) and check ``os.getppid()`` every second.

A worker's data segment (``RLIMIT_DATA``) is capped at its starting size plus
1.5 times the job memory budget: a job the header's estimate got wrong fails
with MemoryError instead of making the machine swap.
"""

import gc
import os
import pickle
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
import weakref

import anyio

FRAME = struct.Struct("!Q")  # each message: its length, then a pickle
JOB_HEAD = struct.Struct("!QQ")  # a job: its pickle's length and how many buffers follow it (a FRAME each)
OUT_OF_BAND_BYTES = 64 * 1024  # bytes-like arguments from this size are sent as they are, not pickled
ORDER = struct.Struct("!q")  # to the zygote: the new worker's memory cap in bytes (0: none)
PID = struct.Struct("!q")
ACK = b"\x06"  # a worker has read its job (before this, a dead worker had not started it: try another)
HARD_LIMIT_FACTOR = 1.5  # RLIMIT_DATA over the job memory budget: room for a wrong estimate, not for a runaway
MAX_JOBS = 100  # then a fresh worker: whatever a job may have left behind goes with the old one
RECYCLE_BYTES = 128 * 1024 * 1024  # a worker that grew more than this since it started is not kept
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class JobFailed(Exception):
    """A job raised: the class names of the exception (``kind``) and of its ``__cause__``, its text, a traceback."""

    def __init__(self, kind, message, cause=None, details=""):
        super().__init__(f"{kind}: {message}")
        self.kind, self.message, self.cause, self.details = kind, message, cause, details


class WorkerLost(Exception):
    """The worker ended without an answer (killed by the system, or crashed in a decoder)."""


class _NotStarted(Exception):
    """The worker ended before it read its job."""


# ----------------------------------------------------------------------------- the server's side


class Zygote:
    """The server's handle on its zygote process: :meth:`fork` gives ``(pid, socket)`` of a new worker."""

    def __init__(self):
        self._lock = threading.Lock()
        self._process = self._control = self._lifeline = None

    def start(self):
        """Start the zygote if it is not running (it then imports kcolors on its own)."""
        with self._lock:
            self._start()

    def _start(self):
        if self._process is not None and self._process.poll() is None:
            return
        self._close()
        read_end, self._lifeline = os.pipe()  # not inheritable: only the processes named below get it
        ours, theirs = socket.socketpair()
        code = (f"import sys; sys.path[:] = {sys.path!r}; from kcolors.web.workers import _zygote_main; "
                f"_zygote_main({theirs.fileno()}, {read_end})")
        # One thread per job, as the pool runs one job per core; and numpy's BLAS threads would be
        # copied into every fork for nothing.
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        try:
            self._process = subprocess.Popen([sys.executable, "-c", code], pass_fds=(theirs.fileno(), read_end),
                                             stdin=subprocess.DEVNULL, env=env)
        finally:
            theirs.close()
            os.close(read_end)
        self._control = ours

    def fork(self, memory_cap):
        """A new worker, its data segment capped at ``memory_cap`` more bytes (0: no cap); blocks."""
        ours, theirs = socket.socketpair()
        try:
            with self._lock:
                for attempt in (1, 2):  # a zygote that died (killed by hand) is started again, once
                    self._start()
                    try:
                        socket.send_fds(self._control, [ORDER.pack(memory_cap)], [theirs.fileno()])
                        reply = _receive_exactly(self._control, PID.size)
                        break
                    except (OSError, EOFError):
                        self._close()
                        if attempt == 2:
                            raise WorkerLost("the worker processes could not be started") from None
        finally:
            theirs.close()
        return PID.unpack(reply)[0], ours

    def _close(self):
        if self._control is not None:
            self._control.close()
        if self._lifeline is not None:
            os.close(self._lifeline)  # the zygote and its workers see end-of-file and exit
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = self._control = self._lifeline = None

    def stop(self):
        """Stop the zygote and, with it, every worker of this process."""
        with self._lock:
            self._close()


ZYGOTE = Zygote()  # this process's, started on first use


class Worker:
    """One worker process: its pid, the server's end of its socket, and a pidfd to kill it safely."""

    def __init__(self, pid, sock):
        self.pid, self.sock = pid, sock
        self.jobs, self.idle_since = 0, None
        sock.setblocking(False)  # waited on by the event loop
        try:  # a pidfd names this process and no other, even once its pid is reused
            self.pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.pidfd = None

    def kill(self):
        if self.sock.fileno() < 0:
            return  # killed already: its pid may belong to another process by now
        try:
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass  # already gone
        try:
            anyio.notify_closing(self.sock)  # a task waiting on it (a server stopping) is told, not left hanging
        except Exception:  # noqa: BLE001 - outside the event loop (an app dropped): nobody waits on it
            pass
        self.sock.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


class Pool:
    """Runs jobs in workers: at most ``concurrency`` at once, each within ``job_timeout`` seconds.

    Parameters
    ----------
    concurrency : int
    job_timeout : float
        Seconds a job may run (decoding included) before its worker is killed (TimeoutError).
    memory_limit : int
        The job memory budget in bytes; each worker is capped at 1.5 times it (0: no cap).
    idle_seconds : float
        A worker without a job for this long is stopped, and its memory goes back.
    """

    def __init__(self, concurrency, job_timeout, memory_limit=0, idle_seconds=5.0):
        self.limiter = anyio.CapacityLimiter(concurrency)
        self.job_timeout, self.memory_limit, self.idle_seconds = job_timeout, memory_limit, idle_seconds
        self.running = {}  # pid -> Worker
        self.idle = []  # Workers waiting for a job, the latest last
        self._closed = False
        weakref.finalize(self, _kill_all, self.idle, self.running)  # an app dropped without its lifespan

    def start(self):
        """Start the zygote: it imports kcolors while the server starts."""
        ZYGOTE.start()

    def close(self):
        """Kill every worker, idle or running (the server is stopping)."""
        self._closed = True
        _kill_all(self.idle, self.running)

    async def run(self, function, *args, **kwargs):
        """``function(*args, **kwargs)`` in a worker; its value, or JobFailed, WorkerLost, TimeoutError.

        ``function`` must be importable by name (a module-level function). On
        cancellation (the client hung up) or time-out the worker is killed.
        """
        job = job_message(function, args, kwargs)
        async with self.limiter:
            for attempt in (1, 2):
                worker = self.idle.pop() if self.idle else await self._fork()
                self.running[worker.pid] = worker
                keep = False
                try:
                    with anyio.fail_after(self.job_timeout):
                        reply = await _exchange(worker.sock, job)
                    status, value, grown = pickle.loads(reply)
                    worker.jobs += 1
                    keep = status == "ok" and worker.jobs < MAX_JOBS and grown < RECYCLE_BYTES
                    break
                except _NotStarted:  # an idle worker that had died: a fresh one, once
                    if attempt == 2:
                        raise WorkerLost("the worker ended before it started the job") from None
                finally:
                    del self.running[worker.pid]
                    if keep and not self._closed:
                        self._park(worker)
                    else:  # failed, timed out, cancelled or spent: the process and its memory go
                        worker.kill()
        if status == "ok":
            return value
        raise JobFailed(*value)

    async def _fork(self):
        cap = int(self.memory_limit * HARD_LIMIT_FACTOR)
        with anyio.CancelScope(shield=True):  # a fork cut short would leave a worker nobody knows
            return Worker(*await anyio.to_thread.run_sync(ZYGOTE.fork, cap))

    def _park(self, worker):
        import asyncio

        worker.idle_since = time.monotonic()
        self.idle.append(worker)
        asyncio.get_running_loop().call_later(self.idle_seconds, self._stop_idle)

    def _stop_idle(self):
        """Stop the workers idle for ``idle_seconds`` (runs on the event loop, as run() does: no lock)."""
        now = time.monotonic()
        for worker in [w for w in self.idle if now - w.idle_since >= self.idle_seconds - 0.01]:
            self.idle.remove(worker)
            worker.kill()


def job_message(function, args, kwargs):
    """The job as the pieces to send: a head and the pickle, then each large argument as it is (a view).

    Pickle protocol 5 leaves the arguments wrapped in ``PickleBuffer`` out of
    band: pickling a 25 MB upload would copy it, once per upload in the queue.
    The wrappers are released at once, and plain views sent in their place: a
    view that still exports its buffer must never be left to the garbage
    collector (CPython cannot clear it, and crashes), and a job that fails
    leaves its frames, views included, in a traceback's reference cycle.
    """
    wrapped = [pickle.PickleBuffer(arg) if _large_bytes(arg) else arg for arg in args]
    sent = []
    try:
        data = pickle.dumps((function, tuple(wrapped), kwargs), protocol=5, buffer_callback=sent.append)
    finally:
        for buffer in wrapped:
            if isinstance(buffer, pickle.PickleBuffer):
                buffer.release()
    # Out of band in the order pickle met them: the arguments' order.
    views = [memoryview(arg).cast("B") for arg in args if _large_bytes(arg)]
    if len(views) != len(sent):
        raise RuntimeError("a job's out-of-band buffers are not its large arguments")
    del sent
    head = JOB_HEAD.pack(len(data), len(views)) + b"".join(FRAME.pack(view.nbytes) for view in views)
    return [head + data, *views]


def _large_bytes(value):
    """A view (which pickle refuses in band), or bytes large enough to be worth sending as they are."""
    return isinstance(value, memoryview) or (isinstance(value, (bytes, bytearray))
                                             and len(value) >= OUT_OF_BAND_BYTES)


def _kill_all(idle, running):
    while idle:
        idle.pop().kill()
    for worker in list(running.values()):
        worker.kill()


async def _exchange(sock, job):
    """Send ``job`` (:func:`job_message`'s pieces) on the worker's (non-blocking) socket; its reply (a pickle,
    in a bytearray of its size: received in place, not joined), once the worker has acknowledged the job."""
    try:
        for piece in job:
            await _send_all(sock, piece)
        first = await _receive_some(sock)
    except OSError:
        raise _NotStarted from None
    if first[:1] != ACK:
        raise _NotStarted
    head = bytearray(first[1:])
    while len(head) < FRAME.size:
        head += await _receive_or_lost(sock, FRAME.size - len(head))
    reply = bytearray(FRAME.unpack_from(head)[0])
    view, done = memoryview(reply), len(head) - FRAME.size
    view[:done] = head[FRAME.size:]
    while done < len(reply):
        done += await _receive_into(sock, view[done:])
    return reply


async def _receive_or_lost(sock, most):
    chunk = bytearray(most)
    return chunk[:await _receive_into(sock, memoryview(chunk))]


async def _receive_into(sock, view):
    """Bytes received into ``view`` (at least one); WorkerLost when the worker has gone."""
    while True:
        try:
            done = sock.recv_into(view)
        except BlockingIOError:
            await anyio.wait_readable(sock)
            continue
        except OSError:
            done = 0
        if not done:
            raise WorkerLost("the worker ended without an answer (out of memory, or a crash in a decoder)")
        return done


async def _send_all(sock, data):
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            await anyio.wait_writable(sock)


async def _receive_some(sock):
    while True:
        try:
            return sock.recv(1 << 20)
        except BlockingIOError:
            await anyio.wait_readable(sock)


def trim_memory():
    """Give the heap's free pages back (glibc's malloc_trim): glibc keeps what the uploads took, for later."""
    if _malloc_trim is not None:
        _malloc_trim(0)


M_MMAP_THRESHOLD = -3  # from <malloc.h>
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value


def map_large_blocks():
    """Make glibc serve every block from 128 KiB from a mapping of its own, unmapped as soon as it is freed.

    glibc raises that threshold to the largest block freed so far (up to 32 MiB), and the trim threshold to
    twice it: after one 8 MB upload the next ones grew in the heap, which kept their pages once they were
    freed, unless a trim came after (a refused upload is freed after its request's trim: its traceback holds
    it). Setting the threshold once keeps it fixed. Large blocks also grow in place then (mremap).
    """
    if _mallopt is not None:
        _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def _libc_function(name):
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None


_malloc_trim = _libc_function("malloc_trim")
_mallopt = _libc_function("mallopt")
_prctl = _libc_function("prctl")


def _receive_exactly(sock, size):
    data = bytearray(size)
    view, done = memoryview(data), 0
    while done < size:
        n = sock.recv_into(view[done:])
        if not n:
            raise EOFError
        done += n
    return data


def _receive_bytes(sock, size):
    """``size`` bytes from a blocking socket as one ``bytes`` (what a job's ``data`` is), made once: received
    with MSG_WAITALL straight into it; only a receive cut short (by a signal) joins pieces."""
    pieces, done = [], 0
    while done < size:
        piece = sock.recv(size - done, getattr(socket, "MSG_WAITALL", 0))
        if not piece:
            raise EOFError
        pieces.append(piece)
        done += len(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


# ----------------------------------------------------------------------------- the zygote and its workers


def _zygote_main(control_fd, lifeline_fd):
    """The zygote's loop: fork a worker for each order until the server goes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole group: the server decides
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the workers: no zombies
    control = socket.socket(fileno=control_fd)
    from .. import kernels

    # One thread per job, as batch workers do: the pool runs one job per core. And the zygote must start
    # no thread at all: a fork has only the thread that forked, so a copied thread pool would never run.
    kernels.THREADS = 1
    from . import jobs

    jobs.warm_up()  # every lazy import done once, for all the forks
    gc.freeze()  # the collector then leaves the imported objects alone: forks keep sharing their pages
    me = os.getpid()
    while True:
        ready, _, _ = select.select([control, lifeline_fd], [], [])
        if lifeline_fd in ready:
            os._exit(0)  # end-of-file: the server is gone
        try:
            message, fds, _, _ = socket.recv_fds(control, ORDER.size, 1)
        except OSError:
            os._exit(0)
        if len(message) != ORDER.size or not fds:
            os._exit(0)
        pid = os.fork()
        if pid == 0:
            control.close()
            _worker_main(fds[0], lifeline_fd, me, ORDER.unpack(message)[0])
        os.close(fds[0])
        control.sendall(PID.pack(pid))


def _worker_main(fd, lifeline_fd, zygote_pid, memory_cap):
    """Run jobs until the server closes the socket (or kills this process). Never returns."""
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
            except BaseException as exc:  # noqa: BLE001 - every failure goes back to the server
                reply = ("error", _describe(exc))
            del function, args, kwargs  # the upload: nothing of it waits here for the next job
            if reply[0] == "error":
                gc.collect()  # what a failed job holds in reference cycles, before the reply needs memory
            try:
                data = pickle.dumps((*reply, _rss() - start), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # noqa: BLE001 - a result that does not pickle is the job's bug: say so
                data = pickle.dumps(("error", (type(exc).__name__, str(exc), None, ""), 0))
            del reply
            sock.sendall(FRAME.pack(len(data)) + data)
            del data
            trim_memory()  # what the job freed goes back now, not when this idle worker stops
    finally:
        os._exit(0)


def _receive_job(sock):
    """``(function, args, kwargs)`` of the next job (:func:`job_message`); EOFError when the server has gone."""
    size, count = JOB_HEAD.unpack(_receive_exactly(sock, JOB_HEAD.size))
    lengths = [FRAME.unpack(_receive_exactly(sock, FRAME.size))[0] for _ in range(count)]
    data = _receive_exactly(sock, size)
    return pickle.loads(data, buffers=[_receive_bytes(sock, length) for length in lengths])


def _rss():
    """Resident bytes of this process (0 where /proc is missing: the worker is then kept until idle)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        return 0


def _describe(exc):
    """What JobFailed needs, as plain strings (the library's exceptions need not pickle)."""
    kind = "MemoryError" if isinstance(exc, MemoryError) else type(exc).__name__
    cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else None
    try:
        details = "".join(traceback.format_exception(exc))
    except MemoryError:
        details = ""
    return kind, str(exc), cause, details


def _die_with(zygote_pid, lifeline_fd):
    """End this worker when the zygote or the server ends, whatever the reason."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != zygote_pid:  # the zygote died before the request above took effect
        os._exit(1)

    def watch():
        while True:  # the lifeline only ever becomes readable at end-of-file: the server is gone
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
