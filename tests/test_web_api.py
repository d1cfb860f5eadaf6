"""The HTTP API of `kcolors serve`, through Starlette's TestClient: answers and every refusal."""

import io
import json
import re
import struct
import tempfile
import threading
import warnings
import zlib

import anyio
import httpx
import numpy as np
import pytest
from PIL import Image

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; httpx is what the project installs
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from conftest import run_cli
from kcolors.web import Settings, create_app
from kcolors.web import app as web_app
from kcolors.web import upload


def png_bytes(array, **save):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG", **save)
    return buffer.getvalue()


@pytest.fixture
def photo(gradient):
    return png_bytes(gradient)


@pytest.fixture
def client():
    with TestClient(create_app(Settings(max_upload_bytes=200_000, max_pixels=100_000))) as c:
        yield c


def post(client, data, fields=None, name="photo.png", path="/api/compress"):
    return client.post(path, files={"image": (name, data, "image/png")}, data=fields or {})


def error_of(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == status
    return body["error"]


def colours(data):
    return len(Image.open(io.BytesIO(data)).convert("RGB").getcolors(1 << 24))


# ----------------------------------------------------------------------------- success


@pytest.mark.slow
def test_compress_answers_an_indexed_png_and_its_figures(client, photo, gradient):
    r = post(client, photo, {"k": "6", "space": "oklab", "dither": "off"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"] == 'inline; filename="photo-k6.png"'
    image = Image.open(io.BytesIO(r.content))
    assert image.mode == "P" and image.size == (64, 48)
    assert colours(r.content) <= 6
    m = json.loads(r.headers["x-kcolors-metrics"])
    assert (m["k"], m["space"], m["width"], m["height"], m["input"]) == (6, "oklab", 64, 48, "photo.png")
    assert m["bytes_in"] == len(photo) and m["bytes_out"] == len(r.content)
    assert m["colors_out"] == len(m["palette"]) == len(m["shares"]) == colours(r.content)
    assert m["colors_in"] == len(np.unique(gradient.reshape(-1, 3), axis=0))
    assert abs(sum(m["shares"]) - 1) < 1e-4 and m["psnr"] > 15 and m["delta_e"] > 0
    # the palette in the header is the palette of the PNG
    assert {tuple(int(h[i:i + 2], 16) for i in (1, 3, 5)) for h in m["palette"]} == \
        {c for _, c in Image.open(io.BytesIO(r.content)).convert("RGB").getcolors()}


def test_the_same_as_the_library(client, photo):
    import kcolors
    from kcolors.encode import encode

    r = post(client, photo, {"k": "5", "dither": "0.5", "seed": "3"})
    expected = kcolors.quantize(photo, 5, dither=0.5, seed=3)
    assert r.content == encode(expected, "PNG")


def test_defaults_and_lossless(client):
    few = np.zeros((8, 8, 3), np.uint8)
    few[:4] = (200, 10, 10)
    r = post(client, png_bytes(few))
    m = json.loads(r.headers["x-kcolors-metrics"])
    assert (m["k"], m["space"], m["dither"], m["colors_out"], m["psnr"]) == (16, "blend", 0.0, 2, None)


@pytest.mark.parametrize("word, strength", [("on", 1.0), ("true", 1.0), ("OFF", 0.0), ("", 0.0), ("0.25", 0.25)])
def test_dither_words(client, photo, word, strength):
    r = post(client, photo, {"k": "4", "dither": word})
    assert json.loads(r.headers["x-kcolors-metrics"])["dither"] == strength


def test_json_variant(client, photo):
    import base64

    r = post(client, photo, {"k": "3"}, path="/api/compress.json")
    assert r.status_code == 200
    body = r.json()
    png = base64.b64decode(body["png_base64"])
    assert png == post(client, photo, {"k": "3"}).content
    assert body["metrics"]["k"] == 3 and body["metrics"]["bytes_out"] == len(png)


def test_transparency_is_kept(client):
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = np.arange(10) * 25
    rgba[:5, :, 3] = 255
    r = post(client, png_bytes(rgba), {"k": "3"})
    out = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))
    assert (out[5:, :, 3] == 0).all() and (out[:5, :, 3] == 255).all()


@pytest.mark.parametrize("fmt", ["gif", "webp"])
@pytest.mark.slow
def test_sweep_is_an_animation_of_each_k_then_the_original(client, photo, gradient, fmt):
    r = post(client, photo, {"format": fmt, "duration": "200"}, path="/api/sweep")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == f"image/{fmt}"
    labels = json.loads(r.headers["x-kcolors-frames"])
    assert labels[0].startswith("k = 2 ") and labels[-2].startswith("k = 15 ") and labels[-1] == "original"
    animation = Image.open(io.BytesIO(r.content))
    assert animation.n_frames == 15  # k = 2..15, then the original
    counts = []
    for i in range(animation.n_frames):
        animation.seek(i)
        frame = animation.convert("RGB")
        counts.append(len(frame.getcolors(1 << 24)))
        if i < 14:
            assert counts[-1] <= i + 2
        assert animation.info["duration"] == 200
    assert counts[-1] > 15
    if fmt == "webp":  # lossless: the last frame is the original itself
        assert (np.asarray(frame) == gradient).all()


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_sweep_shows_equal_frames_once(client, fmt):
    """A three-colour image: every k from 3 on gives the image itself, shown once for all of them."""
    three = np.zeros((20, 20, 3), np.uint8)
    three[:7] = (255, 0, 0)
    three[7:14] = (0, 255, 0)
    r = post(client, png_bytes(three), {"format": fmt, "duration": "100"}, path="/api/sweep")
    assert json.loads(r.headers["x-kcolors-frames"]) == ["k = 2 (2 colours)", "k = 3-15 (3 colours) = original"]
    animation = Image.open(io.BytesIO(r.content))
    assert animation.n_frames == 2
    animation.seek(1)
    assert (np.asarray(animation.convert("RGB")) == three).all()
    if fmt == "gif":
        assert animation.info["duration"] == 100 * 14


def test_sweep_list_and_scaling(client, photo):
    r = post(client, photo, {"k": "2,4, 8", "max_side": "32"}, path="/api/sweep")
    animation = Image.open(io.BytesIO(r.content))
    assert animation.n_frames == 4 and animation.size == (32, 24)
    assert json.loads(r.headers["x-kcolors-frames"])[:3] == ["k = 2 (2 colours)", "k = 4 (4 colours)",
                                                            "k = 8 (8 colours)"]


def test_health_openapi_and_page(client):
    health = client.get("/api/health").json()
    assert health["status"] == "ok"
    assert health["limits"]["max_upload_bytes"] == 200_000 and health["limits"]["max_pixels"] == 100_000
    assert health["limits"]["max_frames"] == 1000
    spec = client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert {"/api/compress", "/api/compress.json", "/api/sweep", "/api/health"} <= set(spec["paths"])
    routes = {route.path for route in client.app.routes if route.path.startswith("/api")}
    assert routes == set(spec["paths"])  # every API route is described
    for code in ("400", "413", "415", "422", "503"):
        assert code in spec["paths"]["/api/compress"]["post"]["responses"]
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in page.text and client.get(asset).status_code == 200
    assert "http://" not in page.text and "https://" not in page.text  # nothing from the internet
    assert "https://" not in client.get("/static/app.js").text


def test_the_advertised_api_address_answers(client):
    """`kcolors serve` prints URL/api: it lists the endpoints (from the OpenAPI document) and where that is."""
    r = client.get("/api")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["openapi"] == "/api/openapi.json" and client.get(body["openapi"]).status_code == 200
    listed = {(e["method"], e["path"]) for e in body["endpoints"]}
    assert {("POST", "/api/compress"), ("POST", "/api/sweep"), ("GET", "/api/health"), ("GET", "/api")} <= listed
    assert all(e["summary"] for e in body["endpoints"])
    assert client.get("/api/", follow_redirects=True).json() == body


def test_the_sample_photo_is_served(client):
    from kcolors.sample import sample_path

    r = client.get("/sample.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content == sample_path().read_bytes()
    assert 'href="/api"' in client.get("/").text  # the page links the API's index


def test_kept_colours_are_in_the_palette_exactly(client, photo):
    import kcolors
    from kcolors.encode import encode

    r = post(client, photo, {"k": "4", "keep": " #FFFFFF, #ff0000 "})
    assert r.status_code == 200, r.text
    palette = json.loads(r.headers["x-kcolors-metrics"])["palette"]
    assert len(palette) <= 4 and {"#ffffff", "#ff0000"} <= set(palette)
    assert r.content == encode(kcolors.quantize(photo, 4, keep=["#ffffff", "#ff0000"]), "PNG")
    assert post(client, photo, {"k": "4", "keep": ""}).content == post(client, photo, {"k": "4"}).content
    spec = client.get("/api/openapi.json").json()
    assert "keep" in spec["paths"]["/api/compress"]["post"]["requestBody"]["content"]["multipart/form-data"][
        "schema"]["properties"]


def test_each_dither_method_is_accepted_and_differs(client, photo):
    from kcolors.options import DITHER_METHODS

    images = {}
    for method in DITHER_METHODS:
        r = post(client, photo, {"k": "4", "dither_method": method})
        assert r.status_code == 200, r.text
        m = json.loads(r.headers["x-kcolors-metrics"])
        assert (m["dither"], m["dither_method"]) == (1.0, method)  # a method alone dithers at full strength
        images[method] = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
    plain = np.asarray(Image.open(io.BytesIO(post(client, photo, {"k": "4"}).content)).convert("RGB"))
    pictures = [plain, *images.values()]
    for i, a in enumerate(pictures):
        for b in pictures[i + 1:]:
            assert (a != b).any()
    # dither=on without a method is the selective one; a method with dither=off does not dither
    assert post(client, photo, {"k": "4", "dither": "on"}).content == \
        post(client, photo, {"k": "4", "dither_method": "selective"}).content
    r = post(client, photo, {"k": "4", "dither": "off", "dither_method": "fs"})
    assert r.content == post(client, photo, {"k": "4"}).content
    half = json.loads(post(client, photo, {"k": "4", "dither": "0.5", "dither_method": "ordered"})
                      .headers["x-kcolors-metrics"])
    assert (half["dither"], half["dither_method"]) == (0.5, "ordered")


@pytest.mark.slow
def test_sweeps_dither_ordered_unless_told(client, photo):
    import kcolors
    from kcolors.options import Dither

    def first_frame(fields):
        r = post(client, photo, {"k": "4,5", "format": "webp", **fields}, path="/api/sweep")
        assert r.status_code == 200, r.text
        return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))

    def expected(dither):
        return np.asarray(kcolors.quantize(photo, 4, dither=dither).image.convert("RGB"))

    assert (first_frame({"dither": "on"}) == expected(Dither(1.0, "ordered"))).all()
    assert (first_frame({"dither": "on", "dither_method": "fs"}) == expected(Dither(1.0, "fs"))).all()
    assert (first_frame({"dither_method": "selective"}) == expected(1.0)).all()
    effortless = np.asarray(kcolors.quantize(photo, 4, effort=1).image.convert("RGB"))
    assert (first_frame({"effort": "1"}) == effortless).all()  # a sweep's frame at a level is compress's
    assert error_of(post(client, photo, {"dither_method": "x"}, path="/api/sweep"), 422) == \
        "dither_method must be one of selective, fs, ordered, not 'x'"


