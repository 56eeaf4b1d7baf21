"""Shared pieces of the benchmarks: paths, the bind storm generator (built on
demand from bindstorm.c), medians, and one plain-text table format."""
import os
import socket
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS = os.path.join(ROOT, "collection/ansible_collections/fleetaudit/bindtrace/plugins")
for _sub in ("module_utils", "plugin_utils"):
    if os.path.join(PLUGINS, _sub) not in sys.path:
        sys.path.insert(0, os.path.join(PLUGINS, _sub))
if os.path.join(ROOT, "tests") not in sys.path:   # the shared test helpers
    sys.path.insert(0, os.path.join(ROOT, "tests"))
from helpers.net import free_port  # noqa: E402,F401  (the storms filter on a port of their own)

BUILD = "/tmp/bindtrace-bench"
STORM_SRC = os.path.join(ROOT, "tests", "bench", "bindstorm.c")
STORM_BIN = os.path.join(BUILD, "bindstorm")


def storm_binary():
    """bindstorm, rebuilt when its source is newer than the binary (or a prebuilt
    one named by BINDTRACE_BENCH_STORM: a VM guest has no compiler)."""
    if os.environ.get("BINDTRACE_BENCH_STORM"):
        return os.environ["BINDTRACE_BENCH_STORM"]
    os.makedirs(BUILD, exist_ok=True)
    if not os.path.exists(STORM_BIN) or os.path.getmtime(STORM_BIN) < os.path.getmtime(STORM_SRC):
        subprocess.run(["gcc", "-O2", "-Wall", "-pthread", "-o", STORM_BIN, STORM_SRC], check=True)
    return STORM_BIN


class Storm(object):
    """One bindstorm run, started behind a gate so a tracer can be loaded with
    its pid before the first bind: Storm(...) -> .pid -> go() -> wait()."""

    def __init__(self, threads, total, port, mode="einval", rate=0):
        self.total = total // threads * threads
        self.port = port   # each thread also binds once to port 0 first (einval mode)
        self.proc = subprocess.Popen(
            [storm_binary(), str(threads), str(total // threads), mode, str(port), str(rate),
             "gate"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True)
        self.pid = self.proc.pid

    def go(self):
        self.proc.stdin.write("g")
        self.proc.stdin.close()
        self.proc.stdin = None   # so communicate() leaves it alone

    def running(self):
        return self.proc.poll() is None

    def wait(self):
        """{"offered", "seconds", "rate", "cpu"} as bindstorm printed them."""
        out, _ = self.proc.communicate()
        if self.proc.returncode != 0:
            raise RuntimeError("bindstorm failed (exit %d)" % self.proc.returncode)
        offered, secs, rate, cpu = out.split()
        return {"offered": int(offered), "seconds": float(secs), "rate": float(rate),
                "cpu": float(cpu)}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_rate(per_s):
    if per_s is None:
        return "-"
    if per_s >= 1e6:
        return "%.2fM/s" % (per_s / 1e6)
    return "%.0fk/s" % (per_s / 1e3)


def table(header, rows):
    """Left-aligned columns, two spaces apart."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)
