"""Sweep animations (GIF, WebP, APNG) and animated input to `compress`."""

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image, ImageSequence

from kcolors import load_image, quantize
from kcolors.animated import flatten_animation, read_animation
from kcolors.animation import encode_animation, sweep_frames
from kcolors.colorspace import to_space
from kcolors.sweep import sweep

KS = [2, 3, 5]


def frames_of(path):
    """Every frame of an animation as shown: (RGB arrays, durations, loop)."""
    with Image.open(path) as im:
        loop = im.info.get("loop")
        frames, durations = [], []
        for frame in ImageSequence.Iterator(im):
            frame.load()  # WebP gives the duration once decoded
            durations.append(frame.info.get("duration"))
            frames.append(np.asarray(frame.convert("RGB")))
    return frames, durations, loop


def colour_count(rgb):
    return len(np.unique(rgb.reshape(-1, 3), axis=0))


@pytest.fixture
def image(gradient, tmp_path):
    path = tmp_path / "g.png"
    Image.fromarray(gradient).save(path)
    return path


@pytest.mark.parametrize("ext", [".gif", ".webp", ".png", ".apng"])
@pytest.mark.slow
def test_sweep_animation(image, gradient, tmp_path, ext):
    out = tmp_path / f"sweep{ext}"
    done = run_cli("sweep", image, "-k", "5,2,3", "-o", out, "--duration", "120", "--hold-last", "900",
                   "--loop", "3", "-q")
    assert done.returncode == 0, done.stderr
    frames, durations, loop = frames_of(out)
    assert len(frames) == len(KS) + 1
    assert durations == [120] * len(KS) + [900]
    assert loop == 3
    for k, frame in zip(KS, frames):  # smallest k first, each exactly the flattened picture
        assert colour_count(frame) == k
        assert np.array_equal(frame, quantize(gradient, k).rgb)
    if ext == ".gif":  # a GIF frame holds 256 colours: the original comes close, not exact
        assert colour_count(frames[-1]) <= 256
        assert np.abs(frames[-1].astype(int) - gradient).mean() < 4
    else:  # lossless
        assert np.array_equal(frames[-1], gradient)


@pytest.mark.parametrize("ext", [".gif", ".webp"])
@pytest.mark.slow
def test_labels_add_no_colour(image, gradient, tmp_path, ext):
    out = tmp_path / f"labelled{ext}"
    assert run_cli("sweep", image, "-k", "2,3,5", "-o", out, "--label").returncode == 0
    frames, _, _ = frames_of(out)
    for k, frame in zip(KS, frames):
        plain = quantize(gradient, k).rgb
        assert colour_count(frame) <= k
        changed = np.argwhere((frame != plain).any(axis=2))
        assert len(changed) > 20  # a caption was drawn ...
        assert changed[:, 0].max() < 24 and changed[:, 1].max() < 48  # ... in the top-left corner only


@pytest.mark.slow
def test_frames_and_sheet(image, gradient, tmp_path):
    folder, sheet = tmp_path / "frames", tmp_path / "sheet.png"
    done = run_cli("sweep", image, "-k", "2,3,5", "--frames", folder, "--sheet", sheet, "--cell", "64")
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["g-k2.png", "g-k3.png", "g-k5.png", "g-original.png"]
    for k in KS:
        im = Image.open(folder / f"g-k{k}.png")
        assert im.mode == "P"  # small indexed PNGs
        assert np.array_equal(np.asarray(im.convert("RGB")), quantize(gradient, k).rgb)
    assert np.array_equal(np.asarray(Image.open(folder / "g-original.png").convert("RGB")), gradient)
    # 4 cells in a 2x2 grid of 64x48 tiles, 8 px apart, each with an 18 px caption strip
    assert Image.open(sheet).size == (2 * (64 + 8) + 8, 2 * (48 + 18 + 8) + 8)


def test_frames_refuses_existing(image, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "g-k3.png").write_bytes(b"keep")
    done = run_cli("sweep", image, "-k", "2,3", "--frames", folder)
    assert done.returncode == 6 and b"g-k3.png: exists" in done.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["g-k3.png"]


