"""The web page and HTTP API of ``kcolors serve`` (a Starlette app).

Routes
------
``GET /``                      the page (``static/index.html``)
``GET /static/...``            its script and style sheet: nothing comes from the internet
``POST /api/compress``         multipart ``image`` + ``k``, ``space``, ``dither``, ``seed`` -> PNG;
                               the figures in the ``X-Kcolors-Metrics`` header (JSON)
``POST /api/compress.json``    the same, answered as JSON: ``{"metrics": {...}, "png_base64": "..."}``
``POST /api/sweep``            multipart ``image`` + ``k`` (``2-15``), ... -> animated GIF or WebP
``GET /api/health``            ``{"status": "ok", ...}``
``GET /api/openapi.json``      the OpenAPI 3.1 description of the above

Untrusted uploads: the request body is read with a size limit (413), the
image is decoded in memory with a pixel limit (413), and every field is
checked (422). The decoding and k-means run in worker threads, at most
``concurrency`` at a time, with at most ``queue`` more requests waiting;
beyond that the answer is 503 with ``Retry-After``, so ``/api/health`` and the
page stay quick whatever the load.
"""

import base64
import json
import logging
import re
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread
from PIL import UnidentifiedImageError
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..colorspace import SPACES
from ..errors import InputError, TooLargeError, UsageError
from ..quantize import MAX_K
from . import jobs
from .openapi import openapi_document
from .settings import MB, Settings

log = logging.getLogger("kcolors.web")

STATIC = Path(__file__).resolve().parent / "static"
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small fields, on top of the image itself
MAX_FIELD_BYTES = 1024
MAX_SWEEP_FRAMES = 32

# No inline script or style and nothing from another origin: the page works offline, and an
# injected <script> would not run.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self' blob:; object-src 'none'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


class ApiError(Exception):
    """An answer other than success: an HTTP status and one line for the user."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class Gate:
    """Bounded concurrency: ``concurrency`` jobs in threads, ``queue`` waiting, the rest turned away.

    The counter lives on the event loop (one thread), so it needs no lock.
    """

    def __init__(self, settings):
        self.limiter = anyio.CapacityLimiter(settings.concurrency)
        self.capacity = settings.concurrency + settings.queue
        self.retry_after = settings.retry_after
        self.admitted = 0

    @asynccontextmanager
    async def admit(self):
        if self.admitted >= self.capacity:
            raise ApiError(503, f"the server is busy ({self.admitted} images in hand); try again in "
                                f"{self.retry_after} s", {"Retry-After": str(self.retry_after)})
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    async def run(self, function, *args, **kwargs):
        """Run ``function`` in a worker thread once one of the ``concurrency`` slots is free."""
        return await anyio.to_thread.run_sync(partial(function, *args, **kwargs), limiter=self.limiter)


# ----------------------------------------------------------------------------- the upload


async def read_form(request, settings, allowed):
    """The multipart form of an API call: ``(file name, image bytes, {field: text})``.

    The body is read in memory with a size limit before any parsing, so an
    oversized upload costs at most the limit; the form parser keeps the file
    in memory too (its spool size is the limit), so nothing reaches the disk.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(415, "send the image as multipart/form-data, in a file field named 'image'")
    body = await _read_body(request, settings.max_upload_bytes)
    parser = MultiPartParser(request.headers, _replay(body), max_files=1, max_fields=len(allowed) + 4,
                             max_part_size=MAX_FIELD_BYTES)
    parser.spool_max_size = settings.max_upload_bytes + FORM_OVERHEAD  # the file stays in memory
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(400, f"malformed form data: {exc.message}") from None
    try:
        return _split_form(form, settings, allowed)
    finally:
        await form.close()


async def _replay(body):
    yield body
    yield b""


async def _read_body(request, max_upload_bytes):
    limit = max_upload_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_big(int(declared), max_upload_bytes)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_big(size, max_upload_bytes, at_least=True)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(400, "the upload was interrupted") from None
    return b"".join(chunks)


def _too_big(size, limit, at_least=False):
    more = "more than " if at_least else ""
    return ApiError(413, f"the upload is {more}{size / MB:.1f} MB, over the limit of {limit / MB:g} MB "
                         f"(kcolors serve --max-upload-mb raises it)")


