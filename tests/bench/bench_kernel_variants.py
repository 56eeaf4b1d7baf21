"""Where the per-bind cost of the kernel program goes: build variants of
bind.bpf.c that return early at successive points (into a scratch
directory, never touching the source), load each in place of the committed
object on the tracepoint rung (summary mode), and measure either
  cpu   the added CPU per bind like bench_cost.py (interleaved rounds, the
        generator's own CPU time, medians), next to bpftrace's count-only floor;
  prog  the program's own run time per run (kernel.bpf_stats_enabled, switched
        on for the measurement and back off), which the generator's noise
        does not blur.
Not part of `make bench`: a tool for whoever tunes bind.bpf.c. Needs clang.

    .venv/bin/python tests/bench/bench_kernel_variants.py [rounds] [cpu|prog] [einval|noport]"""
import ctypes
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
    ("enter", "x->task = bpf_get_current_task_btf();", "the tracepoint + the current task"),
    ("sock", "x->sk = fd_to_sock(x->task, (__u32)SYSCALL_ARG1(x->regs), &x->file, fast);",
     "+ saved registers, fd -> socket walk"),
    ("family", "return 0; /* unix, netlink, packet...: not a network bind */",
     "+ scratch, sock_common"),
    ("request", "if (cfg.filter_ports && !port_wanted(k->port) && !port_wanted(k->req_port))",
     "+ netns, port, address, requested sockaddr"),
    ("fields", "copy_comm(k->comm, task->comm);", "+ options, task fields"),
)


def build_variants():
    """{name: object bytes}: the early-return cuts and the full program."""
    with open(os.path.join(BPF, "bind.bpf.c")) as f:
        lines = f.read().split("\n")
    out = {}
    workdir = os.path.join(BUILD, "variants")
    os.makedirs(workdir, exist_ok=True)
    variants = (("floor", None, None),) + CUTS + (("full", None, None),)
    for name, marker, _ in variants:
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
                        "-DBENCH_FLOOR=%d" % (name == "floor"),
                        "-I", BPF, "-Wno-unused-variable", "-Wno-unused-function",
                        "-Wno-unused-but-set-variable", "-c", path, "-o", obj], check=True)
        subprocess.run(["llvm-strip", "-g", obj], check=True)
        with open(obj, "rb") as f:
            out[name] = f.read()
    return out


def prog_run_ns(backend):
    """The loaded program's (run_time_ns, run_cnt) from its fdinfo (bpf_stats)."""
    lib = backend.lib
    lib.bpf_object__find_program_by_name.restype = ctypes.c_void_p
    lib.bpf_object__find_program_by_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.bpf_program__fd.restype = ctypes.c_int
    lib.bpf_program__fd.argtypes = [ctypes.c_void_p]
    prog = lib.bpf_object__find_program_by_name(backend.obj, backend.program)
    info = {}
    with open("/proc/self/fdinfo/%d" % lib.bpf_program__fd(prog)) as f:
        for line in f:
            key, _, value = line.partition(":")
            info[key.strip()] = value.strip()
    return int(info.get("run_time_ns", 0)), int(info.get("run_cnt", 0))


def run_variant(blob, storm, mode, what="cpu"):
    original = bpf_object.object_bytes
    bpf_object.object_bytes = lambda arch=None: blob
    try:
        backend = CoreBackend(make_config(mode=mode, ignore_errors=False, hook="tracepoint"))
    finally:
        bpf_object.object_bytes = original
    try:
        storm.go()
        res = storm.wait()
        if mode == "events":
            backend.detach()   # nobody reads: ring overflow is counted, not a cost
        if what == "prog":
            ns, runs = prog_run_ns(backend)
            res["prog_ns"] = ns / max(runs, 1)
    finally:
        backend.close()
    return res


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    what = sys.argv[2] if len(sys.argv) > 2 else "cpu"
    kind = sys.argv[3] if len(sys.argv) > 3 else "einval"
    mode = "summary"
    bench_common.storm_binary()
    variants = build_variants()
    names = (["none", "bpftrace"] if what == "cpu" else []) + list(variants)
    added = {n: [] for n in names}
    port = free_port()
    stats_path = "/proc/sys/kernel/bpf_stats_enabled"
    if what == "prog":
        with open(stats_path) as f:
            stats_before = f.read().strip()
        with open(stats_path, "w") as f:
            f.write("1")
    try:
        for r in range(rounds):
            cost = {}
            for name in names[r % len(names):] + names[:r % len(names)]:
                storm = Storm(2, 300000 if kind == "einval" else 100000, port, mode=kind)
                if name == "none":
                    res, _ = bench_cost.run_none(storm)
                elif name == "bpftrace":
                    res, _ = bench_cost.run_bpftrace(storm)
                else:
                    res = run_variant(variants[name], storm, mode, what)
                cost[name] = res["prog_ns"] if what == "prog" else res["cpu"] / res["offered"] * 1e9
            for name in names:
                added[name].append(cost[name] - cost.get("none", 0))
    finally:
        if what == "prog":
            with open(stats_path, "w") as f:
                f.write(stats_before)
    what_is = dict((c[0], c[2]) for c in CUTS)
    what_is.update(none="no tracer", bpftrace="bpftrace: 2 tracepoints, count only",
                   floor="every entry point returns at once (-DBENCH_FLOOR=1)",
                   full="the whole program (%s mode: + clock, summary hash)" % mode)
    rows = []
    for name in names:
        ratios = [a / b for a, b in zip(added[name], added.get("bpftrace", [])) if b > 0]
        rows.append((name, "%.0f" % median(added[name]),
                     "%.2fx" % median(ratios) if ratios else "-", what_is[name]))
    print(table(("VARIANT", "ADDED ns/bind" if what == "cpu" else "PROGRAM ns/run",
                 "vs BPFTRACE", "RETURNS AFTER"), rows))


if __name__ == "__main__":
    main()
