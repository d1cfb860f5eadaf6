"""The web page and HTTP API of ``kcolors serve`` (a Starlette app).

Routes
------
``GET /``                      the page (``static/index.html``)
``GET /static/...``            its script and style sheet: nothing comes from the internet
``GET /sample.png``             the sample photograph (kcolors/data/coffee.png), for the page's "Try a sample"
``POST /api/compress``         multipart ``image`` + the options table's fields for the web (``k``, ``space``,
                               ``dither``, ``dither_method``, ``seed``, ``keep``, ``regions``, ``target_delta_e``,
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
  the server work (:class:`~kcolors.web.guards.OriginCheck`);
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
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..colorspace import SPACES
from ..errors import UsageError
from ..quantize import MAX_K
from . import jobs, workers
from .guards import HostCheck, OriginCheck, RequestFraming, SecurityHeaders
from .guards import error_response as _error_response
from .openapi import openapi_document
from .settings import Settings
from .upload import ApiError, Buffers, read_form

log = logging.getLogger("kcolors.web")

STATIC = Path(__file__).resolve().parent / "static"

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
