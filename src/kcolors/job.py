"""One job: one source flattened with one :class:`~kcolors.options.Options` record, by every route.

``kcolors compress``, batch's tasks and the web's compress job call these and only adapt their inputs and
outputs: :func:`flatten` works in memory (a still, an animation, a quality target, kept colours, a palette
given), :func:`flatten_file` adds what a file needs (strips for images too large to hold, skip-if-larger,
the checks of the output, and the image and its palette written both or neither).
"""

import threading
from dataclasses import dataclass
from pathlib import Path

from .animated import compress_animation, read_animation
from .animation import ANIMATED_FORMATS
from .encode import encode
from .errors import UsageError
from .extras import installed, require
from .inputs import open_input
from .io import load_image, warnings_if_read
from .output import check_output, output_format, write_files
from .palette_files import PALETTE_EXTENSIONS, palette_format
from .quantize import quantize


@dataclass
class Flattened:
    """What a job made: the result (an animation's first frame), the encoded bytes and their format, the frames
    of an animation, the fits of a quality target's search and the message of a target missed; for a file,
    the input's name and bytes, the output written, and ``larger`` when skip-if-larger kept it unwritten."""

    result: object
    data: bytes
    fmt: str
    frames: int = None
    fits: int = None
    missed: str = None
    name: str = None
    bytes_in: int = None
    output: object = None
    bytes_out: int = None
    larger: bool = False


def flatten(opened, options, fmt=None, *, figures=True):
    """Flatten an opened input (:func:`kcolors.inputs.open_input`, or a file object) as ``options`` ask.

    ``fmt`` is the output's Pillow format; None: an animation in its own container (GIF, WebP, APNG), a
    still as PNG. ``figures``: work out PSNR and ΔE2000 while the output is encoded (the bytes are the same).
    """
    movie = read_animation(opened, max_pixels=options.max_pixels, max_frames=options.max_frames) \
        if hasattr(opened, "rewound") else None
    if movie is not None:
        if options.targeted:
            raise UsageError(f"{movie.name}: --target-delta-e and --target-psnr do not apply to animations; give -k")
        if options.keep or options.regions:
            raise UsageError(f"{movie.name}: {'--keep' if options.keep else '--regions'} does not apply to "
                             "animations yet")
        fmt = fmt or (movie.format if movie.format in ANIMATED_FORMATS else "PNG")  # its own (an AVIF's: APNG)
        result, data = compress_animation(movie, options, fmt)
        return Flattened(result, data, fmt, frames=len(movie.frames))
    fmt = fmt or "PNG"
    picture = load_image(opened, max_pixels=options.max_pixels, max_frames=options.max_frames)
    fits = missed = None
    if options.targeted:
        from .sweep import find_k, target_missed  # the k search: only for a quality target

        result, met, fits = find_k(picture, target_delta_e=options.target_delta_e, target_psnr=options.target_psnr,
                                   space=options.space, dither=options.dither, engine=options.engine,
                                   seed=options.seed)
        missed = None if met else target_missed(result, options.target_delta_e, options.target_psnr)
    else:
        result = quantize(picture, options.k, space=options.space, dither=options.dither, engine=options.engine,
                          seed=options.seed, palette=options.palette, keep=options.keep, regions=options.regions,
                          effort=options.effort)
    # libdeflate frees the GIL, so the PNG is compressed on one core while the other computes the figures.
    encoding = _beside(encode, result, fmt, icc=result.picture.icc)
    if figures:
        result.psnr, result.delta_e  # noqa: B018 -- computed here, on this thread, while encoding runs
    return Flattened(result, encoding(), fmt, fits=fits, missed=missed)


def _beside(function, *args, **options):
    """``function(*args, **options)`` started on a thread of its own; returns what waits for its answer (or
    raises its error). A plain thread: ``concurrent.futures`` takes 4 ms to import, at every start."""
    answer = {}

    def run():
        try:
            answer["value"] = function(*args, **options)
        except BaseException as exc:  # handed to the caller, whatever it is
            answer["error"] = exc

    thread = threading.Thread(target=run, name="kcolors-encode")
    thread.start()

    def wait():
        thread.join()
        if "error" in answer:
            raise answer["error"]
        return answer["value"]

    return wait


