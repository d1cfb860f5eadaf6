"""The local runner: a process pool on this machine that survives a worker's death."""

import collections
import os
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool

from .. import kernels
from ..errors import InputError, UsageError
from .tasks import _single_threaded


def default_jobs():
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _init_worker():
    # Ctrl-C reaches the whole process group; the main process decides what stops,
    # and a worker finishes the file it is writing (writes are atomic anyway).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _single_threaded()


class LocalPool:
    """Runs tasks in worker processes on this machine (``jobs=1``: in this process).

    Use as a context manager; :meth:`map_unordered` may be called several times
    (a shared-palette batch has two rounds) on the same processes. Scripts that
    use it need the ``if __name__ == "__main__":`` guard: workers start with
    ``forkserver`` and import the main module.

    A file that kills its worker (out of memory, a crash in a decoder) does not
    stop the batch: the pool is restarted, the few files that were in hand are
    retried one at a time, and the one whose worker dies again is reported failed.
    """

    def __init__(self, jobs=None):
        self.jobs = default_jobs() if jobs is None else int(jobs)
        if self.jobs < 1:
            raise UsageError(f"--jobs must be at least 1, not {self.jobs}")
        self._pool = None
        self._in_hand = {}  # future -> item: submitted, result not yielded yet

    def describe(self):
        return f"{self.jobs} local worker{'s' if self.jobs > 1 else ''}"

    def map_unordered(self, function, items, **kwargs):
        """Yield ``(item, result)`` as tasks finish; ``result`` is an exception if the task could not run."""
        pending = collections.deque(items)
        if self.jobs == 1 or len(pending) <= 1:
            yield from self._inline(function, pending, kwargs)
            return
        while pending:
            suspects = yield from self._run(function, pending, kwargs)
            for item in suspects:  # one of them killed its worker: alone, a second death names it
                yield item, self._run_alone(function, item, kwargs)

    def _run(self, function, pending, kwargs):
        """Run ``pending`` with a few tasks in hand per worker; on a worker's death, return the items in hand."""
        pool, self._in_hand = self._executor(), {}
        try:
            while pending or self._in_hand:
                while pending and len(self._in_hand) < 2 * self.jobs:  # bounded: a crash puts few files in doubt
                    item = pending.popleft()
                    self._in_hand[pool.submit(function, item, **kwargs)] = item
                wait(self._in_hand, return_when=FIRST_COMPLETED)
                for future in [f for f in self._in_hand if f.done() and not _broken(f)]:
                    yield self._in_hand.pop(future), _outcome(future)
                if any(_broken(f) for f in self._in_hand):
                    suspects = list(self._in_hand.values())
                    self._in_hand = {}
                    self._restart()
                    return suspects
            return []
        finally:
            for future in self._in_hand:
                future.cancel()

    def _run_alone(self, function, item, kwargs):
        future = self._executor().submit(function, item, **kwargs)
        wait([future])
        if _broken(future):
            self._restart()
            return InputError("its worker process died on it (out of memory, or a crash while decoding)")
        return _outcome(future)

    def drain(self):
        """After an interrupt: wait for the tasks that were running and yield their ``(item, result)``.

        They run to the end anyway (a worker never leaves a half-written file),
        so what they did is reported rather than lost.
        """
        running = {f: item for f, item in self._in_hand.items() if not f.cancelled()}
        self._in_hand = {}
        for future in as_completed(running):
            yield running[future], _outcome(future)

    @staticmethod
    def _inline(function, items, kwargs):
        saved = kernels.THREADS
        try:
            for item in items:
                yield item, function(item, **kwargs)
        finally:
            kernels.THREADS = saved

    def _executor(self):
        if self._pool is None:
            import multiprocessing

            # forkserver: workers start from a clean process, not a copy of this one and its threads
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["kcolors.batch"])
            self._pool = ProcessPoolExecutor(self.jobs, mp_context=context, initializer=_init_worker)
        return self._pool

    def _restart(self):
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _broken(future):
    """True when the task's worker process died (the pool then fails every task it held)."""
    return future.done() and isinstance(future.exception(), BrokenProcessPool)


def _outcome(future):
    """A finished local task's result, or the exception that kept it from running."""
    error = future.exception()
    return error if error is not None else future.result()
