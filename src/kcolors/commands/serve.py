"""``kcolors serve``: the web page and API on a local address, served by uvicorn.

Below the app (:mod:`kcolors.web.app`), the connections themselves are guarded
here, in uvicorn's HTTP protocol (:func:`guarded_protocol`): at most
``max_connections`` open (past it, a connection left idle makes room, else the
newcomer is answered 503 and closed), and a request's headers complete within
``read_timeout`` seconds of the connection or of the answer before: half a
request is then answered 408, a connection that sent nothing is closed. What
uvicorn answers itself (a malformed request) is JSON too.
"""

import contextlib
import ipaddress
import json
import os
import socket
import sys

from ..errors import UsageError
from ..extras import require
from . import ExamplesFormatter, add_options

EPILOG = """examples:
  kcolors serve                        the page at http://127.0.0.1:8000/, the API under /api
  kcolors serve --port 0 --open        a free port, the page opened in the browser
  kcolors serve --host 0.0.0.0         open to the network (the addresses to open are printed)"""


def add_parser(sub):
    from ..web.settings import Settings

    defaults = Settings()
    p = sub.add_parser("serve", help="a web page to flatten images by hand (and its HTTP API)",
                       description="Serve a web page where you drop an image, move a k slider and download the "
                                   "PNG, with its API under /api (OpenAPI at /api/openapi.json). Everything is "
                                   "served locally; nothing is fetched from the internet.",
                       epilog=EPILOG, formatter_class=ExamplesFormatter)
    add_options(p, "serve", own={
        "max_upload_mb": dict(default=defaults.max_upload_bytes / 2**20),
        "max_pixels": dict(default=defaults.max_pixels, help=f"largest image decoded, in pixels (default "
                                                             f"{defaults.max_pixels:,}); larger gets HTTP 413"),
        "max_frames": dict(default=defaults.max_frames, help="most frames, pages or images in an upload, counted "
                           f"from its headers (default {defaults.max_frames:,}); more gets HTTP 413"),
        **{name: dict(default=getattr(defaults, name))
           for name in ("concurrency", "queue", "read_timeout", "job_timeout", "max_connections")},
        "max_job_memory_mb": dict(default=defaults.max_job_memory / 2**20, help="memory one image may need, "
                                  "estimated from its header before decoding (default: a quarter of this machine's, "
                                  f"{defaults.max_job_memory / 2**20:,.0f} MB); more gets HTTP 413"),
        "allow_host": dict(action="append", default=[])})
    p.set_defaults(run=run)


def listen(host, port):
    """A listening TCP socket on ``host:port``; UsageError naming the problem when that is impossible."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: unknown address ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        hint = "; choose another with --port" if exc.errno in (98, 48) else ""
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock):
    """The address to open in a browser: for a wildcard (0.0.0.0, ::), which no browser opens, loopback's."""
    host, port = sock.getsockname()[:2]
    if ipaddress.ip_address(host.split("%")[0]).is_unspecified:
        host = "::1" if ":" in host else "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def network_urls(sock):
    """For a wildcard address, the addresses other computers may open: one per network interface (IPv4, not
    loopback), then this computer's name; none for any other address (url_of is the one)."""
    host, port = sock.getsockname()[:2]
    if not ipaddress.ip_address(host.split("%")[0]).is_unspecified:
        return []
    addresses = sorted(a for a in _interface_addresses() if not ipaddress.ip_address(a).is_loopback)
    return [f"http://{a}:{port}/" for a in addresses] + [f"http://{socket.gethostname().lower()}:{port}/"]


def _is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
LINGER_SECONDS = 1.0  # a refused connection is read (and dropped) this long before it is closed
# A connection silent this long may be closed to make room for another: since it opened (its first request may
# be on its way: not read yet), or since its last answer (kept alive; a client that reuses it as it closes sends
# again on a new one, as after uvicorn's own keep-alive time-out).
IDLE_AFTER_SECONDS = {"opened": 0.5, "answered": 0.1}


