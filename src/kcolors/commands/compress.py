"""``kcolors compress``: flatten one image to k colours and write it."""

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..encode import encode
from ..animation import compress_animation, read_animation
from ..errors import LargerError, QualityError, UsageError, printable
from ..io import load_image, refuse_empty_name, warnings_if_read
from ..output import check_output, output_format, print_line, refuse_closed_stdout, write_files
from ..palette import PALETTE_EXTENSIONS, Palette, palette_format
from ..quantize import quantize
from ..sample import sample_path
from ..sweep import check_targets, find_k, target_missed
from . import ExamplesFormatter, add_keep_option, add_quantize_options, check_k, check_keep_option, open_source

DEMO_FOLDER = Path("kcolors-demo")
EPILOG = """examples:
  kcolors photo.jpg -k 8                     writes photo-k8.png beside it
  kcolors photo.jpg -k 32 -o small.png --space lab --dither 0.5
  kcolors photo.jpg -o flat/                 writes flat/photo-k16.png
  kcolors photo.jpg --target-delta-e 2       writes photo-kK.png, K the smallest k whose mean ΔE2000 is at most 2
  kcolors photo.png -k 64 --skip-if-larger   writes photo-k64.png only if it is smaller (else exit 98)
  kcolors - -k 4 < in.png > out.png          standard input to standard output"""


def add_parser(sub):
    p = sub.add_parser("compress", help="flatten an image to k colours (the default command)",
                       description="Flatten an image to k colours with k-means and write it; PNG output is an "
                                   "indexed PNG with the smallest bit depth that holds k colours.",
                       epilog=EPILOG, formatter_class=ExamplesFormatter)
    p.add_argument("input", nargs="?", help="image file, or - for stdin (default: a sample photograph); an animated "
                                            "GIF, WebP or PNG file stays animated, every frame flattened with one "
                                            "palette fitted on all of them, durations and loop count kept")
    p.add_argument("-o", "--output", help="output file, its extension names the format (.png .gif .webp .tif "
                                          ".bmp .jpg); - for stdout (never a terminal); an existing folder, or a "
                                          "name ending in /, for INPUT-kK.png in it (default: INPUT-kK.png beside "
                                          "the input)")
    add_quantize_options(p)
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--palette", metavar="FILE", help="recolour with this palette (.gpl .json .txt) instead of fitting")
    add_keep_option(p)
    p.add_argument("--palette-out", metavar="FILE", help="also save the palette (.gpl .json .txt)")
    p.add_argument("--target-delta-e", type=float, default=None, metavar="DE",
                   help="choose the smallest k (up to 256; -k is then ignored) whose mean ΔE2000 is at most DE; "
                        "if 256 colours miss it, write them and exit 99; the output is named by the k chosen")
    p.add_argument("--target-psnr", type=float, default=None, metavar="DB",
                   help="choose the smallest k (up to 256) whose PSNR is at least DB dB; exit 99 if 256 miss it; "
                        "with --target-delta-e, the smallest k that meets both")
    p.add_argument("--skip-if-larger", action="store_true",
                   help=f"write nothing if the output would be larger than the input (in bytes; from stdin, the "
                        f"bytes read) and exit {LargerError.exit_code}")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no report on stderr")
    p.add_argument("--strips", action="store_true",
                   help="read a PNG or TIFF a strip of rows at a time and write the PNG as a stream, in bounded "
                        "memory (the default above 64 million pixels; see README, Huge images)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="read in strips, spreading the bands of rows over the workers of this Dask scheduler "
                        "(tcp://HOST:PORT), which must see the input and output at the same paths")
    p.set_defaults(run=run)


def default_output(source, k, folder=None):
    """INPUT-kK.png beside the input, or in ``folder`` (-o FOLDER/); the demo's in kcolors-demo/; stdin's is "-"."""
    if source is None:
        return Path(folder or DEMO_FOLDER) / f"{Path(sample_path()).stem}-k{k}.png"
    if str(source) == "-":
        return "-"
    path = Path(source)
    return path.with_name(f"{path.stem}-k{k}.png") if folder is None else Path(folder) / f"{path.stem}-k{k}.png"


def output_folder(output):
    """The folder that ``-o`` names (an existing folder, or a name ending in a slash), or None for a file."""
    if output is None or str(output) == "-":
        return None
    if str(output).endswith("/") or os.path.isdir(output):  # False for a name too long, which check_output refuses
        return Path(output)
    return None


