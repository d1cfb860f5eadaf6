"""Reading an upload, the part of a request the server must not trust.

The body is read with a size limit and a read timeout; what all uploads hold in
memory together is bounded (:class:`Buffers`); a refused body is drained so that
the client reads the answer; the multipart form is split into the image and its
fields, each field checked for size and repetition.
"""

import re
from contextlib import asynccontextmanager

import anyio
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from .settings import MB

FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small fields, on top of the image itself
MAX_FIELD_BYTES = 1024
DRAIN_FACTOR = 4  # a refused body is read and dropped up to this many times the upload limit
CLOSE = {"Connection": "close"}  # the rest of the request is not read: the connection cannot carry another


class ApiError(Exception):
    """An answer other than success: an HTTP status and one line for the user."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class Buffers:
    """The upload bytes held in memory, all requests together, at most ``limit``: bodies are read before
    admission, so without it many uploads arriving at once would each hold up to the upload limit."""

    def __init__(self, settings):
        # The uploads in hand, plus two on their way.
        self.limit = (settings.concurrency + settings.queue + 2) * (settings.max_upload_bytes + FORM_OVERHEAD)
        self.retry_after = settings.retry_after
        self.held = 0

    @asynccontextmanager
    async def account(self):
        """A ``take(n)`` for one request; all it took is given back when the request ends."""
        taken = 0

        def take(n):
            nonlocal taken
            if self.held + n > self.limit:
                raise ApiError(503, f"the server is receiving too many uploads at once; try again in "
                                    f"{self.retry_after} s", {"Retry-After": str(self.retry_after), **CLOSE})
            self.held += n
            taken += n

        try:
            yield take
        finally:
            self.held -= taken


# ----------------------------------------------------------------------------- the upload


async def read_form(request, settings, allowed, take=lambda n: None):
    """The multipart form of an API call: ``(file name, image bytes, {field: text})``.

    The body is read in memory with a size limit before any parsing, so an
    oversized upload costs at most the limit; the form parser keeps the file
    in memory too (its spool size is the limit), so nothing reaches the disk.
    ``take(n)`` accounts for each chunk (:class:`Buffers`).
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(415, "send the image as multipart/form-data, in a file field named 'image'")
    body = await _read_body(request, settings, take)
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


async def _read_body(request, settings, take):
    limit = settings.max_upload_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        if request.headers.get("expect", "").lower() != "100-continue":  # else the body never left the client
            await _drain(request, settings, 0)
        raise _too_big(int(declared), settings.max_upload_bytes)
    chunks, size = [], 0
    while True:
        message = await _receive(request, settings.read_timeout)
        if message["type"] == "http.disconnect":
            raise ApiError(400, "the upload was interrupted")
        chunk, more = message.get("body", b""), message.get("more_body", False)
        size += len(chunk)
        try:
            if size > limit:
                raise _too_big(size, settings.max_upload_bytes, at_least=True)
            take(len(chunk))
        except ApiError:
            chunks.clear()
            if more:
                await _drain(request, settings, size)
            raise
        chunks.append(chunk)
        if not more:
            return b"".join(chunks)


async def _receive(request, timeout):
    """The next ASGI message, or 408 when nothing comes for ``timeout`` seconds."""
    with anyio.move_on_after(timeout):
        return await request.receive()
    raise ApiError(408, f"the upload stalled: nothing arrived for {timeout:g} s", CLOSE)


async def _drain(request, settings, received):
    """Read and drop the rest of a refused body, up to DRAIN_FACTOR times the limit and for ``read_timeout`` s.

    A client that sends the whole body before it reads (urllib, http.client)
    would otherwise find the connection reset under it, and never see the 413.
    """
    most = DRAIN_FACTOR * (settings.max_upload_bytes + FORM_OVERHEAD)
    with anyio.move_on_after(settings.read_timeout):
        while received <= most:
            message = await request.receive()
            received += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                return


def _too_big(size, limit, at_least=False):
    more = "more than " if at_least else ""
    return ApiError(413, f"the upload is {more}{size / MB:.1f} MB, over the limit of {limit / MB:g} MB "
                         f"(kcolors serve --max-upload-mb raises it)", CLOSE)


def _split_form(form, settings, allowed):
    keys = [key for key, _ in form.multi_items()]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:  # which one would count? Refused rather than guessed (k=300 then k=8 is not k=8)
        raise ApiError(400, f"field {twice[0]!r} is given more than once; send each field once")
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
