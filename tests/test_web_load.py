"""A bounded load test on loopback against a real `kcolors serve`: 50 requests, 8 at a time.

Every answer must be right (a PNG of at most its k colours, with matching figures), and
/api/health must keep answering while the images are being processed.
"""

import io
import json

import anyio
import httpx
import numpy as np
import pytest
from PIL import Image

from webserver import kcolors_server

REQUESTS, AT_ONCE = 50, 8


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
        assert metrics["k"] == k and metrics["name"] == f"load{i}.png"
        assert len(out.getcolors(1 << 16)) == metrics["colors_out"] <= k
    assert all(status == 200 for status, _ in health)
    assert any(busy > 0 for _, busy in health), "health never answered while images were being processed"
