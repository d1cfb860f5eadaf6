"""The Dask runner: tasks on a running Dask distributed scheduler; and the choice of runner."""

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import queue
import time
import warnings

from .. import __version__
from ..errors import InputError, NoWorkerError, UsageError
from .local import DEFAULT_TIME_LIMIT, LocalPool

DEFAULT_WORKER_TIMEOUT = 60.0  # seconds a batch waits, with no worker at all, for one to come back
NO_WORKER = NoWorkerError.exit_code  # the batch stopped because its Dask cluster had no worker left
_CHECK_EVERY = 1.0  # seconds between looks at the cluster (workers left, tasks over the time limit)
_FETCHES_END = 10.0  # seconds the fetches of cancelled tasks get to end (at once, unless the cluster is gone)


# What each worker is running, from the scheduler's view (refreshed by the workers' heartbeats):
# (key, worker address, seconds it has run). A lambda, so that it travels by value: the
# scheduler need not have kcolors installed.
_executing = lambda dask_scheduler: [(ts.key, ws.address, seconds)  # noqa: E731
                                     for ws in dask_scheduler.workers.values()
                                     for ts, seconds in ws.executing.items()]


def _probe(paths):
    """Run on every Dask worker: its kcolors version and whether it sees ``paths``."""
    return __version__, [os.path.exists(p) for p in paths]


class DaskCluster(contextlib.AbstractContextManager):
    """Runs tasks on a running Dask distributed scheduler (``tcp://HOST:PORT``).

    The workers need kcolors installed and the input and output folders at the
    same paths (a shared file system). A task whose worker dies is given to
    another worker by the scheduler; one that kills several workers in a row
    (``distributed.scheduler.allowed-failures``, 3 by default) is reported failed.

    A task that runs past ``time_limit`` seconds is cancelled and reported
    failed, and its worker is restarted through its nanny (a thread cannot stop
    a decoder). When the cluster has had no worker at all for
    ``worker_timeout`` seconds, :meth:`map_unordered` raises
    :class:`NoWorkerError` rather than wait for ever.
    """

    def __init__(self, address, *, timeout=10, wait_for_workers=30, time_limit=DEFAULT_TIME_LIMIT,
                 worker_timeout=DEFAULT_WORKER_TIMEOUT):
        for name, value in (("--timeout", time_limit), ("--worker-timeout", worker_timeout)):
            if value is not None and not value > 0:
                raise UsageError(f"{name} must be more than 0 seconds, not {value:g}")
        self.time_limit, self.worker_timeout = time_limit, worker_timeout
        try:
            from distributed import Client
        except ImportError:
            raise UsageError("--scheduler needs Dask distributed: pip install 'dask[distributed]'") from None
        self.address = address
        _check_address(address)
        # Dask's client logs its own recovery on stderr ("Couldn't gather 3 keys, rescheduling" when a worker
        # left holding results); the batch says what matters to the user in its own lines, one per problem.
        logging.getLogger("distributed.client").setLevel(logging.ERROR)
        try:
            self.client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"--scheduler {address}: cannot connect ({exc}); is `dask scheduler` running "
                             "there?") from None
        try:
            self.client.wait_for_workers(1, timeout=wait_for_workers)
        except (TimeoutError, OSError):
            self.close()
            raise UsageError(f"--scheduler {address}: no worker joined in {wait_for_workers} s; start some with "
                             f"`dask worker {address}`") from None

    def describe(self):
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        threads = sum(w.get("nthreads", 1) for w in workers)
        return f"Dask scheduler {self.address} ({len(workers)} workers, {threads} threads)"

    def check_paths(self, paths):
        """Refuse, before any work, workers that lack kcolors or do not see the files."""
        try:
            answers = self.client.run(_probe, list(paths))
        except Exception as exc:  # noqa: BLE001 - whatever the worker raised, say what it needs
            raise UsageError(f"--scheduler {self.address}: the workers cannot run kcolors "
                             f"({type(exc).__name__}: {exc}); install kcolors on every worker") from None
        for worker, (version, seen) in sorted(answers.items()):
            for path, ok in zip(paths, seen):
                if not ok:
                    raise UsageError(f"worker {worker} does not see {path}: the workers need the input files "
                                     "and the output folder at the same paths (a shared file system)")
            if version != __version__:
                warnings.warn(f"worker {worker} has kcolors {version}, this is {__version__}")

    def map_unordered(self, function, items, **kwargs):
        """Yield ``(item, result)`` as tasks finish; ``result`` is an exception if the task could not run.

        Raises
        ------
        NoWorkerError
            The cluster had no worker for ``worker_timeout`` seconds (the tasks left are cancelled).
        """
        items = list(items)
        if not items:
            return
        # pure=False: every run gets fresh keys, never a result cached from another client's run
        futures = self.client.map(function, items, pure=False, **kwargs)
        item_of = {future.key: (future, item) for future, item in zip(futures, items)}
        # what happened, in the order it happened: a Dask future that ended (put by the client's callback
        # thread), or (key, fetch) for a result fetched; the loop below waits on it, no polling
        events = queue.SimpleQueue()
        for future in futures:
            future.add_done_callback(events.put)
        fetches = _Fetches(self.client, events)
        watch = _Watch(self)
        try:
            while item_of:
                try:
                    event = events.get(timeout=_CHECK_EVERY)
                except queue.Empty:
                    event = None
                if isinstance(event, tuple):  # a result fetched, or the reason there is none
                    key, fetch = event
                    fetches.running.pop(key, None)
                    if key in item_of:  # not one given up on already
                        future, item = item_of.pop(key)
                        outcome = _fetched(fetch, future)
                        future.release()
                        yield item, outcome
                elif event is not None and event.key in item_of:
                    if event.status in ("error", "cancelled"):
                        future, item = item_of.pop(event.key)
                        yield item, _failure(future)
                    else:  # finished; if its worker has left since, the fetch waits for the task to run again
                        fetches.start(event)
                yield from watch.check(item_of)
        finally:
            self.client.cancel([future for future, _ in item_of.values()])
            fetches.finish()

    @staticmethod
    def drain(within=None):
        """After an interrupt: nothing (the cluster's tasks were cancelled)."""
        return iter(())

    def close(self):
        with contextlib.suppress(Exception):
            self.client.close()

    def __exit__(self, *exc):
        self.close()


