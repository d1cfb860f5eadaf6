"""The job layer (kcolors.job): one source flattened with one Options record, the same through `compress`,
batch and the web API; animated input keeps every frame and its timing everywhere."""

import io
import json
import warnings

import numpy as np
import pytest
from PIL import Image, ImageSequence

from conftest import run_cli
from kcolors.errors import UsageError
from kcolors.job import flatten, flatten_file
from kcolors.options import Options

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; httpx is what the project installs
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

DURATIONS = [70, 130, 200]
FORMATS = {"GIF": ("gif", "image/gif"), "WEBP": ("webp", "image/webp"), "PNG": ("png", "image/png")}


def animation_bytes(fmt):
    """Three frames of 24x16, each of its own colours, with their own durations."""
    frames = []
    for i in range(3):
        y, x = np.mgrid[0:16, 0:24]
        rgb = np.stack([(x * 10 + i * 60) % 256, (y * 15) % 256, np.full_like(x, 40 * i)], -1).astype(np.uint8)
        frames.append(Image.fromarray(rgb, "RGB"))
    buffer = io.BytesIO()
    extra = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=DURATIONS, loop=0, **extra)
    return buffer.getvalue()


def timing(data):
    """(Pillow format, number of frames, their durations) of an animation's bytes."""
    im = Image.open(io.BytesIO(data))
    durations = []
    for frame in ImageSequence.Iterator(im):
        frame.load()  # WebP gives the duration once decoded
        durations.append(frame.info.get("duration"))
    return im.format, len(durations), durations


@pytest.mark.parametrize("fmt", FORMATS)
def test_flatten_keeps_an_animation_in_its_own_container(fmt):
    stream = io.BytesIO(animation_bytes(fmt))
    stream.name = f"movie.{FORMATS[fmt][0]}"
    from kcolors.inputs import open_input

    with open_input(stream) as opened:
        flat = flatten(opened, Options(k=4).check())
    assert (flat.fmt, flat.frames) == (fmt, 3)
    assert timing(flat.data) == (fmt, 3, DURATIONS)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.slow
def test_compress_keeps_every_frame_and_its_timing(tmp_path, fmt):
    ext = FORMATS[fmt][0]
    (tmp_path / f"movie.{ext}").write_bytes(animation_bytes(fmt))
    proc = run_cli(tmp_path / f"movie.{ext}", "-k", "4", "-o", tmp_path / f"out.{ext}", "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    assert timing((tmp_path / f"out.{ext}").read_bytes()) == (fmt, 3, DURATIONS)


def batch_of_one_animation(tmp_path, fmt, *runner):
    ext = FORMATS[fmt][0]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / f"movie.{ext}").write_bytes(animation_bytes(fmt))
    proc = run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", "-k", "4", "-q", *runner)
    assert proc.returncode == 0, proc.stderr.decode()
    (output,) = (tmp_path / "out").rglob("movie*")
    return timing(output.read_bytes())


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.slow
def test_batch_on_dask_keeps_every_frame_and_its_timing(tmp_path, fmt, cluster):
    _, frames, durations = batch_of_one_animation(tmp_path, fmt, "--scheduler", cluster.scheduler_address)
    assert (frames, durations) == (3, DURATIONS)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.slow
def test_batch_keeps_every_frame_and_its_timing(tmp_path, fmt):
    _, frames, durations = batch_of_one_animation(tmp_path, fmt, "-j", "1")  # WebP becomes an APNG (--format keep)
    assert (frames, durations) == (3, DURATIONS)


@pytest.fixture(scope="module")
def client():
    from kcolors.web import Settings, create_app

    with TestClient(create_app(Settings(concurrency=1))) as c:
        yield c


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.slow
def test_the_web_api_answers_an_animation_in_its_own_container(client, fmt):
    ext, media_type = FORMATS[fmt]
    r = client.post("/api/compress", files={"image": (f"movie.{ext}", animation_bytes(fmt), media_type)},
                    data={"k": "4"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == media_type
    assert f'filename="movie-k4.{ext}"' in r.headers["content-disposition"]
    assert timing(r.content) == (fmt, 3, DURATIONS)
    metrics = json.loads(r.headers["x-kcolors-metrics"])
    assert (metrics["input"], metrics["frames"]) == (f"movie.{ext}", 3)


@pytest.mark.slow
def test_the_web_api_says_when_a_quality_target_is_missed(client, photo):
    met = client.post("/api/compress", files={"image": ("p.png", photo.read_bytes(), "image/png")},
                      data={"target_psnr": "20"})
    missed = client.post("/api/compress", files={"image": ("p.png", photo.read_bytes(), "image/png")},
                         data={"target_delta_e": "0.0001"})
    assert met.status_code == missed.status_code == 200
    assert "target_missed" not in json.loads(met.headers["x-kcolors-metrics"])
    assert "even 256 colours miss the target" in json.loads(missed.headers["x-kcolors-metrics"])["target_missed"]


@pytest.mark.slow
def test_compress_makes_the_folder_of_o_folder(tmp_path, photo):
    proc = run_cli(photo, "-k", "4", "-o", f"{tmp_path}/new/deeper/", "-q")
    assert proc.returncode == 0 and (tmp_path / "new" / "deeper" / "photo-k4.png").is_file(), proc.stderr


@pytest.mark.slow
def test_a_quality_target_s_folder_that_cannot_be_made_names_no_k(tmp_path, photo):
    (tmp_path / "file").write_bytes(b"")
    proc = run_cli(photo, "--target-delta-e", "0.3", "-o", f"{tmp_path}/file/tde/")
    line = proc.stderr.decode()
    assert proc.returncode == 5 and "file/tde: cannot create the output folder" in line and "-k16" not in line


def test_flatten_file_writes_the_image_and_its_palette(tmp_path, photo):
    flat = flatten_file(photo, tmp_path / "out.png", Options(k=3).check(), palette_out=tmp_path / "p.gpl")
    assert (tmp_path / "out.png").read_bytes() == flat.data and flat.result.k == 3
    assert (tmp_path / "p.gpl").read_text().startswith("GIMP Palette")


def test_flatten_file_writes_a_target_s_output_under_the_name_given_before_the_search(tmp_path, photo):
    flat = flatten_file(photo, tmp_path / "photo-psnr20.png", Options(target_psnr=20).check())
    assert flat.output == tmp_path / "photo-psnr20.png" and flat.output.is_file() and flat.result.k >= 1


def test_skip_if_larger_writes_nothing(tmp_path):
    Image.new("RGB", (64, 48), (200, 30, 30)).save(tmp_path / "flat.png")  # a few hundred bytes; a BMP is 3 KB
    flat = flatten_file(tmp_path / "flat.png", tmp_path / "out.bmp", Options(k=2, skip_if_larger=True).check())
    assert flat.larger and not (tmp_path / "out.bmp").exists()


@pytest.mark.parametrize("options, message", [
    (dict(k=0), "k must be between 1 and 256, not 0"),
    (dict(seed=-1), "seed must be a whole number"),
    (dict(target_psnr=0), "target_psnr must be a number of dB above 0"),
    (dict(keep="#ffffff", target_psnr=30), "keep does not apply with a quality target"),
    (dict(keep="#ffffff", engine="simple"), "keep works with the fast engine only"),
    (dict(max_frames=0), "max_frames must be a whole number, at least 1"),
])
@pytest.mark.slow
def test_one_check_names_the_option(options, message):
    with pytest.raises(UsageError, match=message):
        Options(**options).check()
