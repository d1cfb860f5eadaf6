"""The report of a batch: one row per file, as CSV or JSON."""

import csv
import io
import json
from pathlib import Path

from ..errors import UsageError, printable
from ..output import write_bytes
from .tasks import REPORT_COLUMNS


def check_report_path(path):
    """Refuse, before any work, a report name that is neither .csv nor .json."""
    if Path(str(path)).suffix.lower() not in (".csv", ".json"):
        raise UsageError(f"{path}: the report must be a .csv or .json file")


def write_report(rows, path):
    """Write report rows as CSV (lists as space-separated values) or JSON (a list of objects).

    Names that are not valid UTF-8 are written as :func:`~kcolors.errors.printable` shows them (``caf\\xe9.png``).
    """
    check_report_path(path)
    rows = [{key: printable(value) if isinstance(value, str) else value for key, value in row.items()} for row in rows]
    if Path(str(path)).suffix.lower() == ".json":
        text = json.dumps(rows, indent=1) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=REPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: " ".join(map(str, value)) if isinstance(value, list) else value
                             for key, value in row.items()})
        text = buffer.getvalue()
    write_bytes(path, text.encode(), force=True)
