"""The web page and HTTP API of ``kcolors serve`` (a Starlette app).

Routes
------
``GET /``                      the page (``static/index.html``)
``GET /static/...``            its script and style sheet: nothing comes from the internet
``GET /sample.png``             the sample photograph (scikit-image's coffee), for the page's "Try a sample"
``POST /api/compress``         multipart ``image`` + the options table's fields for the web (``k``, ``space``,
                               ``dither``, ``dither_method``, ``seed``, ``keep``, ``target_delta_e``,
                               ``target_psnr``) -> PNG, or an animation in its own container;
                               the figures in the ``X-Kcolors-Metrics`` header (JSON)
``POST /api/compress.json``    the same, answered as JSON: ``{"metrics": {...}, "png_base64": "..."}``
``POST /api/sweep``            multipart ``image`` + ``k`` (``2-15``), ... -> animated GIF or WebP
``GET /api``                   a short index of the endpoints (the address ``kcolors serve`` prints)
``GET /api/health``            ``{"status": "ok", ...}``
``GET /api/openapi.json``      the OpenAPI 3.1 description of the above

Untrusted uploads and clients, in the order a request meets the defences:

- a request with both Content-Length and Transfer-Encoding gets 400, and its
  connection is closed (RFC 9112 6.1: behind a proxy, what follows could be a
  request smuggled in);
- the Host header must name this server (421; against DNS rebinding);
- every request but GET and HEAD must come from the server's own page (403):
  a page elsewhere can send a form here without reading the answer, and make
  the server work (:class:`OriginCheck`);
- the body is read in memory with a size limit (413; a refused body is read and
  dropped up to four times the limit, so a client that sends it all before
  reading sees the 413, not a reset) and a time limit: nothing for
  ``read_timeout`` seconds gets 408;
- every field is checked: unknown, duplicated or out of range gets 400 or 422;
- only then is the request admitted: at most ``concurrency`` jobs run, at most
  ``queue`` more wait, the rest get 503 with ``Retry-After``. A stalled or slow
  upload never holds a place; what all uploads hold in memory together is
  bounded (:class:`~kcolors.web.upload.Buffers`; 503 beyond); each is held
  once, and sent to its worker from where it lies.
- Each job runs in a worker process (:mod:`.workers`): the image is refused
  from its header when over the pixel limit or the memory budget (413), then
  decoded and flattened within ``job_timeout`` seconds (503). When the time is
  up or the client hangs up, the worker is killed; idle workers stop after a
  few seconds, so every job's memory goes back to the system.

The event loop only reads, checks and forwards bytes, so ``/api/health`` and the
page stay quick whatever the load.
"""

import base64
import json
import logging
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..colorspace import SPACES
from ..errors import UsageError
from ..quantize import MAX_K
from . import jobs, workers
from .openapi import openapi_document
from .settings import Settings
from .upload import ApiError, Buffers, read_form

log = logging.getLogger("kcolors.web")

STATIC = Path(__file__).resolve().parent / "static"

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


class Gate:
    """Admission: ``concurrency`` jobs running and ``queue`` waiting (the pool runs them), the rest turned away.

    The counter lives on the event loop (one thread), so it needs no lock.
    """

    def __init__(self, settings):
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


# ----------------------------------------------------------------------------- the routes


async def _process(request, allowed, parse, job):
    """Read and check the upload, then admit it and run ``job`` in a worker process."""
    state = request.app.state
    settings = state.settings
    async with state.buffers.account() as take:
        name, data, fields = await read_form(request, settings, allowed, take)
        try:
            return await _admit_and_run(request, job, name, data, _checked(parse, fields))
        finally:
            del data  # the upload goes before the account closes: it may give the heap back then


def _checked(parse, fields):
    """The options ``parse`` makes of the form's fields; 422 naming the field that is wrong."""
    try:
        return parse(fields)
    except UsageError as exc:
        raise ApiError(422, str(exc)) from None


async def _admit_and_run(request, job, name, data, options):
    """Admit a checked upload (or 503), run its job in a worker, and turn the job's failures into answers."""
    state = request.app.state
    settings = state.settings
    async with state.gate.admit():
        try:
            return name, options, await _run_while_connected(request, job, data, name, options,
                                                              max_pixels=settings.max_pixels,
                                                              max_memory=settings.max_job_memory,
                                                              max_frames=settings.max_frames)
        except workers.JobFailed as exc:
            raise _job_error(exc, settings) from None
        except TimeoutError:
            raise ApiError(503, f"{name}: took longer than the limit of {settings.job_timeout:g} s (kcolors serve "
                                f"--job-timeout raises it)", {"Retry-After": str(settings.retry_after)}) from None
        except workers.WorkerLost as exc:
            log.error("%s: %s", name, exc)
            raise ApiError(500, f"{name}: {exc}") from None


