"""The indexed PNG writer: exact round trips at every bit depth and compression level."""

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from kcolors.encode import _COMPRESSION_LEVELS, compress, png_bytes


@pytest.mark.parametrize("n_colours", [2, 4, 16, 256])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (61, 37)])
def test_png_reads_back_to_the_same_indices_and_palette(n_colours, shape):
    rng = np.random.default_rng(n_colours)
    indices = rng.integers(0, n_colours, shape, dtype=np.uint8)
    colours = rng.integers(0, 256, (n_colours, 3), dtype=np.uint8)
    im = Image.open(io.BytesIO(png_bytes(indices, colours)))
    assert im.mode == "P"
    assert np.array_equal(np.asarray(im), indices)
    assert np.array_equal(np.frombuffer(im.palette.tobytes(), np.uint8).reshape(-1, 3)[:n_colours], colours)


@pytest.mark.parametrize("size", [limit or 5 << 20 for limit, _ in _COMPRESSION_LEVELS])
@pytest.mark.slow
def test_every_compression_level_gives_a_valid_zlib_stream(size):
    raw = np.random.default_rng(size).integers(0, 4, size, dtype=np.uint8).tobytes()
    packed = compress(raw)
    assert zlib.decompress(packed) == raw
    assert len(packed) < len(raw) / 3  # two bits of information a byte: well under a third of the raw size


def test_libdeflate_beats_zlib_on_a_noisy_index_map():
    # The reason for the dependency: a 4-colour map with speckled edges, like a photo's at k=4.
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:256, :384]
    indices = ((x + y + rng.normal(0, 40, x.shape)) // 160).clip(0, 3).astype(np.uint8)
    raw = indices.tobytes()
    assert len(compress(raw)) < 0.97 * len(zlib.compress(raw, 9))
