"""The options table is the truth: built from kcolors.table.OPTIONS, not from a hand list.

Every option of `compress` is taken by batch and by the web API, or refused there with the table's reason;
neither argparse nor the web form takes an option the table lacks.
"""

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from kcolors.cli import build_parser, main
from kcolors.table import OPTIONS, TABLE

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; httpx is what the project installs
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

COMPRESS = [o for o in OPTIONS if "compress" in o.commands]
# a value each option takes, for the checks below: a row added to the table without one fails here
SAMPLES = {"k": "4", "space": "lab", "dither": "0.5", "dither_method": "fs", "engine": "simple", "seed": "3",
           "keep": "#ffffff", "effort": "5", "palette": "p.gpl", "target_delta_e": "20", "target_psnr": "15", "max_pixels": "10000",
           "max_frames": "5", "max_input_bytes": "10", "output": "out.png", "palette_out": "p.gpl",
           "scheduler": "tcp://127.0.0.1:1"}


def flags_of(command):
    """Every option string argparse takes for ``command`` (but -h)."""
    parser = build_parser((command,))
    sub = next(a for a in parser._actions if a.choices and command in a.choices).choices[command]
    return {flag for action in sub._actions for flag in action.option_strings} - {"-h", "--help"}


@pytest.mark.parametrize("command", ["compress", "batch"])
def test_argparse_takes_no_option_the_table_lacks(command):
    known = {flag for option in OPTIONS for flag in option.flags}
    assert flags_of(command) <= known, sorted(flags_of(command) - known)


def test_the_web_form_takes_no_field_the_table_lacks():
    from kcolors.web.jobs import COMPRESS_FIELDS

    assert set(COMPRESS_FIELDS) <= set(TABLE)


@pytest.mark.parametrize("option", COMPRESS, ids=lambda o: o.name)
def test_every_option_of_compress_is_a_decision_for_batch_and_the_web(option):
    for front_end in ("batch", "web"):
        taken = front_end in option.commands and option.reason(front_end) is None
        assert taken or option.reason(front_end), f"{option.name}: {front_end} neither takes it nor says why"


@pytest.mark.parametrize("option", COMPRESS, ids=lambda o: o.name)
def test_batch_takes_each_option_of_compress_or_gives_the_table_s_reason(option, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    Image.new("RGB", (8, 6), (10, 200, 30)).save(tmp_path / "in" / "a.png")
    given = [option.flags[-1]] + ([] if option.flag else [SAMPLES[option.name]])
    if option.name == "output":  # batch's -o names its folder
        given = ["-o", str(tmp_path / "out")]
    if option.reason("batch"):
        with pytest.raises(SystemExit) as stopped:
            main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *given])
        assert stopped.value.code == 2 and option.reason("batch") in capsys.readouterr().err
    else:
        parsed = build_parser(("batch",)).parse_known_args(["batch", str(tmp_path / "in"), "-o", "x", *given])
        assert not parsed[1], f"batch does not take {given}"


def png(size=(12, 8)):
    buffer = io.BytesIO()
    rgb = (np.arange(size[0] * size[1] * 3).reshape(size[1], size[0], 3) * 7 % 256).astype(np.uint8)
    Image.fromarray(rgb).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client():
    from kcolors.web import Settings, create_app

    with TestClient(create_app(Settings(concurrency=1))) as c:
        yield c


@pytest.mark.parametrize("option", COMPRESS, ids=lambda o: o.name)
@pytest.mark.slow
def test_the_web_api_takes_each_option_of_compress_or_gives_the_table_s_reason(option, client):
    value = "on" if option.flag else SAMPLES[option.name]
    fields = {option.name: value, **({"k": "4"} if option.name.startswith("target") else {})}
    r = client.post("/api/compress", files={"image": ("a.png", png(), "image/png")}, data=fields)
    if option.reason("web"):
        assert r.status_code == 422 and option.reason("web") in r.json()["error"], r.text
    else:
        assert r.status_code == 200, r.text
