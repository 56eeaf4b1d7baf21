"""Fleet report at scale: HOSTS hosts x BINDS binds of generated facts, built
the way a host builds them (raw kernel records -> events.decode_summary ->
facts.build_facts with a policy and listeners), then aggregated and rendered
in every format through the bindreport API: build_report, render_terminal,
write_reports (json, md, html, junit); with --baseline, a second pass diffs
against the first report. Generation is not timed; the report is.

    .venv/bin/python tests/bench/bench_report.py [hosts] [binds] [--baseline]"""
import json
import os
import socket
import sys
import tempfile
import time

import bench_common  # noqa: F401  (puts the collection's packages on sys.path)

from bindreport import build_report, load_baseline, render_terminal, write_reports
from bindtrace.events import KEY_FMT, STATS_FMT, Clock, decode_summary
from bindtrace.filters import make_config
from bindtrace.facts import build_facts

SERVICES = ((22, b"sshd"), (80, b"nginx"), (443, b"nginx"), (5432, b"postgres"),
            (8080, b"nginx-worker"), (53, b"dnsmasq"))
OTHERS = (b"node", b"java", b"python3", b"envoy", b"redis-server")
RULES = [{"name": "ssh", "port": 22, "proto": "tcp", "comm": "sshd"},
         {"name": "local", "addr": "loopback", "port": [53, 123, 323]},
         {"name": "web", "port": [80, 443, "8000-8100"], "proto": "tcp", "comm": "nginx*"},
         {"name": "db", "port": 5432, "comm": "postgres", "addr": "10.0.0.0/8"}]
FAILED_EVERY = 97        # a few hosts failed / unreachable, as in real fleets
TEMPLATES = 25           # distinct hosts generated; the others are copies, renamed
CONTAINER_EVERY = 3      # a third of the binds come from containers


def raw_key(host, i):
    """One struct bind_key as the kernel would write it."""
    family = 6 if i % 7 == 0 else 4
    if family == 4:
        addr = socket.inet_aton("10.%d.%d.%d" % (host % 250, i % 250, 1 + i % 200) if i % 3
                                else ("127.0.0.1" if i % 2 else "0.0.0.0"))
    else:
        addr = socket.inet_pton(socket.AF_INET6, "fd00::%x:%x" % (host, i))
    port, comm = SERVICES[i % 6] if i % 4 else (20000 + i, OTHERS[i % len(OTHERS)])
    ret = -98 if i % 50 == 0 else 0   # a failed bind now and then (EADDRINUSE)
    return KEY_FMT.pack(
        1000 + i % 40, 100 + i, 1, (0, 33, 999)[i % 3], 0, 4026531840, 4026531841 + i % 5,
        0, ret, 6 if i % 5 else 17, port, port, family, (0, 8, 24)[i % 3],
        addr, addr, comm)


def host_facts(host, binds, clock):
    recs = []
    for i in range(binds):
        port = SERVICES[i % 6][0] if i % 4 else 20000 + i
        rec = decode_summary(raw_key(host, i), STATS_FMT.pack(1 + i % 9, 10 ** 12 + i, 10 ** 12 + 2 * i,
                                                                port, port, 100 + i, 1),
                             clock)
        if i % CONTAINER_EVERY == 0:
            rec["container"] = {"runtime": "containerd", "id": "%064x" % (host * 1000 + i % 30),
                                "name": "app-%d" % (i % 30), "image": "registry/app:%d" % (i % 4)}
            rec["k8s"] = {"node": "node%04d" % host, "namespace": "ns-%d" % (i % 5),
                          "pod": "pod-%d" % (i % 30), "container": "app-%d" % (i % 30)}
        recs.append(rec)
    listeners = [{"proto": r["proto"], "family": r["family"], "addr": r["addr"], "port": r["port"],
                  "state": "LISTEN" if r["proto"] == "TCP" else "UNCONN", "inode": 5000 + n,
                  "uid": r["uid"], "user": r["user"], "pid": r["pid"], "comm": r["comm"],
                  "netns": r["netns"], "container": r["container"], "k8s": r["k8s"]}
                 for n, r in enumerate(recs[:binds // 10]) if not r["error"]]
    meta = {"hostname": "host%04d" % host, "kernel": "6.1.0-test", "backend": "core",
            "backend_reason": "auto: kernel BTF and libbpf.so.1 present", "missing_fields": [],
            "start": clock.rfc3339(10 ** 12), "end": clock.rfc3339(10 ** 12 + 5 * 10 ** 9),
            "duration": 5.0, "own_netns": 4026531840}
    st = {"lost": 0, "dropped": 0, "summary_full": 0}
    return json.dumps(build_facts(make_config(mode="summary"), recs, st, meta, listeners, RULES))


def fleet_results(hosts, binds):
    clock = Clock()
    templates = [host_facts(h, binds, clock) for h in range(min(hosts, TEMPLATES))]
    results = {}
    for h in range(hosts):
        name = "host%04d" % h
        if h % FAILED_EVERY == 1:
            results[name] = {"status": "unreachable", "facts": None,
                             "msg": "Failed to connect to the host via ssh"}
        elif h % FAILED_EVERY == 2:
            results[name] = {"status": "unsupported", "facts": None,
                             "msg": "unsupported: no usable backend on this host"}
        else:
            facts = json.loads(templates[h % len(templates)])   # facts arrive as JSON
            facts["host"]["hostname"] = facts["host"]["node"] = name
            results[name] = {"status": "ok", "facts": facts, "msg": None}
    return results


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def measure(hosts=1000, binds=200, with_baseline=False):
    results, gen = timed(fleet_results, hosts, binds)
    out = {"hosts": hosts, "binds": binds, "generate": gen}
    with tempfile.TemporaryDirectory(prefix="bindtrace-bench-report-") as d:
        model, out["aggregate"] = timed(build_report, results)
        text, out["terminal"] = timed(render_terminal, model)
        paths, out["files"] = timed(write_reports, model, d)
        out["total"] = out["aggregate"] + out["terminal"] + out["files"]
        out["sizes"] = {fmt: os.path.getsize(p) for fmt, p in paths.items()}
        out["terminal_lines"] = text.count("\n")
        out["records"] = sum(len((r["facts"] or {}).get("binds", [])) for r in results.values())
        if with_baseline:
            baseline = load_baseline(paths["json"])
            t0 = time.perf_counter()
            model2 = build_report(results, baseline=baseline, baseline_path=paths["json"])
            render_terminal(model2)
            write_reports(model2, os.path.join(d, "diff"))
            out["total_with_baseline"] = time.perf_counter() - t0
        out["summary"] = model["summary"]
    return out


def report(m):
    sizes = ", ".join("%s %.1f MB" % (k, v / 1e6) for k, v in sorted(m["sizes"].items()))
    text = ("report: %d hosts x %d binds (%d records): aggregate %.2fs, terminal %.2fs, "
            "json+md+html+junit %.2fs, total %.2fs (%s)"
            % (m["hosts"], m["binds"], m["records"], m["aggregate"], m["terminal"], m["files"],
               m["total"], sizes))
    if "total_with_baseline" in m:
        text += "; again with the first report as baseline: %.2fs" % m["total_with_baseline"]
    return text


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    hosts = int(args[0]) if args else 1000
    binds = int(args[1]) if len(args) > 1 else 200
    print(report(measure(hosts, binds, with_baseline="--baseline" in sys.argv)))
