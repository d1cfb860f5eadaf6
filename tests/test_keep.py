"""Locked colours (issue #14): ``keep=`` puts colours in the palette exactly, within k, and k-means fits the
rest around them with those centres held fixed."""

import numpy as np
import pytest

import kcolors
from kcolors import Histogram, fit_palette, quantize
from kcolors.errors import UsageError
from kcolors.colorspace import to_space
from kcolors.kernels import assign
from kcolors.kmeans import fit, kmeanspp_around
from kcolors.kmeans_alpha import fit_with_alpha
from kcolors.quantize import fit_palettes


def gradient(size=48):
    x = np.linspace(0, 255, size)
    img = np.zeros((size, size, 3), np.uint8)
    img[..., 0] = x[None, :]
    img[..., 1] = x[:, None]
    img[..., 2] = 255 - x[None, :] / 2
    return img


def noisy(size=80, seed=1):
    """Over 4,096 distinct colours: the fit runs from a coarse level down to the exact colours."""
    rng = np.random.default_rng(seed)
    return np.clip(gradient(size).astype(float) + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)


def rows(palette):
    return [tuple(int(v) for v in row) for row in np.asarray(palette)]


def test_white_and_black_kept_exactly_within_k_on_a_gradient():
    result = quantize(gradient(), 4, keep=["#ffffff", "#000000"])
    assert (255, 255, 255) in rows(result.palette) and (0, 0, 0) in rows(result.palette)
    assert len(result.palette) <= 4
    # every pixel still takes its nearest palette colour (in the default space), kept ones included
    assert result.space == "blend"
    nearest, _ = assign(to_space(gradient().reshape(-1, 3), "blend"), to_space(result.palette, "blend"))
    assert np.array_equal(result.labels.ravel(), nearest)


@pytest.mark.parametrize("space", ["rgb", "lab", "din99", "oklab"])
def test_kept_colours_are_exact_in_every_space_and_with_dithering(space):
    keep = [(1, 2, 3), "#fe0102", "0a0b0c"]
    for dither in (0.0, 1.0):
        result = quantize(noisy(48), 6, keep=keep, space=space, dither=dither)
        assert {(1, 2, 3), (254, 1, 2), (10, 11, 12)} <= set(rows(result.palette))
        assert len(result.palette) <= 6


def test_kept_colours_count_within_k_and_duplicates_collapse():
    result = quantize(gradient(), 2, keep=["#ffffff", "ffffff", (255, 255, 255), "#FFFFFFff", "#000000"])
    assert sorted(rows(result.palette)) == [(0, 0, 0), (255, 255, 255)]
    result = quantize(gradient(), 3, keep="#ffffff, #000000")  # one string, as the command line gives it
    assert len(result.palette) == 3 and {(0, 0, 0), (255, 255, 255)} <= set(rows(result.palette))


def test_a_kept_colour_no_pixel_takes_stays_in_the_palette():
    grey = np.full((8, 8, 3), 120, np.uint8)
    grey[:4] = 130
    result = quantize(grey, 3, keep=["#ff00ff"])
    assert (255, 0, 255) in rows(result.palette)
    assert sorted(rows(result.palette))[:2] == [(120, 120, 120), (130, 130, 130)]
    assert result.palette.tolist()[-1] == [255, 0, 255]  # unused: last by share
    assert not (result.labels == len(result.palette) - 1).any()


@pytest.mark.parametrize("image", [gradient(), noisy()], ids=["exact", "coarse-to-fine"])
def test_free_centres_are_the_means_of_their_clusters_with_the_kept_ones_fixed(image):
    histogram = Histogram.of(image.reshape(-1, 3))
    fixed = np.array([[255.0, 255.0, 255.0], [0.0, 0.0, 0.0]])
    centres, inertia = fit(histogram, "rgb", 6, fixed=fixed, tol=1e-9)
    assert np.array_equal(centres[:2], fixed)  # held exactly, first
    points, weights = histogram.points("rgb"), histogram.counts
    labels, measured = assign(points, centres, weights=weights)
    assert np.isclose(inertia, measured)
    for j in range(2, 6):  # each free centre is the weighted mean of the colours nearest it
        members = labels == j
        assert members.any()
        assert np.allclose(centres[j], weights[members] @ points[members] / weights[members].sum(), atol=1e-3)
    # and the fitted palette holds the kept colours and the free centres, rounded
    palette = fit_palette(histogram, 6, keep=["#ffffff", "#000000"])
    assert len(palette) == 6 and {(0, 0, 0), (255, 255, 255)} <= set(rows(palette.colors))


def test_seeding_treats_kept_centres_as_already_chosen():
    points = np.array([[0, 0, 0], [1, 0, 0], [200, 200, 200], [201, 200, 200]], float)
    fixed = np.array([[0.0, 0.0, 0.0]])
    for seed in range(5):  # the one far group is where a new centre must go
        centres = kmeanspp_around(points, np.ones(4), 2, fixed, seed)
        assert np.array_equal(centres[0], fixed[0]) and centres[1, 0] >= 200