class _Fetches:
    """The results of finished tasks, fetched in the client's event loop; no fetch is cancelled half-way.

    Why not ``future.result(timeout=...)``: when its time is up, it cancels the
    fetch. If the result's worker had left, Dask's fetch was waiting, in an
    asyncio task of its own, for the task to run again; the cancel orphans that
    task, which fails (Dask's ``AllExit``) once the batch cancels what is left,
    and asyncio prints "Task exception was never retrieved" and a traceback when
    it is collected, after the batch's last line. A fetch left to run to its end
    retrieves that error itself. Its end is an event like the others: ``(key, fetch)``.
    """

    def __init__(self, client, events):
        self.client, self.events = client, events
        self.running = {}  # key -> concurrent.futures.Future of its result

    def start(self, future):
        if future.key in self.running:
            return
        fetch = _fetch(self.client, future)
        self.running[future.key] = fetch
        fetch.add_done_callback(lambda done: self.events.put((future.key, done)))

    def finish(self):
        """Wait for the fetches still running: their tasks were cancelled, so they end at once."""
        concurrent.futures.wait(list(self.running.values()), timeout=_FETCHES_END)


def _fetch(client, future):
    """A concurrent future of ``future``'s result, gathered in the client's event loop."""
    return asyncio.run_coroutine_threadsafe(client.gather(future, asynchronous=True), client.loop.asyncio_loop)


def _fetched(fetch, future):
    """The result of an ended fetch, or the reason it has none (an exception, which the row reports)."""
    try:
        return fetch.result()
    except Exception as exc:  # noqa: BLE001 - failed, cancelled or lost on the cluster: the file is not done
        return _failure(future, exc)


