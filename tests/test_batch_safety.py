"""`kcolors batch` under hostile and faulty conditions (issue #11): files of refused formats in folders, files
that never finish decoding, a batch process killed from outside, folders that cannot be read, and a Dask
cluster that loses every worker."""

import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from processes import descendants, process_table
from kcolors.batch import Batch, LocalPool, Settings, find_inputs, palette_of, plan
from test_batch import K, assert_flattened, expected_output, make_collection, outputs_under, temporary_files

pytestmark = pytest.mark.slow  # batches killed, timed out, left by their workers; Dask clusters: a minute in all

# A PostScript program that never ends: Pillow would hand it to Ghostscript.
LOOPING_EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{ } loop\n"
TESTS = str(Path(__file__).resolve().parent)
HANG_GUARD = 60  # seconds: only against a hang, never a measure of speed (the machine may be busy)


# --------------------------------------------------------------------------- tasks that never end (test hooks)


def hold_the_gil(item):
    """Never returns, and never lets another thread of its process run: a regular expression that backtracks
    for ever holds the GIL in C, as a stuck decoder may. Items not starting with "stuck" return at once."""
    if item.startswith("stuck"):
        if os.environ.get("STUCK_MARKS"):  # tell the test this worker is about to be stuck
            Path(os.environ["STUCK_MARKS"], f"{item}.{os.getpid()}").touch()
        re.fullmatch(r"(a+)+b", "a" * 64)
    return item.upper()


def sleep_on(item):
    """Sleeps for two minutes on items starting with "slow"; the rest take 10 ms."""
    time.sleep(120 if item.startswith("slow") else 0.01)
    return item.upper()


# --------------------------------------------------------------------------- processes


def left_over(pid, watched):
    """Processes still alive: among ``watched``, or anywhere in the process group ``pid`` leads."""
    table = process_table()
    return {p for p in watched if p in table} | {p for p, (_, _, group) in table.items() if group == pid}


