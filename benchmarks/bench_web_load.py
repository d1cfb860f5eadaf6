"""`kcolors serve` under a hostile load, timed (issues #11 and #20): are real uploads still answered in time, and
does the memory come back?

One server with its defaults (a worker per core, a queue of 16, 128 connections), warmed up and idle; then all
at once:

- 50 real uploads of a 3.5 MP photograph (tests/images' kodim05 at half size tiled 6 x 6, as JPEG), k = 16,
  each sent again after its Retry-After when it gets 503, as a client should, with a 60 s time-out a try;
- 18 uploads that send their headers and 1 KB, then stall (until the load is over);
- 4 heavy sweeps (1 MP of noise, 32 frames, WebP) whose clients hang up after a second;
- 130 idle connections (half opened and silent, half kept alive after one answer), each reopened as soon as the
  server closes it, for as long as the load lasts: more than --max-connections;
- a cross-origin POST of the photograph (Origin: http://evil.example), which must get 403;
- an ICO bomb: its directory says 16x16, its image is a 20000x20000 PNG (1.2 MB, 1.2 GB of pixels).

It prints what each part got, the real uploads' worst wait (one try, and from the first try to the 200), and the
memory of the server with its workers (RSS summed over the process tree, sampled every 0.2 s): idle, peak,
just after, and how long it took to come back under twice idle (the README's bound; 30 s allowed).

    python benchmarks/bench_web_load.py
    python benchmarks/bench_web_load.py --uploads 20 --idle-connections 130
    python benchmarks/bench_web_load.py --timings

``--timings`` measures instead how promptly the server's defences act, one at a time on a quiet server: the
figures that tests/test_web_safety.py once bounded and now leaves to this benchmark (issue #22: a test must not
fail because the machine is busy; there they are hang guards of 60 s). Each is printed with the bound the test
used to set, as the target.

Wall times depend on the machine and on what else runs on it; the answers and the memory should not.
"""

import argparse
import io
import os
import platform
import socket
import struct
import sys
import threading
import time
import zlib
from pathlib import Path

import anyio
import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from webserver import (alive, descendants, kcolors_server, multipart, open_request, photo_3mp,  # noqa: E402
                       read_answer, rss_bytes, tree_rss, wait_until)

UPLOAD_TIMEOUT = 60.0
BACK_WITHIN = 30.0
SETTLED = 1.25  # times idle: back to the server and its zygote alone


# ----------------------------------------------------------------------------- the hostile files


