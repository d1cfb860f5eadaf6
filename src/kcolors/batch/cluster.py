"""The Dask runner: tasks on a running Dask distributed scheduler; and the choice of runner."""

import contextlib
import os
import warnings

from .. import __version__
from ..errors import InputError, UsageError
from .local import LocalPool


def _probe(paths):
    """Run on every Dask worker: its kcolors version and whether it sees ``paths``."""
    return __version__, [os.path.exists(p) for p in paths]


class DaskCluster:
    """Runs tasks on a running Dask distributed scheduler (``tcp://HOST:PORT``).

    The workers need kcolors installed and the input and output folders at the
    same paths (a shared file system). A task whose worker dies is given to
    another worker by the scheduler; one that kills several workers in a row
    (``distributed.scheduler.allowed-failures``, 3 by default) is reported failed.
    """

    def __init__(self, address, *, timeout=10, wait_for_workers=30):
        try:
            from distributed import Client
        except ImportError:
            raise UsageError("--scheduler needs Dask distributed: pip install 'dask[distributed]'") from None
        self.address = address
        _check_address(address)
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
        """Yield ``(item, result)`` as tasks finish; ``result`` is an exception if the task could not run."""
        from distributed import as_completed as dask_completed

        items = list(items)
        if not items:
            return
        # pure=False: every run gets fresh keys, never a result cached from another client's run
        futures = self.client.map(function, items, pure=False, **kwargs)
        item_of = {future.key: item for future, item in zip(futures, items)}
        try:
            for future in dask_completed(futures, loop=self.client.loop):
                if future.status == "error":
                    result = InputError(f"the task failed on the cluster ({type(future.exception()).__name__}: "
                                        f"{future.exception()})")
                else:
                    result = future.result()
                future.release()
                yield item_of[future.key], result
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    @staticmethod
    def drain():
        """After an interrupt: nothing (the cluster's tasks were cancelled)."""
        return iter(())

    def close(self):
        with contextlib.suppress(Exception):
            self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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


def make_runner(jobs=None, scheduler=None):
    """A :class:`DaskCluster` when ``scheduler`` is given, else a :class:`LocalPool`."""
    if scheduler is not None:
        if jobs is not None:
            raise UsageError("--jobs sets the local pool; with --scheduler the Dask workers' threads do the work")
        return DaskCluster(scheduler)
    return LocalPool(jobs)
