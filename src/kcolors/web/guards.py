"""The web server's guards: pure ASGI middleware that answers a request before the app sees it.

The security headers of every answer (:class:`SecurityHeaders`), and refusals of an ambiguous request
(:class:`RequestFraming`), a Host that is not this server's (:class:`HostCheck`) and a request from another
origin (:class:`OriginCheck`). See :mod:`kcolors.web.app` for the order a request meets them.
"""

from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse

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


def error_response(status, message, headers=None):
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


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
                response = error_response(400, "a request with both Content-Length and Transfer-Encoding is "
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
                response = error_response(403, f"cross-origin request refused: {foreign}; this server takes "
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
                response = error_response(421, f"this server does not answer to {foreign[0]!r}; use one of: "
                                                f"{', '.join(sorted(self.allowed))}")
                return await response(scope, receive, send)
        await self.app(scope, receive, send)
