"""A real `kcolors serve` in a subprocess on a free loopback port, for the browser, load and safety tests.

Also what those tests measure on it (its process tree and memory), and job functions that the
safety tests run in the server's worker processes in place of the real ones (workers import them
by name, so they live in a module, here).
"""

import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import time

import httpx

from processes import descendants


class ServerURL(str):
    """The base URL of a running server (a plain str), with its ``pid`` and ``port``."""

    pid = port = None


@contextlib.contextmanager
def kcolors_server(*options):
    """Start `kcolors serve --port 0 OPTIONS`; yield its base URL; stop it (SIGTERM, then kill)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "kcolors.cli", "serve", "--port", "0", *map(str, options)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()  # "kcolors: serving http://127.0.0.1:PORT/ ..." once the socket listens
        match = re.search(r"serving (http://\S+/)", line)
        if not match:
            proc.kill()
            raise RuntimeError(f"kcolors serve did not start: {line!r} {proc.stderr.read()!r}")
        url = ServerURL(match.group(1))
        url.pid, url.port = proc.pid, int(url.rstrip("/").rsplit(":", 1)[1])
        httpx.get(url + "api/health", timeout=30).raise_for_status()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


# ----------------------------------------------------------------------------- raw HTTP, to stall and hang up

BOUNDARY = "kcolors-test-boundary"


def multipart(image, fields=(), name="p.png"):
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
             for key, value in fields]
    parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
                 f'Content-Type: application/octet-stream\r\n\r\n'.encode() + image + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def open_request(port, body, path="/api/compress", length=None, send=None, host=None):
    """A socket that has sent a POST's headers and ``send`` bytes of its body (all of it by default)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (f"POST {path} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n\r\n")
    sock.sendall(head.encode() + body[:send])
    return sock


def read_answer(sock, timeout=30):
    """(status, headers, body) of the answer on ``sock``, read until the server closes it."""
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def wait_until(predicate, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def png_bytes(array):
    """An (H, W, 3) uint8 array as PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def small_png(height, width):
    """A small smooth RGB picture as PNG bytes: ramps across it, a few hundred colours."""
    import numpy as np

    y, x = np.mgrid[0:height, 0:width]
    step = max(1, 256 // width)
    return png_bytes(np.stack([x * step, y * step * 5 // 4, (x + y) * step // 2], axis=-1).astype(np.uint8))


def photo_3mp():
    """A 3.5 MP photograph as JPEG: tests/images' kodim05 at half size (384x256) tiled 6 x 6, 2304x1536."""
    import numpy as np
    from PIL import Image

    from conftest import photograph

    picture = np.tile(np.asarray(Image.open(photograph("kodim05-half.png")).convert("RGB")), (6, 6, 1))
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- processes and memory


def alive(pid):
    """True while ``pid`` runs (a zombie has ended: it holds no memory and runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def rss_bytes(pids):
    """The sum of VmRSS over ``pids`` (those that still exist)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return total


def tree_rss(pid):
    """RSS of a process and all of its descendants, in bytes."""
    return rss_bytes({pid} | descendants(pid))


# ----------------------------------------------------------------------------- jobs for the workers


def exhaust_memory(*args, **kwargs):
    """Stand-in for a job: holds memory in a reference cycle, 16 MB at a time, until MemoryError.

    Stops at 2 GB even if no limit bites (MemoryError all the same), not to take the machine down.
    """
    held = []
    held.append(held)  # the cycle that kept memory after a MemoryError in the threaded server
    for _ in range(128):
        held.append(bytearray(16 << 20))
    raise MemoryError("not stopped by the worker's memory limit")


def allocate(n_bytes):
    """Allocate and touch ``n_bytes``; return how many were touched."""
    block = bytearray(n_bytes)
    block[::4096] = b"\1" * len(block[::4096])
    return len(block)


_PINNED = []  # what fragment_heap keeps in use between jobs, in the worker that ran it


def fragment_heap(blocks):
    """Stand-in for a job that leaves the heap full of free pages: ``blocks`` blocks of 100 KB (below glibc's
    mmap threshold: in the heap), all freed but the last, which stays in use at the heap's top, so free()
    alone gives nothing back (malloc_trim does). Returns how many were made."""
    held = [bytearray(100_000) for _ in range(blocks)]
    if held:
        _PINNED.append(held[-1])
    return len(held)


def private_dirty(pid):
    """Bytes of memory written by ``pid`` alone (Private_Dirty of /proc/PID/smaps_rollup)."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("Private_Dirty:"))
