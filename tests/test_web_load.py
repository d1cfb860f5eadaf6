"""Bounded load tests on loopback against a real `kcolors serve`.

50 requests, 8 at a time: every answer must be right (a PNG of at most its k colours, with
matching figures), and /api/health must keep answering while the images are being processed.
Hostile load (issue #11): 50 uploads of 3.5 MP at once while 18 uploads stall and 4 heavy sweeps
are abandoned; every upload answered, and the memory given back afterwards. The tests assert what
must hold however busy the machine is (the answers, the memory coming back), with time limits only
against a hang; how long it all takes is benchmarks/bench_web_load.py's to measure (issue #20: a wait
limit of 15 s failed on a loaded two-core machine).
"""

import io
import json
import threading
import time

import anyio
import httpx
import numpy as np
import pytest
from PIL import Image

from webserver import kcolors_server, multipart, open_request, photo_3mp, rss_bytes, tree_rss

pytestmark = pytest.mark.slow  # a real server under load: tens of seconds

REQUESTS, AT_ONCE = 50, 8
HANG_GUARD = 120  # seconds: only against a hang, never a measure of speed (the machine may be busy)


@pytest.fixture(scope="module")
def server():
    with kcolors_server() as url:
        yield url


def test_fifty_requests_eight_at_a_time_while_health_answers(server):
    rng = np.random.default_rng(5)  # a small noisy gradient: thousands of colours, quick to flatten
    y, x = np.mgrid[0:96, 0:128]
    image = np.clip(np.stack([x * 2, y * 2.5, x + y], axis=-1) + rng.integers(0, 8, (96, 128, 3)), 0, 255)
    image = image.astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    upload = buffer.getvalue()
    answers, health = {}, []

    async def compress(client, i, slots):
        k = 2 + i % 30
        async with slots:
            r = await client.post("/api/compress", files={"image": (f"load{i}.png", upload, "image/png")},
                                  data={"k": str(k)})
        answers[i] = (k, r)

    async def watch_health(client, done):
        while not done.is_set():
            r = await client.get("/api/health")
            health.append((r.status_code, r.json()["busy"]))
            await anyio.sleep(0.02)

    async def load():
        limits = httpx.Limits(max_connections=AT_ONCE + 1)
        async with httpx.AsyncClient(base_url=server, timeout=120, limits=limits) as client:
            done = anyio.Event()
            async with anyio.create_task_group() as outer:
                outer.start_soon(watch_health, client, done)
                slots = anyio.Semaphore(AT_ONCE)
                async with anyio.create_task_group() as tg:
                    for i in range(REQUESTS):
                        tg.start_soon(compress, client, i, slots)
                done.set()

    anyio.run(load)

    assert len(answers) == REQUESTS
    for i, (k, r) in answers.items():
        assert r.status_code == 200, (i, r.text)
        metrics = json.loads(r.headers["x-kcolors-metrics"])
        out = Image.open(io.BytesIO(r.content)).convert("RGB")
        assert out.size == (128, 96)
        assert metrics["k"] == k and metrics["input"] == f"load{i}.png"
        assert len(out.getcolors(1 << 16)) == metrics["colors_out"] <= k
    assert all(status == 200 for status, _ in health)
    assert any(busy > 0 for _, busy in health), "health never answered while images were being processed"


# ----------------------------------------------------------------------------- hostile load (issue #11)


def test_hostile_load_real_uploads_are_answered_and_memory_returns():
    """50 uploads of 3.5 MP at once, while 18 uploads stall and 4 heavy sweeps are abandoned after a second.

    Every answer to a real upload is 200, or 503 with Retry-After (then the upload is sent again after
    it, as a client should); none is left unanswered (a try may take up to HANG_GUARD seconds: the waits
    themselves are the benchmark's); all end with 200; and afterwards the server and its processes come
    back under twice their idle RSS (the README's 30 s is the benchmark's; here HANG_GUARD).
    """
    photo = photo_3mp()
    figures = {}
    with kcolors_server() as url:
        httpx.post(url + "api/compress", files={"image": ("w.png", _small_png(), "image/png")},
                   timeout=30).raise_for_status()  # the workers' zygote is warm
        while httpx.get(url + "api/health").json()["idle_workers"]:  # until the worker of that one stops
            time.sleep(0.5)
        idle = figures["idle_rss_mib"] = tree_rss(url.pid) / 2**20
        figures["server_idle_mib"] = rss_bytes({url.pid}) / 2**20
        peak = [idle]
        sampling = threading.Event()

        def sample():
            while not sampling.wait(0.2):
                peak[0] = max(peak[0], tree_rss(url.pid) / 2**20)

        threading.Thread(target=sample, daemon=True).start()
        stalled = [open_request(url.port, multipart(photo), length=len(photo) + 5000, send=1024)
                   for _ in range(18)]
        abandoned = [open_request(url.port, multipart(photo, [("k", "2-33"), ("format", "webp")]), path="/api/sweep")
                     for _ in range(4)]
        threading.Timer(1.0, lambda: [sock.close() for sock in abandoned]).start()  # the clients hang up
        attempts = []

        async def upload(client, i):
            while True:
                start = time.monotonic()
                r = await client.post("/api/compress", files={"image": (f"u{i}.jpg", photo, "image/jpeg")},
                                      data={"k": "16"})
                attempts.append((i, r.status_code, time.monotonic() - start, r.headers.get("retry-after")))
                if r.status_code != 503 or "retry-after" not in r.headers:
                    return
                await anyio.sleep(float(r.headers["retry-after"]))

        async def load():
            limits = httpx.Limits(max_connections=50)
            async with httpx.AsyncClient(base_url=url, timeout=HANG_GUARD, limits=limits) as c:
                async with anyio.create_task_group() as tg:
                    for i in range(50):
                        tg.start_soon(upload, c, i)

        started = time.monotonic()
        anyio.run(load)
        figures["uploads_s"] = time.monotonic() - started
        for sock in stalled:
            sock.close()
        finished = time.monotonic()
        figures["just_after_rss_mib"] = tree_rss(url.pid) / 2**20
        while tree_rss(url.pid) / 2**20 >= 2 * idle and time.monotonic() - finished < HANG_GUARD:
            time.sleep(0.5)
        sampling.set()
        figures["under_twice_idle_after_s"] = time.monotonic() - finished
        figures["after_rss_mib"] = tree_rss(url.pid) / 2**20
        figures["peak_rss_mib"] = peak[0]
        figures["server_after_mib"] = rss_bytes({url.pid}) / 2**20
    firsts = {}
    for i, status, _, _ in attempts:
        firsts.setdefault(i, status)
    seconds = sorted(t for _, _, t, _ in attempts)
    figures.update(attempts=len(attempts), first_200=sum(s == 200 for s in firsts.values()),
                   first_503=sum(s == 503 for s in firsts.values()), median_s=seconds[len(seconds) // 2],
                   max_s=seconds[-1])
    print("\nhostile load:", ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in figures.items()))
    for i, status, took, retry_after in attempts:
        assert status == 200 or (status == 503 and retry_after), (i, status)
    assert {i for i, status, _, _ in attempts if status == 200} == set(range(50))
    assert figures["after_rss_mib"] < 2 * idle, figures


def _small_png():
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()
