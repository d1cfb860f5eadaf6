"""kcolors: flatten images to k colours with k-means, and write them small.

>>> import kcolors
>>> result = kcolors.quantize("photo.jpg", 8)           # doctest: +SKIP
>>> result.palette, result.psnr, result.delta_e          # doctest: +SKIP
>>> kcolors.save(result, "photo-8.png")                  # doctest: +SKIP

How the package is laid out
---------------------------
The modules follow the data's path: read an image, count its colours, fit a
palette, recolour every pixel, encode the result; around that core, sweeps,
animations, pictures, batches and the web page; the commands on top. Each line
below is a layer, from the bottom up. A module imports only from layers below
its own, never sideways or up (modules of one subpackage may import each other),
and there is no import circle; ``tests/test_imports.py`` reads this list and
holds the code to it. A new piece goes in the lowest layer that has everything
it needs.

Layers:
    errors                        errors that carry the command line's exit codes
    colorspace, kernels, simple, captions, sample, extras, effort, seeds   colour spaces; the compiled kernels; the from-scratch k-means; text in pictures; the sample photo; which optional extras are installed; what each effort level does; the k-means++ starts' seeds (numpy's, without importing numpy.random)
    options, histogram, metrics, output, headers, pool, inputs   the shared option check; distinct colours and counts; PSNR and CIEDE2000; files written safely; every frame's size and their number, from a file's headers; worker processes that can be killed (batch's and the web server's); an input opened once (a stream held in memory)
    io, table                     any image file in, read once, as a Picture (which keeps its histogram); the table of options (their flags, help, who may set them)
    palette_files                 palette files and palette images read as hostile input (.gpl, .json, .txt, a P image's entries)
    kmeans, blend, strips         the fast k-means on a histogram (k-means++ start, coarse to exact); the default space's last round (colours matched by sRGB and OKLab distance together); a PNG or TIFF too large to hold, read a strip of rows at a time
    weighing, regions, kmeans_alpha   histograms weighed by how smooth the source is around each pixel: what dithered fits and the default's fit spend their colours on; small areas whose colour a fit gave away, found, to be given entries of their own (--regions); k-means on colours with alpha, under the rules of transparency
    encode                        a Quantization as file bytes (indexed PNG written here), or as the Pillow image its PNG opens to
    save                          a Quantization to a file, safely
    result                        Quantization: a picture, its palette, each pixel's label, the figures
    remap                         each pixel to its nearest palette colour (or dithered): recolour -> Quantization
    palette                       Palette: colours that recolour any image; palette files
    pngstream                     an indexed PNG written as a stream, all or nothing
    quantize                      the pipeline: read -> histogram -> fit -> recolour
    kcolors                       the public names (this file)
    sweep, animation, pictures, plots, huge   many k at once; animations written; sheets and swatches; curves and colour-space plots; images too large to hold, flattened strip by strip (here or on Dask) into a streamed PNG
    sweep_job, animated           a sweep of one source, as the command line and the web page make it: each k, the animation, its labels; animated input read, flattened with one palette, written back in its own container
    job                           one source flattened with one options record, by every route (still, animated, strips, targets)
    batch                         whole collections, on local cores or a Dask cluster
    web                           the local web page and its HTTP API
    commands, cli                 the command line: a thin layer that parses, checks, calls and reports
    __main__                      python -m kcolors

``histogram`` sits below ``io`` although counting comes after reading: it is a
structure over arrays that never reads a file, and a Picture keeps its own
histogram, so that every palette fitted to or applied to it shares one count.
``encode`` and ``save`` sit below ``result`` although they write a result: they
read only what it holds (its palette, labels and picture), never its class, so
that a Quantization can give itself as a Pillow image and save itself.
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
