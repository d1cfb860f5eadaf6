"""The local web page and HTTP API of ``kcolors serve``; see :mod:`kcolors.web.app`.

``create_app`` is imported on first use, so that the command line (which reads
only :class:`Settings`) does not pay for importing Starlette.
"""

from .settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name):
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