def run(args):
    started = time.perf_counter()
    if args.input is not None:
        refuse_empty_name(args.input)  # before INPUT-kK.png is made of its name
    demo = args.input is None
    source = sample_path() if demo else args.input
    targeted = args.target_delta_e is not None or args.target_psnr is not None
    folder = output_folder(args.output)
    if folder is not None and str(source) == "-":
        raise UsageError(f"reading stdin: give the output's file name with -o, not a folder ({args.output})")
    named = args.output is not None and folder is None  # else INPUT-kK.png, K known after a target's search
    output = args.output if named else default_output(args.input, args.k, folder)
    rewrite = demo and args.output is None  # the demo may redo its own file
    force = args.force or rewrite
    if rewrite:
        DEMO_FOLDER.mkdir(exist_ok=True)
    # with a target, INPUT-kK.png is checked once K is known (below); the folder and format now
    fmt = _check(args, source, output, force or (targeted and not named))
    palette = Palette.load(args.palette, args.space) if args.palette else None
    report = args.json or not args.quiet
    if _in_strips(args, source, output, fmt, demo):  # too large to hold: read and written a strip at a time
        result, bytes_out, name, bytes_in = _compress_in_strips(args, source, output, force, palette)
        metrics = result.metrics() if report else None
        _report(args, metrics, name, bytes_in, output, bytes_out, started)
        return 0
    with open_source(args, source) as opened:  # read once: a pipe or FIFO cannot be read twice
        result, data, frames, fits, missed = _flatten(args, opened, fmt, palette, demo)
        metrics = result.metrics() if report else None
        name, bytes_in = Path(source).name if demo else opened.name, opened.n_bytes
    if targeted and not named:  # named by the k chosen, and checked before anything is written
        output = default_output(args.input, result.k, folder)
        check_output(output, input_path=source, force=force)
    if args.skip_if_larger and bytes_in and len(data) > bytes_in:
        raise LargerError(f"{name}: not written: the output would be {len(data):,} bytes, larger than the input's "
                          f"{bytes_in:,} (--skip-if-larger)")
    outputs = [(output, data)]
    if args.palette_out:
        outputs.append((args.palette_out, result.as_palette().to_text(palette_format(args.palette_out),
                                                                      Path(args.palette_out).stem).encode()))
    write_files(outputs, force=force)  # both or neither
    if report:
        if targeted and not missed and not args.quiet:
            both = "both targets" if args.target_delta_e is not None and args.target_psnr is not None else "the target"
            print(f"kcolors: chose k = {result.k}, the smallest k that meets {both} ({fits} fits)", file=sys.stderr)
        _report(args, metrics, name, bytes_in, output, len(data), started, frames,
                note=" (the demo rewrites its own file)" if rewrite else "", notes=result.picture.notes)
    if missed:
        raise QualityError(missed)
    return 0


def _report(args, metrics, name, bytes_in, output, bytes_out, started, frames=None, note="", notes=()):
    """The figures: one JSON object on stdout (--json), the summary on stderr (unless --quiet), after the
    ``notes`` on how the input was read (:attr:`kcolors.io.Picture.notes`: its first page of several), a line each."""
    if metrics is None:
        return
    figures = dict(metrics, input=name, output=str(output), bytes_in=bytes_in, bytes_out=bytes_out,
                   seconds=round(time.perf_counter() - started, 4), notes=list(notes))
    if frames:
        figures.update(frames=frames)
    if args.json:
        print_line(json.dumps(figures))
    if not args.quiet:
        for line in notes:
            print(printable(f"kcolors: {line}"), file=sys.stderr)
        print(printable(summary(figures) + note), file=sys.stderr)  # a name that is not UTF-8 as \xNN


def _in_strips(args, source, output, fmt, demo):
    """Whether to read in strips: asked for (--strips, --scheduler), or a PNG or TIFF file of more than
    :func:`kcolors.strips.strips_above` pixels that the strip reader takes."""
    from ..strips import sniff, strippable, strips_above  # headers only (pyvips is imported to decode a strip)

    asked = args.strips or args.scheduler is not None
    a_file = not demo and str(source) != "-" and Path(source).is_file()  # not a pipe: it is read twice
    if not asked:  # else the ordinary reader, which also says what is wrong with a file
        with warnings_if_read() as held:  # a look at the header: the reader that follows shows the decoder's
            large = a_file and strippable(source, strips_above()) is not None
            held.clear()
        return large and _refuse_whole_image_options(args, source, output, fmt, f"over {strips_above():,} pixels")
    if not a_file or sniff(source) is None:
        raise UsageError(f"{source}: --strips and --scheduler read a PNG or TIFF file (not a pipe or another "
                         "format)")
    return _refuse_whole_image_options(args, source, output, fmt, "--strips" if args.strips else "--scheduler")


def _refuse_whole_image_options(args, source, output, fmt, why):
    """True, or UsageError for the options that need the whole image in memory."""
    for given, what in ((args.dither, "--dither"), (args.target_delta_e is not None, "--target-delta-e"),
                        (args.target_psnr is not None, "--target-psnr"), (args.palette_out, "--palette-out"),
                        (args.skip_if_larger, "--skip-if-larger"), (args.keep, "--keep"),
                        (args.engine == "sklearn", "--engine sklearn"),
                        (fmt != "PNG", f"{fmt} output"), (str(output) == "-", "-o - (standard output)")):
        if given:
            raise UsageError(f"{source}: read in strips ({why}), where {what} does not apply (it needs the whole "
                             "image in memory)")
    return True


