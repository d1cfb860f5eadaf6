"""The process tree, read from /proc: what the tests that must leave no process behind look at."""

import os


def process_table():
    """{pid: (state, ppid, process group)} of every live process (zombies hold nothing: left out)."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            if fields[0] not in "ZX":
                table[int(entry)] = (fields[0], int(fields[1]), int(fields[2]))
    return table


def descendants(pid, table=None):
    """Process ids of every live process below ``pid`` (children, their children, ...)."""
    table = process_table() if table is None else table
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, (_, ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found