def test_serve_prints_addresses_that_open():
    """A wildcard address is no place to browse to: loopback's is printed, and the network's separately."""
    import socket

    from kcolors.commands.serve import network_urls, url_of

    with socket.socket() as wildcard, socket.socket() as loopback:
        wildcard.bind(("0.0.0.0", 0))
        loopback.bind(("127.0.0.1", 0))
        port = wildcard.getsockname()[1]
        assert url_of(wildcard) == f"http://127.0.0.1:{port}/"
        others = network_urls(wildcard)
        assert others and all(u.startswith("http://") and u.endswith(f":{port}/") for u in others)
        assert not any("0.0.0.0" in u or "127.0.0.1" in u for u in others)
        assert url_of(loopback) == f"http://127.0.0.1:{loopback.getsockname()[1]}/"
        assert network_urls(loopback) == []


# ----------------------------------------------------------------------------- refusals


def test_oversized_upload_is_413(client):
    big = b"\x89PNG" + bytes(300_000)
    message = error_of(post(client, big), 413)
    assert "over the limit of" in message and "MB" in message


def test_oversized_by_content_length_is_refused_before_reading():
    settings = Settings(max_upload_bytes=1000)
    app = create_app(settings)

    async def exchange():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kcolors") as c:
            return await c.post("/api/compress", content=b"x" * 100_000,
                                headers={"content-type": "multipart/form-data; boundary=zz"})

    r = anyio.run(exchange)
    assert r.status_code == 413 and "0.1 MB" in r.json()["error"]


