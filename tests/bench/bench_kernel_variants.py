"""Where the per-bind cost of the kernel program goes: build variants of
bpf/bind.bpf.c that return early at successive points (into a scratch
directory, never touching bpf/), load each in place of the committed object,
and measure the added CPU per bind like bench_cost.py (interleaved rounds,
the generator's own CPU time, medians), next to bpftrace's count-only floor.
Not part of `make bench`: a tool for whoever tunes bind.bpf.c. Needs clang.

    .venv/bin/python tests/bench/bench_kernel_variants.py [rounds] [mode]"""
import os
import subprocess
import sys

import bench_common
from bench_common import BUILD, ROOT, Storm, free_port, median, table

import bench_cost
from bindtrace import bpf_object
from bindtrace.backend_core import CoreBackend
from bindtrace.filters import make_config

BPF = os.path.join(ROOT, "collection", "ansible_collections", "fleetaudit", "bindtrace",
                   "bpf")   # the one copy of the source
# (name, the line after which the program returns, what has been paid by then)
CUTS = (
    ("enter", "__u64 pid_tgid = bpf_get_current_pid_tgid();",
     "one tracepoint + an empty program"),
    ("sock", "struct sock *sk = fd_to_sock(task, fd, fast);", "+ saved registers, fd -> socket walk"),
    ("family", "return 0; /* unix, netlink, packet...: not a network bind */",
     "+ sock_common"),
    ("request", "if (cfg.filter_ports && !port_wanted(k->port) && !port_wanted(k->req_port))",
     "+ netns, port, address, requested sockaddr"),
    ("fields", "__u64 now = bpf_ktime_get_boot_ns();", "+ options, task fields, clock"),
)


def build_variants():
    """{name: object bytes}: the early-return cuts and the full program."""
    with open(os.path.join(BPF, "bind.bpf.c")) as f:
        lines = f.read().split("\n")
    out = {}
    workdir = os.path.join(BUILD, "variants")
    os.makedirs(workdir, exist_ok=True)
    for name, marker, _ in CUTS + (("full", None, None),):
        src = list(lines)
        if marker is not None:
            hits = [i for i, line in enumerate(src) if line.strip() == marker]
            if not hits:
                continue   # bind.bpf.c changed: this cut no longer applies
            for at in reversed(hits):   # every entry point that has the line
                at += 2 if marker.startswith("if (") else 1   # past a filter's own return
                src.insert(at, "\tif (bpf_get_prandom_u32() | 1) return 0; /* bench cut */")
        path = os.path.join(workdir, name + ".bpf.c")
        with open(path, "w") as f:
            f.write("\n".join(src))
        obj = path[:-2] + ".o"
        subprocess.run(["clang", "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86",
                        "-I", BPF, "-Wno-unused-variable", "-Wno-unused-function",
                        "-Wno-unused-but-set-variable", "-c", path, "-o", obj], check=True)
        subprocess.run(["llvm-strip", "-g", obj], check=True)
        with open(obj, "rb") as f:
            out[name] = f.read()
    return out


def run_variant(blob, storm, mode):
    original = bpf_object.object_bytes
    bpf_object.object_bytes = lambda arch=None: blob
    try:
        backend = CoreBackend(make_config(mode=mode, ignore_errors=False))
    finally:
        bpf_object.object_bytes = original
    try:
        storm.go()
        res = storm.wait()
        if mode == "events":
            backend.detach()   # nobody reads: ring overflow is counted, not a cost
    finally:
        backend.close()
    return res


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    mode = sys.argv[2] if len(sys.argv) > 2 else "summary"
    bench_common.storm_binary()
    variants = build_variants()
    names = ["none", "bpftrace"] + list(variants)
    added = {n: [] for n in names}
    port = free_port()
    for r in range(rounds):
        cost = {}
        for name in names[r % len(names):] + names[:r % len(names)]:
            storm = Storm(2, 300000, port)
            if name == "none":
                res, _ = bench_cost.run_none(storm)
            elif name == "bpftrace":
                res, _ = bench_cost.run_bpftrace(storm)
            else:
                res = run_variant(variants[name], storm, mode)
            cost[name] = res["cpu"] / res["offered"] * 1e9
        for name in names:
            added[name].append(cost[name] - cost["none"])
    what = dict((c[0], c[2]) for c in CUTS)
    what.update(none="no tracer", bpftrace="bpftrace: 2 tracepoints, count only",
                full="the whole program (%s mode)" % mode)
    rows = []
    for name in names:
        ratios = [a / b for a, b in zip(added[name], added["bpftrace"]) if b > 0]
        rows.append((name, "%.0f" % median(added[name]),
                     "%.2fx" % median(ratios) if name != "none" else "-", what[name]))
    print(table(("VARIANT", "ADDED ns/bind", "vs BPFTRACE", "RETURNS AFTER"), rows))


if __name__ == "__main__":
    main()
