"""Hostile input, round two (issue #20), the server's part: each finding and the test that holds it.

8.  a page on another origin makes the server work          test_cross_origin_*, test_the_page_s_own_*
9.  Content-Length and Transfer-Encoding together           test_content_length_with_transfer_encoding_*
10. every copy of an upload counts against the bound        test_uploads_held_at_once_stay_within_*,
                                                            test_a_job_is_sent_to_its_worker_without_a_copy
    and memory comes back after a load                      test_refused_uploads_give_*, test_an_idle_worker_*
11. idle connections lock everyone out                      test_idle_connections_make_room_*,
                                                            test_working_connections_keep_the_cap
    uvicorn's own errors are JSON                           test_malformed_http_is_answered_in_json
    HEAD on the GET routes                                  test_head_answers_like_get_without_a_body

Most run a real `kcolors serve` (tests/webserver.py): the connection's handling lives in uvicorn's protocol.
"""

import json
import socket
import time
import warnings

import anyio
import httpx
import pytest

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; httpx is what the project installs
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from kcolors.commands import serve as serve_command
from kcolors.web import Settings, create_app, workers
from kcolors.web.settings import MB
from kcolors.web.upload import FORM_OVERHEAD
import webserver
from webserver import kcolors_server, read_answer, rss_bytes, wait_until

HANG_GUARD = 60  # seconds: only against a hang, never a measure of speed (the machine may be busy)


@pytest.fixture(scope="module")
def small():
    return webserver.small_png(24, 32)


@pytest.fixture(scope="module")
def server():
    with kcolors_server("--allow-host", "kcolors.example") as url:
        yield url


def raw_exchange(port, data, timeout=HANG_GUARD):
    """Send ``data`` on a new connection; (everything the server wrote, True if it closed the connection).

    The first answer may take up to ``timeout`` (a busy machine); after it, 4 s of silence end the reading:
    enough for the close or a second answer, which the server sends at once, and short of its keep-alive
    timeout (5 s from its last write), so that a connection closed only for being idle does not count."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(data)
    received, closed = b"", False
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            received += chunk
            sock.settimeout(4)
    except (socket.timeout, ConnectionResetError):
        pass
    sock.close()
    return received, closed


def ask(sock, port, path="/api/health"):
    """One keep-alive GET on ``sock``; the status of its answer, read to the end of its body."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = int(next(line.split(b":")[1] for line in lines if line.startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1])


def is_closed(sock):
    sock.settimeout(HANG_GUARD)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


# ----------------------------------------------------------------------------- 8. cross-origin requests


@pytest.mark.parametrize("headers, shown", [
    ({"Origin": "http://evil.example"}, "http://evil.example"),
    ({"Origin": "http://testserver:8080"}, "http://testserver:8080"),  # another port: another origin
    ({"Origin": "null"}, "null"),  # a sandboxed frame, a file:// page, a redirect from elsewhere
    ({"Sec-Fetch-Site": "cross-site"}, "cross-site"),
    ({"Sec-Fetch-Site": "same-site"}, "same-site"),  # another port of localhost: the browser says same-site
    ({"Origin": "http://testserver", "Sec-Fetch-Site": "same-site"}, "same-site"),
])
def test_cross_origin_posts_are_403_before_any_work(small, headers, shown, monkeypatch):
    app = create_app(Settings())
    with TestClient(app) as client:
        monkeypatch.setattr(app.state.pool, "run", None)  # any job started would fail with TypeError (500)
        r = client.post("/api/compress", files={"image": ("p.png", small, "image/png")}, headers=headers)
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error.startswith("cross-origin request refused") and shown in error
    assert r.json()["status"] == 403


