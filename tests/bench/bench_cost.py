"""Added cost per bind(): no tracer vs bpftrace counting the two bind syscall
tracepoints (the floor: the least any tracer of those tracepoints does) vs
bindtrace summary mode vs bindtrace events mode, interleaved run by run.

Cost is CPU time, not wall time: the generator's own user+system CPU (its
getrusage), which includes the BPF programs that run inside its bind() calls,
divided by its binds. CPU time is far less disturbed than wall time by other
work on a shared machine. Each round runs every tracer once, in a rotating
order; ratios are taken within a round and the median over rounds is kept.
No tracer filters anything (all of them see every bind on the host), and
bindtrace runs with ignore_errors=false so every bind takes its full path.

    .venv/bin/python tests/bench/bench_cost.py [rounds] [binds_per_run]"""
import re
import signal
import struct
import subprocess
import sys
import time

from bench_common import Storm, free_port, median, table

from bindtrace.filters import make_config
from bindtrace.trace import Tracer

BPFTRACE_PROG = ("tracepoint:syscalls:sys_enter_bind { @e = count(); } "
                 "tracepoint:syscalls:sys_exit_bind { @x = count(); }")
TRACERS = ("none", "bpftrace", "summary", "events")
THREADS = 2
# struct bind_key offsets (events.KEY_FMT): pid after the u64 cgroup id; requested port
PID_AT, REQ_PORT_AT = 8, 44


def cpu_seconds():
    return time.process_time()


def run_none(storm):
    storm.go()
    return storm.wait(), {}


def run_bpftrace(storm):
    bt = subprocess.Popen(["bpftrace", "-e", BPFTRACE_PROG], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, universal_newlines=True)
    try:
        line = bt.stdout.readline()   # "Attaching 2 probes..." once attached
        if not line.startswith("Attaching"):
            raise RuntimeError("bpftrace did not attach: %r" % line)
        storm.go()
        res = storm.wait()
    finally:
        bt.send_signal(signal.SIGINT)
    out, _ = bt.communicate(timeout=60)
    counts = dict(re.findall(r"@(\w+): (\d+)", out))
    return res, {"exits_counted": int(counts.get("x", 0))}


def run_summary(storm):
    with Tracer(make_config(mode="summary", ignore_errors=False)) as tracer:
        storm.go()
        res = storm.wait()
        tracer.stop()
        counted = sum(r["count"] for r in tracer.summary()
                      if r["pid"] == storm.pid and r["requested_port"] == storm.port)
        st = tracer.stats()
    return res, {"counted": counted, "lost": st["lost"] + st.get("summary_full", 0)}


def run_events(storm):
    """The window loop's consumer: raw records kept, decoding left for later."""
    pid_of, port_of = struct.Struct("<I").unpack_from, struct.Struct("<H").unpack_from
    with Tracer(make_config(mode="events", ignore_errors=False)) as tracer:
        c0 = cpu_seconds()
        storm.go()
        raws = []
        while storm.running():
            raws.extend(tracer.backend.poll(100))
        tracer.stop()
        raws.extend(tracer.backend.poll(0))
        consumer = cpu_seconds() - c0
        res = storm.wait()
        st = tracer.stats()
    mine = sum(1 for r in raws
               if pid_of(r, PID_AT)[0] == storm.pid and port_of(r, REQ_PORT_AT)[0] == storm.port)
    return res, {"delivered": mine, "lost": st["lost"], "consumer_cpu": consumer,
                 "all_events": len(raws)}


RUNNERS = {"none": run_none, "bpftrace": run_bpftrace, "summary": run_summary,
           "events": run_events}


def measure(rounds=5, binds=400000):
    """{tracer: [run, ...]} with run = bindstorm's result + the tracer's counts."""
    runs = {name: [] for name in TRACERS}
    port = free_port()
    for r in range(rounds):
        order = TRACERS[r % len(TRACERS):] + TRACERS[:r % len(TRACERS)]
        for name in order:
            storm = Storm(THREADS, binds, port)
            res, extra = RUNNERS[name](storm)
            res.update(extra)
            res["round"] = r
            runs[name].append(res)
    return runs


def ns_per_bind(run):
    return run["cpu"] / run["offered"] * 1e9


def summarize(runs):
    """Medians of per-round values: cost per bind, added cost, ratio to bpftrace."""
    base = {run["round"]: ns_per_bind(run) for run in runs["none"]}
    added = {name: {run["round"]: ns_per_bind(run) - base[run["round"]] for run in runs[name]}
             for name in TRACERS}
    out = {}
    for name in TRACERS:
        ratios = [added[name][r] / added["bpftrace"][r] for r in added[name]
                  if added["bpftrace"].get(r, 0) > 0]
        entry = {"ns_per_bind": median(ns_per_bind(run) for run in runs[name]),
                 "added_ns": median(added[name].values()),
                 "vs_bpftrace": median(ratios) if name not in ("none", "bpftrace") else None,
                 "rate": median(run["rate"] for run in runs[name]),
                 "runs": len(runs[name]), "offered": sum(run["offered"] for run in runs[name])}
        if name == "summary":
            entry["counted"] = sum(run["counted"] for run in runs[name])
            entry["lost"] = sum(run["lost"] for run in runs[name])
        if name == "events":
            entry["delivered"] = sum(run["delivered"] for run in runs[name])
            entry["lost"] = sum(run["lost"] for run in runs[name])
            entry["consumer_ns"] = median(run["consumer_cpu"] / max(1, run["all_events"]) * 1e9
                                          for run in runs[name])
        out[name] = entry
    return out


def report(summary):
    rows = []
    for name in TRACERS:
        e = summary[name]
        note = ""
        if name == "summary":
            note = "counted %d of %d, lost %d" % (e["counted"], e["offered"], e["lost"])
        elif name == "events":
            note = "delivered %d of %d, lost %d; consumer %.0f ns/event" % (
                e["delivered"], e["offered"], e["lost"], e["consumer_ns"])
        rows.append((name, "%.0f" % e["ns_per_bind"], "%.0f" % e["added_ns"],
                     "-" if e["vs_bpftrace"] is None else "%.2fx" % e["vs_bpftrace"],
                     "%.0fk/s" % (e["rate"] / 1e3), note))
    return table(("TRACER", "CPU ns/bind", "ADDED ns", "ADDED vs BPFTRACE", "RATE", "CHECK"),
                 rows)


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    binds = int(sys.argv[2]) if len(sys.argv) > 2 else 400000
    print(report(summarize(measure(rounds, binds))))
