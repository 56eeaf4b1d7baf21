"""Start-up time (load + attach) and peak RSS: core vs bcc, side by side in one
run, plus bcc's own bindsnoop-bpfcc when this kernel lets it run.

Each sample is a fresh process: core under this interpreter, bcc under the
system Python (the one with python3-bpfcc). No assertions: it prints a table.
    .venv/bin/python tests/bench/bench_backends.py [runs]"""
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIBDIR = os.path.join(ROOT, "collection/ansible_collections/fleetaudit/bindtrace/plugins/"
                            "module_utils")
SYSTEM_PYTHON = "/usr/bin/python3"
BINDSNOOP = "/usr/sbin/bindsnoop-bpfcc"

CHILD = r'''
import json, resource, sys, time
t0 = time.monotonic()
from bindtrace.filters import make_config
from bindtrace.trace import Tracer
t1 = time.monotonic()
tracer = Tracer(make_config(mode=sys.argv[2], backend=sys.argv[1]))
t2 = time.monotonic()
out = {"import": t1 - t0, "startup": t2 - t1, "backend": tracer.backend_name,
       "phases": getattr(tracer.backend, "timings", {}),
       "missing": list(getattr(tracer.backend, "missing_fields", ()))}
tracer.close()
out["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(out))
'''


def run_child(python, backend, mode):
    env = dict(os.environ, PYTHONPATH=LIBDIR)
    t0 = time.monotonic()
    p = subprocess.run([python, "-c", CHILD, backend, mode], capture_output=True, text=True,
                       env=env, timeout=300)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit("%s backend failed: %s" % (backend, p.stderr.strip()))
    out = json.loads(p.stdout)
    out["wall"] = wall
    return out


def run_bindsnoop():
    """bindsnoop-bpfcc prints its header once its probes are attached."""
    if not os.path.exists(BINDSNOOP):
        return {"error": "%s not installed (bpfcc-tools)" % BINDSNOOP}
    t0 = time.monotonic()
    p = subprocess.Popen([BINDSNOOP], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    header, reaped = None, None
    deadline = t0 + 120
    # reap with wait4 only (Popen.poll would reap first and lose the rusage)
    while time.monotonic() < deadline:
        if select.select([p.stdout], [], [], 0.05)[0]:
            header = p.stdout.readline() or None  # "" is EOF: it exited
            break
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            reaped = (status, usage)
            break
    startup = time.monotonic() - t0
    if reaped is None:
        # attached (header seen) or stuck past the deadline; os.kill, not p.terminate():
        # Popen.send_signal polls first, which would reap it and lose the rusage
        os.kill(p.pid, signal.SIGTERM)   # a zombie (exited, unreaped) takes it harmlessly
        _, status, usage = os.wait4(p.pid, 0)
    else:
        status, usage = reaped
    p.returncode = status  # reaped here: keep Popen from waiting again
    err = p.stderr.read().strip().splitlines()
    if header is None:
        return {"error": "cannot run here: %s" % (err[-1] if err else "exit %d" % status),
                "startup": startup, "maxrss_kb": usage.ru_maxrss}
    return {"startup": startup, "maxrss_kb": usage.ru_maxrss}


def clip(text, width=110):
    return text if len(text) <= width else text[:width - 3] + "..."


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    samples = {}
    for name, python, backend, mode in (("core events", sys.executable, "core", "events"),
                                        ("bcc events", SYSTEM_PYTHON, "bcc", "events"),
                                        ("core summary", sys.executable, "core", "summary"),
                                        ("bcc summary", SYSTEM_PYTHON, "bcc", "summary")):
        samples[name] = [run_child(python, backend, mode) for _ in range(runs)]
    core = samples["core events"]
    core_start = statistics.median(s["startup"] for s in core)
    core_rss = statistics.median(s["maxrss_kb"] for s in core)
    print("bindtrace backends: %d fresh processes each, medians; kernel %s"
          % (runs, os.uname().release))
    print("%-22s %12s %10s %12s %10s  %s" % ("TRACER", "STARTUP(s)", "x CORE", "PEAK RSS(MB)",
                                             "x CORE", "NOTES"))
    for name, ss in samples.items():
        start = statistics.median(s["startup"] for s in ss)
        rss = statistics.median(s["maxrss_kb"] for s in ss)
        notes = ""
        phases = ss[0]["phases"]
        if phases:
            notes = "phases: " + ", ".join(
                "%s %.2fs" % (k, statistics.median(s["phases"][k] for s in ss)) for k in
                ("calibrate", "compile_attach", "selftest"))
            notes += "; missing fields: %s" % (ss[0]["missing"] or "none")
        print("%-22s %12.3f %10.1f %12.1f %10.1f  %s" % (name, start, start / core_start,
                                                         rss / 1024.0, rss / core_rss, notes))
    snoop = run_bindsnoop()
    if "error" in snoop:
        print("%-22s %12s %10s %12s %10s  %s" % ("bindsnoop-bpfcc", "-", "-", "-", "-",
                                                 clip(snoop["error"])))
        print("%-22s %12.3f %10s %12.1f %10s  %s" % (
            "  (until it failed)", snoop["startup"], "", snoop["maxrss_kb"] / 1024.0, "",
            "compile + failed attach"))
    else:
        print("%-22s %12.3f %10.1f %12.1f %10.1f  %s" % (
            "bindsnoop-bpfcc", snoop["startup"], snoop["startup"] / core_start,
            snoop["maxrss_kb"] / 1024.0, snoop["maxrss_kb"] / core_rss,
            "process start to header (kprobes attached)"))
    print("startup = Tracer() construction (preflight, load, attach; bcc: calibrate, compile, "
          "self-test); peak RSS = the process's ru_maxrss")


if __name__ == "__main__":
    main()