def test_cross_origin_is_refused_on_every_method_but_get_and_head(small):
    foreign = {"Origin": "http://evil.example"}
    with TestClient(create_app(Settings())) as client:
        for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
            assert client.request(method, "/api/compress", headers=foreign).status_code == 403, method
        assert client.get("/api/health", headers=foreign).status_code == 200  # reading is harmless
        assert client.head("/api/health", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200
        responses = client.get("/api/openapi.json").json()["paths"]["/api/compress"]["post"]["responses"]
        assert "cross-origin" not in responses["400"]["description"] and "another origin" in \
            responses["403"]["description"]


@pytest.mark.slow
def test_the_page_s_own_requests_pass_with_and_without_allow_host(server, small):
    """What a browser sends from the page itself: Origin http://HOST and Sec-Fetch-Site same-origin."""
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", f"kcolors.example:{server.port}"):
        for extra in ({}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}):
            headers = {"Host": host, "Origin": f"http://{host}", **extra}
            r = httpx.post(server + "api/compress", files={"image": ("p.png", small, "image/png")},
                           data={"k": "4"}, headers=headers, timeout=60)
            assert r.status_code == 200, (host, extra, r.text)
    r = httpx.post(server + "api/compress", files={"image": ("p.png", small, "image/png")}, timeout=60,
                   headers={"Origin": f"http://kcolors.example:{server.port + 1}"})
    assert r.status_code == 403


# ----------------------------------------------------------------------------- 9. request framing


