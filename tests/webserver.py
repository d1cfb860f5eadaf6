"""A real `kcolors serve` in a subprocess on a free loopback port, for the browser and load tests."""

import contextlib
import os
import re
import subprocess
import sys

import httpx


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
        url = match.group(1)
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