def wait_until(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def read_to_end(stream):
    """Read ``stream`` in a thread; returns (thread, chunks): the thread ends at end of file."""
    chunks = []
    thread = threading.Thread(target=lambda: chunks.extend(iter(lambda: stream.read1(65536), b"")), daemon=True)
    thread.start()
    return thread, chunks


def kill_group(pid):
    """Clean up after a failed test: everything left in the process group the test started."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------- 1a: what a folder search takes


def test_folder_search_takes_only_allowed_decoders_and_a_file_named_explicitly_is_still_tried(tmp_path):
    sources = make_collection(tmp_path / "in", 3)
    (tmp_path / "in" / "loop.eps").write_bytes(LOOPING_EPS)
    (tmp_path / "in" / "sub" / "doc.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    (tmp_path / "in" / "sub" / "page.ps").write_bytes(LOOPING_EPS)
    named = tmp_path / "named.eps"
    named.write_bytes(LOOPING_EPS)

    found = plan([tmp_path / "in"], tmp_path / "out")
    assert sorted(Path(j.source) for j in found.jobs) == sorted(sources)
    assert found.ignored == 3 and not found.rejected  # passed over as not images, like a .txt file
    assert find_inputs([named]).names == [str(named)]  # named explicitly: tried, so that it is reported

    started = time.monotonic()
    result = run_cli("batch", tmp_path / "in", named, "-o", tmp_path / "out", "-k", K, "--jobs", 2)
    err = result.stderr.decode()
    assert result.returncode == 7, err
    assert "named.eps: not an image in a format kcolors reads" in err and "3 other files passed over" in err
    assert "3 done, 0 skipped, 1 failed of 4" in err and "loop.eps" not in err and "Traceback" not in err
    assert time.monotonic() - started < HANG_GUARD  # Ghostscript on loop.eps would run for ever


# --------------------------------------------------------------------------- 1b: a time limit on every task


def test_a_task_over_the_time_limit_has_its_worker_killed_and_the_pool_goes_on():
    items = [f"file{i}" for i in range(10)]
    items[2:2] = ["stuck-in-c"]  # holds the GIL: no thread of its process could stop it
    items[6:6] = ["slow-sleeper"]
    started = time.monotonic()
    with LocalPool(2, time_limit=1.0) as pool:
        results = dict(pool.map_unordered(hold_the_gil_or_sleep, items))
        pids_after = [slot.pid for slot in pool._workers]
    seconds = time.monotonic() - started
    assert sorted(results) == sorted(items)
    for item in ("stuck-in-c", "slow-sleeper"):
        assert isinstance(results[item], Exception)
        assert str(results[item]).startswith("took longer than 1 s; its worker process was killed"), results[item]
    assert all(results[item] == item.upper() for item in items if not item.startswith(("stuck", "slow")))
    assert seconds < HANG_GUARD, seconds  # stopped at the limit, not waited for (one never ends, one sleeps 120 s)
    assert len(pids_after) <= 2  # killed workers were replaced, never more than --jobs at once


def hold_the_gil_or_sleep(item):
    return sleep_on(item) if item.startswith("slow") else hold_the_gil(item)


def test_batch_reports_a_file_over_the_time_limit_and_does_the_rest(tmp_path):
    sources = make_collection(tmp_path / "in", 6)
    rng = np.random.default_rng(0)  # 4 million distinct colours at k=256: about 4 s on this machine
    big = tmp_path / "in" / "big.png"
    Image.fromarray(rng.integers(0, 256, (2000, 2000, 3), dtype=np.uint8)).save(big, compress_level=0)
    started = time.monotonic()
    result = run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", "-k", 256, "--jobs", 2, "--timeout", "1",
                     "--report", tmp_path / "report.csv")
    seconds = time.monotonic() - started
    err = result.stderr.decode()
    assert result.returncode == 7, err
    assert "big.png: took longer than 1 s; its worker process was killed (raise --timeout" in err, err
    assert "6 done, 0 skipped, 1 failed of 7" in err and "Traceback" not in err
    assert seconds < HANG_GUARD, seconds  # a hang guard: the message above says it was killed
    for source in sources:
        assert_flattened(source, expected_output(source, tmp_path / "out", tmp_path / "in", 256), k=256)
    assert not (tmp_path / "out" / "big-k256.png").exists() and not temporary_files(tmp_path / "out")
    assert "took longer than 1 s" in (tmp_path / "report.csv").read_text()


@pytest.mark.parametrize("value, message", [("-1", "must be 0 or more seconds"), ("soon", "not a number")])
def test_timeout_option_is_checked(tmp_path, value, message):
    make_collection(tmp_path / "in", 1)
    result = run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", "--timeout", value)
    assert result.returncode == 2 and message.encode() in result.stderr and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- 6: no process outlives the batch


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_killing_the_batch_leaves_no_process_and_closes_its_stderr(tmp_path, how):
    make_collection(tmp_path / "in", 60, sizes=(96, 128))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "kcolors.cli", "batch", str(tmp_path / "in"), "-o", str(out), "-k", str(K),
               "--jobs", "2", "--report", str(tmp_path / "report.json")]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert wait_until(lambda: len(outputs_under(out)) >= 2 or process.poll() is not None, HANG_GUARD)
        helpers = descendants(process.pid)  # the forkserver, the resource tracker and the workers
        assert process.poll() is None and len(helpers) >= 3, "kill it mid-run, with its workers at work"
        reader, chunks = read_to_end(process.stderr)
        os.kill(process.pid, how)
        process.wait(timeout=HANG_GUARD)
        assert wait_until(lambda: not left_over(process.pid, helpers), HANG_GUARD), left_over(process.pid, helpers)
        reader.join(timeout=HANG_GUARD)
        assert not reader.is_alive(), "something still holds the batch's stderr open"
    finally:
        kill_group(process.pid)
    written = outputs_under(out)
    assert len(written) < 60
    if how == signal.SIGTERM:  # stopped soon, and told: what was done is reported, nothing half-written is left
        err = b"".join(chunks).decode()
        assert process.returncode == 143, err
        assert "kcolors: terminated after" in err and err.endswith("kcolors: terminated\n"), err
        assert not temporary_files(out)
        import json

        report = json.loads((tmp_path / "report.json").read_text())
        assert sorted(Path(row["output"]) for row in report if row["status"] == "done") == written
    else:
        assert process.returncode == -signal.SIGKILL


def test_workers_stuck_in_c_code_die_with_their_batch(tmp_path):
    """The watchdog thread cannot run in a worker that holds the GIL: the kernel must end it (PR_SET_PDEATHSIG
    once the forkserver has gone), and the forkserver must go as soon as the batch process is gone."""
    script = tmp_path / "stuck.py"
    script.write_text(f"import sys\nsys.path.insert(0, {TESTS!r})\n"
                      "from kcolors.batch import LocalPool\nfrom test_batch_safety import hold_the_gil\n"
                      "if __name__ == '__main__':\n"
                      "    with LocalPool(2) as pool:\n"
                      "        print('started', flush=True)\n"
                      "        list(pool.map_unordered(hold_the_gil, ['stuck1', 'stuck2']))\n")
    marks = tmp_path / "marks"
    marks.mkdir()
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True, env=dict(os.environ, STUCK_MARKS=str(marks)))
    try:
        assert process.stdout.readline() == b"started\n"
        assert wait_until(lambda: len(list(marks.iterdir())) == 2, HANG_GUARD), "both workers should be at work"
        time.sleep(0.2)  # and inside the regular expression
        helpers = descendants(process.pid)
        assert {int(mark.suffix[1:]) for mark in marks.iterdir()} <= helpers
        reader, _ = read_to_end(process.stderr)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=HANG_GUARD)
        assert wait_until(lambda: not left_over(process.pid, helpers), HANG_GUARD), left_over(process.pid, helpers)
        reader.join(timeout=HANG_GUARD)
        assert not reader.is_alive()
    finally:
        kill_group(process.pid)


# --------------------------------------------------------------------------- folders that cannot be read


def test_a_folder_that_cannot_be_listed_is_a_failed_row_not_a_silent_gap(tmp_path, monkeypatch):
    sources = make_collection(tmp_path / "in", 6)
    locked = tmp_path / "in" / "sub" / "deeper"
    real_scandir = os.scandir

    def scandir(path="."):  # as for a folder without read permission (tests run as root, who reads anything)
        if os.path.abspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    batch = Batch([tmp_path / "in"], tmp_path / "out", Settings(k=K))
    with LocalPool(1) as pool:
        batch.run(pool, quiet=True)
    rows = batch.report_rows()
    failed = [row for row in rows if row["status"] == "failed"]
    assert [row["input"] for row in failed] == [os.path.join(str(tmp_path / "in"), "sub", "deeper")]
    assert "cannot search this folder (Permission denied); the images in it were not done" in failed[0]["error"]
    assert batch.counts() == {"done": 4, "skipped": 0, "failed": 1} and batch.exit_code() == 7
    assert {Path(row["input"]) for row in rows if row["status"] == "done"} == {
        s for s in sources if s.parent != locked}
    with pytest.warns(UserWarning, match="cannot search this folder"):  # kcolors palette --from says so too
        _, _, failures = palette_of([tmp_path / "in"], Settings(k=4), jobs=1, time_limit=None)
    assert [name for name, _ in failures] == [os.path.join(str(tmp_path / "in"), "sub", "deeper")]


def test_a_folder_that_can_be_listed_but_not_searched_is_reported(tmp_path, monkeypatch):
    make_collection(tmp_path / "in", 6)
    locked = str(tmp_path / "in" / "sub")

    def refused(real):
        def stat(path, *args, **kwargs):  # as for a folder with read but no search (x) permission
            if os.path.dirname(os.path.abspath(path)) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path, *args, **kwargs)
        return stat

    monkeypatch.setattr(os, "stat", refused(os.stat))
    monkeypatch.setattr(os, "lstat", refused(os.lstat))
    found = find_inputs([tmp_path / "in"])
    assert [folder for folder, _ in found.unreadable] == [locked]
    assert not any(os.path.dirname(name) == locked for name in found.names)


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_unreadable_subfolder_for_real_exits_7(tmp_path):
    """The same with real permissions: as an unprivileged user (root reads anything). In this process (--jobs 1
    --timeout 0): here the Python that runs the tests lives under /root, which nobody may not start again."""
    as_user = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv to drop privileges")
        as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]  # nobody
        tmp_path = Path(tempfile.mkdtemp(prefix="kcolors-perm-"))  # pytest's folder is root's alone
        tmp_path.chmod(0o777)
    try:
        make_collection(tmp_path / "in", 6)
        for folder in [tmp_path / "in", *(p for p in (tmp_path / "in").rglob("*") if p.is_dir())]:
            folder.chmod(0o755)
        for image in (tmp_path / "in").rglob("*.*"):
            image.chmod(0o644)
        (tmp_path / "in" / "sub" / "deeper").chmod(0)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        result = subprocess.run([*as_user, sys.executable, "-m", "kcolors.cli", "batch", str(tmp_path / "in"), "-o",
                                 str(tmp_path / "out"), "-k", str(K), "--jobs", "1", "--timeout", "0"],
                                capture_output=True, env=env, timeout=120, cwd=tmp_path)
        err = result.stderr.decode()
        assert result.returncode == 7, err
        assert "sub/deeper: cannot search this folder (Permission denied)" in err
        assert "4 done, 0 skipped, 1 failed" in err
    finally:
        (tmp_path / "in" / "sub" / "deeper").chmod(0o755)
        if as_user:
            shutil.rmtree(tmp_path, ignore_errors=True)


# --------------------------------------------------------------------------- a Dask cluster that loses its workers


@pytest.fixture
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=":0", silence_logs=40) as local:
        yield local


def test_dask_task_over_the_time_limit_is_reported_and_its_worker_restarted(cluster):
    from kcolors.batch import DaskCluster

    items = [f"file{i}" for i in range(8)] + ["slow-one"]
    started = time.monotonic()
    with DaskCluster(cluster.scheduler_address, time_limit=1.5) as runner:
        results = dict(runner.map_unordered(sleep_on, items))
    seconds = time.monotonic() - started
    assert sorted(results) == sorted(items)
    assert all(results[item] == item.upper() for item in items[:-1])
    assert str(results["slow-one"]).startswith("took longer than 1.5 s; its Dask worker was restarted")
    assert seconds < HANG_GUARD, seconds  # the slow one sleeps 120 s: it was not waited for


def test_dask_batch_stops_with_exit_8_when_every_worker_is_gone(tmp_path, cluster):
    make_collection(tmp_path / "in", 60, sizes=(96, 128))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "kcolors.cli", "batch", str(tmp_path / "in"), "-o", str(out), "-k", str(K),
               "--scheduler", cluster.scheduler_address, "--worker-timeout", "2", "--report",
               str(tmp_path / "report.json")]
    process = subprocess.Popen(command, stderr=subprocess.PIPE)
    try:
        reader, chunks = read_to_end(process.stderr)
        assert wait_until(lambda: b"[3/60]" in b"".join(chunks) or process.poll() is not None, HANG_GUARD)
        cluster.scale(0)  # every worker leaves, nannies too: none comes back
        gone = time.monotonic()
        process.wait(timeout=HANG_GUARD)  # a hang guard, not a timing: a busy machine may be slow
        seconds = time.monotonic() - gone
        reader.join(timeout=HANG_GUARD)
        err = b"".join(chunks).decode()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 8, err
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(r"kcolors: --scheduler tcp://127\.0\.0\.1:\d+: no Dask worker for 2 s \(they died or left\),"
                        r" \d+ files? not done; start workers and rerun with --skip-existing", last), err
    assert "stopped after" in err and "Traceback" not in err and "never retrieved" not in err
    assert seconds >= 2  # it waited --worker-timeout for a worker to come back
    import json

    report = json.loads((tmp_path / "report.json").read_text())
    assert 0 < len(report) < 60 and {row["status"] for row in report} <= {"done"}


class _LostResult:
    """A Dask future seen finished whose worker left before its result was fetched.

    Dask then makes the task pending again: fetching its result waits for a
    rerun, which never comes when no worker is left; cancelling the task ends it.
    """

    key, status = "lost", "finished"

    def __init__(self):
        self.fetch = concurrent.futures.Future()

    def add_done_callback(self, callback):
        callback(self)  # Dask calls back at once for a future already seen finished


class _NoWorkersLeft:
    def map(self, function, items, pure):
        return [_LostResult()]

    def nthreads(self):
        return {}

    def cancel(self, futures):
        self.cancelled = futures
        for future in futures:  # as Dask's fetch ends when its task is cancelled
            future.fetch.set_exception(concurrent.futures.CancelledError())


def test_a_dask_result_lost_with_the_last_worker_does_not_hang_the_batch(monkeypatch):
    from kcolors.batch import DaskCluster, cluster
    from kcolors.errors import NoWorkerError

    monkeypatch.setattr(cluster, "_fetch", lambda client, future: future.fetch)
    runner = object.__new__(DaskCluster)  # a cluster whose last worker left holding the only result
    runner.client, runner.address, runner.time_limit, runner.worker_timeout = _NoWorkersLeft(), "tcp://x:1", None, 0.5
    with pytest.raises(NoWorkerError, match=r"no Dask worker for 0\.5 s .*, 1 file not done"):
        list(runner.map_unordered(str, ["a.png"]))
    (lost,) = runner.client.cancelled
    assert lost.key == "lost" and lost.fetch.done() and not lost.fetch.cancelled()  # ended by the task's cancel


# The batch's side of a cluster whose worker dies holding results it has not fetched yet: the worker is killed
# once the client has seen every other task finished, before it fetches their results. Those fetches are held
# back until the kill (the batch starts them as soon as a task finishes, and on a quick machine they could all
# end before it), so the worker surely dies holding them.
LOSES_ITS_WORKER = """
import os, signal, sys, time
from kcolors.batch import DaskCluster, cluster
from kcolors.errors import NoWorkerError

fetch, held = cluster._Fetches.start, []
def first_only(self, future):  # the first result is fetched; the others wait for the kill
    if held is None or not hasattr(first_only, "done"):
        first_only.done = True
        return fetch(self, future)
    held.append((self, future))
cluster._Fetches.start = first_only

address, worker = sys.argv[1], int(sys.argv[2])
with DaskCluster(address, time_limit=None, worker_timeout=0.5) as runner:
    try:
        for item, result in runner.map_unordered(str.upper, ["a", "b", "c", "d", "e", "f"]):
            if worker:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and any(state.status != "finished"
                                                          for state in runner.client.futures.values()):
                    time.sleep(0.01)
                os.kill(worker, signal.SIGKILL)
                worker = 0
                waiting, held = held, None
                for fetches, future in waiting:
                    fetch(fetches, future)
    except NoWorkerError as exc:
        print(f"kcolors: {exc}", file=sys.stderr)
"""


def test_a_dask_batch_whose_worker_dies_holding_results_ends_without_a_traceback(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=0, processes=True, host="127.0.0.1", dashboard_address=":0",
                                  silence_logs=40) as scheduler:
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", scheduler.scheduler_address,
                                   "--no-nanny", "--nthreads", "1"], stderr=subprocess.DEVNULL)
        try:
            batch = subprocess.run([sys.executable, "-c", LOSES_ITS_WORKER, scheduler.scheduler_address,
                                    str(worker.pid)], capture_output=True, timeout=120)
        finally:
            worker.kill()
            worker.wait()
    err = batch.stderr.decode()
    assert batch.returncode == 0, err
    # Dask's fetch of a lost result, cancelled half-way, left a task that failed unseen: asyncio printed
    # "Task exception was never retrieved" and its traceback (AllExit) when the batch was over
    assert "Traceback" not in err and "never retrieved" not in err, err
    # nor Dask's own log lines ("Couldn't gather 1 keys, rescheduling"): every line is kcolors'
    assert all(line.startswith("kcolors: ") for line in err.splitlines()), err
    assert re.fullmatch(r"kcolors: --scheduler tcp://127\.0\.0\.1:\d+: no Dask worker for 0\.5 s \(they died or left\),"
                        r" \d+ files? not done; start workers and rerun with --skip-existing", err.splitlines()[-1]), err


def test_a_folder_a_glob_pattern_cannot_list_is_reported_too(tmp_path, monkeypatch):
    make_collection(tmp_path / "in", 6)
    locked = tmp_path / "in" / "sub" / "deeper"
    real_scandir = os.scandir

    def scandir(path="."):  # as for a folder without read permission (glob and os.walk list folders with it)
        if os.path.abspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    batch = Batch([str(tmp_path / "in" / "**" / "*.png")], tmp_path / "out", Settings(k=K))
    with LocalPool(1, time_limit=None) as pool:
        batch.run(pool, quiet=True)
    failed = [row for row in batch.report_rows() if row["status"] == "failed"]
    assert [row["input"] for row in failed] == [str(locked)]
    assert "cannot search this folder" in failed[0]["error"] and batch.exit_code() == 7
