"""Listener snapshot on a busy host: 100k established loopback TCP connections
held by test processes, and a few listeners. Finding the listeners through
socket diagnostics (the kernel filters by state) against the /proc/net reader
(every socket printed and parsed), the same listeners found; and the owner
lookup of those listeners: every fd of every process (the fallback) against
only the processes of each listener's cgroup (sock_diag's cgroup id).

Layout, as services on a systemd host: each server process (one listener on
its own 127.0.0.x address, holding its accepted connections) runs in its own
cgroup <root>/bindtrace-bench-PID/system.slice/benchsrvN.service, the clients
in <root>/.../clients.scope. Processes stay within fd limits: each holds
CONNS/SERVERS connections (10 servers + 10 clients for 100k: 10k fds each, the
soft limit raised to the hard one).

    .venv/bin/python tests/bench/bench_listeners.py [--connections 100000] [--servers 10]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "collection",
                                "ansible_collections", "fleetaudit", "bindtrace", "plugins",
                                "module_utils"))

from bindtrace import cgroupfs, listeners, owner, sockdiag  # noqa: E402

SERVER = r"""
import json, os, resource, socket, sys
addr, n = sys.argv[1], int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, 0)); s.listen(4096)
print(json.dumps({"pid": os.getpid(), "port": s.getsockname()[1],
                  "inode": os.fstat(s.fileno()).st_ino}), flush=True)
held = []
while len(held) < n:
    held.append(s.accept()[0])