def ico_bomb(side=20000):
    """An .ico whose directory says 16x16 and whose image is a ``side`` x ``side`` RGB PNG of zeros.

    The PNG's zlib stream repeats one block compressed after a full flush (each copy is the same bytes), so the
    1.2 GB of pixel rows cost a fraction of a second to write, not the 9 s of compressing them.
    """
    rows_a_block = 100
    assert side % rows_a_block == 0
    block = bytes(1 + 3 * side) * rows_a_block
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    once = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    total = len(block) * (side // rows_a_block)
    adler = ((total % 65521) << 16) | 1  # adler32 of zeros: a stays 1, b adds it once a byte
    stream = b"\x78\xda" + once * (side // rows_a_block) + deflate.flush(zlib.Z_FINISH) + struct.pack(">I", adler)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", stream) + chunk(b"IEND", b""))
    directory = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(png), 22)
    return directory + png


def noise_png(side=1000):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(7).integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def small_png():
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


# ----------------------------------------------------------------------------- the idle connections


class IdleConnections:
    """``count`` connections that ask for nothing, reopened whenever the server closes one (every 0.25 s)."""

    def __init__(self, port, count):
        self.port, self.count = port, count
        self.socks, self.reopened, self.refused = [], 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def start(self):
        for i in range(self.count):
            self.socks.append(self._open(keep_alive=i % 2 == 0))
        self.thread.start()

    def _open(self, keep_alive):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        if keep_alive:  # one answer, then nothing: the connection stays open for the next request
            sock.sendall(f"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode())
            answer = sock.recv(65536)
            if b" 503 " in answer[:20]:
                self.refused += 1
        sock.setblocking(False)
        return sock

    def _closed(self, sock):
        try:
            return sock.recv(65536) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _hold(self):
        while not self.stop.wait(0.25):
            for i, sock in enumerate(self.socks):
                if self._closed(sock):
                    sock.close()
                    try:
                        self.socks[i] = self._open(keep_alive=i % 2 == 0)
                    except OSError:
                        continue
                    self.reopened += 1

    def close(self):
        self.stop.set()
        self.thread.join()
        for sock in self.socks:
            sock.close()


# ----------------------------------------------------------------------------- the run


def run(args):
    photo, noise, bomb = photo_3mp(), noise_png(), ico_bomb()
    figures, notes = {}, []
    with kcolors_server() as url:
        httpx.post(url + "api/compress", files={"image": ("w.png", small_png(), "image/png")},
                   timeout=60).raise_for_status()  # the workers' zygote is warm
        while httpx.get(url + "api/health").json()["idle_workers"]:  # until the worker of that one stops
            time.sleep(0.5)
        idle, server_idle = tree_rss(url.pid), rss_bytes({url.pid})
        peak, server_peak = [idle], [server_idle]
        sampling = threading.Event()

        def sample():
            while not sampling.wait(0.2):
                peak[0] = max(peak[0], tree_rss(url.pid))
                server_peak[0] = max(server_peak[0], rss_bytes({url.pid}))

        threading.Thread(target=sample, daemon=True).start()
        idlers = IdleConnections(url.port, args.idle_connections)
        idlers.start()
        stalled = [open_request(url.port, multipart(photo), length=len(photo) + 5000, send=1024)
                   for _ in range(args.stalled)]
        abandoned = [open_request(url.port, multipart(noise, [("k", "2-33"), ("format", "webp")]), path="/api/sweep")
                     for _ in range(args.abandoned)]
        threading.Timer(1.0, lambda: [sock.close() for sock in abandoned]).start()  # the clients hang up
        attempts, uploads, others, refusals = [], {}, {}, []

        async def upload(client, i):
            first = time.monotonic()
            while True:
                start = time.monotonic()
                try:
                    r = await client.post("/api/compress", files={"image": (f"u{i}.jpg", photo, "image/jpeg")},
                                          data={"k": "16"})
                except httpx.TimeoutException:
                    attempts.append((i, "time-out", time.monotonic() - start))
                    uploads[i] = ("time-out", time.monotonic() - first)
                    return
                attempts.append((i, r.status_code, time.monotonic() - start))
                if r.status_code == 503:
                    reason = r.json().get("error", "") if "json" in r.headers.get("content-type", "") else ""
                    refusals.append(reason.split(" (")[0].split(";")[0])
                if r.status_code != 503 or "retry-after" not in r.headers:
                    uploads[i] = (r.status_code, time.monotonic() - first)
                    return
                await anyio.sleep(float(r.headers["retry-after"]))

        async def hostile(client, key, **request):
            start = time.monotonic()
            while True:  # sent again after a 503, as the real uploads are: what counts is the answer it then gets
                try:
                    r = await client.post("/api/compress", **request)
                except httpx.HTTPError as exc:
                    others[key] = (type(exc).__name__, time.monotonic() - start, "")
                    return
                if r.status_code != 503 or "retry-after" not in r.headers:
                    error = r.json().get("error", "") if "json" in r.headers.get("content-type", "") else ""
                    others[key] = (r.status_code, time.monotonic() - start, error)
                    return
                await anyio.sleep(float(r.headers["retry-after"]))

        async def load():
            limits = httpx.Limits(max_connections=args.uploads + 2)
            async with httpx.AsyncClient(base_url=url, timeout=UPLOAD_TIMEOUT, limits=limits) as client:
                async with anyio.create_task_group() as group:
                    group.start_soon(lambda: hostile(client, "cross-origin", headers={"Origin": "http://evil.example"},
                                                     files={"image": ("x.jpg", photo, "image/jpeg")}))
                    group.start_soon(lambda: hostile(client, "ico bomb",
                                                     files={"image": ("bomb.ico", bomb, "image/x-icon")}))
                    for i in range(args.uploads):
                        group.start_soon(upload, client, i)

        started = time.monotonic()
        anyio.run(load)
        figures["load_s"] = time.monotonic() - started
        for sock in stalled:
            sock.close()
        idlers.close()
        finished = time.monotonic()
        just_after = tree_rss(url.pid)
        while tree_rss(url.pid) >= 2 * idle and time.monotonic() - finished < 2 * BACK_WITHIN:
            time.sleep(0.25)
        back_after = time.monotonic() - finished
        after = tree_rss(url.pid)
        while tree_rss(url.pid) >= SETTLED * idle and time.monotonic() - finished < BACK_WITHIN:
            time.sleep(0.25)  # the idle workers stop after 5 s: then only the server and its zygote are left
        settled, settled_after = tree_rss(url.pid), time.monotonic() - finished
        sampling.set()
        server_after = rss_bytes({url.pid})
        health = httpx.get(url + "api/health", timeout=10).status_code

    statuses = [status for _, status, _ in attempts]
    finals = [status for status, _ in uploads.values()]
    worst_try = max(t for _, _, t in attempts)
    worst_wait = max(t for _, t in uploads.values())
    mib = 2**20
    print(f"kcolors serve under a hostile load ({platform.node()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}); load {figures['load_s']:.1f} s")
    print(f"real uploads: {len(uploads)} of {args.uploads} answered; final answers "
          f"{ {s: finals.count(s) for s in sorted(set(finals), key=str)} }; {len(attempts)} tries "
          f"({statuses.count(503)} got 503 + Retry-After); none timed out: {'time-out' not in statuses}")
    print("503s the real uploads got: " + ", ".join(f"{refusals.count(r)} {r!r}" for r in sorted(set(refusals))))
    print(f"worst wait: one try {worst_try:.1f} s, first try to its 200 {worst_wait:.1f} s "
          f"(time-out {UPLOAD_TIMEOUT:g} s a try); median try "
          f"{sorted(t for _, _, t in attempts)[len(attempts) // 2]:.1f} s")
    for key, (status, seconds, error) in others.items():
        print(f"{key}: {status} in {seconds:.1f} s{': ' + error if error else ''}")
    print(f"idle connections: {args.idle_connections} held, {idlers.reopened} reopened after the server closed "
          f"them, {idlers.refused} of their requests got 503")
    print(f"stalled uploads: {args.stalled}; abandoned sweeps: {args.abandoned}; /api/health after: {health}")
    print(f"memory (server + workers): idle {idle / mib:.0f} MiB, peak {peak[0] / mib:.0f} MiB, just after "
          f"{just_after / mib:.0f} MiB, under 2x idle after {back_after:.1f} s ({after / mib:.0f} MiB; "
          f"{'within' if after < 2 * idle and back_after <= BACK_WITHIN else 'NOT within'} {BACK_WITHIN:g} s); "
          f"{settled / mib:.0f} MiB after {settled_after:.1f} s")
    print(f"memory (server alone): idle {server_idle / mib:.0f} MiB, peak {server_peak[0] / mib:.0f} MiB, "
          f"after {server_after / mib:.0f} MiB")
    ok = (all(status == 200 for status in finals) and len(uploads) == args.uploads
          and others.get("cross-origin", (None,))[0] == 403 and after < 2 * idle and back_after <= BACK_WITHIN)
    print("all targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


# ----------------------------------------------------------------------------- --timings: each defence, timed


def png16_header(side=6300):
    """The header alone of a 16-bit RGBA PNG of ``side`` x ``side`` (2.7 GB to decode): refused from it."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def timed(action):
    """(seconds, what ``action`` returned)."""
    start = time.monotonic()
    value = action()
    return time.monotonic() - start, value


def time_quick_upload_beside_a_sweep(noise):
    """A small upload while a heavy sweep runs: served at once, nothing locked (the test bounded it at 2 s)."""
    with kcolors_server("--concurrency", "2") as url:
        httpx.post(url + "api/compress", files={"image": ("w.png", small_png(), "image/png")}, timeout=60)
        sock = open_request(url.port, multipart(noise, [("k", "225-256"), ("format", "webp")]), path="/api/sweep")
        wait_until(lambda: httpx.get(url + "api/health").json()["running"] == 1, 60)
        seconds, r = timed(lambda: httpx.post(url + "api/compress", data={"k": "4"}, timeout=60,
                                              files={"image": ("s.png", small_png(), "image/png")}))
        sock.close()
    return seconds, r.status_code == 200


def time_stalled_upload_answer():
    """An upload that stalls after 1 KB, with --read-timeout 1: its 408 (the test bounded it at 5 s)."""
    with kcolors_server("--read-timeout", "1") as url:
        start = time.monotonic()
        sock = open_request(url.port, multipart(small_png() + bytes(100_000)), send=1024)
        status = read_answer(sock, timeout=60)[0]
        sock.close()
    return time.monotonic() - start, status == 408


def time_abandoned_sweep_stop(noise):
    """A heavy sweep whose client hangs up: from the hang-up to its worker gone (the test bounded it at 8 s)."""
    with kcolors_server() as url:
        sock = open_request(url.port, multipart(noise, [("k", "225-256"), ("format", "webp")]), path="/api/sweep")

        def workers():  # the zygote's children: the server's grandchildren
            below = descendants(url.pid)
            return below - {pid for pid in below if open(f"/proc/{pid}/stat").read().split()[3] == str(url.pid)}

        wait_until(lambda: httpx.get(url + "api/health").json()["running"] == 1 and workers(), 60)
        running = workers()
        sock.close()
        return timed(lambda: wait_until(lambda: not any(alive(pid) for pid in running), 60))


def time_header_refusal():
    """A 16-bit 6300x6300 header over the memory budget: its 413, nothing decoded (the test bounded it at 10 s)."""
    with kcolors_server("--max-job-memory-mb", "2048") as url:
        return timed(lambda: httpx.post(url + "api/compress", timeout=60, files={
            "image": ("big.png", png16_header(), "image/png")}).status_code == 413)


def time_half_open_shed(count=300):
    """``count`` connections that send a few bytes and wait, with --max-connections 50 and --read-timeout 2: from
    the last opened to the last answered, 503 beyond the cap, 408 at the read timeout (the test bounded it at 6 s)."""
    with kcolors_server("--max-connections", "50", "--read-timeout", "2") as url:
        held = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", url.port))
            sock.sendall(b"GET / HTTP/1.1\r\n")
            held.append(sock)
        seconds, statuses = timed(lambda: [read_answer(sock, timeout=60)[0] for sock in held])
        for sock in held:
            sock.close()
    return seconds, set(statuses) == {408, 503}


def run_timings():
    noise = noise_png()
    rows = [("a small upload while a heavy sweep runs", 2.0, *time_quick_upload_beside_a_sweep(noise)),
            ("an upload stalled after 1 KB: its 408 (read timeout 1 s)", 5.0, *time_stalled_upload_answer()),
            ("an abandoned sweep: its worker gone after the hang-up", 8.0, *time_abandoned_sweep_stop(noise)),
            ("a header over the memory budget: its 413", 10.0, *time_header_refusal()),
            ("300 half-open connections: all answered (read timeout 2 s)", 6.0, *time_half_open_shed())]
    print(f"kcolors serve, each defence timed alone ({platform.node()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()})")
    ok = True
    for what, target, seconds, right in rows:
        met = right and seconds < target
        ok &= met
        print(f"{what}: {seconds:.3f} s (target under {target:g} s){'' if right else ', WRONG ANSWER'}"
              f"{'' if met else ', MISSED'}")
    print("all targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=50, help="real uploads of 3.5 MP (default 50)")
    parser.add_argument("--stalled", type=int, default=18, help="uploads that stall (default 18)")
    parser.add_argument("--abandoned", type=int, default=4, help="heavy sweeps abandoned (default 4)")
    parser.add_argument("--idle-connections", type=int, default=130, help="idle connections held (default 130)")
    parser.add_argument("--timings", action="store_true",
                        help="time each defence alone on a quiet server instead (the bounds the tests left)")
    args = parser.parse_args()
    sys.exit(run_timings() if args.timings else run(args))


if __name__ == "__main__":
    main()
