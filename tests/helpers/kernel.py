"""Shared helpers for real-kernel tests: run the tracer around a workload, find
the BPF objects a process owns, run bind workloads in child processes."""
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIBDIR = os.path.join(ROOT, "collection/ansible_collections/fleetaudit/bindtrace/plugins/module_utils")
# Waiting limits scale with this (the VM matrix sets 5: QEMU/TCG runs ~10x slower);
# only how long a test waits changes, never what it expects.
TIME_FACTOR = float(os.environ.get("BINDTRACE_TEST_TIME_FACTOR", "1"))


def trace_around(cfg, action, settle=0.3, until=None, patience=15.0):
    """Load the tracer, run action(), let the last events arrive, stop.
    until(result, events) -> bool keeps polling (up to `patience` s, for a
    loaded machine) until the expected events arrived.
    Returns (action's result, events or summary records, stats)."""
    from bindtrace.trace import Tracer
    events = []
    with Tracer(cfg) as tracer:
        result = action()
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            events.extend(tracer.poll(50))
        deadline = time.monotonic() + patience * TIME_FACTOR
        while until is not None and not until(result, events) and time.monotonic() < deadline:
            events.extend(tracer.poll(50))
        tracer.stop()
        events.extend(tracer.poll(0))
        if cfg.mode == "summary":
            events = tracer.summary()
        stats = tracer.stats()
    return result, events, stats


def bpf_ids_of(pid):
    """prog/map/link ids held by a process's fds (read from /proc/<pid>/fdinfo)."""
    ids = set()
    fddir = "/proc/%d/fdinfo" % pid
    try:
        fds = os.listdir(fddir)
    except OSError:
        return ids  # the process is gone: it holds nothing
    for fd in fds:
        try:
            with open(os.path.join(fddir, fd)) as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in ("prog_id", "map_id", "link_id"):
                        ids.add((key, int(value)))
        except (OSError, ValueError):
            continue
    return ids


def live_bpf_ids():
    """Every prog/map/link id loaded in the kernel right now (bpftool)."""
    import json
    ids = set()
    for kind, key in (("prog", "prog_id"), ("map", "map_id"), ("link", "link_id")):
        out = subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True, text=True,
                             check=True).stdout
        for item in json.loads(out or "[]"):
            ids.add((key, item["id"]))
    return ids


def nc_binary(tmpdir):
    """busybox-static as `nc`, so comm is "nc" as in the seed's example."""
    path = os.path.join(str(tmpdir), "nc")
    if not os.path.exists(path):
        os.symlink(shutil.which("busybox") or "/bin/busybox", path)
    return path


def run_py(code, *args, uid=None):
    """Run a Python bind workload in a child; returns (pid, stdout)."""
    pre = None
    if uid is not None:
        def pre():
            os.setgid(uid)
            os.setuid(uid)
    # an unprivileged child cannot read the venv under /root: use the system Python
    python = "/usr/bin/python3" if uid is not None else sys.executable
    proc = subprocess.run([python, "-c", code] + [str(a) for a in args],
                          capture_output=True, text=True, preexec_fn=pre, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


CLI = [sys.executable, "-m", "bindtrace.cli"]


def cli_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = LIBDIR + os.pathsep + env.get("PYTHONPATH", "")
    return env