def host_names(host, sock, extra=()):
    """The names a browser may use for this server (loopback ones always), for the Host header check.

    A wildcard address (0.0.0.0, ::) adds this computer's name and addresses.
    """
    names = set(LOOPBACK_NAMES) | {name.lower() for name in extra}
    bound = sock.getsockname()[0]
    for name in (host, bound):
        names.add(f"[{name}]" if ":" in name else name.lower())
    if ipaddress.ip_address(bound).is_unspecified:
        names -= {"0.0.0.0", "[::]"}
        hostname = socket.gethostname()
        names |= {hostname.lower(), socket.getfqdn().lower()} | _interface_addresses()
        with contextlib.suppress(OSError):
            names |= {info[4][0] for info in socket.getaddrinfo(hostname, None, type=socket.SOCK_STREAM)
                      if ":" not in info[4][0]}
    return sorted(names)


def _interface_addresses():
    """The IPv4 address of each network interface (Linux; elsewhere none: --allow-host names them)."""
    import struct

    found = set()
    try:
        import fcntl

        interfaces = socket.if_nameindex()
    except (ImportError, OSError):
        return found
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # only asked, never connected
        for _, name in interfaces:
            try:
                answer = fcntl.ioctl(probe.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))  # SIOCGIFADDR
            except OSError:
                continue  # no IPv4 address
            found.add(socket.inet_ntoa(answer[20:24]))
    return found


def allowed_hosts(names, port):
    """Each name with and without the port, as the Host header carries it."""
    return tuple(f"{name}{suffix}" for name in names for suffix in ("", f":{port}"))


def guarded_protocol(settings):
    """uvicorn's h11 protocol with a cap on open connections, a time limit on a request's headers, and its
    own error answers in JSON."""
    import time
    from http import HTTPStatus

    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class ExplainedConnection(h11.Connection):
        """h11's connection, keeping its last protocol error: uvicorn answers only "Invalid HTTP request"."""

        error = None

        def next_event(self):
            try:
                return super().next_event()
            except h11.RemoteProtocolError as exc:
                self.error = exc
                raise

    class GuardedH11Protocol(H11Protocol):
        _timer = None
        _heard = False  # some bytes of the next request have come
        _refused = False
        _idle_since = 0.0  # when the connection began to wait for a request (see _idle)
        _waiting = "opened"  # for its first request, or "answered": kept alive after one

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            size = self.config.h11_max_incomplete_event_size
            self.conn = ExplainedConnection(h11.SERVER, *([] if size is None else [size]))

        def connection_made(self, transport):
            super().connection_made(transport)
            self._idle_since = time.monotonic()
            if self._open_connections() > settings.max_connections:
                # As nginx does: the connection idle the longest makes room; only working ones keep the cap.
                # Else a client holding 130 idle connections, renewed, turned everyone else away.
                idle = min((c for c in self.connections if c is not self and _idle(c)),
                           key=lambda c: c._idle_since, default=None)
                if idle is None:
                    return self._refuse(503, f"over {settings.max_connections} connections; try again in "
                                             f"{settings.retry_after} s", f"Retry-After: {settings.retry_after}\r\n")
                idle._close_idle()
            self._arm()

        def _open_connections(self):
            return sum(1 for c in self.connections if not getattr(c, "_refused", False)
                       and not c.transport.is_closing())

        def _close_idle(self):
            # As uvicorn's keep-alive timeout closes one: nothing is lost, a browser opens another
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            with contextlib.suppress(h11.LocalProtocolError):
                self.conn.send(h11.ConnectionClosed())
            self.transport.close()

        def send_400_response(self, msg):
            # uvicorn's own answer to a request h11 cannot parse (plain text there): JSON, as every other one.
            error = self.conn.error
            status = getattr(error, "error_status_hint", 400)
            if not 400 <= status < 600:
                status = 400
            body = json.dumps({"error": f"malformed HTTP request: {error or msg}", "status": status}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                       (b"connection", b"close")]
            response = h11.Response(status_code=status, headers=headers, reason=HTTPStatus(status).phrase)
            self.transport.write(self.conn.send(response) + self.conn.send(h11.Data(data=body))
                                 + self.conn.send(h11.EndOfMessage()))
            self.transport.close()

        def data_received(self, data):
            if self._refused:
                return  # read and dropped: see _refuse
            self._heard = True
            super().data_received(data)

        def on_response_complete(self):
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc):
            if self._timer is not None:
                self._timer.cancel()
            super().connection_lost(exc)

        def _arm(self):
            # The next request's headers are due within read_timeout; uvicorn's own keep-alive timer
            # stops as soon as one byte comes, and there is none before the first request.
            if self._timer is not None:
                self._timer.cancel()
            self._heard = False
            self._idle_since = time.monotonic()
            if self.cycle is not None:
                self._waiting = "answered"
            if not self.transport.is_closing():
                self._timer = self.loop.call_later(settings.read_timeout, self._late, self.cycle)

        def _late(self, cycle):
            self._timer = None
            waiting = self.cycle is cycle and (cycle is None or cycle.response_complete)
            if not waiting or self.transport.is_closing():
                return
            if self._heard:
                self._refuse(408, f"the request stalled: its headers did not arrive within "
                                  f"{settings.read_timeout:g} s")
            else:  # a connection opened ahead (browsers do) or left idle: closed without a word
                self.transport.close()

        def _refuse(self, status, message, extra=""):
            # Written by hand: h11 cannot answer before a request has arrived. Then the connection closes
            # for writing, and what the client still sends is read and dropped for a second before it
            # closes for good: closed with unread bytes, it would be reset, and the answer lost.
            body = json.dumps({"error": message, "status": status}).encode()
            reason = {408: "Request Timeout", 503: "Service Unavailable"}[status]
            self.transport.write(f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                                 f"content-length: {len(body)}\r\nconnection: close\r\n{extra}\r\n".encode()
                                 + body)
            self._refused = True
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _idle(connection):
        """Waiting for a request of which nothing has come for IDLE_AFTER_SECONDS, with nothing left to write:
        closing it loses nothing (opened ahead, as browsers do, or kept alive after an answer). Not sooner: a
        client that just connected or was just answered may have sent bytes not yet read."""
        return (isinstance(connection, GuardedH11Protocol) and not connection._refused and not connection._heard
                and time.monotonic() - connection._idle_since >= IDLE_AFTER_SECONDS[connection._waiting]
                and not connection.transport.is_closing() and not connection.transport.get_write_buffer_size()
                and (connection.cycle is None or connection.cycle.response_complete))

    return GuardedH11Protocol


