"""`make bench`: every benchmark of issue 8 in one run, ending in ONE table of
results and ratios against their targets. Absolute times on a shared machine
are noise; the ratios measured side by side in the same run are the result.
Details of each section go to stderr as it runs; the table goes to stdout.

    .venv/bin/python tests/bench/run_all.py [--only backends,cost,storm,fleet,report]
        [--rounds 5] [--fleet-sizes 5,20,50] [--report-hosts 1000] [--quick] [--json FILE]

Sections:
  backends  start-up and peak RSS: core vs bcc vs bindsnoop-bpfcc (bench_backends.py)
  cost      added CPU per bind(): bindtrace summary / events vs bpftrace (bench_cost.py)
  hooks     per hook rung this kernel offers: getppid's host-wide tax while a window is open
            (ratio to untraced) and added CPU per bind split into the hook's floor and the
            program's work (bench_hooks.py); rungs the host refuses are measured in a VM
            guest (tests/vm/bench_guest.py: Debian's 6.12 under QEMU/TCG, ratios and
            differences side by side only; --vm-guest, default auto)
  storm     bind storms: exact counts, loss accounting, highest lossless rate (bench_storm.py)
  table     summary table: kernel memory vs entries and keys; a busy host's keys (bench_table.py)
  fleet     playbook wall time, ping and start spread on 5/20/50 hosts, default forks
            and forks = hosts (bench_fleet.py)
  report    aggregation + all formats for 1000 hosts x 200 binds (bench_report.py)
  scale     10,000 hosts x 200 records from 10 slices merged by bind-report, all formats (bench_report_scale.py)
  listeners listener snapshot with 100k established connections: sock_diag vs /proc/net,
            owner lookup by cgroup vs every fd (bench_listeners.py)
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
import traceback

import bench_common
from bench_common import fmt_rate, table

# backends first: a child's ru_maxrss starts at its parent's RSS (fork + exec keep
# the high-water mark), so the children are spawned while this process is small
# fleet last: tearing down its 50 sshd namespaces keeps the machine busy for a while after
# the section ends (the report row that followed it ran 1.4x slower than alone)
SECTIONS = ("backends", "cost", "hooks", "storm", "table", "report", "scale", "listeners",
            "fleet")
WINDOW = 5


def log(*parts):
    print(*parts, file=sys.stderr)
    sys.stderr.flush()


def yes_no(ok):
    return "-" if ok is None else ("yes" if ok else "NO")


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2.0 ** 30
    try:   # per-program run-time accounting costs every BPF program run a little
        with open("/proc/sys/kernel/bpf_stats_enabled") as f:
            stats = " (kernel.bpf_stats_enabled=%s)" % f.read().strip()
    except OSError:
        stats = ""
    return "%s, %d CPUs (%s), %.0f GiB RAM, Linux %s%s, Python %s" % (
        platform.node(), os.cpu_count(), model, mem, platform.release(), stats,
        platform.python_version())


# -- sections: each returns rows (measure, result, ratio, target, met) ------------
def section_cost(args):
    import bench_cost
    runs = bench_cost.measure(args.rounds, 150000 if args.quick else 300000)
    s = bench_cost.summarize(runs)
    log(bench_cost.report(s))
    bt = s["bpftrace"]["added_ns"]
    rows = [("bpftrace (2 tracepoints, count) added CPU per bind",
             "%.0f ns (untraced %.0f ns)" % (bt, s["none"]["ns_per_bind"]), "1.00x", "floor", None)]
    for name in ("summary", "events"):
        e = s[name]
        check = ("counted %d/%d" % (e["counted"], e["offered"]) if name == "summary" else
                 "delivered %d/%d, consumer %.0f ns/event" % (e["delivered"], e["offered"],
                                                               e["consumer_ns"]))
        rows.append(("bindtrace %s mode added CPU per bind" % name,
                     "%.0f ns; %s, lost %d" % (e["added_ns"], check, e["lost"]),
                     "%.2fx bpftrace" % e["vs_bpftrace"], "<= 1.3x bpftrace",
                     e["vs_bpftrace"] <= 1.3))
    return rows, s


def section_storm(args):
    import bench_storm
    rows_raw = bench_storm.measure(0.25 if args.quick else 0.5)
    log(bench_storm.report(rows_raw))
    best = bench_storm.best_lossless(rows_raw)
    rows = []
    for name, load, res, base in rows_raw:
        if name == "summary" and load.startswith("client"):
            ok = res["counted"] == res["offered"] and res["lost"] == 0
            rows.append(("summary: ephemeral client binds (UDP 127.0.0.1:0) with 0 uncounted",
                         "%s sustained (untraced %s): %d offered, counted %d in %d record(s), "
                         "ports %s-%s, summary_full+lost %d" % (
                             fmt_rate(res["rate"]), fmt_rate(base["rate"]), res["offered"],
                             res["counted"], res["records"], (res["ports"] or "??")[0],
                             (res["ports"] or "??")[1], res["lost"]),
                         "%.2fx untraced rate" % (res["rate"] / base["rate"]),
                         "0 uncounted; 1 record", ok and res["records"] == 1))
            continue
        if name == "summary":
            ok = res["counted"] == res["offered"] and res["lost"] == 0
            rows.append(("summary storm (%s): every bind counted" % load,
                         "%d offered at %s (untraced %s), counted %d, lost %d" % (
                             res["offered"], fmt_rate(res["rate"]), fmt_rate(base["rate"]),
                             res["counted"], res["lost"]),
                         "%.2fx untraced rate" % (res["rate"] / base["rate"]),
                         "0 lost; >= 2M/s offered",
                         "count yes, rate %s" % yes_no(res["rate"] >= 2e6) if ok else "NO"))
    mmap_best, libbpf_best = best.get("events/collect", 0), best.get("events/libbpf", 0)
    per_event = {}
    for name, _, res, _ in rows_raw:
        if name.startswith("events") and res.get("delivered"):
            per_event.setdefault(name, []).append(res["consumer_cpu"] / res["delivered"])
    cost = {n: sorted(v)[len(v) // 2] for n, v in per_event.items()}
    rows.append(("events: highest rate delivered with 0 loss (window loop, ringbuf.py)",
                 "%s (generator-bound: no run of this consumer lost any)" % fmt_rate(mmap_best)
                 if all(r[2]["lost"] == 0 for r in rows_raw if r[0] == "events/collect")
                 else fmt_rate(mmap_best),
                 "%.1fx libbpf callback (%s)" % (mmap_best / libbpf_best, fmt_rate(libbpf_best))
                 if libbpf_best else "libbpf callback lost events in every run",
                 ">= 300k/s", mmap_best >= 3e5))
    if "events/collect" in cost and "events/libbpf" in cost:
        rows.append(("events: consumer CPU per event (window loop)",
                     "ringbuf.py %.0f ns, libbpf callback %.0f ns: one core drains %s" % (
                         cost["events/collect"] * 1e9, cost["events/libbpf"] * 1e9,
                         fmt_rate(1 / cost["events/collect"])),
                     "%.1fx less CPU" % (cost["events/libbpf"] / cost["events/collect"]),
                     "capacity >= 300k/s", 1 / cost["events/collect"] >= 3e5))
    lossy = [r for r in rows_raw if r[0].startswith("events") and r[2]["lost"] > 0]
    all_ok = all(bench_storm.accounted(r[2]) for r in rows_raw if r[0].startswith("events"))
    rows.append(("events beyond capacity: delivered + lost == offered",
                 "%d run(s) lost events, all accounted; e.g. %s" % (len(lossy), "; ".join(
                     "%s %s: %d + %d = %d" % (n, load, r["delivered"], r["lost"], r["offered"])
                     for n, load, r, _ in lossy[:1])) if lossy else "no run lost events",
                 "live path (decode+enrich each event): 0 loss up to %s"
                 % fmt_rate(best.get("events/poll", 0)), "all accounted", all_ok))
    return rows, [dict(r[2], tracer=r[0], load=r[1]) for r in rows_raw]


def section_table(args):
    import bench_table
    m = bench_table.measure()
    log(bench_table.report(m))
    pre, lazy, f = m["memory"]["prealloc"], m["memory"]["no_prealloc"], m["flood"]
    mb = lambda b: "%.1f MB" % (b / 2.0 ** 20)  # noqa: E731
    rows = [("summary table memory, preallocated (kernel memlock)",
             ", ".join("%d: %s" % (n, mb(b)) for n, b in sorted(pre.items())),
             "%d B/entry" % (pre[65536] // 65536), "65536 entries (12 MB, was 16384)", None),
            ("summary table memory, no-prealloc alternative (262144 max)",
             ", ".join("%d keys: %s" % (k, mb(b)) for k, b in sorted(lazy.items())),
             "-", "not used: allocates in the bind path", None),
            ("busy host: 30 x 2000 client binds to 127.0.0.1:0, summary mode",
             "%d records, counted %d/%d, summary_full %d" % (
                 f["records"], f["counted"], f["offered"], f["summary_full"]),
             "%d binds per record" % (f["counted"] // max(f["records"], 1)),
             "every bind counted, summary_full 0",
             f["counted"] == f["offered"] and f["summary_full"] == 0)]
    return rows, m


def section_backends(args):
    import bench_backends as bb
    runs = 2 if args.quick else 3
    samples = {}
    for name, python, backend, mode in (("core", sys.executable, "core", "events"),
                                        ("core summary", sys.executable, "core", "summary"),
                                        ("bcc", bb.SYSTEM_PYTHON, "bcc", "events")):
        try:
            samples[name] = [bb.run_child(python, backend, mode) for _ in range(runs)]
        except (Exception, SystemExit) as exc:
            samples[name] = exc
    try:
        snoop = bb.run_bindsnoop()
    except Exception as exc:   # bench_backends' own failure: report it, keep going
        snoop = {"error": "bench_backends.run_bindsnoop failed: %r" % exc}
    med = {n: (statistics.median(x["startup"] for x in s),
               statistics.median(x["maxrss_kb"] for x in s) / 1024.0)
           for n, s in samples.items() if isinstance(s, list)}
    for n, s in samples.items():
        log("%-14s %s" % (n, "start-up %.3fs, peak RSS %.1f MB" % med[n] if n in med else
                          "failed: %s" % s))
    log("bindsnoop-bpfcc %s" % snoop)
    rows = []
    if "core" in med:
        core_s, core_mb = med["core"]
        if "bcc" in med:
            rows.append(("start-up (load + attach): core vs bcc backend",
                         "core %.3fs, bcc %.2fs" % (core_s, med["bcc"][0]),
                         "%.0fx faster" % (med["bcc"][0] / core_s), ">= 10x faster",
                         med["bcc"][0] / core_s >= 10))
        else:
            rows.append(("start-up: core vs bcc backend", "core %.3fs; bcc: %s" % (
                core_s, samples.get("bcc")), "-", ">= 10x faster", None))
        if "error" not in snoop:
            rows.append(("start-up: core vs bindsnoop-bpfcc", "bindsnoop %.2fs" % snoop["startup"],
                         "%.0fx faster" % (snoop["startup"] / core_s), ">= 10x faster",
                         snoop["startup"] / core_s >= 10))
        else:
            rows.append(("start-up: core vs bindsnoop-bpfcc", "cannot run here: " + (
                "kprobes unavailable (it attaches kprobe inet_bind)"
                if "kprobe" in snoop["error"] else snoop["error"][:70]), "-", "-", None))
        rows.append(("peak RSS of the tracer process, core backend",
                     "events %.1f MB, summary %.1f MB%s" % (
                         core_mb, med.get("core summary", (0, 0))[1],
                         ", bcc %.1f MB" % med["bcc"][1] if "bcc" in med else ""),
                     "%.1fx less than bcc" % (med["bcc"][1] / core_mb) if "bcc" in med else "-",
                     "<= 40 MB", core_mb <= 40))
    return rows, {"medians": med, "bindsnoop": snoop}


def section_hooks(args):
    import bench_hooks
    rungs, s = bench_hooks.measure(args.rounds, 100000 if args.quick else 200000,
                                   1000000 if args.quick else 2000000)
    log(bench_hooks.report(rungs, s))
    rows = hook_rows(rungs, s, "")
    raw = {"host": {"rungs": rungs, "summary": s}}
    guest = vm_guest(args, rungs)
    if guest:
        sys.path.insert(0, os.path.join(bench_common.ROOT, "tests", "vm"))
        import bench_guest
        # -icount 0: the guest's clock advances 1 ns per instruction executed, so its
        # "CPU time" counts instructions: deterministic whatever else runs here (TCG
        # wall time moved +-30% per round with the machine's load)
        g = bench_guest.run(guest, rounds=args.vm_rounds, binds=30000, getppids=300000, icount=0)
        log("guest %s (Linux %s, QEMU/TCG -icount 0, 1 vCPU), %.0f s" % (
            guest, g["release"], g["secs"]))
        log(bench_hooks.report([tuple(r) for r in g["rungs"]], g["summary"]))
        rows += hook_rows([tuple(r) for r in g["rungs"]], g["summary"],
                          " (guest %s)" % g["release"].split("+")[0], unit="instr")
        raw["guest"] = g
    return rows, raw


def vm_guest(args, rungs):
    """The VM guest to measure the rungs this host refuses in (tests/vm/bench_guest.py):
    --vm-guest NAME, or auto: x86_64-6.12 when the host offers neither fexit nor
    kprobe and the VM matrix's image is built (`make test-vm` builds it)."""
    if args.vm_guest != "auto":
        return None if args.vm_guest == "none" else args.vm_guest
    refused = {r for r, why in rungs if why is not None}
    if not {"fexit", "kprobe"} <= refused:
        return None
    cache = os.environ.get("BINDTRACE_VM_CACHE", "/var/cache/bindtrace-vm")
    return "x86_64-6.12" if os.path.isdir(cache) and any(
        n.startswith("image-amd64-") for n in os.listdir(cache)) else None