def test_fit_palettes_alternatives_all_keep_the_colours():
    histogram = Histogram.of(noisy().reshape(-1, 3))
    for palette in fit_palettes(histogram, 5, keep=[(255, 255, 255), (0, 0, 0)]):
        assert len(palette) <= 5 and {(0, 0, 0), (255, 255, 255)} <= set(rows(palette.colors))


def feathered(size=48):
    """RGBA: clear corners, a soft translucent edge, an opaque middle."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    rgb = np.stack([x * 255 / size, y * 255 / size, 255 - x * 200 / size], axis=-1)
    alpha = np.clip((size * 0.4 - np.hypot(x - size / 2, y - size / 2)) / 6, 0, 1) * 255
    return np.dstack([rgb, np.rint(alpha)]).astype(np.uint8)


def test_keeping_with_transparency_follows_its_rules():
    image = feathered()
    result = quantize(image, 8, keep=["#ff000080", "#00ff00", "#0000ffff"])
    palette = rows(result.palette)
    assert len(palette) <= 8
    assert {(255, 0, 0, 128), (0, 255, 0, 255), (0, 0, 255, 255)} <= set(palette)
    assert sum(1 for entry in palette if entry[3] == 0) == 1  # the transparent entry, counted within k
    alpha = result.palette[result.labels][..., 3]
    assert (alpha[image[..., 3] == 255] == 255).all()  # opaque pixels take opaque entries only
    assert (alpha[image[..., 3] == 0] == 0).all()


def test_a_kept_colour_of_alpha_0_is_the_transparent_entry():
    image = feathered()
    result = quantize(image, 4, keep=["#12345600"])
    palette = rows(result.palette)
    assert (0x12, 0x34, 0x56, 0) in palette and len(palette) <= 4
    assert [entry for entry in palette if entry[3] == 0] == [(0x12, 0x34, 0x56, 0)]
    assert (result.palette[result.labels][image[..., 3] == 0] == (0x12, 0x34, 0x56, 0)).all()


def test_alpha_fit_holds_the_kept_centres():
    histogram = Histogram.of(feathered().reshape(-1, 4)[:, :3], alpha=feathered().reshape(-1, 4)[:, 3])
    assert histogram.alpha is not None
    from kcolors.colorspace import to_premultiplied
    fixed = to_premultiplied(np.array([[255, 0, 0], [0, 255, 0]]), np.array([128, 255]), "rgb")
    centres, solid = fit_with_alpha(histogram, "rgb", 5, clear=True, fixed=fixed, fixed_solid=np.array([False, True]))
    assert np.array_equal(centres[:2], fixed) and solid[:2].tolist() == [False, True]


def test_an_opaque_image_keeps_a_translucent_colour_that_no_pixel_takes():
    result = quantize(gradient(), 3, keep=["#ff000080"])
    assert (255, 0, 0, 128) in rows(result.palette)
    assert (result.palette[result.labels][..., 3] == 255).all()


@pytest.mark.parametrize("keep, k, words", [
    (["#ffffff", "#000000", "#ff0000"], 2, "keep has 3 colours but k is 2"),
    (["#ffffff", "#12345g"], 4, "'#12345g'"),
    (["#fff"], 4, "'#fff'"),
    ([(0, 0, 300)], 4, "(0, 0, 300)"),
    ((255, 255, 255), 4, "not one colour"),
    (["#00000000", "#ff000000"], 4, "more than one fully transparent"),
])
def test_refusals_name_the_problem(keep, k, words):
    with pytest.raises(UsageError) as caught:
        quantize(gradient(8), k, keep=keep)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_refused_with_a_given_palette_and_other_engines():
    with pytest.raises(UsageError, match=r"keep does not apply with a given palette \(it is already fixed\)"):
        quantize(gradient(8), 4, keep=["#ffffff"], palette=np.array([[0, 0, 0], [255, 255, 255]], np.uint8))
    for engine in ("sklearn", "simple"):
        with pytest.raises(UsageError, match=f"the {engine} engine"):
            quantize(gradient(8), 4, keep=["#ffffff"], engine=engine)
        with pytest.raises(UsageError, match=f"the {engine} engine"):
            fit_palette(Histogram.of(gradient(8).reshape(-1, 3)), 4, keep=["#ffffff"], engine=engine)


def test_no_room_for_the_transparent_entry_is_refused():
    with pytest.raises(UsageError, match="no room"):
        quantize(feathered(), 2, keep=["#ffffff", "#000000"])


@pytest.mark.parametrize("image, k", [(gradient(), 4), (noisy(), 16), (feathered(), 6)])
def test_no_keep_is_unchanged(image, k):
    plain = quantize(image, k)
    for keep in (None, [], ""):
        other = quantize(image, k, keep=keep)
        assert np.array_equal(plain.palette, other.palette) and np.array_equal(plain.labels, other.labels)


def test_same_seed_same_result():
    first, again = (quantize(noisy(), 12, keep=["#ffffff", "#000000"], seed=3) for _ in range(2))
    assert np.array_equal(first.palette, again.palette) and np.array_equal(first.labels, again.labels)


def test_keep_on_the_package():
    assert "keep" in __import__("inspect").signature(kcolors.quantize).parameters
