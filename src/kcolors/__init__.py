"""kcolors: flatten images to k colours with k-means, and write them small.

>>> import kcolors
>>> result = kcolors.quantize("photo.jpg", 8)           # doctest: +SKIP
>>> result.palette, result.psnr, result.delta_e          # doctest: +SKIP
>>> kcolors.save(result, "photo-8.png")                  # doctest: +SKIP
"""

from .errors import KcolorsError
from .histogram import Histogram
from .io import Picture, load_image
from .palette import Palette
from .quantize import Quantization, fit_palette, quantize
from .save import save

__all__ = ["quantize", "fit_palette", "save", "load_image", "Quantization", "Palette", "Histogram", "Picture",
           "KcolorsError"]
__version__ = "0.1.0"