def _split_form(form, settings, allowed):
    unknown = sorted(set(form.keys()) - set(allowed) - {"image"})
    if unknown:
        raise ApiError(422, f"unknown field {unknown[0]!r}; the fields are image, {', '.join(allowed)}")
    upload = form.get("image")
    if upload is None:
        raise ApiError(422, "missing field 'image': choose an image file to upload")
    if not isinstance(upload, UploadFile):
        raise ApiError(422, "field 'image' must be a file, not text")
    data = upload.file.read()
    name = safe_name(upload.filename)
    if len(data) > settings.max_upload_bytes:
        raise _too_big(len(data), settings.max_upload_bytes)
    if not data:
        raise ApiError(400, f"{name}: empty file, not an image")
    fields = {key: value for key, value in form.multi_items() if key != "image"}
    for key, value in fields.items():
        if not isinstance(value, str):
            raise ApiError(422, f"field {key!r} must be text, not a file")
    return name, data, fields


def safe_name(filename):
    """A file name fit for messages and headers: its last part, printable ASCII, at most 80 characters."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = re.sub(r"[^A-Za-z0-9._ +()-]", "_", name).strip(" .") or "image"
    return name[-80:]


# ----------------------------------------------------------------------------- the fields


def parse_int(fields, key, default, low, high):
    text = fields.get(key, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(422, f"{key} must be a whole number, not {text!r}") from None
    if not low <= value <= high:
        raise ApiError(422, f"{key} must be between {low} and {high}, not {value}")
    return value


def parse_space(fields):
    space = fields.get("space", "").strip().lower() or "rgb"
    if space not in SPACES:
        raise ApiError(422, f"space must be one of {', '.join(SPACES)}, not {space!r}")
    return space


def parse_dither(fields):
    """on/off words, or a strength from 0 to 1."""
    text = fields.get("dither", "").strip().lower()
    if text in ("", "0", "off", "false", "no"):
        return 0.0
    if text in ("on", "true", "yes"):
        return 1.0
    try:
        value = float(text)
    except ValueError:
        raise ApiError(422, f"dither must be on, off or a strength from 0 to 1, not {text!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise ApiError(422, f"dither strength must be between 0 and 1, not {text}")
    return value


def parse_ks(fields):
    """``2-15`` or ``2,4,8,16``: the k of each frame, ascending, at most MAX_SWEEP_FRAMES of them."""
    text = fields.get("k", "").strip() or "2-15"
    ks = set()
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            low, high = int(low), int(high or low)
            if high - low >= MAX_SWEEP_FRAMES:
                raise ApiError(422, f"k {text!r} makes more than {MAX_SWEEP_FRAMES} frames")
            ks.update(range(low, high + 1))
    except ValueError:
        raise ApiError(422, f"k must be a range such as 2-15 or a list such as 2,4,8, not {text!r}") from None
    if not ks:
        raise ApiError(422, f"k {text!r} names no frame: write the smaller number first, as in 2-15")
    if min(ks) < 1 or max(ks) > MAX_K:
        raise ApiError(422, f"each k must be between 1 and {MAX_K}, not {text!r}")
    if len(ks) > MAX_SWEEP_FRAMES:
        raise ApiError(422, f"k {text!r} makes {len(ks)} frames; at most {MAX_SWEEP_FRAMES}")
    return tuple(sorted(ks))


def compress_options(fields):
    return jobs.CompressOptions(k=parse_int(fields, "k", 16, 1, MAX_K), space=parse_space(fields),
                                dither=parse_dither(fields), seed=parse_int(fields, "seed", 0, 0, 2**31 - 1))


def sweep_options(fields):
    fmt = fields.get("format", "").strip().lower() or "gif"
    if fmt not in jobs.ANIMATION_FORMATS:
        raise ApiError(422, f"format must be gif or webp, not {fmt!r}")
    return jobs.SweepOptions(ks=parse_ks(fields), space=parse_space(fields), dither=parse_dither(fields),
                             seed=parse_int(fields, "seed", 0, 0, 2**31 - 1), format=fmt,
                             duration=parse_int(fields, "duration", 500, 20, 10_000),
                             max_side=parse_int(fields, "max_side", 0, 0, 100_000))


COMPRESS_FIELDS = ("k", "space", "dither", "seed")
SWEEP_FIELDS = ("k", "space", "dither", "seed", "format", "duration", "max_side")


# ----------------------------------------------------------------------------- the routes


async def _process(request, allowed, parse, job):
    """Admit, read and check the upload, then run ``job`` in a worker thread."""
    state = request.app.state
    async with state.gate.admit():
        name, data, fields = await read_form(request, state.settings, allowed)
        options = parse(fields)
        try:
            return name, options, await state.gate.run(job, data, name, options,
                                                       max_pixels=state.settings.max_pixels)
        except TooLargeError as exc:
            raise ApiError(413, str(exc).replace("raise it with --max-pixels",
                                                 "kcolors serve --max-pixels raises it")) from None
        except InputError as exc:
            status = 415 if isinstance(exc.__cause__, UnidentifiedImageError) else 400
            raise ApiError(status, str(exc)) from None
        except UsageError as exc:
            raise ApiError(422, str(exc)) from None
        except MemoryError:
            raise ApiError(503, "out of memory for this image; try a smaller one",
                           {"Retry-After": str(state.settings.retry_after)}) from None


async def compress(request):
    name, options, (png, metrics) = await _process(request, COMPRESS_FIELDS, compress_options, jobs.compress)
    stem = Path(name).stem or "image"
    headers = {"X-Kcolors-Metrics": json.dumps(metrics, separators=(",", ":")),
               "Content-Disposition": f'inline; filename="{stem}-k{options.k}.png"', "Cache-Control": "no-store"}
    return Response(png, media_type="image/png", headers=headers)


async def compress_json(request):
    _, _, (png, metrics) = await _process(request, COMPRESS_FIELDS, compress_options, jobs.compress)
    return JSONResponse({"metrics": metrics, "png_base64": base64.b64encode(png).decode("ascii")},
                        headers={"Cache-Control": "no-store"})


async def sweep(request):
    name, options, (data, labels) = await _process(request, SWEEP_FIELDS, sweep_options, jobs.sweep)
    fmt, media_type = options.format, jobs.ANIMATION_FORMATS[options.format][1]
    headers = {"X-Kcolors-Frames": json.dumps(labels), "Cache-Control": "no-store",
               "Content-Disposition": f'inline; filename="{Path(name).stem or "image"}-sweep.{fmt}"'}
    return Response(data, media_type=media_type, headers=headers)


async def health(request):
    state = request.app.state
    s = state.settings
    return JSONResponse({
        "status": "ok", "version": __version__,
        "busy": state.gate.admitted, "capacity": state.gate.capacity,
        "limits": {"max_upload_bytes": s.max_upload_bytes, "max_pixels": s.max_pixels, "max_k": MAX_K,
                   "concurrency": s.concurrency, "queue": s.queue, "spaces": list(SPACES)},
    }, headers={"Cache-Control": "no-store"})


async def openapi(request):
    return JSONResponse(openapi_document(request.app.state.settings))


async def index(request):
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


def _error_response(status, message, headers=None):
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


async def _api_error(request, exc):
    return _error_response(exc.status, exc.message, exc.headers)


async def _http_error(request, exc):
    headers = dict(exc.headers or {})
    message = {404: f"no such page: {request.url.path}",
               405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, exc.detail)
    return _error_response(exc.status_code, message, headers)


async def _internal_error(request, exc):
    log.exception("internal error on %s", request.url.path)
    return _error_response(500, f"internal error: {type(exc).__name__} (a bug: please report it)")


class SecurityHeaders:
    """Pure ASGI middleware adding :data:`SECURITY_HEADERS` to every answer."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers.setdefault(key, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings=None):
    """The Starlette application of ``kcolors serve``.

    Parameters
    ----------
    settings : Settings, optional
        Limits (upload size, pixels, concurrency, queue); the defaults when omitted.

    Returns
    -------
    starlette.applications.Starlette
    """
    from starlette.middleware import Middleware

    routes = [
        Route("/", index),
        Route("/api/compress", compress, methods=["POST"]),
        Route("/api/compress.json", compress_json, methods=["POST"]),
        Route("/api/sweep", sweep, methods=["POST"]),
        Route("/api/health", health),
        Route("/api/openapi.json", openapi),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers = {ApiError: _api_error, HTTPException: _http_error, Exception: _internal_error}
    app = Starlette(routes=routes, exception_handlers=handlers, middleware=[Middleware(SecurityHeaders)])
    app.state.settings = settings or Settings()
    app.state.gate = Gate(app.state.settings)
    return app
