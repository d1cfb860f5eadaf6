"""The local runner: worker processes on this machine, each task under a time limit, none outliving the batch."""

import collections
import contextlib
import os
import signal
import threading
import time

from .. import kernels
from ..errors import InputError, KcolorsError, UsageError
from . import worker

# Seconds one file may take in a worker before the worker is killed. Pillow decodes in C and a
# thread cannot stop it, so a file that never finishes (a looping decoder, a crafted image) would
# hang the batch; generous, as the largest image --max-pixels lets in takes about 10 s with the
# fast engine. The command line raises it for the engines that cluster every pixel.
DEFAULT_TIME_LIMIT = 300.0

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


def timed_out(limit):
    """The reason given for a file that ran past the time limit."""
    return f"took longer than {limit:g} s; its worker process was killed (raise --timeout if the image is just big)"


class LocalPool:
    """Runs tasks in worker processes on this machine.

    Use as a context manager; :meth:`map_unordered` may be called several times
    (a shared-palette batch has two rounds) on the same processes. Scripts that
    use it need the ``if __name__ == "__main__":`` guard: workers start with
    ``forkserver`` and import the main module.

    Each worker runs one task at a time, so the pool always knows which file a
    worker holds and since when:

    - a file that runs past ``time_limit`` seconds has its worker killed and is
      reported failed; a new worker takes the next file;
    - a file whose worker dies (out of memory, a crash in a decoder) is tried
      once more, alone, and reported failed if its worker dies again;
    - workers end when the batch process ends, however it ends (see
      :mod:`kcolors.batch.worker`).

    With ``jobs=1`` and no time limit, tasks run in this process.
    """

    def __init__(self, jobs=None, time_limit=DEFAULT_TIME_LIMIT):
        self.jobs = default_jobs() if jobs is None else int(jobs)
        if self.jobs < 1:
            raise UsageError(f"--jobs must be at least 1, not {self.jobs}")
        if time_limit is not None and not time_limit > 0:
            raise UsageError(f"--timeout must be more than 0 seconds, not {time_limit:g}")
        self.time_limit = time_limit
        self._context = self._lifeline = None
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
        with _signals_held():  # the task sent and recorded, or neither
            try:
                slot.conn.send((function, item, kwargs))
            except (BrokenPipeError, ConnectionResetError, EOFError):
                self._discard(slot)
                return False
            slot.task = (item, time.monotonic(), retried)
        return True

    def _collect(self, suspects, until=None):
        """Wait for a task to end (a result, a dead worker, a time limit); put what ended in ``self._ended``.

        ``suspects`` receives the items of workers that died, to be tried again;
        ``None`` (while draining) reports them failed at once. ``until``: wait no longer.
        """
        from multiprocessing.connection import wait

        busy = self._busy()
        if not busy:
            return
        deadlines = [] if until is None else [until]
        if self.time_limit is not None:
            deadlines.append(min(slot.task[1] for slot in busy) + self.time_limit)
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        wait([slot.conn for slot in busy] + [slot.process.sentinel for slot in busy], timeout)
        now = time.monotonic()
        for slot in busy:
            with _signals_held():  # a result read is a result recorded
                self._settle(slot, suspects, now)

    def _settle(self, slot, suspects, now):
        """Record what became of ``slot``'s task, if anything: its outcome, its worker's death or time-out."""
        item, started, retried = slot.task
        outcome = slot.receive()
        if outcome is not _NOTHING:
            self._ended.append((item, outcome))
        elif not slot.process.is_alive() or slot.conn.closed:
            self._discard(slot)
            if retried or suspects is None:
                self._ended.append((item, InputError(DIED)))
            else:
                suspects.append(item)
        elif self.time_limit is not None and now - started >= self.time_limit:
            self._discard(slot)
            self._ended.append((item, InputError(timed_out(self.time_limit))))

    def _busy(self):
        return [slot for slot in self._workers if slot.task]

    def _idle_worker(self):
        for slot in self._workers:
            if not slot.task:
                return slot
        if self._context is None:
            import multiprocessing

            # forkserver: workers start from a clean process, not a copy of this one and its threads;
            # after the first, a worker starts in a few milliseconds (a killed one is replaced cheaply)
            self._context = multiprocessing.get_context("forkserver")
            self._context.set_forkserver_preload(["kcolors.batch"])
            # the lifeline: workers read it, and only this process holds its write end
            self._lifeline = self._context.Pipe(duplex=False)
        try:
            with _one_thread_libraries():  # the forkserver starts with the first worker, and imports numpy
                slot = _Worker(self._context, self._lifeline[0])
        except OSError as exc:  # e.g. this user may not run the Python executable again
            raise KcolorsError(f"cannot start a worker process ({exc}); --jobs 1 --timeout 0 works in this process "
                               "instead") from None
        self._workers.append(slot)
        return slot

    def _discard(self, slot):
        slot.stop(kill=True)
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
        """Stop the workers: idle ones are asked to, one still busy (its batch was abandoned) is killed."""
        for slot in self._workers:
            slot.stop(kill=bool(slot.task))
        self._workers = []
        if self._lifeline is not None:
            for end in self._lifeline:
                end.close()
            self._lifeline = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_NOTHING = object()


@contextlib.contextmanager
def _signals_held():
    """Ctrl-C and SIGTERM held back while a message crosses a worker's pipe or a worker starts, then raised.

    Raised in the middle, KeyboardInterrupt would leave half a message read (the next read takes its rest
    for a length) or a result read but not recorded (the pool then waits for a worker that has nothing
    more to send): a batch stopped with Ctrl-C could wait for ever.
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


# The workers fill the cores already, one task each: a BLAS or OpenMP thread pool per worker (one thread a core,
# which may spin while waiting for work) would only take turns with the other workers.
_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@contextlib.contextmanager
def _one_thread_libraries():
    """This process's environment says one thread to numerical libraries, for the processes started meanwhile.

    The libraries read it once, when loaded: the forkserver (started with the first worker) imports numpy
    under it and the workers it forks inherit the setting. This process, which loaded them already, is unchanged.
    """
    saved = {name: os.environ.get(name) for name in _ONE_THREAD}
    os.environ.update(_ONE_THREAD)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _Worker:
    """One worker process and this end of its pipe; ``task`` is ``(item, started, retried)`` while it works."""

    def __init__(self, context, lifeline):
        with _signals_held():
            self.conn, theirs = context.Pipe()
            self.process = context.Process(target=worker.main, args=(theirs, lifeline), name="kcolors-worker",
                                           daemon=True)
            self.process.start()
            theirs.close()
        self.task = None

    def receive(self):
        """The task's outcome if the worker sent it, else ``_NOTHING`` (still working, or dead)."""
        try:
            if self.conn.poll():
                outcome = self.conn.recv()
                self.task = None
                return outcome
        except (EOFError, OSError):  # died before, or while, sending
            self.conn.close()
        return _NOTHING

    def stop(self, *, kill):
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.process.join(timeout=None if kill else 5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()
        self.process.close()
