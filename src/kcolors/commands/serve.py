"""``kcolors serve``: the web page and API on a local address, served by uvicorn."""

import ipaddress
import socket
import sys

from ..errors import UsageError
from . import whole_number


def add_parser(sub):
    from ..web.settings import Settings

    defaults = Settings()
    p = sub.add_parser("serve", help="a web page to flatten images by hand (and its HTTP API)",
                       description="Serve a web page where you drop an image, move a k slider and download the "
                                   "PNG, with its API under /api (OpenAPI at /api/openapi.json). Everything is "
                                   "served locally; nothing is fetched from the internet.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only; 0.0.0.0 opens it to the "
                        "network)")
    p.add_argument("--port", type=_port, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--max-upload-mb", type=_megabytes, default=defaults.max_upload_bytes / 2**20, metavar="MB",
                   help="largest upload accepted (default %(default)g MB); larger gets HTTP 413")
    p.add_argument("--max-pixels", type=_at_least(1), default=defaults.max_pixels, metavar="N",
                   help="largest image decoded, in pixels (default %(default)s); larger gets HTTP 413")
    p.add_argument("--concurrency", "--workers", dest="concurrency", type=_at_least(1),
                   default=defaults.concurrency, metavar="N",
                   help="images processed at once, in threads (default: the number of cores, %(default)s)")
    p.add_argument("--queue", type=_at_least(0), default=defaults.queue, metavar="N",
                   help="requests that may wait for a worker (default %(default)s); more get HTTP 503")
    p.add_argument("--open", action="store_true", help="open the page in the default web browser")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    p.set_defaults(run=run)


def _port(text):
    port = whole_number(text)
    if not 0 <= port <= 65535:
        raise _type_error(f"port must be between 0 and 65535, not {port}")
    return port


def _at_least(low):
    def check(text):
        value = whole_number(text)
        if value < low:
            raise _type_error(f"must be at least {low}, not {value}")
        return value
    return check


def _megabytes(text):
    try:
        value = float(text)
    except ValueError:
        raise _type_error(f"{text!r} is not a number") from None
    if not value > 0:
        raise _type_error(f"the upload limit must be above 0 MB, not {text}")
    return value


def _type_error(message):
    import argparse

    return argparse.ArgumentTypeError(message)


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
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def _is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run(args):
    import uvicorn

    from ..web.app import create_app
    from ..web.settings import Settings

    settings = Settings(max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels,
                        concurrency=args.concurrency, queue=args.queue)
    sock = listen(args.host, args.port)
    url = url_of(sock)
    if not _is_loopback(args.host):
        print(f"kcolors: warning: listening on {args.host}: anyone who can reach this computer can upload "
              f"images", file=sys.stderr)
    print(f"kcolors: serving {url} (API: {url}api, OpenAPI: {url}api/openapi.json); Ctrl+C stops", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    config = uvicorn.Config(create_app(settings), log_level="info" if args.verbose else "warning",
                            access_log=args.verbose, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
