"""Fleet wall time: playbooks/trace_bind.yml with a WINDOW-second trace over
N network-namespace sshd hosts (tests/fleet/harness.py), beside `ansible -m
ping` of the same hosts, for the default ssh connection and paramiko_ssh.
Each host runs a small bind workload during the run. No assertions: it prints
a table (and JSON with --json).

    .venv/bin/python tests/bench/bench_fleet.py [--sizes 5,20,50] [--window 5]
        [--connections ssh,paramiko_ssh] [--bashrc] [--json]

Columns: ping = `ansible all -m ping` (ssh: warm, ControlPersist masters
open; the first, cold ping is listed too); play = the playbook, whose report
must show every host traced; budget = window + ping + 5 s (issue 8's target).
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


def ping(fleet, n, connection):
    secs, p = timed([os.path.join(VENV_BIN, "ansible"), "all", "-i", fleet.inventory_path,
                     "-m", "ping", "-f", str(n), "-c", connection])
    ok = p.stdout.count("SUCCESS")
    if p.returncode != 0 or ok != n:
        raise SystemExit("ping over %s failed (%d/%d ok):\n%s" % (connection, ok, n, p.stdout[-3000:]))
    return secs


def play(fleet, n, connection, window):
    with tempfile.TemporaryDirectory(prefix="btbench-report-") as d:
        secs, p = timed([os.path.join(VENV_BIN, "ansible-playbook"), "-i", fleet.inventory_path,
                         "-f", str(n), "-c", connection, PLAYBOOK,
                         "-e", json.dumps({"bindtrace_duration": window, "bindtrace_netns": "host"})],
                        BIND_REPORT_DIR=d, BIND_REPORT_TERMINAL="false")
        try:
            with open(os.path.join(d, "report.json")) as f:
                traced = json.load(f)["summary"]["traced"]
        except (OSError, ValueError, KeyError):
            traced = 0
    if p.returncode != 0 or traced != n:
        raise SystemExit("playbook over %s failed (%d/%d traced):\n%s"
                         % (connection, traced, n, p.stdout[-3000:]))
    return secs


def bench_size(n, window, connections, bashrc):
    """Rows for an n-host fleet. One bench fleet (names, /24, state dir) per
    machine: concurrent callers (this script, run_all.py) take turns."""
    with open(STATE + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _bench_size(n, window, connections, bashrc)


def _bench_size(n, window, connections, bashrc):
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
            cold = ping(fleet, n, conn)
            warm = ping(fleet, n, conn)
            secs = play(fleet, n, conn, window)
            rows.append({"hosts": n, "connection": conn, "up": up, "ping_cold": cold,
                         "ping": warm, "play": secs, "window": window,
                         "budget": window + warm + 5.0})
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
                ping(fleet, n, conn)
                for r in rows:
                    if r["connection"] == conn:
                        r["ping_with_bashrc"] = ping(fleet, n, conn)
        finally:
            fleet.down()
    return rows


def table(rows):
    cols = [("HOSTS", "hosts", "%d"), ("CONN", "connection", "%s"), ("UP", "up", "%.2f"),
            ("DOWN", "down", "%.2f"), ("PING-COLD", "ping_cold", "%.2f"), ("PING", "ping", "%.2f")]
    if any("ping_with_bashrc" in r for r in rows):
        cols.append(("PING+BASHRC", "ping_with_bashrc", "%.2f"))
    cols += [("PLAY(%ss)" % rows[0]["window"], "play", "%.2f"), ("PLAY-PING", None, "%.2f"),
             ("BUDGET", "budget", "%.2f"), ("IN-BUDGET", None, "%s")]
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
    p.add_argument("--connections", default="ssh,paramiko_ssh")
    p.add_argument("--bashrc", action="store_true", help="also ping with root's .bashrc sourced")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    window = int(a.window) if a.window == int(a.window) else a.window
    rows = []
    for n in [int(x) for x in a.sizes.split(",")]:
        rows += bench_size(n, window, a.connections.split(","), a.bashrc)
    if a.json:
        print(json.dumps(rows, indent=1))
    else:
        print("fleet wall time (s), %s, %d CPUs, %s" % (platform.node(), os.cpu_count(),
                                                       time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
