"""One sweep: ``kcolors sweep`` and the web's ``/api/sweep`` make it with one function and one grammar for k."""

import io
import json
import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from kcolors.cli import build_parser
from kcolors.errors import UsageError
from kcolors.sweep import target_missed
from kcolors.table import parse_ks
from kcolors.web import Settings, create_app
from kcolors.web.jobs import SweepOptions

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(max_upload_bytes=200_000, max_pixels=100_000))) as c:
        yield c


def ramp(alpha=False):
    """A 24x16 colour ramp (384 colours); with ``alpha``, its left third fully transparent."""
    y, x = np.mgrid[0:16, 0:24]
    rgb = np.stack([x * 10, y * 15, (x + y) * 6], axis=-1).astype(np.uint8)
    if not alpha:
        return rgb
    return np.dstack([rgb, np.where(x < 8, 0, 255).astype(np.uint8)])


def saved(array, path):
    Image.fromarray(array).save(path)
    return path


def web_sweep(client, array, fields):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return client.post("/api/sweep", files={"image": ("ramp.png", buffer.getvalue(), "image/png")}, data=fields)


@pytest.mark.parametrize("fmt, alpha", [("gif", False), ("webp", False), ("gif", True)])
@pytest.mark.slow
def test_the_web_sweep_is_the_command_lines(client, tmp_path, fmt, alpha):
    """Same bytes from both: the CLI's encoders (frames, the GIF's last frame, transparency), not Pillow's save_all."""
    image = saved(ramp(alpha), tmp_path / "ramp.png")
    out = tmp_path / f"sweep.{fmt}"
    done = run_cli("sweep", image, "-k", "2-4", "--duration", "200", "--hold-last", "200", "-o", out, "-q")
    assert done.returncode == 0, done.stderr
    answer = web_sweep(client, ramp(alpha), {"k": "2-4", "duration": "200", "format": fmt})
    assert answer.status_code == 200, answer.text
    assert answer.content == out.read_bytes()


@pytest.mark.parametrize("text", ["15-2", "0-3", "a-b", "2-300", "2;4"])
def test_the_web_refuses_a_k_list_in_the_command_lines_words(client, text):
    with pytest.raises(UsageError) as refused:
        parse_ks(text)
    answer = web_sweep(client, ramp(), {"k": text})
    assert answer.status_code == 422 and answer.json()["error"] == str(refused.value)


def test_the_web_reads_k_lists_as_the_command_line_does(client):
    answer = web_sweep(client, ramp(), {"k": "2-3, 5"})
    assert [label.split(" (")[0] for label in json.loads(answer.headers["x-kcolors-frames"])] == \
        ["k = 2", "k = 3", "k = 5", "original"]


def test_the_web_keeps_its_frame_limit(client):
    answer = web_sweep(client, ramp(), {"k": "1-40"})
    assert answer.status_code == 422 and answer.json()["error"] == "k '1-40' makes 40 frames; at most 32"


def test_the_default_sweep_is_2_to_15_everywhere():
    """The seed's sweep, the web page's and the README's: k = 2..15."""
    cli_default = build_parser().parse_args(["sweep", "x.png"]).ks
    assert cli_default == parse_ks("2-15") == list(range(2, 16))
    assert SweepOptions().ks == tuple(range(2, 16))


def test_a_gif_sweep_shows_equal_frames_once(tmp_path):
    """As WebP and APNG do (their encoders merge them): k = 3, 4 and 5 of a three-colour image are the original."""
    three = np.zeros((12, 12, 3), np.uint8)
    three[:4], three[4:8] = (255, 0, 0), (0, 255, 0)
    out = tmp_path / "s.gif"
    done = run_cli("sweep", saved(three, tmp_path / "three.png"), "-k", "2-5", "--duration", "100",
                   "--hold-last", "1000", "-o", out, "-q")
    assert done.returncode == 0, done.stderr
    animation = Image.open(out)
    assert animation.n_frames == 2
    animation.seek(1)
    assert animation.info["duration"] == 3 * 100 + 1000
    assert (np.asarray(animation.convert("RGB")) == three).all()


def test_target_missed_takes_the_targets_as_values():
    """The library never sees argparse's Namespace."""
    from kcolors import quantize

    result = quantize(ramp(), 2)
    message = target_missed(result, target_delta_e=0.5)
    assert "even 2 colours miss the target: mean ΔE2000" in message and "(target at most 0.5)" in message
    assert "PSNR" in target_missed(result, target_psnr=90.0)