def _say(line):
    """A status line on standard output, as far as it can be written: a server started with its output closed
    (``>&-``) or full (``> /dev/full``), as a service manager may, still serves."""
    try:
        print(line, flush=True)
    except (OSError, ValueError):  # ValueError: a closed sys.stdout
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 -- else Python's flush at exit reports the same error


def run(args):
    require("web", "serve")  # before listening: one line naming the extra, exit 2
    import uvicorn

    from ..web import workers
    from ..web.app import create_app
    from ..web.settings import Settings

    sock = listen(args.host, args.port)
    url = url_of(sock)
    names = host_names(args.host, sock, args.allow_host)
    settings = Settings(max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels,
                        max_frames=args.max_frames, concurrency=args.concurrency, queue=args.queue,
                        read_timeout=args.read_timeout, job_timeout=args.job_timeout,
                        max_job_memory=int(args.max_job_memory_mb * 2**20), max_connections=args.max_connections,
                        allowed_hosts=allowed_hosts(names, sock.getsockname()[1]))
    if not _is_loopback(args.host):
        print(f"kcolors: warning: listening on {args.host}: anyone who can reach this computer can upload "
              f"images", file=sys.stderr)
    _say(f"kcolors: serving {url} (API: {url}api, OpenAPI: {url}api/openapi.json); Ctrl+C stops")
    others = network_urls(sock)
    if others:
        _say(f"kcolors: from other computers: {', '.join(others)}")
    if not _is_loopback(args.host) or args.allow_host:
        _say(f"kcolors: answering to the names {', '.join(names)} (--allow-host adds one)")
    if args.open:
        import webbrowser

        webbrowser.open(url)
    config = uvicorn.Config(create_app(settings), http=guarded_protocol(settings),
                            log_level="info" if args.verbose else "warning", access_log=args.verbose,
                            timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        workers.ZYGOTE.stop()  # its workers end with it
    return 0
