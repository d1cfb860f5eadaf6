"""The local runner: worker processes on this machine, each task under a time limit, none outliving the batch."""

import collections
import contextlib
import os
import select
import signal
import threading
import time

from .. import kernels
from ..errors import InputError, KcolorsError, UsageError
from ..pool import JobFailed, NotStarted, WorkerLost, Zygote, job_message
from ..strips import STRIPS_ABOVE

# Seconds one file may take in a worker before the worker is killed. Pillow decodes in C and a
# thread cannot stop it, so a file that never finishes (a looping decoder, a crafted image) would
# hang the batch; generous, as the largest image --max-pixels lets in takes about 10 s with the
# fast engine. The command line raises it for the engines that cluster every pixel.
DEFAULT_TIME_LIMIT = 300.0
# Bytes each worker's heap may grow by (RLIMIT_DATA): the largest image held whole (above STRIPS_ABOVE
# pixels, strips take over, in bounded memory) at the worst cost measured per pixel (web.jobs: noise with
# alpha at k=256, dithered, 270 B/px, plus a 16-bit RGBA decoder's 8), with room to spare: 19 GB. It stops
# a runaway task (MemoryError, reported against its file) before it makes the machine swap, and never
# refuses a file the in-memory path or the strips can do.
DEFAULT_MEMORY_CAP = STRIPS_ABOVE * 300

# This process's zygote for batch workers, started with the first pool and kept for the next (a shared-palette
# batch, a script that runs several): it ends with this process, like the workers it forks.
ZYGOTE = Zygote("kcolors.batch.tasks")

DIED = "its worker process died on it (out of memory, or a crash while decoding)"


def default_time_limit(engine="fast"):
    """The time limit for one file: :data:`DEFAULT_TIME_LIMIT`, ten times that for the slower engines.

    ``sklearn`` clusters every pixel (minutes for a large photo at k=256) and
    ``simple`` runs k-means in plain numpy: a limit fit for ``fast`` would stop
    honest work there.
    """
    return DEFAULT_TIME_LIMIT if engine == "fast" else 10 * DEFAULT_TIME_LIMIT