async def _run_while_connected(request, function, *args, **kwargs):
    """``pool.run(function, ...)``, cancelled (its worker killed) as soon as the client hangs up."""
    outcome = {}

    async def watch(scope):
        # The body has been read: the next message is http.disconnect, when the client goes.
        while (await request.receive())["type"] != "http.disconnect":
            pass
        outcome["gone"] = True
        scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(watch, group.cancel_scope)
        try:
            outcome["value"] = await request.app.state.pool.run(function, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - raised below, outside the task group
            outcome["error"] = exc
        group.cancel_scope.cancel()
    if "gone" in outcome:
        raise ApiError(499, "the client went away")  # nobody reads it; the job is already stopped
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _job_error(exc, settings):
    """The HTTP answer to an error raised in a job (see :class:`workers.JobFailed`)."""
    if exc.kind == "TooLargeError":
        return ApiError(413, exc.message.replace("raise it with --max-pixels", "kcolors serve --max-pixels raises it"))
    if exc.kind == "InputError":
        return ApiError(415 if exc.cause == "UnidentifiedImageError" else 400, exc.message)
    if exc.kind == "UsageError":
        return ApiError(422, exc.message)
    if exc.kind == "MemoryError":
        return ApiError(503, "out of memory for this image; try a smaller one",
                        {"Retry-After": str(settings.retry_after)})
    log.error("internal error in a job: %s", exc.details)
    return ApiError(500, f"internal error: {exc.kind} (a bug: please report it)")


async def compress(request):
    """The flattened image: a PNG, or an animation in its own container; its download name is ``output``."""
    _, _, (data, metrics) = await _process(request, jobs.COMPRESS_FIELDS, jobs.compress_options, jobs.compress)
    headers = {"X-Kcolors-Metrics": json.dumps(metrics, separators=(",", ":")),
               "Content-Disposition": f'inline; filename="{metrics["output"]}"', "Cache-Control": "no-store"}
    return Response(data, media_type=_media_type(metrics["output"]), headers=headers)


async def compress_json(request):
    _, _, (data, metrics) = await _process(request, jobs.COMPRESS_FIELDS, jobs.compress_options, jobs.compress)
    return JSONResponse({"metrics": metrics, "media_type": _media_type(metrics["output"]),
                         "png_base64": base64.b64encode(data).decode("ascii")}, headers={"Cache-Control": "no-store"})


def _media_type(output):
    """The Content-Type of a compress answer, from its download name's extension."""
    return {ext: media_type for ext, media_type in jobs.EXTENSIONS.values()}[output.rpartition(".")[2]]


async def sweep(request):
    name, options, (data, labels) = await _process(request, jobs.SWEEP_FIELDS, jobs.sweep_options, jobs.sweep)
    fmt, media_type = options.format, jobs.ANIMATION_FORMATS[options.format][1]
    headers = {"X-Kcolors-Frames": json.dumps(labels), "Cache-Control": "no-store",
               "Content-Disposition": f'inline; filename="{Path(name).stem or "image"}-sweep.{fmt}"'}
    return Response(data, media_type=media_type, headers=headers)


async def health(request):
    state = request.app.state
    s = state.settings
    return JSONResponse({
        "status": "ok", "version": __version__,
        "busy": state.gate.admitted, "capacity": state.gate.capacity, "running": len(state.pool.running),
        "idle_workers": len(state.pool.idle),
        "limits": {"max_upload_bytes": s.max_upload_bytes, "max_pixels": s.max_pixels, "max_frames": s.max_frames,
                   "max_k": MAX_K,
                   "concurrency": s.concurrency, "queue": s.queue, "spaces": list(SPACES),
                   "read_timeout_s": s.read_timeout, "job_timeout_s": s.job_timeout,
                   "max_job_memory_bytes": s.max_job_memory, "max_connections": s.max_connections},
    }, headers={"Cache-Control": "no-store"})


async def api_index(request):
    """What /api offers, from the OpenAPI document: method, path and summary of each endpoint."""
    document = openapi_document(request.app.state.settings)
    endpoints = [{"method": method.upper(), "path": path, "summary": operation["summary"]}
                 for path, operations in document["paths"].items() for method, operation in operations.items()]
    return JSONResponse({"name": "kcolors", "version": __version__, "openapi": "/api/openapi.json",
                         "endpoints": endpoints})


async def openapi(request):
    return JSONResponse(openapi_document(request.app.state.settings))


async def sample(request):
    from ..errors import InputError
    from ..sample import sample_path

    try:
        path = sample_path()
    except InputError as exc:
        raise ApiError(404, str(exc)) from None
    return FileResponse(path, media_type="image/png")


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


class RequestFraming:
    """Pure ASGI middleware: 400, and the connection closed, for a request with both Content-Length and
    Transfer-Encoding (RFC 9112 6.1). uvicorn's h11 reads such a body as chunked and would answer the next
    request on the connection; a proxy in front that went by Content-Length saw another request there."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            names = {name for name, _ in scope["headers"]}
            if b"content-length" in names and b"transfer-encoding" in names:
                response = _error_response(400, "a request with both Content-Length and Transfer-Encoding is "
                                                "ambiguous; send one of them", {"Connection": "close"})
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


class OriginCheck:
    """Pure ASGI middleware: 403 for a request other than GET and HEAD that comes from another origin.

    A page anywhere can make the browser POST a form here (``fetch`` with ``mode: "no-cors"``): it cannot
    read the answer, but the server does the work, a decompression bomb included. Browsers say where a
    request comes from: ``Origin`` (``null`` for a sandboxed frame or a file) and ``Sec-Fetch-Site``. The
    server's own page sends ``Origin: http://HOST`` with the Host it was loaded from (``https://HOST``
    behind a proxy that speaks HTTPS) and ``Sec-Fetch-Site: same-origin``; ``none`` is the user's own
    doing (an address typed in). Refused: any other Origin, and any other Sec-Fetch-Site, ``same-site``
    included (a page on another port of this computer). Clients that are not browsers send neither.
    """

    SAFE_METHODS = ("GET", "HEAD")
    OWN_SITE = ("same-origin", "none")

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] not in self.SAFE_METHODS:
            foreign = self.foreign_origin(scope["headers"])
            if foreign is not None:
                response = _error_response(403, f"cross-origin request refused: {foreign}; this server takes "
                                                f"{scope['method']} requests only from its own page")
                return await response(scope, receive, send)
        await self.app(scope, receive, send)

    @classmethod
    def foreign_origin(cls, headers):
        """What shows the request comes from elsewhere (for the message), or None when nothing does."""
        host = next((value.decode("latin-1").lower() for name, value in headers if name == b"host"), None)
        for name, value in headers:
            text = value.decode("latin-1").strip()
            if name == b"origin" and (host is None or text.lower() not in (f"http://{host}", f"https://{host}")):
                return f"it comes from {text}" if text != "null" else "it comes from a page of no origin (null)"
            if name == b"sec-fetch-site" and text.lower() not in cls.OWN_SITE:
                return f"the browser calls it {text}"
        return None


class HostCheck:
    """Pure ASGI middleware: 421 for a Host header that is not one of ``allowed`` (None: any host).

    A web page on another site can make the browser send requests to a server
    on this computer under a name of its own, once that name resolves to
    127.0.0.1 (DNS rebinding); the Host header still carries that name.
    """

    def __init__(self, app, allowed=None):
        self.app, self.allowed = app, None if allowed is None else frozenset(allowed)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self.allowed is not None:
            # HTTP/1.0 may send no Host: there is no name to check then.
            foreign = [h.decode("latin-1") for k, h in scope["headers"] if k == b"host"
                       and h.decode("latin-1").lower() not in self.allowed]
            if foreign:
                response = _error_response(421, f"this server does not answer to {foreign[0]!r}; use one of: "
                                                f"{', '.join(sorted(self.allowed))}")
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


@asynccontextmanager
async def lifespan(app):
    workers.map_large_blocks()  # uploads go back to the system as soon as they are freed
    app.state.pool.start()  # the worker processes' zygote imports kcolors while the server starts
    try:
        yield
    finally:
        app.state.pool.close()


def create_app(settings=None):
    """The Starlette application of ``kcolors serve``.

    Parameters
    ----------
    settings : Settings, optional
        Limits (upload size, pixels, concurrency, queue, time, memory, hosts); the defaults when omitted.

    Returns
    -------
    starlette.applications.Starlette
    """
    from starlette.middleware import Middleware

    routes = [
        Route("/", index),
        Route("/sample.png", sample),
        Route("/api/compress", compress, methods=["POST"]),
        Route("/api/compress.json", compress_json, methods=["POST"]),
        Route("/api/sweep", sweep, methods=["POST"]),
        Route("/api", api_index),
        Route("/api/health", health),
        Route("/api/openapi.json", openapi),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    settings = settings or Settings()
    handlers = {ApiError: _api_error, HTTPException: _http_error, Exception: _internal_error}
    middleware = [Middleware(SecurityHeaders), Middleware(RequestFraming),
                  Middleware(HostCheck, allowed=settings.allowed_hosts), Middleware(OriginCheck)]
    app = Starlette(routes=routes, exception_handlers=handlers, middleware=middleware, lifespan=lifespan)
    app.state.settings = settings
    app.state.gate = Gate(settings)
    app.state.buffers = Buffers(settings, when_empty=workers.trim_memory)
    app.state.pool = workers.Pool(settings.concurrency, settings.job_timeout, settings.max_job_memory,
                                  settings.worker_idle)
    return app