def test_content_length_with_transfer_encoding_is_refused_and_the_connection_closed(server):
    """RFC 9112 6.1: such a request may be read as chunked, but the connection must close after it. Behind a
    proxy that went by Content-Length, the rest would be a request smuggled in: it must never be answered."""
    smuggled = (f"POST /api/compress HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                f"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 4\r\n"
                f"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                f"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n").encode()
    received, closed = raw_exchange(server.port, smuggled)
    assert received.count(b"HTTP/1.1 ") == 1, received  # the second request is not answered
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"connection: close" in head.lower()
    assert json.loads(body)["error"].startswith("a request with both Content-Length and Transfer-Encoding")
    assert closed
    assert httpx.get(server + "api/health", timeout=HANG_GUARD).status_code == 200


def test_a_chunked_upload_alone_still_works(server, small):
    with httpx.Client(timeout=60) as client:  # an iterator body: httpx sends it chunked
        body = (b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"c.png\"\r\n\r\n"
                + small + b"\r\n--b--\r\n")
        r = client.post(server + "api/compress", content=iter([body[:100], body[100:]]),
                        headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 200, r.text


# ----------------------------------------------------------------------------- uvicorn's own errors, HEAD


@pytest.mark.parametrize("request_bytes", [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                                           b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nHost: x\r\n\r\n"])
def test_malformed_http_is_answered_in_json(server, request_bytes):
    received, closed = raw_exchange(server.port, request_bytes)
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert 400 <= status < 600 and b"content-type: application/json" in head.lower(), received
    answer = json.loads(body)
    assert answer["status"] == status and answer["error"].startswith("malformed HTTP request: ")
    assert closed


def test_head_answers_like_get_without_a_body(server):
    """HEAD on the page, the API's GET routes and the static files: GET's status and length, no body."""
    for path in ("/", "/api", "/api/health", "/api/openapi.json", "/static/app.js", "/sample.png"):
        get = httpx.get(server + path.lstrip("/"), timeout=HANG_GUARD)
        received, _ = raw_exchange(server.port, f"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                                                f"Connection: close\r\n\r\n".encode())
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(f"HTTP/1.1 {get.status_code} ".encode()) and body == b"", (path, received[:200])
        if path not in ("/api/health",):  # health's figures change from one answer to the next
            assert f"content-length: {len(get.content)}".encode() in head.lower(), path


# ----------------------------------------------------------------------------- 11. idle connections


@pytest.mark.slow
def test_idle_connections_make_room_for_new_clients():
    """At the cap, a new client closes the connection idle the longest (nginx does the same), instead of a 503."""
    with kcolors_server("--max-connections", "4") as url:
        silent = socket.create_connection(("127.0.0.1", url.port))  # opened ahead, as browsers do
        time.sleep(0.1)
        kept = [socket.create_connection(("127.0.0.1", url.port)) for _ in range(3)]
        for sock in kept:
            assert ask(sock, url.port) == 200  # keep-alive: left open, waiting for a next request
        time.sleep(max(serve_command.IDLE_AFTER_SECONDS.values()) + 0.2)  # idle now (uvicorn closes them at 5 s)
        first = read_answer(raw_client(url.port), timeout=HANG_GUARD)[0]
        assert first == 200 and is_closed(silent)  # the one idle the longest went first
        for _ in range(2):  # two more clients: each closes one of the keep-alive connections
            assert read_answer(raw_client(url.port), timeout=HANG_GUARD)[0] == 200
        for sock in [silent, *kept]:
            sock.close()


@pytest.mark.slow
def test_working_connections_keep_the_cap():
    """Connections in the middle of a request are not closed for a newcomer, however long they have been at it:
    it gets 503, as before."""
    with kcolors_server("--max-connections", "4") as url:
        working = [socket.create_connection(("127.0.0.1", url.port)) for _ in range(4)]
        for sock in working:
            sock.sendall(b"GET /api/health HTTP/1.1\r\n")  # half a request's headers
        time.sleep(max(serve_command.IDLE_AFTER_SECONDS.values()) + 0.2)
        status, headers, body = read_answer(raw_client(url.port), timeout=HANG_GUARD)
        assert status == 503 and b"over 4 connections" in body and headers["retry-after"] == "2"
        for sock in working:
            sock.sendall(f"Host: 127.0.0.1:{url.port}\r\nConnection: close\r\n\r\n".encode())
            assert read_answer(sock, timeout=HANG_GUARD)[0] == 200  # none of them was closed
            sock.close()


def raw_client(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD)
    sock.sendall(f"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
    return sock


# ----------------------------------------------------------------------------- 10. memory of the uploads


def vm_peak_rss(pid):
    """VmHWM: the most resident memory the process has had, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def padded_png(small, size):
    """A valid PNG of ``size`` bytes (the decoder stops at IEND and ignores the rest): a big upload, a quick job."""
    return small + bytes(size - len(small))


@pytest.mark.slow
def test_uploads_held_at_once_stay_within_the_bound(small):
    """Three uploads of 7.9 MB in hand at once (concurrency 1, queue 2): the server grows by less than its bound,
    (concurrency + queue + 2) x the upload limit. Each was held four times over (body, joined body, parsed
    form, the file's bytes, the job's pickle): 70 MB and more against a bound of 40."""
    upload_mb, concurrency, queue = 8, 1, 2
    bound = (concurrency + queue + 2) * (upload_mb * MB + FORM_OVERHEAD)
    big = padded_png(small, int(7.9 * MB))
    with kcolors_server("--max-upload-mb", upload_mb, "--concurrency", concurrency, "--queue", queue) as url:
        assert httpx.post(url + "api/compress", files={"image": ("w.png", small, "image/png")},
                          timeout=60).status_code == 200  # every lazy import of a request is done
        idle = rss_bytes({url.pid})
        answers = []

        async def upload(client, i):
            r = await client.post("/api/compress", files={"image": (f"b{i}.png", big, "image/png")})
            answers.append(r.status_code)

        async def load():
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                async with anyio.create_task_group() as group:
                    for i in range(3):
                        group.start_soon(upload, client, i)

        anyio.run(load)
        grown = vm_peak_rss(url.pid) - idle
        assert answers == [200] * 3
        assert grown < bound, f"the server grew by {grown / MB:.0f} MiB, over its bound of {bound / MB:.0f} MiB"
        # and it gives the memory back: under twice its idle size within a few seconds
        assert wait_until(lambda: rss_bytes({url.pid}) < idle + 8 * MB, HANG_GUARD, step=0.2), \
            f"{rss_bytes({url.pid}) / MB:.0f} MiB held against {idle / MB:.0f} MiB idle"


@pytest.mark.slow
def test_refused_uploads_give_their_memory_back(small):
    """Four uploads of 7.9 MB refused (an unknown field) one after the other: the server is back to its idle
    size. A refused upload is freed after its request ends (its traceback holds it), after the trim; glibc kept
    it in the heap once its threshold had grown to the size of an upload."""
    big = padded_png(small, int(7.9 * MB))
    with kcolors_server("--max-upload-mb", 8) as url:
        assert httpx.post(url + "api/compress", files={"image": ("w.png", small, "image/png")},
                          timeout=60).status_code == 200
        idle = rss_bytes({url.pid})
        for _ in range(4):
            r = httpx.post(url + "api/compress", files={"image": ("b.png", big, "image/png")}, data={"colors": "8"},
                           timeout=60)
            assert r.status_code == 422
        assert wait_until(lambda: rss_bytes({url.pid}) < idle + 4 * MB, HANG_GUARD, step=0.2), \
            f"{(rss_bytes({url.pid}) - idle) / MB:.1f} MiB more than idle"


def test_an_idle_worker_gives_back_what_its_job_freed():
    """A worker kept for the next job (up to 5 s) trims its heap after each job: 30 MB freed in the heap by a
    job stayed resident in the idle worker, and on top of its memory at rest after a load."""
    pool = workers.Pool(concurrency=1, job_timeout=HANG_GUARD, idle_seconds=2 * HANG_GUARD)  # kept while we wait

    async def scenario():
        try:
            await pool.run(webserver.fragment_heap, 0)
            (worker,) = pool.idle
            before = webserver.private_dirty(worker.pid)
            assert await pool.run(webserver.fragment_heap, 300) == 300
            assert pool.idle == [worker]  # the same worker, kept
            back = wait_until(lambda: webserver.private_dirty(worker.pid) < before + 8 * MB, HANG_GUARD)
            return back, (webserver.private_dirty(worker.pid) - before) / MB
        finally:
            pool.close()

    back, extra = anyio.run(scenario)
    assert back, f"the idle worker holds {extra:.0f} MiB more than before the job"


@pytest.mark.slow
def test_a_job_is_sent_to_its_worker_without_a_copy():
    """The upload reaches the worker as it is, from a view into the body: no pickled copy on the server."""
    pool = workers.Pool(concurrency=1, job_timeout=30)
    body = bytearray(b"head" + bytes(range(256)) * 40_000 + b"tail")
    view = memoryview(body)[4:-4].toreadonly()
    sent = []
    original = workers._send_all

    async def spy(sock, data):
        sent.append(len(data))
        await original(sock, data)

    async def scenario():
        try:
            workers._send_all = spy
            return await pool.run(len_and_type, view)
        finally:
            workers._send_all = original
            pool.close()

    assert anyio.run(scenario) == (len(view), "bytes")  # the worker gets bytes, the job's documented type
    assert max(sent) == len(view) and sum(sent) < len(view) + 4096  # the view itself, and a small header


@pytest.mark.slow
def test_a_failed_job_leaves_no_view_the_garbage_collector_cannot_clear():
    """A failed job's traceback holds the pool's frames in a reference cycle. A view in it that still exported
    its buffer (the pickle's out-of-band wrapper did) could not be cleared by the collector, which then crashed
    the server (a segmentation fault)."""
    import gc

    pool = workers.Pool(concurrency=1, job_timeout=30)
    body = bytearray(200_000)

    async def scenario():
        try:
            await pool.run(fail, memoryview(body)[8:].toreadonly())
        except workers.JobFailed as exc:
            failed = exc  # the frame holds the exception that holds the frame: a cycle
            return failed.kind
        finally:
            pool.close()

    assert anyio.run(scenario) == "ValueError"
    gc.collect()  # the cycle goes; before, this ended the process
    body[:] = b""  # and nothing exports the body any more (a view still held would refuse this)


def len_and_type(data):
    """A job for the tests above (workers import it by name)."""
    return len(data), type(data).__name__


def fail(data):
    raise ValueError("refused")


@pytest.mark.parametrize("stdout", ["/dev/full", "closed"])
@pytest.mark.slow
def test_a_server_whose_output_cannot_be_written_still_serves(stdout):
    """Its status lines are written as far as they can be (a service manager may close or fill its output);
    before, `kcolors serve > /dev/full` ended in an internal error (exit 1)."""
    import os
    import subprocess
    import sys

    with socket.socket() as probe:  # a free port, named on the command line: the server cannot print it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = open("/dev/full", "w") if stdout == "/dev/full" else subprocess.DEVNULL  # noqa: SIM115
    close_fds = stdout == "closed"
    proc = subprocess.Popen([sys.executable, "-c", "import os, sys; os.close(1) if sys.argv[1] == 'closed' else None; "
                             "from kcolors.cli import main; sys.exit(main(sys.argv[2:]))", stdout, "serve",
                             "--port", str(port)], stdout=out, stderr=subprocess.PIPE, text=True,
                            close_fds=close_fds, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        deadline = time.monotonic() + HANG_GUARD
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=HANG_GUARD).status_code == 200
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, f"the server did not answer within {HANG_GUARD} s"
                time.sleep(0.2)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        if out is not subprocess.DEVNULL:
            out.close()
    assert "internal error" not in err and "Traceback" not in err and "Exception ignored" not in err, err
