"""Fleet wall time: playbooks/trace_bind.yml with a WINDOW-second trace over
N network-namespace sshd hosts (tests/fleet/harness.py), beside `ansible -m
ping` of the same hosts with the same forks, for the default ssh connection
(and paramiko_ssh on request). Each host runs a small bind workload during the
run. No assertions: it prints a table (and JSON with --json).

    .venv/bin/python tests/bench/bench_fleet.py [--sizes 5,20,50] [--window 5]
        [--forks default,n] [--connections ssh,paramiko_ssh] [--bashrc] [--json]

At most about 60 hosts: they share this machine's kernel, which attaches at
most 64 BPF programs to one tracepoint (BPF_TRACE_MAX_PROGS), and every host
traces the same seconds (100 hosts: 63 traced, 37 failed to attach, E2BIG).

Rows: FORKS "5 (default)" runs ansible-playbook and ping without -f (Ansible's
default, 5), "N" with -f N (one fork per host). Columns: ping = `ansible all
-m ping` (ssh: warm, ControlPersist masters open; the first, cold ping is
listed too); play = the playbook, whose report must show every host traced;
spread = the start spread of the hosts' windows, from their facts (the
report's summary.window); late = hosts that started more than 0.1 s after
the first (launched after the play's start time: they end with the fleet,
shorter); traced = hosts with a result (the others' reasons go to stderr);
budget = window + ping + 5 s (issues 8 and 20).
--bashrc adds ping with root's real HOME, i.e. with /root/.bashrc (pyenv init)
sourced on every remote command, which the harness's sshd `SetEnv HOME` avoids.
"""
import argparse
import fcntl
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "fleet"))

from harness import Fleet  # noqa: E402
from window_stats import windows_of  # noqa: E402

VENV_BIN = os.path.join(ROOT, ".venv", "bin")
STATE = "/tmp/bindtrace-fleet-bench"
PREFIX = "btbench"
SUBNET = "10.236.0"
PLAYBOOK = os.path.join(ROOT, "playbooks", "trace_bind.yml")


def env(**extra):
    e = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
             ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
             ANSIBLE_DEPRECATION_WARNINGS="0")
    e.update({k: str(v) for k, v in extra.items()})
    return e


def timed(cmd, **extra):
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=ROOT, env=env(**extra), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True)
    return time.monotonic() - t0, p


DEFAULT_FORKS = 5   # ansible-core's default: "default" rows pass no -f
LATE = 0.1          # seconds after the first start that count as a late start


def forks_args(forks):
    return [] if forks is None else ["-f", str(forks)]


def ping(fleet, n, connection, forks):
    secs, p = timed([os.path.join(VENV_BIN, "ansible"), "all", "-i", fleet.inventory_path,
                     "-m", "ping", "-c", connection] + forks_args(forks))
    ok = p.stdout.count("SUCCESS")
    if p.returncode != 0 or ok != n:
        raise SystemExit("ping over %s failed (%d/%d ok):\n%s" % (connection, ok, n, p.stdout[-3000:]))
    return secs


def play(fleet, n, connection, window, forks):
    """-> (seconds, start spread, hosts started late) of one playbook run."""
    with tempfile.TemporaryDirectory(prefix="btbench-report-") as d:
        secs, p = timed([os.path.join(VENV_BIN, "ansible-playbook"), "-i", fleet.inventory_path,
                         "-c", connection, PLAYBOOK] + forks_args(forks) +
                        ["-e", json.dumps({"bindtrace_duration": window, "bindtrace_netns": "host"})],
                        BIND_REPORT_DIR=d, BIND_REPORT_TERMINAL="false")
        try:
            with open(os.path.join(d, "report.json")) as f:
                report = json.load(f)
            traced = report["summary"]["traced"]
        except (OSError, ValueError, KeyError):
            traced, report = 0, None
    if report is None:
        raise SystemExit("playbook over %s wrote no report:\n%s" % (connection, p.stdout[-3000:]))
    # a host that did not trace is a result too (its reason is printed), not a reason to stop
    for h in report["hosts"]:
        if h["status"] != "ok":
            sys.stderr.write("%d hosts: %s %s: %s\n" % (n, h["name"], h["status"], h["reason"]))
    starts = sorted(s for s, _ in windows_of(report).values())
    late = sum(1 for s in starts if s - starts[0] > LATE * 1e9)
    return secs, (starts[-1] - starts[0]) / 1e9 if starts else float("nan"), late, traced