def flatten_file(source, output, options, *, force=False, palette_out=None, strips=None, client=None,
                 figures=True, name=None):
    """Flatten ``source`` (a path, or ``-``) and write ``output``; return the :class:`Flattened`.

    ``palette_out`` also saves the palette, written with the image both or neither. ``strips``: the option that
    asks to read a PNG or TIFF a strip at a time ("--strips"), None for the default (above
    :func:`kcolors.strips.strips_above` pixels), False never; ``client`` spreads the strips over Dask.
    With ``options.skip_if_larger``, an output larger than the input is not written (``larger``).
    """
    fmt = output_format(output)
    if in_strips(options, source, output, fmt, strips, palette_out):
        return _flatten_in_strips(source, output, options, force, client)
    with open_input(source, max_bytes=options.max_input_bytes) as opened:  # read once: a pipe cannot be read twice
        flat = flatten(opened, options, fmt, figures=figures)
        flat.name, flat.bytes_in = name or opened.name, opened.n_bytes
    flat.output, flat.bytes_out = output, len(flat.data)
    if options.skip_if_larger and flat.bytes_in and len(flat.data) > flat.bytes_in:
        flat.larger = True
        return flat
    outputs = [(output, flat.data)]
    if palette_out:
        palette = flat.result.as_palette()
        outputs.append((palette_out, palette.to_text(palette_format(palette_out), Path(palette_out).stem).encode()))
    write_files(outputs, force=force)  # both or neither
    return flat


def check_palette_out(palette_out, source, output):
    """Refuse, before any work, a palette output that could not be written or that is the image's own name."""
    palette_format(palette_out)
    check_output(palette_out, input_path=source, force=True, extensions=PALETTE_EXTENSIONS)
    if str(palette_out) == str(output):
        raise UsageError(f"{output}: the image and the palette cannot be one file")


def in_strips(options, source, output, fmt, strips, palette_out):
    """Whether to read in strips: asked for (``strips``), or by default a PNG or TIFF file of more than
    :func:`kcolors.strips.strips_above` pixels that the strip reader takes."""
    a_file = str(source) != "-" and Path(source).is_file()  # not a pipe: it is read twice
    # without pyvips (the [huge] extra) a large image is read whole, up to max_pixels: no header to look at
    if strips is False or (strips is None and not (a_file and installed("huge"))):
        return False
    from .strips import sniff, strippable, strips_above  # headers only (pyvips is imported to decode a strip)

    if strips is None:  # else the ordinary reader, which also says what is wrong with a file
        with warnings_if_read() as held:  # a look at the header: the reader that follows shows the decoder's
            large = strippable(source, strips_above()) is not None
            held.clear()
        return large and _refuse_whole_image_options(options, source, output, fmt, palette_out,
                                                     f"over {strips_above():,} pixels")
    require("huge", strips)  # pyvips reads the strips
    if not a_file or sniff(source) is None:
        raise UsageError(f"{source}: --strips and --scheduler read a PNG or TIFF file (not a pipe or another "
                         "format)")
    return _refuse_whole_image_options(options, source, output, fmt, palette_out, strips)


def _refuse_whole_image_options(options, source, output, fmt, palette_out, why):
    """True, or UsageError for the options that need the whole image in memory."""
    for given, what in ((options.dither, "--dither"), (options.target_delta_e is not None, "--target-delta-e"),
                        (options.target_psnr is not None, "--target-psnr"), (palette_out, "--palette-out"),
                        (options.skip_if_larger, "--skip-if-larger"), (options.keep, "--keep"),
                        (options.regions, "--regions"),
                        (options.engine == "sklearn", "--engine sklearn"),
                        (fmt != "PNG", f"{fmt} output"), (str(output) == "-", "-o - (standard output)")):
        if given:
            raise UsageError(f"{source}: read in strips ({why}), where {what} does not apply (it needs the whole "
                             "image in memory)")
    return True


def _flatten_in_strips(source, output, options, force, client):
    """The image flattened in two passes over its strips, streamed to ``output`` (PNG)."""
    from .huge import flatten_to_png
    from .strips import open_source as open_strips

    striped = open_strips(source, max_pixels=options.max_pixels)
    result, n_bytes = flatten_to_png(striped, output, options.k, space=options.space, engine=options.engine,
                                     seed=options.seed, palette=options.palette, force=force, client=client,
                                     effort=options.effort)
    return Flattened(result, None, "PNG", name=striped.path, bytes_in=striped.n_bytes, output=output,
                     bytes_out=n_bytes)