def test_not_an_image_is_415(client):
    assert error_of(post(client, b"plain text, no pixels", name="notes.txt"), 415) == \
        "notes.txt: not an image in a format kcolors reads (PNG, JPEG, GIF, WEBP, AVIF, TIFF, BMP, ICO, PPM)"


def test_truncated_image_is_400(client, photo):
    message = error_of(post(client, photo[: len(photo) // 2]), 400)
    assert message.startswith("photo.png: damaged or truncated image")


def test_empty_file_is_400(client):
    assert error_of(post(client, b""), 400) == "photo.png: empty file, not an image"


def test_decompression_bomb_is_413(client):
    """A PNG whose header claims 1,000,000 x 1,000 pixels: refused from the header, before decoding."""
    bomb = png_bytes(np.zeros((1, 1, 3), np.uint8))
    header = struct.pack(">IIBBBBB", 1_000_000, 1000, 8, 2, 0, 0, 0)
    ihdr = b"IHDR" + header
    bomb = bomb[:8] + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + bomb[33:]
    message = error_of(post(client, bomb, name="bomb.png"), 413)
    assert message == ("bomb.png: 1000000x1000 is 1,000,000,000 pixels, over the limit of 100,000 "
                       "(kcolors serve --max-pixels raises it)")


def test_an_image_over_the_pixel_limit_is_413(client):
    message = error_of(post(client, png_bytes(np.zeros((400, 400, 3), np.uint8))), 413)
    assert "160,000 pixels, over the limit of 100,000" in message


@pytest.mark.parametrize("fields, message", [
    ({"k": "0"}, "k must be between 1 and 256, not 0"),
    ({"k": "257"}, "k must be between 1 and 256, not 257"),
    ({"k": "eight"}, "k must be a whole number, not 'eight'"),
    ({"k": "2.5"}, "k must be a whole number, not '2.5'"),
    ({"space": "hsv"}, "space must be one of blend, rgb, lab, oklab, din99, not 'hsv'"),
    ({"dither": "maybe"}, "dither must be on, off or a strength from 0 to 1, not 'maybe'"),
    ({"dither": "1.5"}, "dither strength must be between 0 and 1, not 1.5"),
    ({"dither": "nan"}, "dither strength must be between 0 and 1, not nan"),
    ({"seed": "-1"}, "seed must be a whole number from 0 to 4,294,967,295, not -1"),
    ({"colors": "8"}, "unknown field 'colors'; the fields are image, k, space, dither, dither_method, effort, seed, keep, "
                      "regions, target_delta_e, target_psnr, engine, palette, skip_if_larger, max_pixels, max_frames, max_input_bytes, "
                      "output, force, palette_out, json, quiet, strips, scheduler"),  # the last refused, with a reason
    ({"regions": "maybe"}, "regions must be on or off, not 'maybe'"),
    ({"effort": "11"}, "effort must be a whole number from 1 to 10, not 11"),
    ({"regions": "on", "dither": "on"}, "regions does not apply with dithering: a dithered region keeps its mean colour"),
    ({"keep": "#ffffff,blue"}, "keep: 'blue' is not a colour (#rrggbb, #rrggbbaa, or 3 or 4 integers 0-255)"),
    ({"k": "2", "keep": "#ffffff,#000000,#ff0000"}, "keep has 3 colours but k is 2: kept colours count within k"),
    ({"dither_method": "atkinson"}, "dither_method must be one of selective, fs, ordered, not 'atkinson'"),
])
def test_bad_fields_are_422(client, photo, fields, message):
    assert error_of(post(client, photo, fields), 422) == message


@pytest.mark.parametrize("fields, message", [
    ({"k": "15-2"}, "k range '15-2' goes down; write it smallest first (2-15)"),  # the command line's words
    ({"k": "1-100"}, "k '1-100' makes 100 frames; at most 32"),
    ({"k": "0-3"}, "k range '0-3': k must be between 1 and 256"),
    ({"k": "a-b"}, "k range 'a-b': write a range like 2-15 or a list like 2,4,8,16"),
    ({"format": "mp4"}, "format must be gif or webp, not 'mp4'"),
    ({"duration": "5"}, "duration must be between 20 and 10000, not 5"),
    ({"effort": "0"}, "effort must be a whole number from 1 to 10, not 0"),  # compress's words
    ({"effort": "fast"}, "effort must be a whole number, not 'fast'"),
])
def test_bad_sweep_fields_are_422(client, photo, fields, message):
    assert error_of(post(client, photo, fields, path="/api/sweep"), 422) == message


def test_missing_or_wrong_parts(client, photo):
    assert error_of(client.post("/api/compress", data={"k": "4"}), 415).startswith("send the image as multipart")
    assert error_of(client.post("/api/compress", files={"k": (None, "4")}), 422) == \
        "missing field 'image': choose an image file to upload"
    assert error_of(client.post("/api/compress", files={"image": (None, "text")}), 422) == \
        "field 'image' must be a file, not text"
    assert error_of(client.post("/api/compress", content=b"{}", headers={"content-type": "application/json"}),
                    415).startswith("send the image as multipart")
    assert error_of(client.get("/api/compress"), 405) == "GET is not allowed on /api/compress"
    assert error_of(client.get("/api/nothing"), 404) == "no such page: /api/nothing"


def test_a_hostile_file_name_is_tamed(client, photo):
    r = post(client, photo, {"k": "2"}, name='../../etc/"x"\r\nSet-Cookie: a=b.png')
    assert r.status_code == 200
    name = json.loads(r.headers["x-kcolors-metrics"])["input"]
    assert re.fullmatch(r"[A-Za-z0-9._ +()-]+\.png", name) and "set-cookie" not in r.headers
    assert r.headers["content-disposition"] == f'inline; filename="{name[:-4]}-k2.png"'
    assert upload.safe_name('C:\\photos\\"a"\r\nb.png') == "_a___b.png"
    assert upload.safe_name("") == upload.safe_name("..") == "image"


@pytest.mark.slow
def test_nothing_is_written_to_disk(photo, tmp_path, monkeypatch):
    """Uploads above the multipart parser's usual 1 MB spool size stay in memory: no temporary file is made."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    made = []
    for name in ("TemporaryFile", "NamedTemporaryFile", "mkstemp", "mkdtemp"):
        real = getattr(tempfile, name)
        monkeypatch.setattr(tempfile, name,
                            lambda *a, _real=real, _name=name, **k: made.append(_name) or _real(*a, **k))
    noisy = np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    big = png_bytes(noisy)
    assert len(big) > 1024 * 1024
    with TestClient(create_app()) as c:
        assert post(c, big, {"k": "4"}).status_code == 200
        assert error_of(post(c, big[:-5000]), 400)
        assert post(c, photo, path="/api/sweep").status_code == 200
    assert made == [] and list(folder.iterdir()) == []


# ----------------------------------------------------------------------------- load


def test_excess_load_gets_503_with_retry_after(photo, monkeypatch):
    """One worker, no queue: while it is busy a second request is turned away, and health still answers."""
    started, release = threading.Event(), threading.Event()
    real = web_app.workers.Pool.run

    async def slow(self, *args, **kwargs):  # the job runs in a worker process: hold it back in the server
        started.set()
        await anyio.to_thread.run_sync(release.wait, 30)
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(web_app.workers.Pool, "run", slow)
    app = create_app(Settings(concurrency=1, queue=0, retry_after=3))

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kcolors", timeout=60) as c:
            files = {"image": ("p.png", photo, "image/png")}
            async with anyio.create_task_group() as tg:
                answers = {}

                async def first():
                    answers["first"] = await c.post("/api/compress", files=files, data={"k": "3"})

                tg.start_soon(first)
                await anyio.to_thread.run_sync(started.wait, 30)
                answers["second"] = await c.post("/api/compress", files=files, data={"k": "3"})
                answers["health"] = await c.get("/api/health")
                release.set()
            return answers

    answers = anyio.run(scenario)
    assert answers["first"].status_code == 200
    assert error_of(answers["second"], 503).startswith("the server is busy")
    assert answers["second"].headers["retry-after"] == "3"
    assert answers["health"].json()["busy"] == 1


# ----------------------------------------------------------------------------- the command


@pytest.mark.slow
def test_serve_refuses_bad_options():
    r = run_cli("serve", "--port", "70000")
    assert r.returncode == 2 and b"--port: must be a port between 0 and 65535, not 70000" in r.stderr
    r = run_cli("serve", "--max-upload-mb", "0")
    assert r.returncode == 2 and b"--max-upload-mb: must be above 0 MB, not 0" in r.stderr
    r = run_cli("serve", "--concurrency", "0")
    assert r.returncode == 2 and b"must be at least 1, not 0" in r.stderr
    r = run_cli("serve", "--host", "no-such-host.invalid")
    assert r.returncode == 2 and r.stderr.startswith(b"kcolors: --host no-such-host.invalid: unknown address")
    assert b"Traceback" not in r.stderr


@pytest.mark.slow
def test_serve_refuses_a_port_in_use():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = run_cli("serve", "--port", port)
    assert r.returncode == 2
    assert r.stderr.decode().strip() == (f"kcolors: cannot listen on 127.0.0.1:{port}: Address already in use; "
                                         f"choose another with --port")


def test_the_page_offers_every_space_and_selects_the_default():
    """The page's colour-space menu is written by hand: it must offer the table's spaces, the default selected."""
    import re
    from importlib.resources import files

    from kcolors.colorspace import DEFAULT_SPACE, SPACES

    page = (files("kcolors.web") / "static" / "index.html").read_text()
    menu = page[page.index('<select id="space"'):page.index("</select>", page.index('<select id="space"'))]
    assert re.findall(r'<option value="(\w+)"', menu) and set(re.findall(r'<option value="(\w+)"', menu)) == set(SPACES)
    assert re.findall(r'<option value="(\w+)" selected', menu) == [DEFAULT_SPACE]
