"""--regions: small areas whose colour the fit gave away get palette entries of their own (kcolors.regions)."""

import numpy as np
import pytest
from conftest import one_error_line, run_cli
from PIL import Image

import kcolors
from kcolors import regions
from kcolors.colorspace import rgb2lab
from kcolors.errors import UsageError
from kcolors.io import load_image
from kcolors.metrics import ciede2000

GREEN = (20, 190, 40)


@pytest.fixture
def helmet(wheels):
    """The wheels crop (red fenders, tyres, spokes: no green) with a small green patch, 0.5% of it."""
    rgb = np.array(Image.open(wheels).convert("RGB"))
    rgb[60:75, 100:115] = GREEN
    return rgb


def nearest_de(palette, colour):
    return float(ciede2000(rgb2lab(np.array([colour], float)), rgb2lab(palette[:, :3].astype(float))).min())


def test_a_small_area_of_its_own_colour_gets_an_entry(helmet):
    plain = kcolors.quantize(helmet, 6)
    assert nearest_de(plain.palette, GREEN) > 20  # lost: its pixels took a colour of the fenders or tyres
    worst, colours = regions.lost_regions(load_image(helmet), plain)
    assert worst > 20 and nearest_de(np.array(colours[:1]), GREEN) < 2  # found, and it is the worst
    repaired = kcolors.quantize(helmet, 6, regions=True)
    assert len(repaired.palette) <= 6
    assert nearest_de(repaired.palette, GREEN) < 5
    assert regions.lost_regions(load_image(helmet), repaired)[0] < worst
    assert repaired.labels[67, 107] == np.argmin(np.abs(repaired.palette.astype(int) - GREEN).sum(axis=1))


def test_nothing_lost_leaves_the_fit_alone():
    img = np.zeros((40, 60, 3), np.uint8)
    img[:, 20:] = (200, 30, 30)
    img[:, 40:] = (30, 30, 200)
    result = kcolors.quantize(img, 3)
    assert regions.lost_regions(load_image(img), result) == (0.0, [])
    again = kcolors.quantize(img, 3, regions=True)
    assert np.array_equal(again.palette, result.palette) and np.array_equal(again.labels, result.labels)


def test_kept_colours_stay_kept(helmet):
    result = kcolors.quantize(helmet, 6, regions=True, keep=["#ffffff"])
    assert [255, 255, 255] in result.palette.tolist() and len(result.palette) <= 6
    assert nearest_de(result.palette, GREEN) < 5


def test_an_image_with_transparency_is_flattened_as_without_it(helmet):
    rgba = np.dstack([helmet, np.full(helmet.shape[:2], 255, np.uint8)])
    rgba[:10, :10, 3] = 0
    with_it = kcolors.quantize(rgba, 6, regions=True)
    without = kcolors.quantize(rgba, 6)
    assert np.array_equal(with_it.palette, without.palette) and np.array_equal(with_it.labels, without.labels)


def test_the_groups_do_not_depend_on_the_band(helmet, monkeypatch):
    picture, result = load_image(helmet), kcolors.quantize(helmet, 6)
    whole = regions._groups(picture, result)
    monkeypatch.setattr(regions, "BAND_PIXELS", 1)  # a band of one row of cells
    banded = regions._groups(picture, result)
    for a, b in zip(whole, banded):
        assert np.allclose(a[np.lexsort(a.T)], b[np.lexsort(b.T)])


@pytest.mark.parametrize("options, says", [({"dither": 0.5}, "dithering"), ({"palette": [[0, 0, 0]]}, "palette"),
                                           ({"engine": "simple"}, "fast engine"), ({"regions": "yes"}, "True or")])
def test_where_it_cannot_apply_it_says_so(helmet, options, says):
    with pytest.raises(UsageError, match=says):
        kcolors.quantize(helmet, 6, **{"regions": True, **options})


def test_the_command_line(helmet, tmp_path):
    source = tmp_path / "helmet.png"
    Image.fromarray(helmet).save(source)
    done = run_cli(source, "-k", "6", "--regions", "-o", tmp_path / "out.png")
    assert done.returncode == 0, done.stderr
    out = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))
    assert nearest_de(out[67:68, 107], GREEN) < 5
    done = run_cli(source, "-k", "6", "--regions", "--dither", "-o", tmp_path / "d.png")
    assert done.returncode == 2 and "--regions" in one_error_line(done)
    assert not (tmp_path / "d.png").exists()


def test_an_animation_refuses_it_in_one_line(tmp_path):
    frames = [Image.new("RGB", (12, 8), colour) for colour in ((200, 0, 0), (0, 200, 0), (0, 0, 200))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50)
    done = run_cli(tmp_path / "a.gif", "-k", "4", "--regions", "-o", tmp_path / "out.gif")
    assert done.returncode == 2 and "--regions does not apply to animations" in one_error_line(done)
    assert not (tmp_path / "out.gif").exists()


def test_the_web_api_takes_it(helmet):
    import io
    import json
    import warnings

    with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; httpx is what the project installs
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from kcolors.web import create_app

    data = io.BytesIO()
    Image.fromarray(helmet).save(data, "PNG")
    with TestClient(create_app()) as client:
        answers = [client.post("/api/compress", files={"image": ("h.png", data.getvalue(), "image/png")},
                               data={"k": "6", **extra}) for extra in ({}, {"regions": "on"})]
    assert [a.status_code for a in answers] == [200, 200]
    pictures = [np.asarray(Image.open(io.BytesIO(a.content)).convert("RGB")) for a in answers]
    assert nearest_de(pictures[0][67:68, 107], GREEN) > 20 and nearest_de(pictures[1][67:68, 107], GREEN) < 5
    assert json.loads(answers[1].headers["X-Kcolors-Metrics"])["psnr"] < json.loads(
        answers[0].headers["X-Kcolors-Metrics"])["psnr"]