def hook_rows(rungs, s, where, unit="ns"):
    """Rows of the hooks section for one kernel (where: "" on this host, or the
    guest; unit: "ns", or "instr" in a guest run with -icount 0)."""
    import bench_hooks

    def spread(e, name, fmt):
        lo, hi = e["spread"][name]
        return "[%s..%s]" % (bench_hooks.num(fmt, lo), bench_hooks.num(fmt, hi)) \
            if lo is not None else ""
    rows = []
    tp = s.get("tracepoint")
    for rung, why in rungs:
        if why is not None:
            rows.append(("hook %s%s" % (rung, where), "not offered by this kernel", "-", "-", None))
            continue
        e = s[rung]
        target = "<= 1.02" if rung != "tracepoint" else "printed (host-wide tax)"
        rows.append(("hook %s%s: getppid while a window is open" % (rung, where),
                     "%s %s per call %s" % (bench_hooks.num("%+.0f", e["getppid_added"]), unit,
                                               spread(e, "getppid added", "%+.0f")),
                     "%.3fx untraced %s" % (e["getppid_ratio"], spread(e, "getppid ratio", "%.3f")),
                     target, e["getppid_ratio"] <= 1.02 if rung != "tracepoint" else None))
        # the default configuration (errors ignored) drops a failed bind before reading anything
        for kind, what, part in (("noport", "successful", ""), ("einval", "failed", ""),
                                 ("einval", "failed", "default_")):
            k = e[kind]
            met, ratio, goal = None, "-", "-"
            if rung == "tracepoint" and unit == "ns":
                met, goal = k[part + "work"] <= 150, "work <= 150 ns"
            elif "minus_tp_floor" in k and not part:
                # the whole rung against the tracepoint's hook alone, per round
                met, goal = k["minus_tp_floor"] < 0, "whole cost < tracepoint floor"
                ratio = "%+.0f vs tracepoint floor %.0f %s" % (
                    k["minus_tp_floor"], tp[kind]["floor"],
                    spread(e, kind + " minus tracepoint floor", "%+.0f"))
            rows.append(("hook %s%s: added CPU per %s bind%s" % (
                rung, where, what, ", errors ignored (default)" if part else ""),
                "%.0f %s = floor %.0f + work %.0f %s" % (
                    k[part + "added"], unit, k["floor"], k[part + "work"],
                    spread(e, kind + (" default" if part else "") + " work", "%.0f")),
                ratio, goal, met))
    return rows