def test_gif_original_exact_when_few_colours(tmp_path):
    """An image of at most 256 colours keeps them all in the GIF's last frame."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    img[:, :20] = img[0, 0]  # 20*30 + ... still below 256 distinct colours? make sure:
    img = img // 64 * 64  # at most 4**3 = 64 colours
    picture = load_image(img)
    frames = list(sweep_frames(sweep(picture, [2, 4]), picture, "GIF"))
    data = encode_animation(frames, "GIF", 100)
    path = tmp_path / "few.gif"
    path.write_bytes(data)
    shown, _, _ = frames_of(path)
    assert len(shown) == 3 and np.array_equal(shown[-1], img)


# --------------------------------------------------------------------------- animated input


def make_animation(path, *, loop=2):
    """Three 32x24 frames with different gradients; durations 100, 200, 300 ms."""
    y, x = np.mgrid[0:24, 0:32]
    frames = []
    for i in range(3):
        rgb = np.stack([x * 7 + i * 20, y * 9 + i * 30, (x + y) * 3 + 60 * i], axis=-1)
        frames.append(Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)))
    options = {"lossless": True} if path.suffix == ".webp" else {}
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=[100, 200, 300], loop=loop, **options)
    return path


@pytest.mark.parametrize("src, dst", [(".gif", ".gif"), (".webp", ".webp"), (".png", ".png"), (".gif", ".png")])
@pytest.mark.slow
def test_compress_keeps_animation(tmp_path, src, dst):
    source = make_animation(tmp_path / f"in{src}")
    out = tmp_path / f"out{dst}"
    done = run_cli("compress", source, "-k", "6", "-o", out)
    assert done.returncode == 0, done.stderr
    assert b"frame 1 of 3" in done.stderr
    frames, durations, loop = frames_of(out)
    assert len(frames) == 3 and durations == [100, 200, 300] and loop == 2
    used = np.unique(np.concatenate([f.reshape(-1, 3) for f in frames]), axis=0)
    assert len(used) <= 6  # one palette for all frames
    originals, _, _ = frames_of(source)
    for frame, original in zip(frames, originals):  # each frame: every pixel its nearest palette colour (blend)
        points, entries = to_space(original.reshape(-1, 3), "blend"), to_space(used, "blend")
        distances = ((points[:, None, :] - entries[None]) ** 2).sum(axis=2)
        assert np.array_equal(frame.reshape(-1, 3), used[distances.argmin(axis=1)])


def test_flatten_animation_fits_on_all_frames(tmp_path):
    movie = read_animation(make_animation(tmp_path / "in.png"))
    assert len(movie.frames) == 3 and movie.durations == [100, 200, 300] and movie.loop == 2
    results = flatten_animation(movie, 4)
    palettes = {r.palette.tobytes() for r in results}
    assert len(palettes) == 1
    counts = sum(np.bincount(r.labels.ravel(), minlength=len(results[0].palette)) for r in results)
    assert list(counts) == sorted(counts, reverse=True)  # most used over the whole animation first
    # every frame contributes: the palette differs from one fitted on the first frame alone
    assert not np.array_equal(results[0].palette, quantize(movie.frames[0], 4).palette)


def test_still_image_is_not_an_animation(image):
    assert read_animation(image) is None


def test_animation_to_a_still_format_warns(tmp_path):
    source = make_animation(tmp_path / "in.gif")
    done = run_cli("compress", source, "-k", "4", "-o", tmp_path / "out.bmp")
    assert done.returncode == 0
    assert b"warning" in done.stderr and b"only the first of 3 frames" in done.stderr
    assert Image.open(tmp_path / "out.bmp").size == (32, 24)


@pytest.mark.parametrize("dst", [".gif", ".png", ".webp"])
@pytest.mark.slow
def test_transparency_of_each_frame_is_its_own(tmp_path, dst):
    """A frame's transparent pixels show the background, not the frame before (GIF disposal)."""
    y, x = np.mgrid[0:20, 0:30]
    rgb = np.stack([x * 8, y * 12, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    first = np.dstack([rgb, np.where(x < 15, 0, 255).astype(np.uint8)])
    second = np.dstack([rgb, np.where(x < 15, 255, 0).astype(np.uint8)])
    source = tmp_path / "in.png"
    Image.fromarray(first, "RGBA").save(source, save_all=True, append_images=[Image.fromarray(second, "RGBA")],
                                        duration=[100, 100], loop=0)
    out = tmp_path / f"out{dst}"
    assert run_cli("compress", source, "-k", "4", "-o", out).returncode == 0
    with Image.open(out) as im:
        alphas = [np.asarray(frame.convert("RGBA"))[..., 3] for frame in ImageSequence.Iterator(im)]
    assert len(alphas) == 2
    assert (alphas[0][:, :15] == 0).all() and (alphas[0][:, 15:] == 255).all()
    assert (alphas[1][:, :15] == 255).all() and (alphas[1][:, 15:] == 0).all()


def test_encode_gif_keeps_every_frame_and_its_palette(tmp_path):
    """Each frame its own colour table; identical frames are kept, not merged."""
    from kcolors.animation import encode_gif

    def palette_image(colours, indices):
        im = Image.fromarray(np.asarray(indices, np.uint8), "P")
        im.putpalette(np.asarray(colours, np.uint8).tobytes())
        return im

    indices = np.tile(np.arange(3, dtype=np.uint8), (10, 4))[:, :12]
    red = palette_image([[255, 0, 0], [0, 0, 0], [9, 9, 9]], indices)
    blue = palette_image([[0, 0, 255], [250, 250, 250], [1, 2, 3]], indices)
    path = tmp_path / "a.gif"
    path.write_bytes(encode_gif([red, red, blue], [30, 40, 50], loop=None))
    frames, durations, loop = frames_of(path)
    assert len(frames) == 3 and durations == [30, 40, 50] and loop is None
    assert np.array_equal(frames[0], frames[1])
    assert tuple(frames[2][0, 0]) == (0, 0, 255) and tuple(frames[2][0, 1]) == (250, 250, 250)
    assert tuple(frames[0][0, 0]) == (255, 0, 0)


@pytest.mark.slow
def test_animation_pixel_limit_counts_every_frame(tmp_path):
    source = make_animation(tmp_path / "in.gif")  # 3 frames of 32x24 = 2,304 pixels
    done = run_cli("compress", source, "-k", "4", "-o", tmp_path / "out.gif", "--max-pixels", "2000")
    assert done.returncode == 4 and b"3 frames of 32x24" in done.stderr and done.stderr.count(b"\n") == 1
    assert not (tmp_path / "out.gif").exists()