def bench_size(n, window, connections, bashrc, forks_modes=("default", "n")):
    """Rows for an n-host fleet. One bench fleet (names, /24, state dir) per
    machine: concurrent callers (this script, run_all.py) take turns."""
    with open(STATE + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _bench_size(n, window, connections, bashrc, forks_modes)


def _bench_size(n, window, connections, bashrc, forks_modes):
    rows = []
    fleet = Fleet(STATE)
    fleet.down()
    t0 = time.monotonic()
    fleet.up(n, prefix=PREFIX, subnet=SUBNET)
    up = time.monotonic() - t0
    try:
        for h in fleet.hosts:
            fleet.bind(h["name"], [("0.0.0.0", 20000 + h["index"])])
        for conn in connections:
            cold = ping(fleet, n, conn, n)
            for mode in forks_modes:
                forks = None if mode == "default" else n
                if forks == DEFAULT_FORKS and "default" in forks_modes:
                    continue   # the same run as the default row
                warm = ping(fleet, n, conn, forks)
                secs, spread, late, traced = play(fleet, n, conn, window, forks)
                rows.append({"hosts": n, "connection": conn, "up": up, "ping_cold": cold,
                             "forks": "%d (default)" % DEFAULT_FORKS if forks is None else str(forks),
                             "ping": warm, "play": secs, "spread": spread, "late": late,
                             "traced": traced,
                             "window": window, "budget": window + warm + 5.0})
    finally:
        t0 = time.monotonic()
        fleet.down()
        down = time.monotonic() - t0
    for r in rows:
        r["down"] = down
    if bashrc:
        fleet = Fleet(STATE)
        fleet.up(n, prefix=PREFIX, subnet=SUBNET, own_home=False)
        try:
            for conn in connections:
                ping(fleet, n, conn, n)
                for r in rows:
                    if r["connection"] == conn:
                        r["ping_with_bashrc"] = ping(fleet, n, conn, n)
        finally:
            fleet.down()
    return rows


def table(rows):
    cols = [("HOSTS", "hosts", "%d"), ("CONN", "connection", "%s"), ("FORKS", "forks", "%s"),
            ("UP", "up", "%.2f"), ("DOWN", "down", "%.2f"), ("PING-COLD", "ping_cold", "%.2f"),
            ("PING", "ping", "%.2f")]
    if any("ping_with_bashrc" in r for r in rows):
        cols.append(("PING+BASHRC", "ping_with_bashrc", "%.2f"))
    cols += [("PLAY(%ss)" % rows[0]["window"], "play", "%.2f"), ("PLAY-PING", None, "%.2f"),
             ("BUDGET", "budget", "%.2f"), ("IN-BUDGET", None, "%s"), ("SPREAD", "spread", "%.3f"),
             ("LATE", "late", "%d"), ("TRACED", "traced", "%d")]
    lines = []
    cells = []
    for r in rows:
        row = []
        for title, key, fmt in cols:
            if title == "PLAY-PING":
                row.append(fmt % (r["play"] - r["ping"]))
            elif title == "IN-BUDGET":
                row.append("yes" if r["play"] <= r["budget"] else "no")
            else:
                row.append(fmt % r[key] if key in r else "-")
        cells.append(row)
    widths = [max(len(c[0]), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines.append("  ".join(c[0].ljust(w) for c, w in zip(cols, widths)))
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths)))
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="5,20,50")
    p.add_argument("--window", type=float, default=5)
    p.add_argument("--connections", default="ssh")
    p.add_argument("--forks", default="default,n",
                   help="default (no -f: 5) and/or n (-f number of hosts)")
    p.add_argument("--bashrc", action="store_true", help="also ping with root's .bashrc sourced")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    window = int(a.window) if a.window == int(a.window) else a.window
    rows = []
    for n in [int(x) for x in a.sizes.split(",")]:
        rows += bench_size(n, window, a.connections.split(","), a.bashrc, a.forks.split(","))
    if a.json:
        print(json.dumps(rows, indent=1))
    else:
        print("fleet wall time (s), %s, %d CPUs, %s" % (platform.node(), os.cpu_count(),
                                                       time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
