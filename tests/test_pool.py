"""One pool of worker processes that can be killed (kcolors.pool), as batch's local pool drives it.

The web server's pool drives the same workers; its own tests (test_web_safety, test_web_hostile) cover
cancellation on hang-up, the memory budget and uploads without a copy.
"""

import os
import re
from pathlib import Path

import pytest

import kcolors
import kcolors.pool
from kcolors.batch import LocalPool
from kcolors.batch.local import DEFAULT_MEMORY_CAP
from kcolors.strips import STRIPS_ABOVE
from kcolors.web.jobs import COMPRESS_ALPHA_BYTES

MB = 1024 * 1024
SOURCE = Path(kcolors.__file__).resolve().parent
_HOARD = []  # in a worker: what hoard() keeps


def pid_of(item):
    return os.getpid()


def hoard(megabytes):
    """Keep ``megabytes`` resident in this worker; its pid."""
    _HOARD.append(b"\x01" * (megabytes * MB))
    return os.getpid()


def allocate(megabytes):
    return len(b"\x01" * (megabytes * MB))


def test_no_module_reads_a_private_attribute_of_cpython_and_prctl_is_called_once():
    text = {path: path.read_text() for path in SOURCE.rglob("*.py")}
    assert not [path for path, code in text.items() if re.search(r"forkserver\._|_forkserver_alive_fd", code)]
    assert len([path for path, code in text.items() if re.search(r"\bPR_SET_PDEATHSIG, ", code)]) == 1


@pytest.mark.slow
def test_a_batch_worker_takes_many_tasks_and_is_replaced_after_max_tasks(monkeypatch):
    monkeypatch.setattr(kcolors.pool, "MAX_TASKS", 3)
    with LocalPool(1, time_limit=60) as pool:
        pids = [pid for _, pid in pool.map_unordered(pid_of, range(7))]
    assert len(pids) == 7 and pids[0] == pids[1] == pids[2] != pids[3]  # not one process per task, nor one for all
    assert len(set(pids)) == 3, pids


@pytest.mark.slow
def test_a_batch_worker_that_grew_is_replaced():
    with LocalPool(1, time_limit=60) as pool:
        pids = [pid for _, pid in pool.map_unordered(hoard, [0, 1, 200, 0])]
    assert pids[0] == pids[1] == pids[2] != pids[3], pids  # it holds 200 MB more than at its start: a fresh one


@pytest.mark.slow
def test_a_batch_worker_is_capped_and_the_next_task_runs():
    with LocalPool(1, time_limit=60, memory_cap=256 * MB) as pool:
        results = dict(pool.map_unordered(allocate, [600, 10]))
    assert isinstance(results[600], MemoryError), results
    assert results[10] == 10 * MB


def test_the_default_batch_cap_lets_the_largest_image_held_whole_through():
    """Above STRIPS_ABOVE pixels strips take over in bounded memory; below, the worst case measured per pixel
    (noise with alpha, 16-bit samples) fits under the default cap, so the cap never refuses honest work."""
    assert DEFAULT_MEMORY_CAP >= STRIPS_ABOVE * (COMPRESS_ALPHA_BYTES + 8)
    assert LocalPool(1).memory_cap == DEFAULT_MEMORY_CAP
