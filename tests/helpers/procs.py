"""Process bookkeeping for the test fleet: identify a PID safely and stop a
process tree that the harness started.

A PID alone can be reused after its process exits, so the harness records the
PID together with the process start time (field 22 of /proc/PID/stat) and only
signals a PID whose start time still matches.
"""
import os
import signal
import time


def _stat_fields(pid):
    """Fields of /proc/PID/stat after the command name, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm may hold spaces and parentheses: split after the last ')'.
    return data[data.rindex(")") + 2:].split()


def start_time(pid):
    """Start time in clock ticks since boot, or None if the PID is gone."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def state(pid):
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def alive(pid, started=None):
    """True when PID runs (not a zombie) and, if given, started at `started`."""
    fields = _stat_fields(pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started


def children_map():
    """ppid -> [pid] for every process now visible."""
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields:
            kids.setdefault(int(fields[1]), []).append(int(name))
    return kids


def descendants(pid):
    """PID and every process below it (depth first, parents first)."""
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def stop(pids, timeout=3.0):
    """SIGTERM the given PIDs, then SIGKILL those still running after timeout.

    `pids` is a list of (pid, start_time) pairs; a pair whose start time no
    longer matches belongs to some other process now and is left alone.
    """
    live = [(p, st) for p, st in pids if alive(p, st)]
    for p, _ in live:
        _signal(p, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = [(p, st) for p, st in live if alive(p, st)]
        if not live:
            return
        time.sleep(0.05)
    for p, st in live:
        if alive(p, st):
            _signal(p, signal.SIGKILL)


def tree(pid, started):
    """(pid, start_time) of a process the harness started and of everything
    it forked; empty when that process is gone."""
    if not alive(pid, started):
        return []
    out = [(p, start_time(p)) for p in descendants(pid)]
    return [(p, st) for p, st in out if st is not None]


def stop_tree(pid, started, timeout=3.0):
    """Stop a process the harness started and everything it forked."""
    stop(tree(pid, started), timeout)


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
