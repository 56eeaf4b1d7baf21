"""Per hook rung of the ladder (fexit, kprobe, tracepoint; those this kernel offers):

(a) the host-wide tax on a NON-bind syscall (getppid) while a window is open,
    as a ratio to untraced: an enabled syscall tracepoint sends every syscall
    of every process through the slower tracing path; fexit/kprobe on the bind
    path should cost other syscalls nothing (ratio 1.00 within noise);
(b) the added CPU per bind, split into the hook's own floor (an empty program
    on the same hook: the variant built here returns at once from every entry
    point) and the program's work beyond that floor; for successful binds
    (bindstorm "noport": a TCP socket with IP_BIND_ADDRESS_NO_PORT bound to
    127.0.0.1:0 again and again, each bind succeeds) and failed ones ("einval":
    an already bound socket bound again), which take different paths through
    the program (a failed bind's requested address is read from the caller's
    memory; a successful TCP/UDP bind's from the socket); and failed binds
    again with the default configuration (ignore_errors true: the program
    drops them before any read, so they should cost the floor alone).

Cost is the generator's own CPU time (getrusage: includes the BPF programs run
inside its syscalls) per call, side by side: each round runs every
configuration once in a rotating order, and medians over rounds are kept.
Ratios only on a shared machine (or in a TCG guest, where time is not absolute).
Each figure is the median over rounds; the spread printed beside it is the
middle half of the per-round values (25th..75th percentile).

In a VM-matrix guest (tests/vm/bench_guest.py: the rungs this host refuses)
there is no compiler: BINDTRACE_BENCH_FLOOR and BINDTRACE_BENCH_STORM name the
floor object and a static bindstorm built on the host.

    .venv/bin/python tests/bench/bench_hooks.py [rounds] [binds] [getppids]
        [--rungs fexit,tracepoint] [--threads N] [--json FILE]"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import bench_common
from bench_common import BUILD, ROOT, Storm, free_port, median, table

from bindtrace import BindtraceError, bpf_object, hooks
from bindtrace.backend_core import CoreBackend
from bindtrace.filters import make_config

BPF = os.path.join(ROOT, "collection", "ansible_collections", "fleetaudit", "bindtrace",
                   "bpf")   # the one copy of the source
ARCH_DEFINE = {"x86_64": "x86", "aarch64": "arm64"}


def floor_object(machine=None):
    """The committed program with every entry point returning at once
    (bind.bpf.c's ENTRY built with -DBENCH_FLOOR=1): what the hook itself
    costs with a program attached (the floor)."""
    prebuilt = os.environ.get("BINDTRACE_BENCH_FLOOR")
    if prebuilt:
        with open(prebuilt, "rb") as f:
            return f.read()
    os.makedirs(BUILD, exist_ok=True)
    obj = os.path.join(BUILD, "floor.%s.bpf.o" % (machine or bpf_object.machine()))
    subprocess.run(["clang", "-g", "-O2", "-target", "bpf", "-DBENCH_FLOOR=1",
                    "-D__TARGET_ARCH_%s" % ARCH_DEFINE[machine or bpf_object.machine()],
                    "-Wno-unused-variable", "-Wno-unused-function", "-Wno-unused-but-set-variable",
                    "-c", os.path.join(BPF, "bind.bpf.c"), "-o", obj], check=True)
    subprocess.run(["llvm-strip", "-g", obj], check=True)
    with open(obj, "rb") as f:
        return f.read()


def load(rung, blob=None, ignore_errors=False):
    """A summary-mode tracer on this rung, from the committed object or blob;
    no filter, and by default ignore_errors false (every bind takes the full path)."""
    original = bpf_object.object_bytes
    if blob is not None:
        bpf_object.object_bytes = lambda arch=None: blob
    try:
        return CoreBackend(make_config(mode="summary", ignore_errors=ignore_errors, hook=rung))
    finally:
        bpf_object.object_bytes = original


def offered_rungs():
    """[(rung, None)] for the rungs that load here, [(rung, why)] for the others."""
    out = []
    for rung in hooks.RUNGS:
        try:
            load(rung.name).close()
            out.append((rung.name, None))
        except BindtraceError as exc:
            out.append((rung.name, str(exc)))
    return out


def run(config, blobs, kind, calls, port, threads=2):
    """CPU ns per call of one storm under one configuration ("none",
    "<rung>", "<rung>/floor", or "<rung>/default": ignore_errors true)."""
    rung, _, variant = config.partition("/")
    backend = None if rung == "none" else load(rung, blobs.get(variant),
                                               ignore_errors=variant == "default")
    try:
        storm = Storm(threads, calls, port, mode=kind)
        storm.go()
        res = storm.wait()
    finally:
        if backend is not None:
            backend.close()
    return res["cpu"] / res["offered"] * 1e9


def foreign_tracers():
    """Syscall tracepoints other processes have BPF programs on (bpftool perf
    show): any of them sends every syscall through the slow path for the
    untraced runs too, and a program on sys_*_bind runs in every bind. A round
    that saw one is measured again. None when bpftool cannot tell."""
    try:
        out = subprocess.run(["bpftool", "-j", "perf", "show"], capture_output=True,
                             text=True, timeout=30)
        entries = json.loads(out.stdout or "[]")
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return sorted({(e.get("pid"), e.get("tracepoint")) for e in entries
                   if str(e.get("tracepoint", "")).startswith("sys_")
                   and e.get("pid") != os.getpid()})


def measure(rounds=5, binds=200000, getppids=2000000, only=None, threads=2, max_tries=None):
    """only: the rungs to measure (default every rung offered here). Rounds
    during which another process had a syscall tracepoint are discarded and
    measured again (up to max_tries rounds in all, default 4 x rounds)."""
    bench_common.storm_binary()
    rungs = [r for r in offered_rungs() if only is None or r[0] in only]
    usable = [r for r, why in rungs if why is None]
    blobs = {"floor": floor_object()}
    port = free_port()
    bind_configs = ["none"] + [c for r in usable for c in (r + "/floor", r)]
    configs = {"noport": bind_configs, "einval": bind_configs + [r + "/default" for r in usable],
               "getppid": ["none"] + usable}
    ns = {(kind, c): [] for kind in configs for c in configs[kind]}
    tries, discarded = 0, []
    while len(ns[("getppid", "none")]) < rounds and tries < (max_tries or 4 * rounds):
        r, tries = tries, tries + 1
        got, seen = {}, set()
        for kind in KINDS:
            names = configs[kind]
            order = names[r % len(names):] + names[:r % len(names)]
            calls = getppids if kind == "getppid" else binds
            for c in order:
                seen.update(foreign_tracers() or ())
                got[(kind, c)] = run(c, blobs, kind, calls, port, threads)
                seen.update(foreign_tracers() or ())
        if seen:
            discarded.append(sorted(seen))
            time.sleep(2)
            continue
        for key, value in got.items():
            ns[key].append(value)
    if not ns[("getppid", "none")]:
        raise RuntimeError("every round had another process's syscall tracepoint attached: %s"
                           % discarded[-1])
    out = summarize(usable, ns)
    out["discarded"] = discarded
    return rungs, out


KINDS = ("noport", "einval", "getppid")


def quartiles(values):
    """(25th, 75th percentile) of the per-round values: the spread printed beside a median."""
    v = sorted(values)
    if len(v) < 2:
        return (v[0], v[0]) if v else (None, None)
    q = statistics.quantiles(v, n=4, method="inclusive")
    return q[0], q[2]


def summarize(usable, ns):
    """Medians of per-round differences and ratios (side by side in a round),
    with each figure's per-round values' middle half in e["spread"]."""
    def rounds_of(kind, f):
        base = ns[(kind, "none")]
        return [f(base[i], i) for i in range(len(base))]
    out = {"none": {kind: median(ns[(kind, "none")]) for kind in KINDS}, "rounds": {}}
    tp = "tracepoint" if "tracepoint" in usable else None
    for rung in usable:
        e = out[rung] = {"spread": {}, "median": {}}

        def keep(name, values, e=e, rung=rung):
            values = [v for v in values if v is not None]
            e["spread"][name] = quartiles(values)
            e["median"][name] = median(values)
            out["rounds"]["%s %s" % (rung, name)] = values
            return e["median"][name]
        for kind in ("noport", "einval"):
            full, floor = ns[(kind, rung)], ns[(kind, rung + "/floor")]
            e[kind] = {"added": keep(kind + " added", rounds_of(kind, lambda b, i: full[i] - b)),
                       "floor": keep(kind + " floor", rounds_of(kind, lambda b, i: floor[i] - b)),
                       "work": keep(kind + " work", [full[i] - floor[i] for i in range(len(full))])}
            if tp and rung != tp:
                # this rung's whole added cost minus the tracepoint's bare floor, per
                # round (below 0: the whole rung costs less than the tracepoint's hook alone)
                tpf = ns[(kind, tp + "/floor")]
                e[kind]["minus_tp_floor"] = keep(kind + " minus tracepoint floor",
                                                 [full[i] - tpf[i] for i in range(len(full))])
        # failed binds under the default configuration (errors ignored)
        dflt, floor = ns[("einval", rung + "/default")], ns[("einval", rung + "/floor")]
        e["einval"]["default_added"] = keep("einval default added",
                                            rounds_of("einval", lambda b, i: dflt[i] - b))
        e["einval"]["default_work"] = keep("einval default work",
                                           [dflt[i] - floor[i] for i in range(len(dflt))])
        calls = ns[("getppid", rung)]
        e["getppid_ratio"] = keep("getppid ratio", rounds_of("getppid", lambda b, i: calls[i] / b))
        e["getppid_added"] = keep("getppid added", rounds_of("getppid", lambda b, i: calls[i] - b))
    return out


def num(fmt, value):
    """fmt % value, without a "-0" for a value that rounds to zero."""
    text = fmt % value
    return fmt % 0 if float(text) == 0 else text


def spread(e, name, fmt="%.0f"):
    """"median [25th..75th percentile]" of one figure over the rounds."""
    lo, hi = e["spread"][name]
    if lo is None:
        return "-"
    return "%s [%s..%s]" % (num(fmt, e["median"][name]), num(fmt, lo), num(fmt, hi))


def report(rungs, s):
    rows = []
    for rung, why in rungs:
        if why is not None:
            rows.append((rung, "-", "-", "-", "-", "-",
                         "not offered here: " + why.split(": ", 1)[-1][:80]))
            continue
        e = s[rung]
        vs = "-"
        if "minus_tp_floor" in e["noport"]:
            vs = " / ".join(spread(e, k + " minus tracepoint floor", "%+.0f")
                            for k in ("noport", "einval"))
        rows.append((rung, " / ".join(spread(e, k + " added") for k in ("noport", "einval")),
                     " / ".join(spread(e, k + " floor") for k in ("noport", "einval")),
                     " / ".join(spread(e, k + " work") for k in ("noport", "einval")),
                     spread(e, "einval default work"), vs,
                     "%s (%s ns)" % (spread(e, "getppid ratio", "%.3f"),
                                     num("%+.0f", e["getppid_added"]))))
    n = s["none"]
    return table(("HOOK", "ADDED ns/bind ok / fail", "FLOOR ns ok / fail", "WORK ns ok / fail",
                  "WORK ns fail, errors ignored", "ADDED - TRACEPOINT FLOOR ns", "GETPPID vs UNTRACED"), rows) + (
        "\nmedian [25th..75th percentile] over %d interleaved rounds (%d more discarded: another "
        "process had a syscall tracepoint); untraced CPU per call: "
        "bind ok %.0f ns, bind fail %.0f ns, getppid %.0f ns" % (
            len(next(iter(s["rounds"].values()), [])), len(s.get("discarded", ())),
            n["noport"], n["einval"], n["getppid"]))


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("numbers", nargs="*", type=int, help="rounds binds getppids")
    ap.add_argument("--rungs", help="comma-separated rungs (default: every rung offered)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the rungs and the summary here")
    a = ap.parse_args(argv)
    n = a.numbers + [5, 200000, 2000000][len(a.numbers):]
    rungs, s = measure(n[0], n[1], n[2], a.rungs.split(",") if a.rungs else None, a.threads)
    print(report(rungs, s))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rungs": rungs, "summary": s}, f)


if __name__ == "__main__":
    main(sys.argv[1:])