def _compress_in_strips(args, source, output, force, palette):
    """``(result, bytes written, input name, input bytes)``: the image flattened in two passes over its strips."""
    from ..huge import flatten_to_png
    from ..strips import open_source as open_strips

    striped = open_strips(source, max_pixels=args.max_pixels)
    options = dict(space=args.space, engine=args.engine, seed=args.seed, palette=palette, force=force)
    if args.scheduler is None:
        result, n_bytes = flatten_to_png(striped, output, args.k, **options)
    else:
        from ..batch.cluster import DaskCluster

        with DaskCluster(args.scheduler) as cluster:
            cluster.check_paths([str(Path(source).resolve()), str(Path(output).resolve().parent)])
            result, n_bytes = flatten_to_png(striped, output, args.k, client=cluster.client, **options)
    return result, n_bytes, striped.path, striped.n_bytes


def _flatten(args, source, fmt, palette, demo):
    """``(result, bytes, frames, fits, missed)``: the input flattened as the options ask, and encoded."""
    targeted = args.target_delta_e is not None or args.target_psnr is not None
    movie = None if demo else read_animation(source, max_pixels=args.max_pixels, max_frames=args.max_frames)
    if movie is not None:
        if targeted:
            raise UsageError(f"{source.name}: --target-delta-e and --target-psnr do not apply to animations; give -k")
        if args.keep:
            raise UsageError(f"{source.name}: --keep does not apply to animations yet")
        result, data = compress_animation(movie, args, fmt, palette)
        return result, data, len(movie.frames), None, None
    fits, missed = None, None
    picture = load_image(source, max_pixels=args.max_pixels, max_frames=args.max_frames)
    if targeted:
        result, met, fits = find_k(picture, target_delta_e=args.target_delta_e, target_psnr=args.target_psnr,
                                   space=args.space, dither=args.dither, engine=args.engine, seed=args.seed)
        missed = None if met else target_missed(result, args)
    else:
        result = quantize(picture, args.k, space=args.space, dither=args.dither, engine=args.engine,
                          seed=args.seed, palette=palette, keep=args.keep)
    # libdeflate frees the GIL, so the PNG is compressed on one core while the other computes the figures.
    with ThreadPoolExecutor(max_workers=1) as pool:
        encoding = pool.submit(encode, result, fmt, icc=result.picture.icc)
        if not args.quiet or args.json:
            result.psnr, result.delta_e  # noqa: B018 -- computed here, on this thread, while encoding runs
        data = encoding.result()
    return result, data, None, fits, missed


def _check(args, source, output, force):
    """Every refusal before any work: nothing is read or written when an option is wrong."""
    fmt = output_format(output)
    check_k(args.k)
    if args.json:
        refuse_closed_stdout()  # before the work, not once the image is written
    if args.json and str(output) == "-":
        raise UsageError("--json and -o - both write to stdout; choose one")
    if args.palette and args.engine != "fast":
        raise UsageError("--palette skips fitting, so --engine does not apply")
    if args.palette:
        palette_format(args.palette)
    if args.palette and (args.target_delta_e is not None or args.target_psnr is not None):
        raise UsageError("--palette fixes the colours, so a quality target does not apply")
    check_targets(args.target_delta_e, args.target_psnr)
    check_keep_option(args)
    if args.keep and (args.target_delta_e is not None or args.target_psnr is not None):
        raise UsageError("--keep does not apply with a quality target yet; give -k")
    check_output(output, input_path=source, force=force)
    if args.palette_out:
        palette_format(args.palette_out)
        check_output(args.palette_out, input_path=source, force=True, extensions=PALETTE_EXTENSIONS)
        if str(args.palette_out) == str(output):
            raise UsageError(f"{output}: the image and the palette cannot be one file")
    return fmt


def summary(f):
    """The stderr report: one line of figures, one naming the output."""
    psnr = "inf (lossless)" if f["psnr"] is None else f"{f['psnr']:.2f} dB"
    sampled = "" if f["delta_e_sample"] is None else f" (on {f['delta_e_sample']:,} sampled pixels)"
    size = ""
    if f["bytes_in"]:
        change = 100.0 * (f["bytes_out"] - f["bytes_in"]) / f["bytes_in"]
        size = f", {f['bytes_in']:,} -> {f['bytes_out']:,} bytes ({change:+.1f}%)"
    else:
        size = f", {f['bytes_out']:,} bytes"
    frames = f" (frame 1 of {f['frames']}, one palette for all)" if f.get("frames") else ""
    return (f"kcolors: {f['input']} {f['width']}x{f['height']}{frames}: "
            f"{f['colors_in']:,} -> {f['colors_out']} colours, "
            f"PSNR {psnr}, mean ΔE2000 {f['delta_e']:.2f}{sampled}{size}, {f['seconds']:.2f} s\n"
            f"kcolors: wrote {f['output']}")
