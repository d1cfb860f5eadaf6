"""Reading an upload, the part of a request the server must not trust.

The body is read with a size limit and a read timeout; what all uploads hold in
memory together is bounded (:class:`Buffers`); a refused body is drained so that
the client reads the answer; the multipart form is split into the image and its
fields, each field checked for size and repetition. An upload is held once: the
body, and the image as a view into it, never a copy (a 25 MB upload held four
times over took 20 of them to 1.4 GB against a bound of 500 MB).
"""

import re
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

from .settings import MB

try:
    from python_multipart.multipart import MultipartParser, parse_options_header
except ModuleNotFoundError:  # python-multipart before 0.0.13 named its module multipart
    from multipart.multipart import MultipartParser, parse_options_header

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
    admission, so without it many uploads arriving at once would each hold up to the upload limit.

    Each upload is held once (:func:`read_form`), so the bound is what the uploads really take.
    ``when_empty()`` is called when the last upload in hand has gone, once a megabyte or more came
    and went since the last call (the server gives the heap's free pages back then).
    """

    def __init__(self, settings, when_empty=None):
        # The uploads in hand, plus two on their way.
        self.limit = (settings.concurrency + settings.queue + 2) * (settings.max_upload_bytes + FORM_OVERHEAD)
        self.retry_after = settings.retry_after
        self.held = 0
        self.when_empty = when_empty
        self._since_empty = 0

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
            self._since_empty += taken
            if not self.held and self._since_empty >= MB and self.when_empty is not None:
                self._since_empty = 0
                self.when_empty()


# ----------------------------------------------------------------------------- the upload


async def read_form(request, settings, allowed, take=lambda n: None):
    """The multipart form of an API call: ``(file name, image bytes, {field: text})``.

    The body is read in memory with a size limit before any parsing, so an
    oversized upload costs at most the limit, and it is held once: the image's
    bytes are a read-only view into the body (a ``memoryview``), which the
    worker pool sends on as it is. ``take(n)`` accounts for each chunk, and for
    any copy the form makes (:class:`Buffers`).
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(415, "send the image as multipart/form-data, in a file field named 'image'")
    body = await _read_body(request, settings, take)
    try:
        parts = parse_form(body, content_type, max_fields=len(allowed) + 4)
    except FormError as exc:
        raise ApiError(400, f"malformed form data: {exc}") from None
    return _split_form(parts, body, settings, allowed, take)


async def _read_body(request, settings, take):
    """The body as one bytearray, grown as it comes (never joined: that would hold it twice)."""
    limit = settings.max_upload_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        if request.headers.get("expect", "").lower() != "100-continue":  # else the body never left the client
            await _drain(request, settings, 0)
        raise _too_big(int(declared), settings.max_upload_bytes)
    body = bytearray()
    while True:
        message = await _receive(request, settings.read_timeout)
        if message["type"] == "http.disconnect":
            raise ApiError(400, "the upload was interrupted")
        chunk, more = message.get("body", b""), message.get("more_body", False)
        try:
            if len(body) + len(chunk) > limit:
                raise _too_big(len(body) + len(chunk), settings.max_upload_bytes, at_least=True)
            take(len(chunk))
        except ApiError:
            received = len(body) + len(chunk)
            del body[:]  # given back before the drain, which may take seconds
            if more:
                await _drain(request, settings, received)
            raise
        body += chunk
        if not more:
            return body


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


# ----------------------------------------------------------------------------- the multipart form


class FormError(ValueError):
    """The body is not a well-formed multipart form (or breaks one of its limits)."""


@dataclass
class Part:
    """One part of a multipart form: its field name, its file name (None for a text field), and where its
    bytes lie, as ``(buffer, start, end)`` pieces (the parser names ranges of what it was given)."""

    name: str = ""
    filename: str = None
    disposition: bytes = b""
    pieces: list = field(default_factory=list)
    size: int = 0
    text: str = ""  # a text field's value, decoded


def parse_form(body, content_type, max_fields):
    """The parts of the multipart form in ``body`` (a bytearray), none of their bytes copied.

    At most one file; at most ``max_fields`` text fields of MAX_FIELD_BYTES each.
    FormError says what is wrong (the parser's own limits on headers included).
    """
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise FormError("Missing boundary in multipart.")
    charset = options.get(b"charset", b"utf-8")
    charset = charset.decode("latin-1") if isinstance(charset, bytes) else charset
    parts, header, state = [], [b"", b""], {"files": 0, "fields": 0, "ended": False}
    part = Part()

    def on_part_begin():
        nonlocal part
        part = Part()

    def on_header_field(data, start, end):
        header[0] += bytes(data[start:end])

    def on_header_value(data, start, end):
        header[1] += bytes(data[start:end])

    def on_header_end():
        if header[0].lower() == b"content-disposition":
            part.disposition = header[1]
        header[:] = [b"", b""]

    def on_headers_finished():
        _, disposition = parse_options_header(part.disposition)
        if b"name" not in disposition:
            raise FormError('The Content-Disposition header field "name" must be provided.')
        part.name = _decode(disposition[b"name"], charset)
        kind = "files" if b"filename" in disposition else "fields"
        state[kind] += 1
        most = 1 if kind == "files" else max_fields
        if state[kind] > most:
            raise FormError(f"Too many {kind}. Maximum number of {kind} is {most}.")
        if kind == "files":
            part.filename = _decode(disposition[b"filename"], charset)

    def on_part_data(data, start, end):
        part.size += end - start
        if part.filename is None and part.size > MAX_FIELD_BYTES:
            raise FormError(f"Part exceeded maximum size of {MAX_FIELD_BYTES // 1024}KB.")
        part.pieces.append((data, start, end))

    def on_part_end():
        if part.filename is None:
            part.text = _decode(b"".join(bytes(buffer[start:end]) for buffer, start, end in part.pieces), charset)
        parts.append(part)

    def on_end():
        state["ended"] = True

    callbacks = {"on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
                 "on_header_field": on_header_field, "on_header_value": on_header_value,
                 "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_end": on_end}
    try:
        MultipartParser(boundary, callbacks).write(body)
    except FormError:
        raise
    except ValueError as exc:  # the parser's own errors (python_multipart's FormParserError is one)
        raise FormError(str(exc)) from None
    if not state["ended"]:
        raise FormError("the form ends before its closing boundary")
    return parts


def _decode(raw, charset):
    """A name or value as text: in the form's charset, else Latin-1 (which decodes any bytes)."""
    try:
        return bytes(raw).decode(charset)
    except (UnicodeDecodeError, LookupError):
        return bytes(raw).decode("latin-1")


def part_bytes(part, body, take):
    """The bytes of a part: a read-only view into ``body`` when the parser named one range of it (always,
    when the body is parsed in one piece), else a joined copy, accounted with ``take``."""
    pieces = [(start, end) for buffer, start, end in part.pieces if buffer is body]
    contiguous = all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
    if len(pieces) == len(part.pieces) and contiguous:
        return memoryview(body)[pieces[0][0]:pieces[-1][1]].toreadonly() if pieces else b""
    take(part.size)
    return b"".join(bytes(buffer[start:end]) for buffer, start, end in part.pieces)


def _split_form(parts, body, settings, allowed, take):
    keys = [part.name for part in parts]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:  # which one would count? Refused rather than guessed (k=300 then k=8 is not k=8)
        raise ApiError(400, f"field {twice[0]!r} is given more than once; send each field once")
    unknown = sorted(set(keys) - set(allowed) - {"image"})
    if unknown:
        raise ApiError(422, f"unknown field {unknown[0]!r}; the fields are image, {', '.join(allowed)}")
    named = {part.name: part for part in parts}
    upload = named.pop("image", None)
    if upload is None:
        raise ApiError(422, "missing field 'image': choose an image file to upload")
    if upload.filename is None:
        raise ApiError(422, "field 'image' must be a file, not text")
    name = safe_name(upload.filename)
    if upload.size > settings.max_upload_bytes:
        raise _too_big(upload.size, settings.max_upload_bytes)
    if not upload.size:
        raise ApiError(400, f"{name}: empty file, not an image")
    fields = {}
    for key, part in named.items():
        if part.filename is not None:
            raise ApiError(422, f"field {key!r} must be text, not a file")
        fields[key] = part.text
    return name, part_bytes(upload, body, take), fields


def safe_name(filename):
    """A file name fit for messages and headers: its last part, printable ASCII, at most 80 characters."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = re.sub(r"[^A-Za-z0-9._ +()-]", "_", name).strip(" .") or "image"
    return name[-80:]
