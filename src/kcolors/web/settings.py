"""The limits of one ``kcolors serve``, kept apart from the app so the command line can read the defaults
without importing Starlette."""

import os
from dataclasses import dataclass, field

from ..errors import UsageError
from ..headers import DEFAULT_MAX_FRAMES

MB = 1024 * 1024


def machine_memory():
    """Bytes of memory this process may use: the machine's, or its control group's limit when lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 4096 * MB  # unknown: assume a small machine
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


@dataclass
class Settings:
    """Limits of one server.

    Attributes
    ----------
    max_upload_bytes : int
        Largest image file accepted (default 25 MB); larger gets 413.
    max_pixels : int
        Largest image, in pixels, decoded (default 40 million); larger gets 413.
    max_frames : int
        Frames, pages or images an upload may hold (default 1,000), counted from its headers; more gets 413.
    concurrency : int
        Images processed at once, each in a worker process (default: the number of cores).
    queue : int
        Requests allowed to wait for a free worker (default 16); more get 503.
    retry_after : int
        Seconds suggested to a client turned away with 503.
    read_timeout : float
        Seconds a request may go without sending anything (default 30): its headers
        must be complete within it, and its body may not stall for longer; 408.
    job_timeout : float
        Seconds one image may take, decoding included (default 60); its worker is then killed, 503.
    max_job_memory : int
        Bytes one job may need, estimated from the image's header before decoding
        (default: a quarter of the machine's memory); more gets 413.
    max_connections : int
        Open connections (default 128); more are answered 503 at once and closed (``kcolors serve``).
    allowed_hosts : tuple of str, or None
        Host header values accepted ("name" or "name:port"); others get 421 (DNS
        rebinding). None accepts any: ``kcolors serve`` always sets them.
    worker_idle : float
        Seconds a worker process waits for another job before it is stopped and its
        memory returned (default 5).
    """

    max_upload_bytes: int = 25 * MB
    max_pixels: int = 40_000_000
    max_frames: int = DEFAULT_MAX_FRAMES
    concurrency: int = field(default_factory=lambda: os.cpu_count() or 1)
    queue: int = 16
    retry_after: int = 2
    read_timeout: float = 30.0
    job_timeout: float = 60.0
    # a quarter of machine_memory(): two jobs at once on a two-core machine take at most half of it
    max_job_memory: int = field(default_factory=lambda: machine_memory() // 4)
    max_connections: int = 128
    allowed_hosts: tuple = None
    worker_idle: float = 5.0

    def __post_init__(self):
        if self.max_upload_bytes < 1 or self.max_pixels < 1 or self.concurrency < 1 or self.queue < 0:
            raise UsageError("upload and pixel limits and concurrency must be positive, and the queue at least 0")
        if not (self.read_timeout > 0 and self.job_timeout > 0 and self.worker_idle >= 0):
            raise UsageError("the read and job time limits must be above 0 seconds, the worker idle time at least 0")
        if self.max_job_memory < 1 or self.max_connections < 1 or self.max_frames < 1:
            raise UsageError("the job memory, connection and frame limits must be positive")
        if self.allowed_hosts is not None:
            self.allowed_hosts = tuple(host.lower() for host in self.allowed_hosts)