def _failure(future, exc=None):
    """The reason a Dask task that ended has no result (``exc``: what fetching it raised)."""
    if future.status == "error":
        with contextlib.suppress(Exception):
            exc = future.exception(timeout=_CHECK_EVERY)  # set already: no waiting
            return InputError(f"the task failed on the cluster ({type(exc).__name__}: {exc})")
    detail = future.status if exc is None else f"{type(exc).__name__}: {exc}"
    return InputError(f"the task did not finish on the cluster ({detail})")


class _Watch:
    """The looks at the cluster a batch takes while it waits: workers left, tasks over the time limit."""

    def __init__(self, runner):
        self.runner, self.client = runner, runner.client
        self.next_look = time.monotonic() + _CHECK_EVERY
        self.alone_since = None  # when the cluster was first seen with no worker
        self.started = {}  # key -> when it started executing (monotonic, from the scheduler's durations)

    def check(self, item_of):
        """Yield ``(item, error)`` of tasks given up on (removed from ``item_of``); raise when no worker is left."""
        now = time.monotonic()
        if now < self.next_look:
            return
        self.next_look = now + _CHECK_EVERY
        self._workers_left(now, len(item_of))
        if self.runner.time_limit is None:
            return
        try:
            running = self.client.run_on_scheduler(_executing)
        except Exception:  # noqa: BLE001 - a scheduler that cannot tell: no time limit this round
            return
        for key, address, seconds in running:
            if key not in item_of:
                continue
            started = self.started.setdefault(key, now - seconds)
            if now - started >= self.runner.time_limit:
                future, item = item_of.pop(key)
                self.client.cancel([future])
                yield item, InputError(self._stop(address))

    def _workers_left(self, now, left):
        if self.client.nthreads():
            self.alone_since = None
            return
        self.alone_since = self.alone_since or now
        if now - self.alone_since >= self.runner.worker_timeout:
            raise NoWorkerError(f"--scheduler {self.runner.address}: no Dask worker for "
                                f"{self.runner.worker_timeout:g} s (they died or left), {left} file"
                                f"{'s' if left != 1 else ''} not done; start workers and rerun with --skip-existing")

    def _stop(self, address):
        """Restart the worker running a task over the time limit (through its nanny); the reason for the file."""
        limit = self.runner.time_limit
        try:
            status = self.client.restart_workers([address], raise_for_error=False).get(address)
        except Exception as exc:  # noqa: BLE001 - say what happened and go on
            status = f"{type(exc).__name__}: {exc}"
        if status == "OK":
            return f"took longer than {limit:g} s; its Dask worker was restarted (raise --timeout if the image is " \
                   "just big)"
        warnings.warn(f"worker {address} could not be restarted ({status}): a task over the time limit may still "
                      "be running there")
        return f"took longer than {limit:g} s; given up on (raise --timeout if the image is just big)"


def _check_address(address):
    """Refuse an address Dask cannot use before trying it (a failed Client is slow to give up)."""
    from distributed.comm import parse_address
    from distributed.comm.registry import get_backend

    try:
        scheme, location = parse_address(address)
        get_backend(scheme)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--scheduler {address}: not a scheduler address ({exc}); write tcp://HOST:PORT") from None
    if not location:
        raise UsageError(f"--scheduler {address}: not a scheduler address; write tcp://HOST:PORT")


def make_runner(jobs=None, scheduler=None, *, time_limit=DEFAULT_TIME_LIMIT, worker_timeout=None):
    """A :class:`DaskCluster` when ``scheduler`` is given, else a :class:`LocalPool`.

    ``time_limit``: seconds one file may take (None: no limit); ``worker_timeout``:
    seconds a Dask batch waits with no worker left (default 60; the local pool has none).
    """
    if scheduler is not None:
        if jobs is not None:
            raise UsageError("--jobs sets the local pool; with --scheduler the Dask workers' threads do the work")
        return DaskCluster(scheduler, time_limit=time_limit,
                           worker_timeout=DEFAULT_WORKER_TIMEOUT if worker_timeout is None else worker_timeout)
    if worker_timeout is not None:
        raise UsageError("--worker-timeout is for Dask workers; add --scheduler")
    return LocalPool(jobs, time_limit=time_limit)
