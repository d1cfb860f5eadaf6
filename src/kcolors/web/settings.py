"""The limits of one ``kcolors serve``, kept apart from the app so the command line can read the defaults
without importing Starlette."""

import os
from dataclasses import dataclass, field

from ..errors import UsageError

MB = 1024 * 1024


@dataclass
class Settings:
    """Limits of one server.

    Attributes
    ----------
    max_upload_bytes : int
        Largest image file accepted (default 25 MB); larger gets 413.
    max_pixels : int
        Largest image, in pixels, decoded (default 40 million); larger gets 413.
    concurrency : int
        Images processed at once (default: the number of cores).
    queue : int
        Requests allowed to wait for a free worker (default 16); more get 503.
    retry_after : int
        Seconds suggested to a client turned away with 503.
    """

    max_upload_bytes: int = 25 * MB
    max_pixels: int = 40_000_000
    concurrency: int = field(default_factory=lambda: os.cpu_count() or 1)
    queue: int = 16
    retry_after: int = 2

    def __post_init__(self):
        if self.max_upload_bytes < 1 or self.max_pixels < 1 or self.concurrency < 1 or self.queue < 0:
            raise UsageError("upload and pixel limits and concurrency must be positive, and the queue at least 0")
