"""The web server's jobs in worker processes that can be killed: an async driver of :mod:`kcolors.pool`.

:class:`Pool` (one per app) runs at most ``concurrency`` jobs at once, each
within its time limit, and kills the worker (SIGKILL) on a time-out, a
cancellation (the client hung up) or a failed job. A worker that succeeded
waits for the next job, which then skips the fork and the 3,400 copy-on-write
page faults (10 ms) of a fresh one; it is stopped after ``idle_seconds``
without work, or recycled by :mod:`kcolors.pool`'s rules: every job's memory
goes back within seconds. The zygote (:data:`ZYGOTE`, one per server process)
runs a small job of each kind before it forks, so that every lazy import is done.

A worker's data segment (``RLIMIT_DATA``) is capped at its starting size plus
1.5 times the job memory budget: a job the header's estimate got wrong fails
with MemoryError instead of making the machine swap.
"""

import time
import weakref

import anyio

from ..pool import JobFailed, NotStarted, WorkerLost, Zygote, job_message, libc_function, trim_memory

__all__ = ["HARD_LIMIT_FACTOR", "JobFailed", "Pool", "WorkerLost", "ZYGOTE", "map_large_blocks", "trim_memory"]

HARD_LIMIT_FACTOR = 1.5  # RLIMIT_DATA over the job memory budget: room for a wrong estimate, not for a runaway
ZYGOTE = Zygote("kcolors.web.jobs:warm_up", trim=True)  # this process's, started on first use


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
                        reply = await _exchange(worker, job)
                    try:
                        return worker.outcome(reply)
                    finally:
                        keep = worker.reusable
                except NotStarted:  # an idle worker that had died: a fresh one, once
                    if attempt == 2:
                        raise WorkerLost("the worker ended before it started the job") from None
                finally:
                    del self.running[worker.pid]
                    if keep and not self._closed:
                        self._park(worker)
                    else:  # failed, timed out, cancelled or spent: the process and its memory go
                        worker.kill()

    async def _fork(self):
        cap = int(self.memory_limit * HARD_LIMIT_FACTOR)
        with anyio.CancelScope(shield=True):  # a fork cut short would leave a worker nobody knows
            return await anyio.to_thread.run_sync(ZYGOTE.fork, cap)

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


def _kill_all(idle, running):
    while idle:
        idle.pop().kill()
    for worker in list(running.values()):
        worker.kill()


async def _exchange(worker, job):
    """Send ``job`` (:func:`~kcolors.pool.job_message`'s pieces) to ``worker``; its reply, once whole."""
    for piece in job:
        await _send_all(worker, piece)
    while (reply := worker.receive()) is None:
        await anyio.wait_readable(worker.sock)
    return reply


async def _send_all(worker, data):
    view = memoryview(data)
    while view:
        sent = worker.send(view)
        if not sent:
            await anyio.wait_writable(worker.sock)
        view = view[sent:]


M_MMAP_THRESHOLD = -3  # from <malloc.h>
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value
_mallopt = libc_function("mallopt")


def map_large_blocks():
    """Make glibc serve every block from 128 KiB from a mapping of its own, unmapped as soon as it is freed.

    glibc raises that threshold to the largest block freed so far (up to 32 MiB), and the trim threshold to
    twice it: after one 8 MB upload the next ones grew in the heap, which kept their pages once they were
    freed, unless a trim came after (a refused upload is freed after its request's trim: its traceback holds
    it). Setting the threshold once keeps it fixed. Large blocks also grow in place then (mremap).
    """
    if _mallopt is not None:
        _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