def section_fleet(args):
    import bench_fleet
    rows, raw = [], []
    for n in args.fleet_sizes:
        try:
            got = bench_fleet.bench_size(n, WINDOW, ["ssh"], False)
        except (Exception, SystemExit) as exc:
            rows.append(("fleet %d hosts, %d s window" % (n, WINDOW), "failed: %s" % (
                str(exc).strip().splitlines() or ["?"])[0][:80], "-", "<= window + ping + 5 s",
                False))
            continue
        for r in got:
            raw.append(r)
            log("fleet %(hosts)d hosts, forks %(forks)s: play %(play).2fs, ping %(ping).2fs, "
                "budget %(budget).2fs, start spread %(spread).3fs, late %(late)d" % r)
            rows.append(("fleet %d hosts, forks %s, %d s window (ssh)" % (n, r["forks"], WINDOW),
                         "play %.1fs, ping %.1fs, start spread %.3fs, %d late, %d/%d traced" % (
                             r["play"], r["ping"], r["spread"], r["late"], r["traced"], n),
                         "play - ping = %.1fs" % (r["play"] - r["ping"]),
                         "<= %.1fs (window + ping + 5)" % r["budget"],
                         r["play"] <= r["budget"] and r["traced"] == n))
    return rows, raw


def section_report(args):
    import bench_report
    m = bench_report.measure(args.report_hosts, 200)
    log(bench_report.report(m))
    return [("report: %d hosts x 200 binds, all formats" % args.report_hosts,
             "%.1fs (aggregate %.1f, terminal %.1f, json+md+html+junit %.1f)" % (
                 m["total"], m["aggregate"], m["terminal"], m["files"]),
             "%.1fx the target" % (m["total"] / 5.0), "<= 5 s", m["total"] <= 5.0)], m