def default_jobs():
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class LocalPool(contextlib.AbstractContextManager):
    """Runs tasks in worker processes on this machine (:mod:`kcolors.pool`).

    Use as a context manager; :meth:`map_unordered` may be called several times
    (a shared-palette batch has two rounds) on the same processes. Tasks are
    module-level functions, sent by name.

    Each worker runs one task at a time, so the pool always knows which file a
    worker holds and since when:

    - a file that runs past ``time_limit`` seconds has its worker killed and is
      reported failed; a new worker takes the next file;
    - a file whose worker dies (out of memory, a crash in a decoder) is tried
      once more, alone, and reported failed if its worker dies again;
    - a worker's heap may grow by ``memory_cap`` bytes at most (0: no cap);
    - a worker is replaced after :data:`kcolors.pool.MAX_TASKS` files, or once it
      holds :data:`kcolors.pool.RECYCLE_BYTES` more than at its start;
    - workers end when the batch process ends, however it ends.

    With ``jobs=1`` and no time limit, tasks run in this process.
    """

    def __init__(self, jobs=None, time_limit=DEFAULT_TIME_LIMIT, memory_cap=DEFAULT_MEMORY_CAP):
        self.jobs = default_jobs() if jobs is None else int(jobs)
        if self.jobs < 1:
            raise UsageError(f"--jobs must be at least 1, not {self.jobs}")
        if time_limit is not None and not time_limit > 0:
            raise UsageError(f"--timeout must be more than 0 seconds, not {time_limit:g}")
        self.time_limit, self.memory_cap = time_limit, memory_cap
        self._workers = []
        self._ended = collections.deque()  # (item, result) of tasks that ended, not yet yielded

    def describe(self):
        return f"{self.jobs} local worker{'s' if self.jobs > 1 else ''}"

    def map_unordered(self, function, items, **kwargs):
        """Yield ``(item, result)`` as tasks finish; ``result`` is an exception if the task could not run."""
        pending = collections.deque(items)
        if self.time_limit is None and (self.jobs == 1 or len(pending) <= 1):
            yield from self._inline(function, pending, kwargs)
            return
        suspects = collections.deque()  # items whose worker died under them: tried again, alone
        self._hand_out(function, pending, suspects, kwargs)
        while self._busy():
            self._collect(suspects)
            self._hand_out(function, pending, suspects, kwargs)  # idle workers go on before results are handled
            while self._ended:  # taken off only once the caller has it: an interrupt meanwhile leaves it for drain
                yield self._ended[0]
                self._ended.popleft()

    def drain(self, within=None):
        """After an interrupt: wait for the tasks that were running and yield their ``(item, result)``.

        They run to the end anyway (a worker never leaves a half-written file),
        so what they did is reported rather than lost; the time limit still holds.
        ``within``: seconds to wait at most; then the workers still busy are
        killed and their items not yielded (not done: their outputs are not written).
        """
        until = None if within is None else time.monotonic() + within
        while self._ended or self._busy():
            if not self._ended:
                if until is not None and time.monotonic() >= until:
                    for slot in self._busy():
                        self._discard(slot)
                    return
                self._collect(None, until)
            if self._ended:
                yield self._ended[0]
                self._ended.popleft()

    def _hand_out(self, function, pending, suspects, kwargs):
        if suspects:  # alone: a second death then names the file, not a neighbour
            if not self._busy():
                self._give(self._idle_worker(), function, suspects.popleft(), kwargs, retried=True)
            return
        while pending and (len(self._workers) < self.jobs or not all(w.task for w in self._workers)):
            item = pending.popleft()
            if not self._give(self._idle_worker(), function, item, kwargs):
                pending.appendleft(item)  # the worker was gone before it took the item: no blame

    def _give(self, slot, function, item, kwargs, retried=False):
        job = job_message(function, (item,), kwargs)
        with _signals_held():  # the task sent and recorded, or neither
            try:
                slot.send_all(job)
            except NotStarted:
                self._discard(slot)
                return False
            slot.task = (item, time.monotonic(), retried)
        return True

    def _collect(self, suspects, until=None):
        """Wait for a task to end (a result, a dead worker, a time limit); put what ended in ``self._ended``.

        ``suspects`` receives the items of workers that died, to be tried again;
        ``None`` (while draining) reports them failed at once. ``until``: wait no longer.
        """
        busy = self._busy()
        if not busy:
            return
        deadlines = [] if until is None else [until]
        if self.time_limit is not None:
            deadlines.append(min(slot.task[1] for slot in busy) + self.time_limit)
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        select.select([slot.sock for slot in busy], [], [], timeout)
        now = time.monotonic()
        for slot in busy:
            with _signals_held():  # a result read is a result recorded
                self._settle(slot, suspects, now)

    def _settle(self, slot, suspects, now):
        """Record what became of ``slot``'s task, if anything: its outcome, its worker's death or time-out."""
        item, started, retried = slot.task
        try:
            reply = slot.receive()
        except (NotStarted, WorkerLost):
            self._discard(slot)
            if retried or suspects is None:
                self._ended.append((item, InputError(DIED)))
            else:
                suspects.append(item)
            return
        if reply is not None:
            try:
                outcome = slot.outcome(reply)
            except JobFailed as exc:  # the task raised: its exception, where it could travel
                outcome = exc.original or InputError(f"internal error: {exc.message}")
            slot.task = None
            if not slot.reusable:  # spent, or grown: a fresh one takes the next file
                self._discard(slot)
            self._ended.append((item, outcome))
        elif self.time_limit is not None and now - started >= self.time_limit:
            self._discard(slot)
            self._ended.append((item, InputError(f"took longer than {self.time_limit:g} s; its worker process was "
                                                 "killed (raise --timeout if the image is just big)")))

    def _busy(self):
        return [slot for slot in self._workers if slot.task]

    def _idle_worker(self):
        for slot in self._workers:
            if not slot.task:
                return slot
        try:
            with _signals_held():
                slot = ZYGOTE.fork(self.memory_cap)
        except (OSError, WorkerLost) as exc:  # e.g. this user may not run the Python executable again
            raise KcolorsError(f"cannot start a worker process ({exc}); --jobs 1 --timeout 0 works in this process "
                               "instead") from None
        self._workers.append(slot)
        return slot

    def _discard(self, slot):
        slot.kill()
        self._workers.remove(slot)

    @staticmethod
    def _inline(function, items, kwargs):
        saved = kernels.THREADS
        try:
            for item in items:
                yield item, function(item, **kwargs)
        finally:
            kernels.THREADS = saved

    def close(self):
        """Stop the workers (one still busy, its batch abandoned, with them)."""
        for slot in self._workers:
            slot.kill()
        self._workers = []

    def __exit__(self, *exc):
        self.close()


@contextlib.contextmanager
def _signals_held():
    """Ctrl-C and SIGTERM held back while a message crosses a worker's socket or a worker starts, then raised.

    Raised in the middle, KeyboardInterrupt would leave half a task sent (the worker then waits for its rest)
    or a result read but not recorded (the pool then waits for a worker that has nothing more to send): a
    batch stopped with Ctrl-C could wait for ever.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, lambda number, frame: caught.append(number)) for signum in held}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:  # now, through the handler that was in place
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            else:
                os.kill(os.getpid(), caught[0])