print("held", flush=True)
sys.stdin.read()
"""

CLIENT = r"""
import json, resource, socket, sys
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = [socket.create_connection((addr, port)) for _ in range(n)]
print("held", flush=True)
sys.stdin.read()
"""


def enter(path):
    def fn():
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    return fn


class Busy(object):
    """The servers and clients, with their cgroups; stop() ends them by PID."""

    def __init__(self, connections, servers):
        root = cgroupfs.v2_root()
        if root is None:
            raise SystemExit("needs a cgroup v2 hierarchy")
        self.base = os.path.join(root, "bindtrace-bench-%d" % os.getpid())
        self.dirs, self.procs, self.servers = [], [], []
        per = connections // servers
        clients_cg = self._mkdir("clients.scope")
        for i in range(servers):
            cg = self._mkdir("system.slice/benchsrv%d.service" % i)
            addr = "127.0.0.%d" % (i + 2)
            srv = self._spawn([SERVER, addr, str(per)], cg)
            info = json.loads(srv.stdout.readline())
            info.update(addr=addr, cgroup=cg)
            self.servers.append(info)
            cli = self._spawn([CLIENT, addr, str(info["port"]), str(per)], clients_cg)
            info["client"] = cli
            info["server"] = srv
        for info in self.servers:
            for p in (info["client"], info["server"]):
                line = p.stdout.readline()
                if line.strip() != "held":
                    raise SystemExit("a bench process failed to hold its connections")
        self.connections = per * servers

    def _mkdir(self, rel):
        path = self.base
        for part in rel.split("/"):
            if not os.path.isdir(path):
                os.mkdir(path)
                self.dirs.append(path)
            path = os.path.join(path, part)
        if not os.path.isdir(path):
            os.mkdir(path)
            self.dirs.append(path)
        return path

    def _spawn(self, args, cg):
        p = subprocess.Popen(["/usr/bin/python3", "-c"] + args, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, universal_newlines=True,
                             preexec_fn=enter(cg))
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.stdin.close()
        for p in self.procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        for d in reversed(self.dirs):
            for _ in range(100):
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.1)


def best_of(n, fn):
    times, out = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def proc_net_here():
    own = os.stat("/proc/self/ns/net").st_ino
    return listeners._proc_net({own: ["self"]})[own]


def measure(connections=100000, servers=10, rounds=5):
    busy = Busy(connections, servers)
    try:
        with open("/proc/net/tcp") as f:
            rows = sum(1 for _ in f) - 1
        t_diag, diag = best_of(rounds, sockdiag.listeners_here)
        t_proc, proc = best_of(max(2, rounds // 2), proc_net_here)
        ident = lambda recs: sorted((r["proto"], r["family"], r["addr"], r["port"], r["inode"])  # noqa
                                    for r in recs)
        # other helpers' listeners come and go on a shared machine while /proc/net is read:
        # the bench's own listeners must be found identically by both, and be all of them
        inodes = {s["inode"] for s in busy.servers}
        mine = [r for r in diag if r["inode"] in inodes]
        same = ident(mine) == ident(r for r in proc if r["inode"] in inodes) and \
            len(mine) == len(busy.servers)
        socks = [(r["inode"], r["cgroup_id"]) for r in mine]
        pids = sorted(int(d) for d in os.listdir("/proc") if d.isdigit())

        def scan(narrow):
            sc = owner.OwnerScan()
            found, _ = owner.socket_owners(socks if narrow else [(i, None) for i, _ in socks],
                                           pids, scan=sc)
            return found, sc
        t_full, (full_found, full_scan) = best_of(2, lambda: scan(False))
        t_cg, (cg_found, cg_scan) = best_of(rounds, lambda: scan(True))
        want = {s["inode"]: s["pid"] for s in busy.servers}
        owners_ok = ({i: o[0] for i, o in full_found.items()} == want ==
                     {i: o[0] for i, o in cg_found.items()})
        return {"connections": busy.connections, "tcp_rows": rows, "listeners": len(diag),
                "proc_listeners": len(proc),
                "bench_listeners": len(mine), "sock_diag_s": t_diag, "proc_net_s": t_proc,
                "same": same, "ratio": t_proc / t_diag, "full_scan_s": t_full,
                "full_fds": full_scan.fds, "full_processes": full_scan.processes,
                "us_per_fd": t_full / max(1, full_scan.fds) * 1e6, "cgroup_s": t_cg,
                "cgroup_fds": cg_scan.fds, "cgroup_processes": cg_scan.processes,
                "cgroup_method": cg_scan.method, "owners_ok": owners_ok}
    finally:
        busy.stop()


def report(m):
    return ("%(connections)d established connections (%(tcp_rows)d /proc/net/tcp rows), "
            "%(listeners)d listeners (%(proc_listeners)d by /proc/net, read later): sock_diag "
            "%(sock_diag_s).4fs, /proc/net %(proc_net_s).3fs (%(ratio).0fx), the %(bench_listeners)d "
            "bench listeners found the same by both: %(same)s; owner lookup of the %(bench_listeners)d "
            "bench listeners: full fd scan %(full_scan_s).3fs (%(full_fds)d fds in "
            "%(full_processes)d processes, %(us_per_fd).1f us/fd), by cgroup %(cgroup_s).5fs "
            "(%(cgroup_fds)d fds in %(cgroup_processes)d processes, %(cgroup_method)s), "
            "same owners: %(owners_ok)s" % m)


def rows(m):
    ok_diag = m["sock_diag_s"] <= 0.05 and m["ratio"] >= 10 and m["same"]
    return [
        ("listener snapshot, %dk established loopback TCP connections" % (m["connections"] // 1000),
         "sock_diag %.1f ms vs /proc/net %.0f ms; the %d bench listeners found by both: %s" % (
             m["sock_diag_s"] * 1e3, m["proc_net_s"] * 1e3, m["bench_listeners"],
             "yes" if m["same"] else "NO"),
         "%.0fx faster" % m["ratio"], "<= 50 ms and >= 10x", ok_diag),
        ("owner lookup of the listeners, same host",
         "by cgroup %.2f ms (%d fds, %d procs) vs every fd %.0f ms (%d fds, %.1f us/fd)%s" % (
             m["cgroup_s"] * 1e3, m["cgroup_fds"], m["cgroup_processes"], m["full_scan_s"] * 1e3,
             m["full_fds"], m["us_per_fd"], "" if m["owners_ok"] else "; OWNERS DIFFER"),
         "%.0fx faster" % (m["full_scan_s"] / max(m["cgroup_s"], 1e-9)), "proportional to "
         "the listeners' processes", m["owners_ok"] and m["cgroup_method"] == "cgroup"),
    ]


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--connections", type=int, default=100000)
    p.add_argument("--servers", type=int, default=10)
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    need = args.connections // args.servers + 100
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if need > hard:
        raise SystemExit("each process would hold %d fds, over the hard limit %d: use more "
                         "--servers" % (need, hard))
    m = measure(args.connections, args.servers)
    print(report(m))
    for r in rows(m):
        print(" | ".join(str(x) for x in r))


if __name__ == "__main__":
    main()