def section_scale(args):
    import bench_report_scale as scale
    m = scale.measure(args.scale_hosts, 200, 10)
    log(scale.report(m))
    html = m["sizes_mb"].get("report.html", 0.0)
    ok = m["wall"] <= scale.TIME_TARGET and m["rss_mb"] <= scale.RSS_TARGET_MB
    return [("report: %d hosts x 200 records from 10 slices, all formats (bind-report)" % args.scale_hosts,
             "%.1fs (CPU %.1fs), peak RSS %.0f MB" % (m["wall"], m["cpu"], m["rss_mb"]),
             "%.1fx the time target" % (m["wall"] / scale.TIME_TARGET), "<= 30 s, <= 2 GB", ok),
            ("report.html at %d hosts" % args.scale_hosts, "%.1f MB (report.json %.0f MB)" % (
                html, m["sizes_mb"].get("report.json", 0.0)),
             "%.2fx the budget" % (html / scale.HTML_BUDGET_MB), "<= 25 MB", html <= scale.HTML_BUDGET_MB)], m


def section_listeners(args):
    import bench_listeners
    m = bench_listeners.measure(10000 if args.quick else 100000)
    log(bench_listeners.report(m))
    return bench_listeners.rows(m), m


RUN = {"cost": section_cost, "hooks": section_hooks, "storm": section_storm, "backends": section_backends,
       "table": section_table, "fleet": section_fleet, "report": section_report, "scale": section_scale,
       "listeners": section_listeners}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default=",".join(SECTIONS))
    p.add_argument("--rounds", type=int, default=7)
    # not 100: the test fleet's hosts share one kernel, which attaches at most 64 BPF
    # programs to one tracepoint (BPF_TRACE_MAX_PROGS); 100 hosts tracing the same
    # seconds gave 63 traced, 37 "cannot attach ... (E2BIG)" (README, Large fleets)
    p.add_argument("--fleet-sizes", default="5,20,50")
    p.add_argument("--report-hosts", type=int, default=1000)
    p.add_argument("--scale-hosts", type=int, default=10000)
    p.add_argument("--quick", action="store_true", help="smaller runs, for a try-out")
    p.add_argument("--vm-guest", default="auto",
                   help="hooks: also measure in this VM guest (tests/vm/bench_guest.py), "
                        "none, or auto (x86_64-6.12 when this host refuses fexit and kprobe "
                        "and the VM image is built)")
    p.add_argument("--vm-rounds", type=int, default=3,
                   help="interleaved rounds in the guest (its instruction counts do not vary)")
    p.add_argument("--json", default=None, help="also write the raw results here")
    args = p.parse_args(argv)
    args.fleet_sizes = [int(x) for x in args.fleet_sizes.split(",") if x]
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmarks load BPF programs")
    bench_common.storm_binary()
    started = time.time()
    load_start = os.getloadavg()[0]   # other work on the machine: rates are relative to it
    rows, raw = [], {}
    wanted = [s for s in args.only.split(",") if s]
    for name in wanted:
        if name not in RUN:
            raise SystemExit("unknown section %r: use any of %s" % (name, ", ".join(SECTIONS)))
    for name in [s for s in SECTIONS if s in wanted]:   # always in SECTIONS order
        log("== %s" % name)
        t0 = time.monotonic()
        try:
            got, raw[name] = RUN[name](args)
            rows.extend((name,) + tuple(r) for r in got)
        except Exception as exc:
            traceback.print_exc()
            rows.append((name, "section failed", "%s: %s" % (type(exc).__name__, exc), "-", "-",
                         False))
        log("   (%s took %.0fs)" % (name, time.monotonic() - t0))
    print("bindtrace benchmarks, %s UTC, %s; load average %.1f at start, %.1f at end" % (
        time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)), machine(), load_start,
        os.getloadavg()[0]))
    print(table(("SECTION", "MEASURE", "RESULT", "RATIO", "TARGET", "MET"),
                [r[:5] + (r[5] if isinstance(r[5], str) else yes_no(r[5]),) for r in rows]))
    print("(%.0f s in all)" % (time.time() - started))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"started": started, "machine": machine(), "rows": rows, "raw": raw}, f,
                      indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
